/**
 * splitKvDecode v3 tiles (chooseSplitKvTiles): the worked examples of its doc comment, the register
 * budget per lane (q words + output words <= SPLIT_KV_REG_MAX vec4s) and the workgroup-memory fallback.
 */
import { describe, expect, it } from 'vitest';
import { chooseSplitKvTiles, SPLIT_KV_REG_MAX } from '../../src/kernels/tiling';

describe('splitKvDecode v3 tiles', () => {
  it('gives the worked examples at d 128, G 4', () => {
    const gpu = chooseSplitKvTiles(4, 128, 128, 32768, 32)!;
    expect([gpu.blockM, gpu.numSubgroups, gpu.blockN, gpu.qWords, gpu.accWords]).toEqual([4, 2, 64, 1, 1]);
    const lavapipe = chooseSplitKvTiles(4, 128, 128, 32768, 8)!;
    expect([lavapipe.blockM, lavapipe.numSubgroups, lavapipe.qWords, lavapipe.accWords]).toEqual([4, 8, 4, 4]);
    expect(lavapipe.workgroupBytes).toBe(8 * 4 * 8 + 16 * 8 * 32);
    const swiftshader = chooseSplitKvTiles(4, 128, 128, 32768, 4)!;
    expect([swiftshader.blockM, swiftshader.numSubgroups]).toEqual([2, 16]);
  });

  it('keeps every lane within its registers and the workgroup within its memory', () => {
    for (const sg of [4, 8, 16, 32, 64]) {
      for (const d of [64, 80, 128, 256]) {
        for (const g of [1, 3, 4, 8, 64]) {
          const t = chooseSplitKvTiles(g, d, d, 16384, sg);
          expect(t, `sg ${sg} d ${d} g ${g}`).toBeDefined();
          expect(t!.blockM * (t!.qWords + t!.accWords)).toBeLessThanOrEqual(SPLIT_KV_REG_MAX);
          expect(t!.workgroupBytes).toBeLessThanOrEqual(16384);
          expect(t!.blockN).toBe(t!.numSubgroups * sg);
        }
      }
    }
  });

  it('leaves adapters without a fixed subgroup size (or a tiny one) to v2', () => {
    expect(chooseSplitKvTiles(4, 128, 128, 32768, 0)).toBeUndefined();
    expect(chooseSplitKvTiles(4, 128, 128, 32768, 1)).toBeUndefined();
    expect(chooseSplitKvTiles(4, 512, 512, 32768, 2)).toBeUndefined(); // 64 + 64 words per row
  });
});
