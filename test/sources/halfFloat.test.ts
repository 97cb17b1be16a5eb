import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  bf16ArrayToF32,
  bf16BitsToF32,
  f16ArrayToF32,
  f16BitsToF32,
  f32ArrayToF16,
  f32ToF16Bits,
} from '../../src/sources/halfFloat';

const isNaNBits = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

describe('f16BitsToF32', () => {
  it('decodes the landmark patterns', () => {
    expect(f16BitsToF32(0x0000)).toBe(0);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0xc000)).toBe(-2);
    expect(f16BitsToF32(0x3555)).toBe(0.333251953125);
    expect(f16BitsToF32(0x7bff)).toBe(65504); // largest finite
    expect(f16BitsToF32(0x0400)).toBe(2 ** -14); // smallest normal
    expect(f16BitsToF32(0x03ff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(f16BitsToF32(0x7c00)).toBe(Infinity);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    expect(f16BitsToF32(0xfc01)).toBeNaN();
  });

  it('bulk decode agrees with the scalar one for all 65536 patterns', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const out = f16ArrayToF32(all);
    for (let i = 0; i < 65536; i++) {
      const s = Math.fround(f16BitsToF32(i));
      const same = Number.isNaN(s) ? Number.isNaN(out[i]) : Object.is(out[i], s);
      if (!same) throw new Error(`0x${i.toString(16)}: ${out[i]} vs ${s}`);
    }
  });
});

describe('f32ToF16Bits', () => {
  it('round-trips every non-NaN f16 pattern exactly (incl. ±0, subnormals, ±inf)', () => {
    for (let h = 0; h < 65536; h++) {
      if (isNaNBits(h)) continue;
      const back = f32ToF16Bits(f16BitsToF32(h));
      if (back !== h) throw new Error(`0x${h.toString(16)} came back as 0x${back.toString(16)}`);
    }
  });

  it('keeps NaN a NaN (quiet, never inf), with its sign', () => {
    expect(isNaNBits(f32ToF16Bits(NaN))).toBe(true);
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    u[0] = 0x7f800001; // signalling NaN with only a low payload bit: must not turn into inf
    expect(isNaNBits(f32ToF16Bits(f[0]))).toBe(true);
    u[0] = 0xffc00000;
    const h = f32ToF16Bits(f[0]);
    expect(isNaNBits(h) && (h & 0x8000) !== 0).toBe(true);
  });

  it('rounds halfway cases to even and everything else to nearest, across the whole range', () => {
    // For each pair of adjacent finite f16 values a < b (non-negative), the midpoint goes to the one
    // with an even mantissa, and anything slightly off the midpoint goes to the nearer one.
    for (let h = 0; h < 0x7bff; h++) {
      const a = f16BitsToF32(h);
      const b = f16BitsToF32(h + 1);
      const mid = (a + b) / 2; // exact in f32: f16 has 11 significant bits
      const even = h % 2 === 0 ? h : h + 1;
      const ulp = (b - a) / 1024;
      const got = [f32ToF16Bits(mid), f32ToF16Bits(-mid), f32ToF16Bits(mid - ulp), f32ToF16Bits(mid + ulp)];
      const want = [even, even | 0x8000, h, h + 1];
      if (got.some((g, i) => g !== want[i])) throw new Error(`between 0x${h.toString(16)} and next: ${got} vs ${want}`);
    }
  });

  it('overflows to inf at the right place and underflows to ±0 below half the smallest subnormal', () => {
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65519.99)).toBe(0x7bff); // just below the midpoint to "65536"
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // the midpoint ties to even = inf
    expect(f32ToF16Bits(1e6)).toBe(0x7c00);
    expect(f32ToF16Bits(-1e6)).toBe(0xfc00);
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
    expect(f32ToF16Bits(-Infinity)).toBe(0xfc00);
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // exactly half the smallest subnormal: ties to even (0)
    expect(f32ToF16Bits(2 ** -25 * 1.0001)).toBe(1);
    expect(f32ToF16Bits(2 ** -26)).toBe(0);
    expect(f32ToF16Bits(-(2 ** -30))).toBe(0x8000);
    expect(f32ToF16Bits(1e-45)).toBe(0); // f32 subnormal
    expect(f32ToF16Bits(-0)).toBe(0x8000);
  });

  it('is the nearest f16 for random doubles (property)', () => {
    fc.assert(
      fc.property(fc.double({ min: -70000, max: 70000, noNaN: true }), (x) => {
        const h = f32ToF16Bits(x);
        const y = f16BitsToF32(h);
        const xf = Math.fround(x);
        if (!Number.isFinite(y)) return Math.abs(xf) >= 65520;
        // no neighbour of h is strictly closer
        const err = Math.abs(y - xf);
        for (const n of [h - 1, h + 1, h ^ 0x8000]) {
          if (n < 0 || n > 0xffff || isNaNBits(n)) continue;
          const z = f16BitsToF32(n);
          if (Number.isFinite(z) && Math.abs(z - xf) < err) return false;
        }
        return true;
      }),
      { numRuns: 20000 },
    );
  });

  it('bulk encode agrees with the scalar one', () => {
    const src = new Float32Array([0, -0, 1, -2.5, 1e-7, 70000, NaN, 0.1]);
    const out = f32ArrayToF16(src);
    expect([...out]).toEqual([...src].map(f32ToF16Bits));
  });
});

describe('bf16', () => {
  it('decodes as the top half of an f32', () => {
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(bf16BitsToF32(0xc000)).toBe(-2);
    expect(bf16BitsToF32(0x7f80)).toBe(Infinity);
    expect(bf16BitsToF32(0xff80)).toBe(-Infinity);
    expect(bf16BitsToF32(0x7fc0)).toBeNaN();
    expect(bf16BitsToF32(0x0001)).toBe(2 ** -133); // subnormal
    expect(Object.is(bf16BitsToF32(0x8000), -0)).toBe(true);
    expect(bf16BitsToF32(0x3eaa)).toBe(0.33203125);
  });

  it('bulk decode agrees with the scalar one for all patterns', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const out = bf16ArrayToF32(all);
    for (let i = 0; i < 65536; i++) {
      const s = bf16BitsToF32(i);
      if (Number.isNaN(s)) expect(out[i]).toBeNaN();
      else if (!Object.is(out[i], s)) throw new Error(`0x${i.toString(16)}: ${out[i]} vs ${s}`);
    }
  });
});
