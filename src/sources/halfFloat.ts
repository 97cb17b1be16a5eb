/**
 * IEEE 754 half precision (f16) and bfloat16 (bf16) <-> f32 conversions, scalar and bulk.
 *
 * f16 bits:  s eeeee mmmmmmmmmm         bias 15, subnormals m·2^-24, e = 31 is inf (m = 0) / NaN
 * bf16 bits: s eeeeeeee mmmmmmm         the top 16 bits of an f32
 *
 * f32ToF16Bits rounds to nearest, ties to even, like `Math.fround` does for f32. A JS number is
 * first rounded to f32 and then to f16; that double rounding is harmless because f32 carries more
 * than 2·11 + 2 significand bits (the classic innocuous-double-rounding bound).
 */

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The f16 bit pattern nearest to `value` (ties to even). Overflow gives ±inf, NaN stays NaN. */
export function f32ToF16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff; // f32 biased exponent
  const mant = x & 0x7fffff;

  if (exp === 0xff) {
    // inf keeps mantissa 0; NaN keeps the top payload bits and is forced quiet (never becomes inf).
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const e = exp - 127 + 15; // f16 biased exponent
  if (e >= 0x1f) return sign | 0x7c00; // too large: inf
  if (e <= 0) {
    // f16 subnormal (or zero). value = M·2^(exp-150) with M = 1.mant as a 24-bit integer, and a
    // subnormal's field is value / 2^-24 = M·2^(e-14): shift M right by 14 - e (14..24 here).
    // Example: value = 2^-20 → exp 107, e -5, M = 2^23, shift 19 → field 16 = 2^4 ✓ (16·2^-24).
    if (e < -10) return sign; // below half the smallest subnormal (2^-25): rounds to ±0
    const m = mant | 0x800000;
    const shift = 14 - e;
    let field = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (field & 1) !== 0)) field++; // may carry into e = 1: correct
    return sign | field;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) !== 0)) h++; // a carry may reach inf: correct
  return sign | h;
}

/** The value of an f16 bit pattern (low 16 bits of `bits`). */
export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >>> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m === 0 ? sign * Infinity : NaN;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/** The value of a bf16 bit pattern (low 16 bits of `bits`): an f32 whose low 16 bits are zero. */
export function bf16BitsToF32(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0];
}

let f16Table: Float32Array | undefined; // all 65536 f16 values, built on first bulk use (256 KiB)

/** Bulk f16 → f32 through a lookup table. */
export function f16ArrayToF32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16BitsToF32(i);
  }
  const t = f16Table;
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return out;
}

/** Bulk bf16 → f32: shift each pattern into the top half of a u32. */
export function bf16ArrayToF32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const u = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return out;
}

/** Bulk f32 → f16 bit patterns, rounding to nearest even. */
export function f32ArrayToF16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]);
  return out;
}
