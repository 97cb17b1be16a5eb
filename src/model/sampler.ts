// Picking the next token of one sequence from its row of logits (transformers.js
// `generation/samplers` split): argmax (temperature 0), a categorical draw, a seeded generator, and
// the Sampler that runs the logits processors (logitsProcessors.ts) in HF order on a scratch copy it
// owns, so per step nothing vocab-sized is allocated.
//
// Worked example, logits [2, 1, 0, -1]: temperature 0 → greedy: token 0; otherwise the processors
// filter the row and sampleCategorical draws from softmax of what is left.

import { applyMinP, applyRepetitionPenalty, applyTemperature, applyTopK, applyTopP } from './logitsProcessors';

/** Index of the largest logit, the lowest index on ties. Example: [0, 3, 3, 1] → 1. */
export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > bestValue) {
      bestValue = logits[i];
      best = i;
    }
  }
  return best;
}

/**
 * Draws a token with probability softmax(logits) using `u` uniform in [0, 1): walks the
 * cumulative sum of exp(logit - max) until it passes u · total. -Infinity logits are never drawn.
 * `scratch` (optional, at least logits.length) keeps the exponentials so each is computed once.
 * Example: logits [0, ln 3] → probs [0.25, 0.75]; u 0.2 → 0, u 0.3 → 1.
 */
export function sampleCategorical(logits: Float32Array, u: number, scratch?: Float32Array): number {
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  if (max === -Infinity) throw new Error('sampling: every token was filtered out');
  let total = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(logits[i] - max);
    if (scratch) scratch[i] = e;
    total += e;
  }
  const target = u * total;
  let acc = 0;
  let last = -1;
  for (let i = 0; i < n; i++) {
    if (logits[i] === -Infinity) continue;
    acc += scratch ? scratch[i] : Math.exp(logits[i] - max);
    last = i;
    if (acc > target) return i;
  }
  return last; // rounding left target at the very end
}

/**
 * Small seeded generator (mulberry32: 32-bit state, period 2^32), so a seed gives the same
 * tokens on every run and platform. next() is uniform in [0, 1) with 32 random bits.
 * Example: new SeededRandom(42).next() is the same number every time.
 */
export class SeededRandom {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  next(): number {
    return this.nextUint32() / 4294967296;
  }
}

const showValue = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : String(v));

/** Largest seed: the generator's state is 32 bits. */
export const MAX_SEED = 2 ** 32 - 1;

export interface SamplingParams {
  /** 0 = greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 = off. Default 0. */
  topK?: number;
  /** Nucleus mass in (0, 1]; 1 = off. Default 1. */
  topP?: number;
  /** Relative probability floor in [0, 1]; 0 = off. Default 0. */
  minP?: number;
  /** > 1 discourages tokens already in the history; 1 = off. Default 1. */
  repetitionPenalty?: number;
  /** An integer in 0..MAX_SEED; the same seed and logits give the same tokens. Default 0. */
  seed?: number;
}

/**
 * Picks the next token of one sequence. Owns one scratch buffer of 12 · vocab bytes (the logits
 * copy, top-k/top-p values and top-p indices as three views of it) so steps allocate nothing
 * vocab-sized; the caller's logits are never modified.
 *
 * Example: const s = new Sampler(vocab, { temperature: 0.7, topP: 0.9, seed: 1 });
 *          next = s.sample(logitsRow, generatedIds);
 */
export class Sampler {
  readonly vocabSize: number;
  readonly params: Readonly<Required<SamplingParams>>;
  private readonly rng: SeededRandom;
  private readonly scratch: ArrayBuffer; // 12 · vocab bytes, the three views below
  private readonly work: Float32Array; // (vocab) the caller's logits, processed in place
  private readonly aux: Float32Array; // (vocab) top-k selection values, then top-p probabilities, then exponentials
  private readonly order: Uint32Array; // (vocab) top-p candidate token ids

  constructor(vocabSize: number, params: SamplingParams = {}) {
    if (!(Number.isInteger(vocabSize) && vocabSize > 0)) {
      throw new RangeError(`vocabSize must be a positive integer, got ${vocabSize}`);
    }
    const p: Required<SamplingParams> = {
      temperature: params.temperature ?? 1,
      topK: params.topK ?? 0,
      topP: params.topP ?? 1,
      minP: params.minP ?? 0,
      repetitionPenalty: params.repetitionPenalty ?? 1,
      seed: params.seed ?? 0,
    };
    if (!(p.temperature >= 0)) throw new RangeError(`temperature must be >= 0, got ${p.temperature}`);
    if (!(Number.isInteger(p.topK) && p.topK >= 0)) throw new RangeError(`topK must be an integer >= 0, got ${p.topK}`);
    if (!(p.topP > 0 && p.topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${p.topP}`);
    if (!(p.minP >= 0 && p.minP <= 1)) throw new RangeError(`minP must be in [0, 1], got ${p.minP}`);
    if (!(p.repetitionPenalty > 0)) throw new RangeError(`repetitionPenalty must be > 0, got ${p.repetitionPenalty}`);
    // The generator has 32 bits of state: a seed outside them would be coerced (2^32 -> 0, NaN -> 0).
    if (!(Number.isInteger(p.seed) && p.seed >= 0 && p.seed <= MAX_SEED))
      throw new RangeError(`seed must be an integer in 0..${MAX_SEED}, got ${showValue(p.seed)}`);
    this.vocabSize = vocabSize;
    this.params = Object.freeze(p);
    this.rng = new SeededRandom(p.seed);
    this.scratch = new ArrayBuffer(vocabSize * 12);
    this.work = new Float32Array(this.scratch, 0, vocabSize);
    this.aux = new Float32Array(this.scratch, vocabSize * 4, vocabSize);
    this.order = new Uint32Array(this.scratch, vocabSize * 8, vocabSize);
  }

  /** The next token after `logits` (one row, [vocab]); `history` = ids so far, for the repetition penalty. */
  sample(logits: Float32Array, history: ArrayLike<number> = []): number {
    if (logits.length !== this.vocabSize) {
      throw new RangeError(`logits hold ${logits.length} values, the sampler expects ${this.vocabSize}`);
    }
    const work = this.work;
    work.set(logits);
    // A NaN would be silently skipped by every comparison below; say so instead (a kernel bug).
    for (let i = 0; i < work.length; i++) {
      if (Number.isNaN(work[i])) throw new Error(`sampling: logits hold NaN (token ${i} is the first)`);
    }
    const p = this.params;
    applyRepetitionPenalty(work, history, p.repetitionPenalty);
    if (p.temperature === 0) return argmax(work);
    applyTemperature(work, p.temperature);
    applyTopK(work, p.topK, this.aux);
    applyTopP(work, p.topP, this.aux, this.order);
    applyMinP(work, p.minP);
    return sampleCategorical(work, this.rng.next(), this.aux);
  }
}
