/**
 * Generation for one prompt as a stream of text pieces, with timings: the engine's loop (the only
 * generation loop) serving a single request. generateText streams one request of an Engine;
 * generate() does it over a loaded model with an engine of its own (a KV pool for one sequence),
 * disposed at the end, so the sequence's pages are freed either way. Cancel with an AbortSignal.
 */
import type { SamplingParams } from '../model/sampler';
import type { StopReason } from '../model/stoppingCriteria';
import type { Transformer } from '../model/transformer';
import type { Tokenizer } from '../tokenizer/tokenizer';
import { Engine } from './engine';

export interface GenerateOptions extends SamplingParams {
  maxNewTokens?: number; // default 128
  stopStrings?: string[];
  signal?: AbortSignal;
}

export interface GenerateStats {
  promptTokens: number;
  generatedTokens: number;
  /** From the request to its first token (the prefill). */
  prefillMs: number;
  /** From the first token to the last. */
  decodeMs: number;
  stop: StopReason | 'aborted' | null;
  /** KV bytes the sequence held at its end (all layers, whole pages). */
  kvBytes: number;
}

/**
 * Streams the text of one request of `engine` (prompt ids as they are); returns its stats, also
 * written into `stats` as they become known. An already aborted signal throws its reason.
 */
export async function* generateText(
  engine: Engine,
  promptIds: readonly number[],
  opts: GenerateOptions = {},
  stats: Partial<GenerateStats> = {},
): AsyncGenerator<string, GenerateStats> {
  opts.signal?.throwIfAborted();
  const { maxNewTokens = 128, stopStrings, signal, ...sampling } = opts;
  Object.assign(stats, {
    promptTokens: promptIds.length,
    generatedTokens: 0,
    prefillMs: 0,
    decodeMs: 0,
    stop: null,
    kvBytes: 0,
  });
  const t0 = performance.now();
  let tFirst = t0;
  for await (const c of engine.generate(promptIds, {
    ...sampling,
    maxTokens: maxNewTokens,
    stop: stopStrings,
    signal,
  })) {
    if (c.tokenId >= 0 && stats.generatedTokens!++ === 0) {
      tFirst = performance.now();
      stats.prefillMs = tFirst - t0;
    }
    if (c.text) yield c.text;
    if (c.finishReason !== null) stats.stop = c.finishReason === 'abort' ? 'aborted' : (c.stopReason ?? null);
  }
  stats.decodeMs = performance.now() - tFirst;
  // The last sampled token is never fed: the sequence ended holding prompt + generated - 1 tokens.
  const held = Math.max(0, stats.promptTokens! + stats.generatedTokens! - 1);
  stats.kvBytes = Math.ceil(held / engine.model.opts.pageSize) * engine.kvBytesPerPage;
  return stats as GenerateStats;
}

/**
 * Generates from a loaded model: an Engine over it with a KV pool for one sequence of maxContext
 * tokens, one request, then the engine is disposed (the model is the caller's).
 */
export async function* generate(
  model: Transformer,
  tokenizer: Tokenizer,
  promptIds: readonly number[],
  opts: GenerateOptions = {},
  stats: Partial<GenerateStats> = {},
): AsyncGenerator<string, GenerateStats> {
  const engine = await Engine.forModel(model, tokenizer, {
    numPages: Math.ceil(model.opts.maxContext / model.opts.pageSize),
  });
  try {
    return yield* generateText(engine, promptIds, opts, stats);
  } finally {
    engine.dispose();
  }
}
