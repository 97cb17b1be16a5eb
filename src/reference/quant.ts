/**
 * Float64 twins of ggml's block quantisation (llama.cpp `ggml-quants.c`), on GGUF block bytes.
 * The dequantizers return exact values (every product of an f16 scale and a small integer is exact
 * in float64); the quantizers reproduce ggml's `quantize_row_*_ref` bit for bit, f32 rounding
 * included (each f32 operation of the C code is a `Math.fround` here).
 *
 * GGUF block layouts (little endian; d, dmin: f16 scales):
 *   Q8_0  32 values, 34 bytes: d, qs[32] int8                       x[j] = qs[j] * d
 *   Q4_0  32 values, 18 bytes: d, qs[16]                            x[j] = ((qs[j] & 15) - 8) * d,
 *                                                                   x[j + 16] = ((qs[j] >> 4) - 8) * d
 *   Q5_0  32 values, 22 bytes: d, qh[4] (u32), qs[16]              5-bit code = nibble as Q4_0 | bit j of qh << 4,
 *                                                                   x = (code - 16) * d
 *   Q4_K 256 values, 144 bytes: d, dmin, scales[12], qs[128]        8 sub-blocks of 32, 6-bit (scale, min) each;
 *        per 64 values c: x[64c + l] = d * sc[2c] * (qs[32c + l] & 15) - dmin * m[2c],
 *                         x[64c + 32 + l] = d * sc[2c + 1] * (qs[32c + l] >> 4) - dmin * m[2c + 1]
 *   Q6_K 256 values, 210 bytes: ql[128], qh[64], scales[16] int8, d  16 sub-blocks of 16;
 *        per 128 values n, l in 0..31: code1 = ql[64n + l] & 15 | (qh[32n + l] & 3) << 4,
 *        code2 = ql[64n + 32 + l] & 15 | (qh >> 2 & 3) << 4, code3 = ql[64n + l] >> 4 | (qh >> 4 & 3) << 4,
 *        code4 = ql[64n + 32 + l] >> 4 | (qh >> 6 & 3) << 4; x[128n + 32i + l] = d * sc[8n + l / 16 + 2i] * (code - 32)
 */
import type { QuantDtype } from '../gpu/dtype';
import { f16BitsToF32, f32ToF16Bits } from '../sources/halfFloat';

/**
 * The GGUF block formats webattn runs, by their webattn dtype names (src/gpu/dtype.ts: q8 is GGUF
 * Q8_0, q4 is Q4_0), with their GGML type ids.
 */
export const GGUF_BLOCKS = {
  q8: { ggmlType: 8, blockValues: 32, blockBytes: 34 },
  q4: { ggmlType: 2, blockValues: 32, blockBytes: 18 },
  q5_0: { ggmlType: 6, blockValues: 32, blockBytes: 22 },
  q4_K: { ggmlType: 12, blockValues: 256, blockBytes: 144 },
  q6_K: { ggmlType: 14, blockValues: 256, blockBytes: 210 },
} as const satisfies Record<QuantDtype, { ggmlType: number; blockValues: number; blockBytes: number }>;
export type GgufBlockFormat = QuantDtype;

const f = Math.fround;

function f16At(b: Uint8Array, o: number): number {
  return f16BitsToF32(b[o] | (b[o + 1] << 8));
}

/** ggml's get_scale_min_k4: the 6-bit (scale, min) of Q4_K sub-block j (0..7) from its 12 scale bytes at `o`. */
export function q4kScaleMin(b: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [b[o + j] & 63, b[o + j + 4] & 63];
  return [(b[o + j + 4] & 0xf) | ((b[o + j - 4] >> 6) << 4), (b[o + j + 4] >> 4) | ((b[o + j] >> 6) << 4)];
}

