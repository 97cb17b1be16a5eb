import { describe, expect, it } from 'vitest';
import { kvBytesPerToken } from '../../src/bench/attentionBench';
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
