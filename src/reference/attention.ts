/**
 * Float64 reference attention for a ragged batch, the twin every attention kernel (flashPrefill,
 * splitKvDecode + mergePartials, the naive three-pass baseline) is tested against.
 *
 * Sequence i has seqLensKV[i] keys (rows kvStart_i .. of k and v) and seqLensQ[i] queries (rows
 * qStart_i .. of q) at the LAST seqLensQ[i] positions: query j sits at position
 * seqLensKV[i] - seqLensQ[i] + j. Query head h reads KV head floor(h / (H / Hkv)).
 *   causal: keys at positions <= the query's;  window w > 0: keys in (p - w, p].
 * out [Tq, H, Dv] = softmax(scale * q k^T) v;  lse [Tq, H] = natural log of sum exp(scale * q.k).
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
}

export function referenceAttention(a: ReferenceAttentionArgs): { out: Float64Array; lse: Float64Array } {
  const { numHeads: H, numKvHeads: Hkv, headDimQK: D, headDimV: Dv } = a;
  const G = H / Hkv;
  const scale = a.scale ?? 1 / Math.sqrt(D);
  const window = a.window ?? 0;
  const Tq = a.seqLensQ.reduce((x, y) => x + y, 0);
  const out = new Float64Array(Tq * H * Dv);
  const lse = new Float64Array(Tq * H);
  let qStart = 0;
  let kvStart = 0;
  for (let i = 0; i < a.seqLensQ.length; i++) {
    const qLen = a.seqLensQ[i];
    const kvLen = a.seqLensKV[i];
    const scores = new Float64Array(kvLen);
    for (let j = 0; j < qLen; j++) {
      const pos = kvLen - qLen + j;
      const t = qStart + j;
      for (let h = 0; h < H; h++) {
        const kh = Math.floor(h / G);
        const qOff = (t * H + h) * D;
        let m = -Infinity;
        for (let key = 0; key < kvLen; key++) {
          const visible = (a.causal === false || key <= pos) && (window <= 0 || key > pos - window);
          if (!visible) {
            scores[key] = -Infinity;
            continue;
          }
          const kOff = ((kvStart + key) * Hkv + kh) * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += a.q[qOff + d] * a.k[kOff + d];
          scores[key] = s * scale;
          if (scores[key] > m) m = scores[key];
        }
        let sum = 0;
        for (let key = 0; key < kvLen; key++) {
          const p = scores[key] === -Infinity ? 0 : Math.exp(scores[key] - m);
          scores[key] = p;
          sum += p;
        }
        const oOff = (t * H + h) * Dv;
        for (let key = 0; key < kvLen; key++) {
          const p = scores[key] / sum;
          if (p === 0) continue;
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
