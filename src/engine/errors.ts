import { WebAttnError } from '../gpu/errors';

/** A request the engine refused, or that failed while it ran; the message names the request. */
export class EngineRequestError extends WebAttnError {
  override name = 'EngineRequestError';
}
