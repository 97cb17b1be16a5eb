// Logits processors for host-side sampling (transformers.js `generation/logits_process` split):
// each changes one row of logits, a Float32Array [vocab] read back from the GPU, in place and keeps
// no state. Removed tokens are set to -Infinity. sampler.ts runs them in HF order:
//
//   logits → repetition penalty → temperature → top-k → top-p → min-p → draw
//
// Worked example, logits [2, 1, 0, -1] (softmax ≈ [0.644, 0.237, 0.087, 0.032]):
//   topK 2            → [2, 1, -inf, -inf]
//   topP 0.8          → 0.644 < 0.8, 0.644 + 0.237 = 0.881 ≥ 0.8: keeps tokens 0 and 1
//   minP 0.2          → keeps p ≥ 0.2 · 0.644 = 0.129: tokens 0 and 1
//   repetitionPenalty 2 with history [0, 3] → [1, 1, 0, -2]

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
