/** Tile choices fit every adapter limit the kernels rely on, including 16 KiB of workgroup storage. */
import { describe, expect, it } from 'vitest';
import {
  ACC_MAX,
  chooseDecodeTiles,
  choosePrefillTiles,
  chooseTiles,
  PREFILL_A_MAX,
  PREFILL_Q_MAX,
  PREFILL_S_MAX,
  prefillWorkgroupBytes,
  workgroupBytes,
} from '../../src/kernels/tiling';

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

describe('flashPrefill v3 tiles', () => {
  const gpus = [0, 4, 8, 32, 64].map((sg) => ({ sg, software: false }));
  const adapters = [...gpus, { sg: 8, software: true }, { sg: 0, software: true }];
  for (const limit of [16384, 32768]) {
    for (const [d, dv] of dims) {
      for (const word of [16, 8]) {
        for (const { sg, software } of adapters) {
          for (const vInK of dv <= d ? [false, true] : [false]) {
            const name = `Dqk ${d}, Dv ${dv} in ${limit} bytes, ${word}-byte words, subgroup ${sg}${
              software ? ' (CPU driver)' : ''
            }${vInK ? ', V in K' : ''}`;
            it(name, () => {
              const t = choosePrefillTiles(d, dv, limit, 256, word, { subgroupSize: sg, software, vInK });
              expect(t.workgroupBytes).toBeLessThanOrEqual(limit);
              if (!t.kvDirect) {
                expect(t.workgroupBytes).toBe(prefillWorkgroupBytes(t.blockN, d / 4, dv / 4, word, t.kvBuffers, vInK));
              }
              expect(t.workgroupSize).toBe(t.blockM * t.lanesPerRow);
              expect(t.workgroupSize).toBeLessThanOrEqual(256);
              expect(t.blockN % 8).toBe(0); // tileScores takes 8 keys at a time
              expect(t.blockN).toBeLessThanOrEqual(PREFILL_S_MAX);
              expect((d / 4) % t.lanesPerRow).toBe(0);
              expect((dv / 4) % t.lanesPerRow).toBe(0);
              expect(d / 4 / t.lanesPerRow).toBeLessThanOrEqual(PREFILL_Q_MAX);
              expect(dv / 4 / t.lanesPerRow).toBeLessThanOrEqual(PREFILL_A_MAX);
              if (t.lanesPerRow > 1) expect(sg % t.lanesPerRow).toBe(0); // a row's lanes share a subgroup
              if (sg === 0 || software) expect(t.lanesPerRow).toBe(1);
            });
          }
        }
      }
    }
  }
  it('GPUs with subgroups: more lanes per row as the head dim grows, 16 or fewer q + output words per lane', () => {
    const lanes = [64, 128, 256].map((d) => choosePrefillTiles(d, d, 32768, 256, 8, { subgroupSize: 32 }));
    expect(lanes.map((t) => t.lanesPerRow)).toEqual([2, 4, 8]);
    expect(lanes.map((t) => t.blockM)).toEqual([64, 64, 32]);
    for (const t of lanes) expect(t.kvDirect).toBe(false);
  });
  it('d 128 f16 on a GPU: 32 keys double-buffered in 32 KiB, 16 in 16 KiB', () => {
    expect(choosePrefillTiles(128, 128, 32768, 256, 8, { subgroupSize: 32 })).toMatchObject({
      blockN: 32,
      kvBuffers: 2,
      workgroupBytes: 32768,
    });
    expect(choosePrefillTiles(128, 128, 16384, 256, 8, { subgroupSize: 32 })).toMatchObject({
      blockN: 16,
      kvBuffers: 2,
    });
  });
  it('CPU drivers: one lane per row, K / V straight from the pages', () => {
    const t = choosePrefillTiles(128, 128, 32768, 1024, 8, { subgroupSize: 8, software: true });
    expect(t).toMatchObject({ lanesPerRow: 1, blockM: 64, blockN: 64, kvDirect: true });
  });
  it('refuses a lane count that does not divide the subgroup or the head dims', () => {
    expect(() => choosePrefillTiles(128, 128, 32768, 256, 8, { subgroupSize: 4, lanesPerRow: 8 })).toThrow();
    expect(() => choosePrefillTiles(80, 80, 32768, 256, 8, { subgroupSize: 32, lanesPerRow: 8 })).toThrow();
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
