/** Tile choices fit every adapter limit the kernels rely on, including 16 KiB of workgroup storage. */
import { describe, expect, it } from 'vitest';
import { ACC_MAX, chooseDecodeTiles, chooseTiles, workgroupBytes } from '../../src/kernels/tiling';

const dims: [number, number][] = [
  [32, 32],
  [64, 64],
  [80, 80],
  [96, 64],
  [128, 128],
  [256, 256],
  [576, 512],
  [48, 32],
];

describe('flashPrefill tiles', () => {
  for (const limit of [16384, 32768]) {
    for (const [d, dv] of dims) {
      for (const word of [16, 8]) {
        it(`Dqk ${d}, Dv ${dv} in ${limit} bytes, ${word}-byte K/V words`, () => {
          const t = chooseTiles(d, dv, limit, 256, 32, word);
          expect(t.workgroupBytes).toBe(workgroupBytes(t.blockM, t.blockN, d / 4, dv / 4, word));
          expect(t.workgroupBytes).toBeLessThanOrEqual(limit);
          expect(t.accPerThread).toBeLessThanOrEqual(ACC_MAX);
          expect(t.accPerThread * t.workgroupSize).toBeGreaterThanOrEqual(t.blockM * (dv / 4));
          expect(t.workgroupSize % t.blockN).toBe(0); // S is register-blocked over row groups
          expect(Math.ceil(t.blockM / (t.workgroupSize / t.blockN))).toBeLessThanOrEqual(32); // SROWS_MAX
        });
      }
    }
  }
  it('f16 K/V tiles (v2) take twice the keys of f32 ones at d 128 in 32 KiB', () => {
    const f32 = chooseTiles(128, 128, 32768, 256, 32, 16);
    const f16 = chooseTiles(128, 128, 32768, 256, 32, 8);
    expect(f32).toMatchObject({ blockM: 32, blockN: 16 });
    expect(f16).toMatchObject({ blockM: 32, blockN: 32 });
  });
  it('uses the larger storage when the adapter has it', () => {
    const small = chooseTiles(128, 128, 16384, 256);
    const large = chooseTiles(128, 128, 32768, 256);
    expect(large.blockM * large.blockN).toBeGreaterThan(small.blockM * small.blockN);
  });
});

describe('splitKvDecode tiles', () => {
  for (const limit of [16384, 32768]) {
    for (const g of [1, 3, 4, 8, 16, 64, 128]) {
      for (const [d, dv] of dims) {
        it(`group ${g}, Dqk ${d}, Dv ${dv} in ${limit} bytes`, () => {
          const t = chooseDecodeTiles(g, d, dv, limit);
          expect(t.workgroupBytes).toBeLessThanOrEqual(limit);
          expect(t.accPerThread).toBeLessThanOrEqual(ACC_MAX);
          expect(t.accPerThread * t.blockN).toBeGreaterThanOrEqual(t.blockM * (dv / 4));
          expect(t.blockM).toBeLessThanOrEqual(32); // ROWS_MAX
          expect(t.blockM).toBeGreaterThanOrEqual(Math.min(g, 1));
        });
      }
    }
  }
  it('counts the subgroup statistics arrays of the subgroup path (8 * BLOCK_M * 64 / size bytes)', () => {
    for (const sg of [4, 8, 32]) {
      for (const limit of [16384, 32768]) {
        const t = chooseDecodeTiles(64, 256, 256, limit, sg);
        expect(t.workgroupBytes).toBe(16 * t.blockM * 64 + 4 * t.blockM * (64 + 3) + 8 * t.blockM * (64 / sg));
        expect(t.workgroupBytes).toBeLessThanOrEqual(limit);
      }
    }
  });
});
