// Host-side sampling for one sequence: logits processors, samplers and stopping criteria, as
// separate small pieces (transformers.js `generation/` split). Everything works on one row of
// logits, a Float32Array [vocab], read back from the GPU.
//
// Per step (HF order):  logits → repetition penalty → temperature → top-k → top-p → min-p → draw
// Removed tokens are set to -Infinity. Processors change `logits` in place and keep no state;
// the Sampler copies the caller's row into a scratch buffer it owns first, so per step nothing
// vocab-sized is allocated.
//
// Worked example, logits [2, 1, 0, -1] (softmax ≈ [0.644, 0.237, 0.087, 0.032]):
//   temperature 0     → greedy: token 0
//   topK 2            → [2, 1, -inf, -inf]
//   topP 0.8          → 0.644 < 0.8, 0.644 + 0.237 = 0.881 ≥ 0.8: keeps tokens 0 and 1
//   minP 0.2          → keeps p ≥ 0.2 · 0.644 = 0.129: tokens 0 and 1
//   repetitionPenalty 2 with history [0, 3] → [1, 1, 0, -2]

// ---------------------------------------------------------------------------------------------
// Logits processors (in place on a Float32Array [vocab])

/**
 * CTRL-style repetition penalty (HF RepetitionPenaltyLogitsProcessor): every token seen in
 * `history` (each counted once) has a positive logit divided by `penalty`, a negative one
 * multiplied by it. penalty 1 does nothing; > 1 discourages repeats.
 * Example: logits [2, -1, 3], history [0, 1, 1], penalty 2 → [1, -2, 3].
 */
export function applyRepetitionPenalty(logits: Float32Array, history: ArrayLike<number>, penalty: number): void {
  if (penalty === 1 || history.length === 0) return;
  if (!(penalty > 0)) throw new RangeError(`repetitionPenalty must be > 0, got ${penalty}`);
  const seen = new Set<number>();
  for (let i = 0; i < history.length; i++) {
    const id = history[i];
    if (id < 0 || id >= logits.length || seen.has(id)) continue;
    seen.add(id);
    const v = logits[id];
    logits[id] = v > 0 ? v / penalty : v * penalty;
  }
}

/**
 * Divides every logit by `temperature` (> 0): below 1 sharpens, above 1 flattens.
 * Example: [2, 1] at 0.5 → [4, 2]; softmax 0.73/0.27 becomes 0.88/0.12.
 * Temperature 0 means greedy and is handled by the Sampler, never divided by.
 */
export function applyTemperature(logits: Float32Array, temperature: number): void {
  if (!(temperature > 0)) throw new RangeError(`temperature must be > 0 here (0 means greedy), got ${temperature}`);
  if (temperature === 1) return;
  const inv = 1 / temperature;
  for (let i = 0; i < logits.length; i++) logits[i] *= inv;
}

/**
 * Keeps the k largest logits (and any tied with the k-th, like HF), sets the rest to -Infinity.
 * `scratch` is a Float32Array of at least logits.length (its contents are overwritten).
 * k ≤ 0 or k ≥ vocab does nothing. Example: [1, 5, 3, 4], k 2 → [-inf, 5, -inf, 4].
 */
export function applyTopK(logits: Float32Array, k: number, scratch: Float32Array): void {
  const n = logits.length;
  if (k <= 0 || k >= n) return;
  const values = scratch.subarray(0, n);
  values.set(logits);
  // The k-th largest is the (n - k)-th smallest.
  const kth = selectNth(values, n - k);
  for (let i = 0; i < n; i++) if (logits[i] < kth) logits[i] = -Infinity;
}

/**
 * Nucleus sampling (HF TopPLogitsWarper): keeps the smallest set of most likely tokens whose
 * probabilities sum to at least p (always at least one token; tokens tied with the last one
 * kept are kept too), sets the rest to -Infinity. p ≥ 1 does nothing.
 * `probs` (Float32Array) and `order` (Uint32Array) are scratch of at least logits.length.
 * Example: logits [2, 1, 0, -1] → probs [0.644, 0.237, 0.087, 0.032]; p 0.8 keeps {0, 1}; p 0.6 keeps {0}.
 *
 * No full sort: a quickselect-like partition on probability mass, expected O(vocab).
 * Candidates idx[lo, hi) are undecided, everything before lo is kept; each round splits them
 * around a pivot into > | = | < and looks at the mass of the > part.
 */
