/**
 * Float64 reference attention for a ragged batch, the twin every attention kernel (flashPrefill,
 * splitKvDecode + mergePartials, the naive three-pass baseline) is tested against.
 *
 * Sequence i has seqLensKV[i] keys (rows kvStart_i .. of k and v) and seqLensQ[i] queries (rows
 * qStart_i .. of q) at the LAST seqLensQ[i] positions: query j sits at position
 * seqLensKV[i] - seqLensQ[i] + j. Query head h reads KV head floor(h / (H / Hkv)).
 *   causal: keys at positions <= the query's;  window w > 0: keys in (p - w, p].
 * out [Tq, H, Dv] = softmax(scale * q k^T) v;  lse [Tq, H] = natural log of sum exp(scale * q.k).
 *   softcap c > 0 (Gemma-2): each scaled score s is replaced by tanh(s / c) * c first.
 * IEEE arithmetic throughout, so NaN and Inf propagate: a NaN in a query row, in a visible key's K
 * or in a visible key's V makes that output row (and its lse, for q and K) NaN. Only masked keys
 * (causal, window) are left out; a visible key counts even when its probability underflows to 0
 * (0 * NaN is NaN), which is what the kernels do.
 */
export interface ReferenceAttentionArgs {
  q: ArrayLike<number>; // [Tq, H, Dqk]
  k: ArrayLike<number>; // [Tk, Hkv, Dqk]
  v: ArrayLike<number>; // [Tk, Hkv, Dv]
  numHeads: number;
  numKvHeads: number;
  headDimQK: number;
  headDimV: number;
  seqLensQ: readonly number[];
  seqLensKV: readonly number[];
  causal?: boolean; // default true
  scale?: number;
  window?: number;
  softcap?: number; // default 0 = off
}

export function referenceAttention(a: ReferenceAttentionArgs): { out: Float64Array; lse: Float64Array } {
  const { numHeads: H, numKvHeads: Hkv, headDimQK: D, headDimV: Dv } = a;
  const G = H / Hkv;
  const scale = a.scale ?? 1 / Math.sqrt(D);
  const window = a.window ?? 0;
  const softcap = a.softcap ?? 0;
  const Tq = a.seqLensQ.reduce((x, y) => x + y, 0);
  const out = new Float64Array(Tq * H * Dv);
  const lse = new Float64Array(Tq * H);
  let qStart = 0;
  let kvStart = 0;
  for (let i = 0; i < a.seqLensQ.length; i++) {
    const qLen = a.seqLensQ[i];
    const kvLen = a.seqLensKV[i];
    const scores = new Float64Array(kvLen);
    const visible = new Uint8Array(kvLen);
    for (let j = 0; j < qLen; j++) {
      const pos = kvLen - qLen + j;
      const t = qStart + j;
      for (let h = 0; h < H; h++) {
        const kh = Math.floor(h / G);
        const qOff = (t * H + h) * D;
        let m = -Infinity;
        for (let key = 0; key < kvLen; key++) {
          visible[key] = (a.causal === false || key <= pos) && (window <= 0 || key > pos - window) ? 1 : 0;
          if (!visible[key]) continue;
          const kOff = ((kvStart + key) * Hkv + kh) * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += a.q[qOff + d] * a.k[kOff + d];
          s *= scale;
          scores[key] = softcap > 0 ? Math.tanh(s / softcap) * softcap : s;
          if (scores[key] > m) m = scores[key]; // a NaN score leaves m; its p below is NaN
        }
        let sum = 0;
        for (let key = 0; key < kvLen; key++) {
          if (!visible[key]) continue;
          const p = scores[key] === -Infinity ? 0 : Math.exp(scores[key] - m);
          scores[key] = p;
          sum += p;
        }
        const oOff = (t * H + h) * Dv;
        for (let key = 0; key < kvLen; key++) {
          if (!visible[key]) continue;
          const p = scores[key] / sum;
          const vOff = ((kvStart + key) * Hkv + kh) * Dv;
          for (let d = 0; d < Dv; d++) out[oOff + d] += p * a.v[vOff + d];
        }
        lse[t * H + h] = m + Math.log(sum);
      }
    }
    qStart += qLen;
    kvStart += kvLen;
  }
  return { out, lse };
}

/** Relative L2 error ||x - ref|| / ||ref||; NaN anywhere in x gives Infinity. */
export function relL2(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (x.length !== ref.length) throw new RangeError(`length ${x.length} != reference length ${ref.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) return Infinity;
    num += (x[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

/**
 * Where x and the reference disagree on being finite (NaN / Inf against a number, or the reverse),
 * described for a test message: 'index 70: got 0.5, reference NaN'; undefined when they agree everywhere.
 */
export function nonFiniteMismatch(x: ArrayLike<number>, ref: ArrayLike<number>): string | undefined {
  if (x.length !== ref.length) return `length ${x.length} != reference length ${ref.length}`;
  let count = 0;
  let first = -1;
  for (let i = 0; i < x.length; i++) {
    if (Number.isFinite(x[i]) !== Number.isFinite(ref[i])) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (first < 0) return undefined;
  return `${count} mismatches, first at index ${first}: got ${x[first]}, reference ${ref[first]}`;
}

/** relL2 over the entries where the reference is finite (use with nonFiniteMismatch). */
export function relL2Finite(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  const xs: number[] = [];
  const rs: number[] = [];
  for (let i = 0; i < ref.length; i++) {
    if (Number.isFinite(ref[i])) {
      xs.push(x[i]);
      rs.push(ref[i]);
    }
  }
  return rs.length ? relL2(xs, rs) : 0;
}
