/**
 * Generation for one sequence: prefill the prompt (in chunks of the model's maxTokens), then
 * decode one token per step through the KV cache, sampling on the host, streaming text through
 * the tokenizer's stream decoder and stopping on EOS, max tokens or stop strings. An async
 * iterator of text pieces; cancel with an AbortSignal (the sequence's pages are freed either way).
 */
import { ShapeError } from '../gpu/errors';
import type { Tokenizer } from '../tokenizer/tokenizer';
import { Sampler, StoppingCriteria, type SamplingParams, type StopReason } from './sampling';
import type { Transformer } from './transformer';

export interface GenerateOptions extends SamplingParams {
  maxNewTokens?: number; // default 128
  stopStrings?: string[];
  signal?: AbortSignal;
}

export interface GenerateStats {
  promptTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
  stop: StopReason | 'aborted' | null;
  /** KV bytes the sequence held at its end (all layers). */
  kvBytes: number;
}

let nextSeqId = 1 << 20; // ids of standalone generations, away from an engine's

export async function* generate(
  model: Transformer,
  tokenizer: Tokenizer,
  promptIds: readonly number[],
  opts: GenerateOptions = {},
  stats: Partial<GenerateStats> = {},
): AsyncGenerator<string, GenerateStats> {
  const maxNew = opts.maxNewTokens ?? 128;
  if (promptIds.length === 0) throw new ShapeError('generate: the prompt has no tokens');
  const total = promptIds.length + maxNew;
  if (total > model.opts.maxContext) {
    throw new ShapeError(`generate: ${promptIds.length} prompt tokens + ${maxNew} new ones pass the context of ${model.opts.maxContext}`);
  }
  const seqId = nextSeqId++;
  const sampler = new Sampler(model.spec.vocabSize, opts);
  const stopping = new StoppingCriteria({ eosTokenIds: tokenizer.eosTokenIds, maxNewTokens: maxNew, stopStrings: opts.stopStrings });
  const decoder = tokenizer.createStreamDecoder({ skipSpecialTokens: true });
  const history = [...promptIds];
  Object.assign(stats, { promptTokens: promptIds.length, generatedTokens: 0, prefillMs: 0, decodeMs: 0, stop: null, kvBytes: 0 });
  try {
    let t0 = performance.now();
    let logits: Float32Array | undefined;
    for (let i = 0; i < promptIds.length; i += model.opts.maxTokens) {
      opts.signal?.throwIfAborted();
      logits = await model.forward([{ seqId, tokenIds: promptIds.slice(i, i + model.opts.maxTokens) }]);
    }
    stats.prefillMs = performance.now() - t0;
    t0 = performance.now();
    for (;;) {
      if (opts.signal?.aborted) {
        stats.stop = 'aborted';
        break;
      }
      const next = sampler.sample(logits!, history);
      history.push(next);
      stats.generatedTokens!++;
      const { text, stop } = stopping.step(next, decoder.push(next));
      if (text) yield text;
      if (stop) {
        stats.stop = stop;
        // Text held back (a possible stop-string prefix, an incomplete UTF-8 character) ends the
        // stream unless a stop string cut it.
        const tail = stop === 'stop_string' ? '' : stopping.flush() + decoder.flush();
        if (tail) yield tail;
        break;
      }
      logits = await model.forward([{ seqId, tokenIds: [next] }]);
    }
    stats.decodeMs = performance.now() - t0;
    stats.kvBytes = model.kvBytes(seqId);
    return stats as GenerateStats;
  } finally {
    model.free(seqId);
  }
}
