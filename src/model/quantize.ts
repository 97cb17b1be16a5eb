/**
 * Quantize on load: f32 rows of a weight to GGUF Q8_0 / Q4_0 block bytes, as llama.cpp's
 * quantize_row_q8_0_ref / quantize_row_q4_0_ref write them (src/reference/quant.ts is the float64
 * twin; a test checks the two agree byte for byte). Every step is an f32 operation, as in the C
 * code: Math.fround after each multiply, divide and add.
 *   Q8_0 block (34 bytes): d = amax / 127 (f16), q = roundf(x / d)             x ≈ q * d
 *   Q4_0 block (18 bytes): d = max / -8 (max: the value of largest |x|), q = min(15, trunc(x / d + 8.5)),
 *                          value j in the low nibble of byte j, j + 16 in the high nibble   x ≈ (q - 8) * d
 */
import { f32ToF16Bits } from '../sources/halfFloat';

export type OnLoadQuant = 'q8' | 'q4';

/** Bytes of one block of 32 values. */
export const QUANT_BLOCK_BYTES: Record<OnLoadQuant, number> = { q8: 34, q4: 18 };

const f = Math.fround;

/** Quantizes x (a whole number of 32-value blocks) into `out` from byte `at`; returns the end offset. */
export function quantizeBlocks(dtype: OnLoadQuant, x: Float32Array, out: Uint8Array, at = 0): number {
  if (x.length % 32 !== 0) throw new RangeError(`quantize ${dtype}: ${x.length} values is not whole 32-value blocks`);
  let o = at;
  for (let b = 0; b < x.length; b += 32) {
    // amax and the first value reaching it (ggml keeps the first on ties: `amax < |v|`).
    let amax = 0;
    let max = 0;
    for (let j = b; j < b + 32; j++) {
      const a = Math.abs(x[j]);
      if (amax < a) {
        amax = a;
        max = x[j];
      }
    }
    const d = dtype === 'q8' ? f(amax / 127) : f(max / -8);
    const id = d ? f(1 / d) : 0;
    const h = f32ToF16Bits(d);
    out[o] = h & 0xff;
    out[o + 1] = h >> 8;
    if (dtype === 'q8') {
      for (let j = 0; j < 32; j++) {
        const v = f(x[b + j] * id);
        out[o + 2 + j] = (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5)) & 0xff; // roundf
      }
      o += 34;
    } else {
      for (let j = 0; j < 16; j++) {
        const lo = Math.min(15, Math.trunc(f(f(x[b + j] * id) + 8.5)));
        const hi = Math.min(15, Math.trunc(f(f(x[b + 16 + j] * id) + 8.5)));
        out[o + 2 + j] = lo | (hi << 4);
      }
      o += 18;
    }
  }
  return o;
}