export function applyTopP(logits: Float32Array, p: number, probs: Float32Array, order: Uint32Array): void {
  if (p >= 1) return;
  if (!(p > 0)) throw new RangeError(`topP must be in (0, 1], got ${p}`);
  const count = softmaxInto(logits, probs, order);
  if (count <= 1) return;
  let lo = 0;
  let hi = count;
  let need = p;
  let cutoff = -1; // keep tokens with prob >= cutoff
  while (cutoff < 0) {
    if (hi - lo <= 1) {
      cutoff = hi > lo ? probs[order[lo]] : lo > 0 ? probs[order[lo - 1]] : 0;
      break;
    }
    const pivot = medianOfThree(probs[order[lo]], probs[order[(lo + hi) >>> 1]], probs[order[hi - 1]]);
    const [gtEnd, eqEnd] = partition3(order, probs, lo, hi, pivot);
    let massGt = 0;
    for (let i = lo; i < gtEnd; i++) massGt += probs[order[i]];
    if (massGt >= need && gtEnd > lo) {
      hi = gtEnd;
      continue;
    }
    const massEq = (eqEnd - gtEnd) * pivot;
    if (massGt + massEq >= need || eqEnd === hi) {
      cutoff = pivot;
      break;
    }
    need -= massGt + massEq;
    lo = eqEnd;
  }
  for (let i = 0; i < logits.length; i++) if (logits[i] !== -Infinity && probs[i] < cutoff) logits[i] = -Infinity;
}

/**
 * Min-p (HF MinPLogitsWarper): keeps tokens whose probability is at least minP times the top
 * token's, i.e. logit ≥ max + ln(minP); no softmax needed. minP ≤ 0 does nothing.
 * Example: logits [2, 1, 0, -1], minP 0.3 → threshold 2 + ln 0.3 = 0.796 → keeps {0, 1}.
 */
export function applyMinP(logits: Float32Array, minP: number): void {
  if (minP <= 0) return;
  if (!(minP <= 1)) throw new RangeError(`minP must be in [0, 1], got ${minP}`);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  const threshold = max + Math.log(minP);
  for (let i = 0; i < logits.length; i++) if (logits[i] < threshold) logits[i] = -Infinity;
}

// ---------------------------------------------------------------------------------------------
// Samplers

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
  /** Seed of the generator; the same seed and logits give the same tokens. Default 0. */
  seed?: number;
}

/**
 * Picks the next token of one sequence. Owns one scratch buffer of 12 · vocab bytes (the logits
 * copy, top-k/top-p values and top-p indices as three views of it) so steps allocate nothing vocab-sized; the caller's
 * logits are never modified.
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
    if (!(Number.isInteger(vocabSize) && vocabSize > 0)) throw new RangeError(`vocabSize must be a positive integer, got ${vocabSize}`);
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
    if (logits.length !== this.vocabSize) throw new RangeError(`logits hold ${logits.length} values, the sampler expects ${this.vocabSize}`);
    const work = this.work;
    work.set(logits);
    // A NaN would be silently skipped by every comparison below; say so instead (a kernel bug).
    for (let i = 0; i < work.length; i++) {
      if (work[i] !== work[i]) throw new Error(`sampling: logits hold NaN (token ${i} is the first)`);
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

// ---------------------------------------------------------------------------------------------
// Stopping criteria

export type StopReason = 'eos' | 'max_tokens' | 'stop_string';

/**
 * Finds stop strings in streamed text, even split across tokens, and holds back text that could
 * still become one, so a stop string is never half shown.
 * Example, stop '\nUser:':  push('Hi\nUs') → { text: 'Hi', stopped: false } ('\nUs' held)
 *                           push('er: x')  → { text: '', stopped: true }    (stop found; 'Hi' was all)
 *                           (had it been push('ed'), text '\nUsed' would be released)
 */
export class StopStringMatcher {
  private held = '';
  private readonly stops: readonly string[];

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  push(delta: string): { text: string; stopped: boolean; stopString?: string } {
    const buffer = this.held + delta;
    let at = -1;
    let which: string | undefined;
    for (const stop of this.stops) {
      const i = buffer.indexOf(stop);
      if (i >= 0 && (at < 0 || i < at)) {
        at = i;
        which = stop;
      }
    }
    if (at >= 0) {
      this.held = '';
      return { text: buffer.slice(0, at), stopped: true, stopString: which };
    }
    const keep = this.partialSuffixLength(buffer);
    this.held = buffer.slice(buffer.length - keep);
    return { text: buffer.slice(0, buffer.length - keep), stopped: false };
  }

  /** Releases held text when generation ends for another reason. */
  flush(): string {
    const text = this.held;
    this.held = '';
    return text;
  }

  // Longest suffix of `buffer` that is a proper prefix of some stop string.
  private partialSuffixLength(buffer: string): number {
    let best = 0;
    for (const stop of this.stops) {
      for (let len = Math.min(stop.length - 1, buffer.length); len > best; len--) {
        if (buffer.endsWith(stop.slice(0, len))) {
          best = len;
          break;
        }
      }
    }
    return best;
  }
}

