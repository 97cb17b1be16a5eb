import { describe, expect, it } from 'vitest';
import { type BenchRow, bytesMustRead, formatBenchTable, kvBytesPerToken } from '../../src/bench/attentionBench';
import type { KvDtype } from '../../src/gpu/dtype';
import { pageBufferBytes } from '../../src/kernels/kvPool';
import type { AttentionSpec } from '../../src/kernels/pagedAttention';

const gqa = (kvDtype: KvDtype): AttentionSpec => ({
  numKvHeads: 8,
  groupSize: 4,
  headDimQK: 128,
  headDimV: 128,
  pageSize: 16,
  kvDtype,
});
const mla = (kvDtype: KvDtype): AttentionSpec => ({
  numKvHeads: 1,
  groupSize: 16,
  headDimQK: 576,
  headDimV: 512,
  vAliasesK: true,
  pageSize: 16,
  kvDtype,
});

describe('attention bench: KV bytes per token', () => {
  it('counts every KV dtype, scales included (GQA 8 KV heads, d 128: K and V rows)', () => {
    // Rows of 128 values: f32 512, f16 256, q8 128 codes + one f16 scale, q4 64 bytes + 4 f16 scales.
    expect(kvBytesPerToken(gqa('f32'))).toBe(8 * 2 * 512);
    expect(kvBytesPerToken(gqa('f16'))).toBe(8 * 2 * 256);
    expect(kvBytesPerToken(gqa('q8'))).toBe(8 * 2 * 130);
    expect(kvBytesPerToken(gqa('q4'))).toBe(8 * 2 * 72);
  });

  it('counts one latent row for MLA (V read from K)', () => {
    expect(kvBytesPerToken(mla('f16'))).toBe(1152);
    expect(kvBytesPerToken(mla('q8'))).toBe(576 + 2);
    expect(kvBytesPerToken(mla('q4'))).toBe(288 + 2 * 18);
  });

  it('matches the pool pages a full page of tokens occupies (no scale padding at these shapes)', () => {
    for (const d of ['f32', 'f16', 'q8', 'q4'] as const) {
      const s = gqa(d);
      const pageBytes = pageBufferBytes(s, s.headDimQK) + pageBufferBytes(s, s.headDimV);
      expect(kvBytesPerToken(s) * s.pageSize).toBe(pageBytes);
      const m = mla(d);
      expect(kvBytesPerToken(m) * m.pageSize).toBe(pageBufferBytes(m, m.headDimQK));
    }
  });
});

describe('attention bench: what a row says it must read, and how often K/V is read', () => {
  it('splits bytesRead into K/V once per KV head, q and out (GQA 32/8 d128 f16 decode at 16K)', () => {
    const b = bytesMustRead(gqa('f16'), 32, [1], [16384]);
    // K/V: 16384 tokens x 8 KV heads x (K + V rows of 256 bytes), read once: not once per query head.
    expect(b.bytesKv).toBe(16384 * 8 * 2 * 256);
    expect(b.bytesQ).toBe(32 * 128 * 4);
    expect(b.bytesOut).toBe(32 * 128 * 4);
  });

  it('counts every query token of a ragged batch and the keys of every sequence', () => {
    const b = bytesMustRead(gqa('q8'), 32, [3, 1], [100, 50]);
    expect(b.bytesKv).toBe(150 * kvBytesPerToken(gqa('q8')));
    expect(b.bytesQ).toBe(4 * 32 * 128 * 4);
    expect(b.bytesOut).toBe(b.bytesQ);
    // MLA: one latent row per token; out is Dv = 512 wide, q the 576-wide absorbed query.
    const m = bytesMustRead(mla('f16'), 16, [1], [4096]);
    expect(m.bytesKv).toBe(4096 * 1152);
    expect([m.bytesQ, m.bytesOut]).toEqual([16 * 576 * 4, 16 * 512 * 4]);
  });

  it('prints K/V passes and workgroups beside the bytes', () => {
    const row: BenchRow = {
      name: 'gqa32/8 d128 f16 decode b1 ctx16384 flash',
      variant: 'gqa32/8 d128 f16',
      phase: 'decode',
      kernel: 'flash',
      batch: 1,
      contextLength: 16384,
      kvBytesPerToken: 4096,
      medianMs: 100,
      gbPerSecond: 0.67,
      gflopPerSecond: 2.7,
      vsNaive: 2,
      vsCopyBandwidth: 0.5,
      checkRelL2: 1e-6,
      bytesRead: 67141632,
      bytesKv: 67108864,
      bytesQ: 16384,
      bytesOut: 16384,
      kvPasses: 1,
      workgroups: 544,
      adapter: 'test',
    };
    const table = formatBenchTable({
      adapter: 'test',
      features: [],
      timing: 'wall-clock',
      date: '',
      rows: [row],
      skipped: [],
    });
    expect(table).toContain('| KV passes | workgroups |');
    expect(table).toContain('| 67.1 | 1 | 544 |');
  });
});
