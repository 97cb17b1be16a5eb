/**
 * The float64 twin of q8 / q4 KV quantise-on-write (src/reference/attention.ts quantizeKvRows), on
 * hand-worked rows: the scale rule, half-to-even rounding, clamping, short q4 groups, zero rows,
 * non-finite input.
 */
import { describe, expect, it } from 'vitest';
import { dequantizeKvRows, kvQuantized, quantizeKvRows } from '../../src/reference/attention';
import { f16BitsToF32, f32ToF16Bits } from '../../src/sources/halfFloat';

const f16 = (x: number) => f16BitsToF32(f32ToF16Bits(x));

describe('q8 / q4 KV twin', () => {
  it('q8: one f16 scale max|x| / 127 per row, codes round(x / scale)', () => {
    const q = quantizeKvRows([2.54, -1, 0.5, 0, 0, 0, 0, -0.01], 4, 'q8');
    const s0 = f16(Math.fround(2.54 / 127));
    expect(Array.from(q.scales)).toEqual([s0, f16(Math.fround(0.01 / 127))]);
    expect(Array.from(q.codes.subarray(0, 4))).toEqual([
      Math.round(2.54 / s0),
      Math.round(-1 / s0),
      Math.round(0.5 / s0),
      0,
    ]);
    expect(Array.from(q.codes.subarray(4))).toEqual([0, 0, 0, -127]);
    const back = dequantizeKvRows(q);
    expect(Math.abs(back[0] - 2.54)).toBeLessThan(s0 / 2 + 1e-9);
  });

  it('q4: a scale per 32 values, m / -8 from the value of largest |x|, codes clamped to -8..7', () => {
    // row of 40 = groups of 32 + 8; group 0's largest |x| is +4 (a positive m gives a negative scale)
    const x = Array.from({ length: 40 }, (_, j) => (j === 3 ? 4 : j === 35 ? -2 : j === 5 ? -4 : 0.26 * ((j % 5) - 2)));
    const q = quantizeKvRows(x, 40, 'q4');
    expect(Array.from(q.scales)).toEqual([-0.5, 0.25]); // 4 / -8 (the first of +4 / -4), -2 / -8
    expect(q.codes[3]).toBe(-8);
    expect(q.codes[5]).toBe(7); // -4 / -0.5 = 8 clamps to 7
    expect(q.codes[35]).toBe(-8);
    // 0.26 * -2 = -0.52 / -0.5 = 1.04 -> 1;  0.26 / 0.25 = 1.04 -> 1 in group 1
    expect(q.codes[0]).toBe(1);
    expect(q.codes[33]).toBe(Math.round(Math.fround(Math.fround(0.26 * ((33 % 5) - 2)) / 0.25)));
  });

  it('rounds halves to even (WGSL round) and gives an all-zero row codes 0', () => {
    // scale 1 / 127 * 127 = 1 exactly: max 127 -> scale 1; 2.5 -> 2, 3.5 -> 4, -2.5 -> -2
    const q = quantizeKvRows([127, 2.5, 3.5, -2.5], 4, 'q8');
    expect(q.scales[0]).toBe(1);
    expect(Array.from(q.codes)).toEqual([127, 2, 4, -2]);
    expect(kvQuantized([0, 0, 0, 0], 4, 'q4').every((v) => v === 0)).toBe(true); // scale -0, codes 0
    expect(() => quantizeKvRows([1, 2, 3], 2, 'q8')).toThrow(/whole rows/);
  });

  it('a group holding NaN or Inf reads back all NaN (scale NaN), the other groups as usual', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const q8 = kvQuantized([1, bad, 0.5, 2, 1, -1, 0.5, 2], 4, 'q8'); // rows of 4: one scale each
      expect(Array.from(q8.subarray(0, 4)).every(Number.isNaN)).toBe(true);
      expect(Array.from(q8.subarray(4)).every(Number.isFinite)).toBe(true);
      const x = Array.from({ length: 40 }, (_, j) => (j === 33 ? bad : 0.1 * (j - 20))); // q4 groups 32 + 8
      const q4 = kvQuantized(x, 40, 'q4');
      expect(Array.from(q4.subarray(0, 32)).every(Number.isFinite)).toBe(true);
      expect(Array.from(q4.subarray(32)).every(Number.isNaN)).toBe(true);
    }
  });
});