export interface StoppingOptions {
  eosTokenIds?: Iterable<number>;
  /** Most tokens to generate; Infinity = no limit. */
  maxNewTokens?: number;
  stopStrings?: readonly string[];
}

/**
 * All stopping criteria of one sequence. Call step() once per generated token with its id and
 * the text the stream decoder returned for it; emit the returned text; stop when `stop` is set.
 * Example (eos 2, max 3, stop 'END'):
 *   step(5, 'aE') → { text: 'a',  stop: null }        ('E' held: could start 'END')
 *   step(6, 'N')  → { text: '',   stop: null }
 *   step(7, 'D!') → { text: '',   stop: 'stop_string' }
 *   Had the second token been the EOS: step(2, '') → { text: 'E', stop: 'eos' } (held text
 *   released; the EOS itself shows nothing). A third ordinary token ends with stop 'max_tokens'.
 */
export class StoppingCriteria {
  private readonly eos: ReadonlySet<number>;
  private readonly maxNewTokens: number;
  private readonly matcher: StopStringMatcher;
  private generated = 0;

  constructor(opts: StoppingOptions = {}) {
    this.eos = new Set(opts.eosTokenIds ?? []);
    this.maxNewTokens = opts.maxNewTokens ?? Infinity;
    if (!(this.maxNewTokens >= 1)) throw new RangeError(`maxNewTokens must be >= 1, got ${this.maxNewTokens}`);
    this.matcher = new StopStringMatcher(opts.stopStrings ?? []);
  }

  get tokensGenerated(): number {
    return this.generated;
  }

  isEos(tokenId: number): boolean {
    return this.eos.has(tokenId);
  }

  step(tokenId: number, textDelta: string): { text: string; stop: StopReason | null } {
    this.generated++;
    if (this.eos.has(tokenId)) return { text: this.matcher.flush(), stop: 'eos' };
    const { text, stopped } = this.matcher.push(textDelta);
    if (stopped) return { text, stop: 'stop_string' };
    if (this.generated >= this.maxNewTokens) return { text: text + this.matcher.flush(), stop: 'max_tokens' };
    return { text, stop: null };
  }

  /** Text still held back, for a caller that ends generation itself (cancel). */
  flush(): string {
    return this.matcher.flush();
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * probs[i] = softmax(logits)[i] for finite logits (0 for -Infinity); order[0..count) = indices of
 * the finite ones. Returns count.
 */
function softmaxInto(logits: Float32Array, probs: Float32Array, order: Uint32Array): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let total = 0;
  let count = 0;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] === -Infinity) {
      probs[i] = 0;
      continue;
    }
    const e = Math.exp(logits[i] - max);
    probs[i] = e;
    total += e;
    order[count++] = i;
  }
  const inv = 1 / total;
  for (let i = 0; i < logits.length; i++) probs[i] *= inv;
  return count;
}

function medianOfThree(a: number, b: number, c: number): number {
  return a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
}

/**
 * Dutch-flag partition of order[lo, hi) by probs: > pivot first, then == pivot, then < pivot.
 * Returns [end of the > part, end of the == part].
 * Example: probs of order [0.1, 0.5, 0.3, 0.3], pivot 0.3 → [0.5 | 0.3, 0.3 | 0.1], returns [lo+1, lo+3].
 */
function partition3(order: Uint32Array, probs: Float32Array, lo: number, hi: number, pivot: number): [number, number] {
  let gt = lo;
  let i = lo;
  let lt = hi;
  while (i < lt) {
    const v = probs[order[i]];
    if (v > pivot) {
      const t = order[gt];
      order[gt++] = order[i];
      order[i++] = t;
    } else if (v < pivot) {
      const t = order[--lt];
      order[lt] = order[i];
      order[i] = t;
    } else {
      i++;
    }
  }
  return [gt, lt];
}

/**
 * The value that would sit at index `nth` if `values` were sorted ascending (quickselect,
 * reorders `values`). Example: [5, 1, 4, 2], nth 1 → 2.
 */
function selectNth(values: Float32Array, nth: number): number {
  let lo = 0;
  let hi = values.length - 1;
  while (lo < hi) {
    const pivot = medianOfThree(values[lo], values[(lo + hi) >>> 1], values[hi]);
    // Three-way partition of [lo, hi] into < pivot | == pivot | > pivot.
    let lt = lo;
    let i = lo;
    let gt = hi;
    while (i <= gt) {
      const v = values[i];
      if (v < pivot) {
        values[i++] = values[lt];
        values[lt++] = v;
      } else if (v > pivot) {
        values[i] = values[gt];
        values[gt--] = v;
      } else {
        i++;
      }
    }
    if (nth < lt) hi = lt - 1;
    else if (nth > gt) lo = gt + 1;
    else return pivot;
  }
  return values[nth];
}