/** Dequantizes `count` values (a whole number of blocks) of `format` from GGUF block bytes. */
export function dequantizeBlocks(format: GgufBlockFormat, bytes: Uint8Array, count: number): Float64Array {
  const { blockValues, blockBytes } = GGUF_BLOCKS[format];
  if (count % blockValues !== 0)
    throw new RangeError(`${format}: ${count} values is not a whole number of ${blockValues}-value blocks`);
  const blocks = count / blockValues;
  if (bytes.length < blocks * blockBytes) {
    throw new RangeError(`${format}: ${blocks} blocks need ${blocks * blockBytes} bytes, got ${bytes.length}`);
  }
  const y = new Float64Array(count);
  for (let i = 0; i < blocks; i++) {
    const o = i * blockBytes;
    const v = i * blockValues;
    if (format === 'q8') {
      const d = f16At(bytes, o);
      for (let j = 0; j < 32; j++) y[v + j] = ((bytes[o + 2 + j] << 24) >> 24) * d;
    } else if (format === 'q4') {
      const d = f16At(bytes, o);
      for (let j = 0; j < 16; j++) {
        const q = bytes[o + 2 + j];
        y[v + j] = ((q & 15) - 8) * d;
        y[v + j + 16] = ((q >> 4) - 8) * d;
      }
    } else if (format === 'q5_0') {
      const d = f16At(bytes, o);
      const qh = (bytes[o + 2] | (bytes[o + 3] << 8) | (bytes[o + 4] << 16) | (bytes[o + 5] << 24)) >>> 0;
      for (let j = 0; j < 16; j++) {
        const q = bytes[o + 6 + j];
        y[v + j] = (((q & 15) | (((qh >>> j) & 1) << 4)) - 16) * d;
        y[v + j + 16] = (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d;
      }
    } else if (format === 'q4_K') {
      const d = f16At(bytes, o);
      const dmin = f16At(bytes, o + 2);
      for (let c = 0; c < 4; c++) {
        const [s0, m0] = q4kScaleMin(bytes, o + 4, 2 * c);
        const [s1, m1] = q4kScaleMin(bytes, o + 4, 2 * c + 1);
        for (let l = 0; l < 32; l++) {
          const q = bytes[o + 16 + 32 * c + l];
          y[v + 64 * c + l] = d * s0 * (q & 15) - dmin * m0;
          y[v + 64 * c + 32 + l] = d * s1 * (q >> 4) - dmin * m1;
        }
      }
    } else {
      const d = f16At(bytes, o + 208);
      for (let n = 0; n < 2; n++) {
        const ql = o + 64 * n;
        const qh = o + 128 + 32 * n;
        const sc = o + 192 + 8 * n;
        for (let l = 0; l < 32; l++) {
          const h = bytes[qh + l];
          const codes = [
            (bytes[ql + l] & 15) | ((h & 3) << 4),
            (bytes[ql + 32 + l] & 15) | (((h >> 2) & 3) << 4),
            (bytes[ql + l] >> 4) | (((h >> 4) & 3) << 4),
            (bytes[ql + 32 + l] >> 4) | (((h >> 6) & 3) << 4),
          ];
          for (let i = 0; i < 4; i++) {
            const s = (bytes[sc + (l >> 4) + 2 * i] << 24) >> 24;
            y[v + 128 * n + 32 * i + l] = d * s * (codes[i] - 32);
          }
        }
      }
    }
  }
  return y;
}

function checkQuantInput(format: string, x: ArrayLike<number>): number {
  if (x.length % 32 !== 0)
    throw new RangeError(`${format}: ${x.length} values is not a whole number of 32-value blocks`);
  return x.length / 32;
}

/** C's roundf: to nearest, halves away from zero (exact on f32 inputs in float64). */
function roundAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/** The block's value of largest magnitude, the first one on ties, as ggml's `amax < fabsf(v)` scan finds it. */
function signedMax(x: ArrayLike<number>, o: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    const v = f(x[o + j]);
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

/** ggml's quantize_row_q8_0_ref: d = amax / 127 (f32), qs = roundf(x * (1 / d)); GGUF Q8_0 bytes. */
export function referenceQuantizeQ8_0(x: ArrayLike<number>): Uint8Array {
  const blocks = checkQuantInput('q8', x);
  const out = new Uint8Array(blocks * 34);
  for (let i = 0; i < blocks; i++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(f(x[32 * i + j])));
    const d = f(amax / 127);
    const id = d ? f(1 / d) : 0;
    const h = f32ToF16Bits(d);
    out[34 * i] = h & 0xff;
    out[34 * i + 1] = h >> 8;
    for (let j = 0; j < 32; j++) out[34 * i + 2 + j] = roundAway(f(f(x[32 * i + j]) * id)) & 0xff;
  }
  return out;
}

/**
 * ggml's quantize_row_q4_0_ref: d = max / -8 (max: the signed value of largest |x|),
 * code = min(15, trunc(x / d + 8.5)).
 */
export function referenceQuantizeQ4_0(x: ArrayLike<number>): Uint8Array {
  const blocks = checkQuantInput('q4', x);
  const out = new Uint8Array(blocks * 18);
  for (let i = 0; i < blocks; i++) {
    const d = f(signedMax(x, 32 * i) / -8);
    const id = d ? f(1 / d) : 0;
    const h = f32ToF16Bits(d);
    out[18 * i] = h & 0xff;
    out[18 * i + 1] = h >> 8;
    for (let j = 0; j < 16; j++) {
      const c0 = Math.min(15, Math.trunc(f(f(f(x[32 * i + j]) * id) + 8.5)));
      const c1 = Math.min(15, Math.trunc(f(f(f(x[32 * i + 16 + j]) * id) + 8.5)));
      out[18 * i + 2 + j] = c0 | (c1 << 4);
    }
  }
  return out;
}

/**
 * ggml's quantize_row_q5_0_ref: d = max / -16, code = min(31, trunc(x / d + 16.5)), bit 4 of code j
 * into bit j of qh.
 */
export function referenceQuantizeQ5_0(x: ArrayLike<number>): Uint8Array {
  const blocks = checkQuantInput('q5_0', x);
  const out = new Uint8Array(blocks * 22);
  for (let i = 0; i < blocks; i++) {
    const o = 22 * i;
    const d = f(signedMax(x, 32 * i) / -16);
    const id = d ? f(1 / d) : 0;
    const h = f32ToF16Bits(d);
    out[o] = h & 0xff;
    out[o + 1] = h >> 8;
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const c0 = Math.min(31, Math.trunc(f(f(f(x[32 * i + j]) * id) + 16.5)));
      const c1 = Math.min(31, Math.trunc(f(f(f(x[32 * i + 16 + j]) * id) + 16.5)));
      out[o + 6 + j] = (c0 & 15) | ((c1 & 15) << 4);
      qh |= ((c0 >> 4) << j) | ((c1 >> 4) << (j + 16));
    }
    for (let k = 0; k < 4; k++) out[o + 2 + k] = (qh >>> (8 * k)) & 0xff;
  }
  return out;
}
