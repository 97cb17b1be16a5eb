/**
 * GGUF block tensors to f32 values on the host, as ggml's dequantize_row_* computes them (every
 * step an f32 operation, so the values are exactly llama.cpp's). The loader uses it for a GGUF
 * whose block tensors go to the GPU as f16 / f32 weights (ggufModelFiles.ts); src/reference/quant.ts
 * is its float64 twin (a test checks the two agree).
 *
 * Layouts (little endian; d, dmin: f16 scales; see src/reference/quant.ts for the per-value maths):
 *   Q8_0  32 values, 34 bytes: d, qs[32] int8                     x = qs * d
 *   Q4_0  32 values, 18 bytes: d, qs[16] nibbles                  x = (q - 8) * d
 *   Q5_0  32 values, 22 bytes: d, qh u32, qs[16] nibbles          x = ((q | h << 4) - 16) * d
 *   Q4_K 256 values, 144 bytes: d, dmin, scales[12], qs[128]      x = d·sc · q - dmin·m per 32 values
 *   Q5_K 256 values, 176 bytes: d, dmin, scales[12], qh[32], qs[128]   as Q4_K with a fifth bit from qh
 *   Q6_K 256 values, 210 bytes: ql[128], qh[64], scales[16] int8, d    x = d·sc · (code - 32) per 16 values
 * Worked example (Q8_0): a block with d = 0.5 (f16 0x3800) and qs[0] = -3 gives x[0] = -1.5.
 */
import { f16BitsToF32 } from '../sources/halfFloat';
import type { GgmlType } from '../sources/gguf';

/** The block types dequantizeGguf reads: values and bytes per block. */
export const GGUF_DEQUANT_TYPES = {
  Q8_0: { blockValues: 32, blockBytes: 34 },
  Q4_0: { blockValues: 32, blockBytes: 18 },
  Q5_0: { blockValues: 32, blockBytes: 22 },
  Q4_K: { blockValues: 256, blockBytes: 144 },
  Q5_K: { blockValues: 256, blockBytes: 176 },
  Q6_K: { blockValues: 256, blockBytes: 210 },
} as const satisfies Partial<Record<GgmlType, { blockValues: number; blockBytes: number }>>;
export type GgufDequantType = keyof typeof GGUF_DEQUANT_TYPES;

export function isGgufDequantType(type: GgmlType): type is GgufDequantType {
  return Object.hasOwn(GGUF_DEQUANT_TYPES, type);
}

const f = Math.fround;
const f16At = (b: Uint8Array, o: number) => f16BitsToF32(b[o] | (b[o + 1] << 8));

/** ggml's get_scale_min_k4: the 6-bit (scale, min) of K-quant sub-block j (0..7) from 12 bytes at `o`. */
function scaleMinK4(b: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [b[o + j] & 63, b[o + j + 4] & 63];
  return [(b[o + j + 4] & 0xf) | ((b[o + j - 4] >> 6) << 4), (b[o + j + 4] >> 4) | ((b[o + j] >> 6) << 4)];
}

/** The f32 values of `bytes` (whole blocks of `type`), in storage order. */
export function dequantizeGguf(type: GgufDequantType, bytes: Uint8Array): Float32Array {
  const { blockValues, blockBytes } = GGUF_DEQUANT_TYPES[type];
  if (bytes.length % blockBytes !== 0) {
    throw new RangeError(`dequantize ${type}: ${bytes.length} bytes are not whole ${blockBytes}-byte blocks`);
  }
  const blocks = bytes.length / blockBytes;
  const y = new Float32Array(blocks * blockValues);
  for (let i = 0; i < blocks; i++) {
    const o = i * blockBytes;
    const v = i * blockValues;
    switch (type) {
      case 'Q8_0': {
        const d = f16At(bytes, o);
        for (let j = 0; j < 32; j++) y[v + j] = ((bytes[o + 2 + j] << 24) >> 24) * d;
        break;
      }
      case 'Q4_0': {
        const d = f16At(bytes, o);
        for (let j = 0; j < 16; j++) {
          const q = bytes[o + 2 + j];
          y[v + j] = ((q & 15) - 8) * d;
          y[v + j + 16] = ((q >> 4) - 8) * d;
        }
        break;
      }
      case 'Q5_0': {
        const d = f16At(bytes, o);
        const qh = (bytes[o + 2] | (bytes[o + 3] << 8) | (bytes[o + 4] << 16) | (bytes[o + 5] << 24)) >>> 0;
        for (let j = 0; j < 16; j++) {
          const q = bytes[o + 6 + j];
          y[v + j] = (((q & 15) | (((qh >>> j) & 1) << 4)) - 16) * d;
          y[v + j + 16] = (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d;
        }
        break;
      }
      case 'Q4_K':
      case 'Q5_K': {
        const d = f16At(bytes, o);
        const dmin = f16At(bytes, o + 2);
        const five = type === 'Q5_K';
        const qs = o + (five ? 48 : 16); // Q5_K: qh[32] sits between the scales and qs
        for (let c = 0; c < 4; c++) {
          const [s0, m0] = scaleMinK4(bytes, o + 4, 2 * c);
          const [s1, m1] = scaleMinK4(bytes, o + 4, 2 * c + 1);
          const d1 = f(d * s0);
          const d2 = f(d * s1);
          const min1 = f(dmin * m0);
          const min2 = f(dmin * m1);
          for (let l = 0; l < 32; l++) {
            const q = bytes[qs + 32 * c + l];
            const h = five ? bytes[o + 16 + l] : 0;
            const lo = (q & 15) + (five && h & (1 << (2 * c)) ? 16 : 0);
            const hi = (q >> 4) + (five && h & (2 << (2 * c)) ? 16 : 0);
            y[v + 64 * c + l] = f(f(d1 * lo) - min1);
            y[v + 64 * c + 32 + l] = f(f(d2 * hi) - min2);
          }
        }
        break;
      }
      case 'Q6_K': {
        const d = f16At(bytes, o + 208);
        for (let n = 0; n < 2; n++) {
          const ql = o + 64 * n;
          const qh = o + 128 + 32 * n;
          const sc = o + 192 + 8 * n;
          for (let l = 0; l < 32; l++) {
            const h = bytes[qh + l];
            const is = l >> 4;
            const s = (k: number) => f(d * ((bytes[sc + is + 2 * k] << 24) >> 24));
            y[v + 128 * n + l] = f(s(0) * (((bytes[ql + l] & 15) | ((h & 3) << 4)) - 32));
            y[v + 128 * n + 32 + l] = f(s(1) * (((bytes[ql + 32 + l] & 15) | (((h >> 2) & 3) << 4)) - 32));
            y[v + 128 * n + 64 + l] = f(s(2) * (((bytes[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32));
            y[v + 128 * n + 96 + l] = f(s(3) * (((bytes[ql + 32 + l] >> 4) | (((h >> 6) & 3) << 4)) - 32));
          }
        }
        break;
      }
    }
  }
  return y;
}
