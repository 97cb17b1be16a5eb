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
import { KV_Q4_GROUP, type KvDtype, type KvQuantDtype } from '../gpu/dtype';
import { f16BitsToF32, f32ToF16Bits } from '../sources/halfFloat';

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

/**
 * q8 / q4 KV rows, quantised as kvAppendQuant.wgsl does (the twin of quantise-on-write), f32 rounding
 * included: each row of `rowValues` values is cut into scale groups (q8: the whole row; q4: 32 values,
 * the last group possibly shorter) and each group gets an f16 scale and integer codes:
 *   q8: scale = f16(max|x| / 127),  code = clamp(round(x / scale), -127, 127)
 *   q4: scale = f16(m / -8) with m the value of largest |x| (the first on ties; GGUF Q4_0's rule),
 *       code = clamp(round(x / scale), -8, 7)
 * round is half to even (WGSL round); a zero scale gives codes 0. x = code * scale is then exact in
 * float64 (an 8-bit code times an 11-bit significand). A group holding a NaN or Inf gets a NaN scale
 * and codes 0, so all of it reads back NaN (kvAppendQuant.wgsl stores the f16 NaN 0x7e00).
 */
export interface QuantizedKvRows {
  /** One code per value, in the values' order. */
  codes: Int8Array;
  /** f16 scale values (as numbers), [rows][groups per row]. */
  scales: Float64Array;
  /** Values per scale group (q8: rowValues). */
  groupValues: number;
  rowValues: number;
}

const fr = Math.fround;

/** Round to nearest, halves to even, as WGSL's round(). */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function quantizeKvRows(x: ArrayLike<number>, rowValues: number, dtype: KvQuantDtype): QuantizedKvRows {
  if (x.length % rowValues)
    throw new RangeError(`quantizeKvRows: ${x.length} values is not whole rows of ${rowValues}`);
  const groupValues = dtype === 'q8' ? rowValues : KV_Q4_GROUP;
  const groups = Math.ceil(rowValues / groupValues);
  const rows = x.length / rowValues;
  const [lo, hi] = dtype === 'q8' ? [-127, 127] : [-8, 7];
  const codes = new Int8Array(x.length);
  const scales = new Float64Array(rows * groups);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      const o = r * rowValues + g * groupValues;
      const n = Math.min(groupValues, rowValues - g * groupValues);
      let amax = 0;
      let m = 0;
      let finite = true;
      for (let j = 0; j < n; j++) {
        const v = fr(x[o + j]);
        finite &&= Number.isFinite(v);
        if (Math.abs(v) > amax) {
          amax = Math.abs(v);
          m = v;
        }
      }
      if (!finite) {
        scales[r * groups + g] = Number.NaN; // the f16 NaN scale: the whole group reads back NaN
        continue; // codes 0
      }
      const scale = f16BitsToF32(f32ToF16Bits(dtype === 'q8' ? fr(amax / 127) : fr(m / -8)));
      scales[r * groups + g] = scale;
      for (let j = 0; j < n; j++) {
        codes[o + j] = scale === 0 ? 0 : Math.min(hi, Math.max(lo, roundHalfEven(fr(fr(x[o + j]) / scale))));
      }
    }
  }
  return { codes, scales, groupValues, rowValues };
}

/** The values quantised rows stand for: code * scale of its group. */
export function dequantizeKvRows(q: QuantizedKvRows): Float64Array {
  const out = new Float64Array(q.codes.length);
  const groups = Math.ceil(q.rowValues / q.groupValues);
  for (let i = 0; i < out.length; i++) {
    const r = Math.floor(i / q.rowValues);
    out[i] = q.codes[i] * q.scales[r * groups + Math.floor((i % q.rowValues) / q.groupValues)];
  }
  return out;
}

/** What the kernels read back from q8 / q4 pages written with rows of x: dequantize(quantize(x)). */
export function kvQuantized(x: ArrayLike<number>, rowValues: number, dtype: KvQuantDtype): Float64Array {
  return dequantizeKvRows(quantizeKvRows(x, rowValues, dtype));
}

/**
 * What KV pages of `dtype` give back for rows written with x [rows, rowValues]: f32 and f16 rounding
 * (the kernels compute K / V in f32 and store them so), or dequantize(quantize(x)) for q8 / q4. The
 * KV store of the reference forward pass (referenceForward's kvStore).
 */
export function kvStored(dtype: KvDtype): (x: ArrayLike<number>, rowValues: number) => Float64Array {
  if (dtype === 'q8' || dtype === 'q4') return (x, rowValues) => kvQuantized(x, rowValues, dtype);
  const round = dtype === 'f16' ? (v: number) => f16BitsToF32(f32ToF16Bits(fr(v))) : fr;
  return (x) => Float64Array.from(x, round);
}
