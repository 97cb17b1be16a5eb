import { WebAttnError } from '../gpu/errors';

/** A request the engine refused, or that failed while it ran; the message names the request. */
export class EngineRequestError extends WebAttnError {
  override name = 'EngineRequestError';
}

/**
 * A step's logits held NaN or ±Infinity for a request (NaN weights, an overflow, a kernel bug): the
 * request fails rather than sampling plausible text from them. The message names the request and the step.
 */
export class NonFiniteLogitsError extends EngineRequestError {
  override name = 'NonFiniteLogitsError';
}

/** The worker that ran the engine died (crashed, was terminated, its port closed) or sent what no host sends. */
export class WorkerEngineError extends WebAttnError {
  override name = 'WorkerEngineError';
}
