/** planRowShards: how a matrix past one binding is split by rows (src/kernels/rowShards.ts). */
import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../src/gpu/errors';
import { matrixBufferBytes } from '../../src/kernels/matmulQuant';
import { maxShardBytes, planRowShards, SHARD_ROW_MULTIPLE } from '../../src/kernels/rowShards';

const MiB = 1 << 20;

/** Checks the plan's invariants and returns the shard row counts. */
function rowsOf(plan: { firstRow: number; rows: number }[], rows: number, bytes: (r: number) => number, max: number) {
  let next = 0;
  plan.forEach((s, i) => {
    expect(s.firstRow).toBe(next);
    expect(bytes(s.rows)).toBeLessThanOrEqual(max);
    if (i < plan.length - 1) expect(s.rows % SHARD_ROW_MULTIPLE).toBe(0);
    next += s.rows;
  });
  expect(next).toBe(rows);
  return plan.map((s) => s.rows);
}

describe('planRowShards', () => {
  it("splits Qwen2.5-0.5B's tied embedding [151936, 896] under lavapipe's 128 MiB binding", () => {
    const f32 = (r: number) => matrixBufferBytes('f32', r, 896);
    expect(rowsOf(planRowShards(151936, f32, 128 * MiB, 'e'), 151936, f32, 128 * MiB)).toEqual([
      30400, 30400, 30400, 30400, 30336,
    ]);
    const f16 = (r: number) => matrixBufferBytes('f16', r, 896);
    expect(rowsOf(planRowShards(151936, f16, 128 * MiB, 'e'), 151936, f16, 128 * MiB)).toEqual([50688, 50688, 50560]);
    const q8 = (r: number) => matrixBufferBytes('q8', r, 896); // 960 bytes a row: 896 codes, 28 scales padded to 64
    expect(rowsOf(planRowShards(151936, q8, 128 * MiB, 'e'), 151936, q8, 128 * MiB)).toEqual([75968, 75968]);
  });

  it('keeps a matrix that fits in one shard, at exactly the limit too', () => {
    const f16 = (r: number) => matrixBufferBytes('f16', r, 128);
    expect(planRowShards(384, f16, 96 * 1024, 'w')).toEqual([{ firstRow: 0, rows: 384 }]);
    expect(planRowShards(385, f16, 96 * 1024, 'w')).toEqual([
      { firstRow: 0, rows: 256 },
      { firstRow: 256, rows: 129 },
    ]);
  });

  it('cuts at 64-row steps: a limit one byte short of 128 packed q4 rows makes 64-row shards', () => {
    const q4 = (r: number) => matrixBufferBytes('q4', r, 32); // 32 bytes a row: 16 code bytes, a scale padded to 16
    const max = q4(128) - 1; // one byte short of 128 rows
    expect(rowsOf(planRowShards(300, q4, max, 'w'), 300, q4, max)).toEqual([64, 64, 64, 64, 44]);
  });

  it('refuses rows so long that 64 of them pass one binding, naming the matrix', () => {
    const f32 = (r: number) => matrixBufferBytes('f32', r, 1 << 20);
    expect(() => planRowShards(1000, f32, 128 * MiB, 'tensor "w"')).toThrow(ShapeError);
    expect(() => planRowShards(1000, f32, 128 * MiB, 'tensor "w"')).toThrow(
      /^tensor "w": 64 rows take 268435456 bytes/,
    );
  });

  it('a shard is bounded by the smaller of one binding and one buffer', () => {
    expect(maxShardBytes({ maxStorageBufferBindingSize: 128 * MiB, maxBufferSize: 256 * MiB })).toBe(128 * MiB);
    expect(maxShardBytes({ maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 256 * MiB })).toBe(256 * MiB);
  });
});
