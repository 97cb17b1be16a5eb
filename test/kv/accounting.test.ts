import { describe, expect, it } from 'vitest';
import {
  describeMemory,
  kvBytesPerToken,
  kvDtypeProblem,
  kvValuesPerTokenPerLayer,
  pageBytes,
  type KvSpec,
} from '../../src/kv/accounting';

const llama2_7b: KvSpec = {
  variant: 'mha',
  numLayers: 32,
  numKvHeads: 32,
  headDimQK: 128,
  headDimV: 128,
  dtype: 'f16',
};
const mistral7b: KvSpec = { variant: 'gqa', numLayers: 32, numKvHeads: 8, headDimQK: 128, headDimV: 128, dtype: 'f16' };
const gemma2b: KvSpec = { variant: 'mqa', numLayers: 18, numKvHeads: 1, headDimQK: 256, headDimV: 256, dtype: 'f16' };
// Absorbed MLA runs as MQA with d_k 576 and d_v 512, but stores one 576-wide row.
const deepseekV3: KvSpec = {
  variant: 'mla',
  numLayers: 61,
  numKvHeads: 1,
  headDimQK: 576,
  headDimV: 512,
  latentDim: 512,
  ropeDim: 64,
  dtype: 'f16',
};

describe('kv accounting', () => {
  it('matches the DESIGN table', () => {
    expect(kvBytesPerToken(llama2_7b)).toBe(512 * 1024);
    expect(kvBytesPerToken(llama2_7b) * 128 * 1024).toBe(64 * 1024 ** 3); // 128K context = 64 GiB
    expect(kvBytesPerToken(mistral7b)).toBe(128 * 1024);
    expect(kvBytesPerToken(gemma2b)).toBe(18 * 1024);
    expect(kvValuesPerTokenPerLayer(deepseekV3)).toBe(576);
    expect(kvBytesPerToken(deepseekV3)).toBe(576 * 2 * 61);
  });

  it('scales with dtype and with unequal K and V head dims', () => {
    expect(kvBytesPerToken({ ...llama2_7b, dtype: 'f32' })).toBe(1024 * 1024);
    const unequal: KvSpec = {
      variant: 'gqa',
      numLayers: 2,
      numKvHeads: 4,
      headDimQK: 192,
      headDimV: 128,
      dtype: 'f32',
    };
    expect(kvBytesPerToken(unequal)).toBe(2 * 4 * (192 + 128) * 4);
    expect(kvBytesPerToken({ ...deepseekV3, dtype: 'f32' })).toBe(576 * 4 * 61);
  });

  it('gives page bytes per layer and memory by page counts', () => {
    expect(pageBytes(llama2_7b, 16)).toBe(256 * 1024);
    expect(pageBytes(deepseekV3, 64)).toBe(576 * 2 * 64);
    const memory = describeMemory({ totalPages: 10, usedPages: 6, freePages: 4, cachedPages: 3 }, llama2_7b, 16);
    expect(memory.bytesPerPage).toBe(8 * 1024 * 1024); // 16 tokens x 512 KiB
    expect(memory).toEqual({
      bytesPerPage: 8 * 1024 ** 2,
      totalBytes: 80 * 1024 ** 2,
      usedBytes: 48 * 1024 ** 2,
      freeBytes: 32 * 1024 ** 2,
      cachedBytes: 24 * 1024 ** 2,
    });
  });

  it('rejects specs that cannot be sized', () => {
    expect(() => kvBytesPerToken({ ...deepseekV3, ropeDim: undefined })).toThrow(/latentDim and ropeDim/);
    expect(() => kvBytesPerToken({ ...gemma2b, numKvHeads: 2 })).toThrow(/MQA has exactly 1 KV head/);
    expect(() => kvBytesPerToken({ ...llama2_7b, numLayers: 0 })).toThrow(/numLayers/);
    expect(() => kvBytesPerToken({ ...llama2_7b, headDimV: 1.5 })).toThrow(/headDimV/);
    expect(() => kvBytesPerToken({ ...llama2_7b, dtype: 'bf16' as never })).toThrow(/unknown dtype/);
    expect(() => kvBytesPerToken({ ...llama2_7b, variant: 'xla' as never })).toThrow(/unknown attention variant/);
    expect(() => pageBytes(llama2_7b, 0)).toThrow(/pageSize/);
  });
});

describe('kv accounting of q8 / q4 pages (scales included)', () => {
  it('bytes per token: a row of d values is d + 2 (q8) or d / 2 + 2 * ceil(d / 32) (q4) bytes', () => {
    expect(kvBytesPerToken({ ...llama2_7b, dtype: 'q8' })).toBe(32 * 32 * 2 * (128 + 2)); // 260 KiB
    expect(kvBytesPerToken({ ...llama2_7b, dtype: 'q4' })).toBe(32 * 32 * 2 * (64 + 8)); // 144 KiB
    expect(kvBytesPerToken({ ...deepseekV3, dtype: 'q8' })).toBe((576 + 2) * 61);
    expect(kvBytesPerToken({ ...deepseekV3, dtype: 'q4' })).toBe((288 + 36) * 61);
    // d 80: q4 groups of 32 + 32 + 16 -> 3 scales
    const d80: KvSpec = { variant: 'gqa', numLayers: 1, numKvHeads: 2, headDimQK: 80, headDimV: 80, dtype: 'q4' };
    expect(kvBytesPerToken(d80)).toBe(2 * 2 * (40 + 6));
    expect(kvBytesPerToken({ ...mistral7b, dtype: 'q8' }) / kvBytesPerToken(mistral7b)).toBeCloseTo(130 / 256, 10);
  });

  it('pageBytes is what the GPU pool allocates: scales of a page padded to a whole u32 word', () => {
    // Llama-2-7B q8, pages of 16: K and V each 32 heads x 16 rows x (128 codes + 2 scale bytes)
    expect(pageBytes({ ...llama2_7b, dtype: 'q8' }, 16)).toBe(2 * 32 * 16 * 130);
    // MLA q8, pages of 7: 7 rows x 576 codes + 7 scales = 14 bytes -> 16 (4 words)
    expect(pageBytes({ ...deepseekV3, dtype: 'q8' }, 7)).toBe(7 * 576 + 16);
    expect(pageBytes({ ...deepseekV3, dtype: 'q4' }, 1)).toBe(288 + 36);
    expect(() => kvBytesPerToken({ ...llama2_7b, dtype: 'q5' as never })).toThrow(/unknown dtype/);
  });

  it('q4 is refused for rows whose last scale group would hold fewer than 16 values, naming the head dim', () => {
    const gqa = (d: number, dtype: KvSpec['dtype'] = 'q4'): KvSpec => ({
      variant: 'gqa',
      numLayers: 5,
      numKvHeads: 4,
      headDimQK: d,
      headDimV: d,
      dtype,
    });
    for (const d of [16, 24, 48, 64, 80, 128, 256]) expect(kvDtypeProblem(gqa(d)), `d ${d}`).toBeNull();
    expect(kvDtypeProblem(gqa(8))).toMatch(
      /q4 KV keeps one f16 scale per 32 values .* head dim 8 leaves a last group of 8/,
    );
    expect(kvDtypeProblem(gqa(40))).toMatch(/head dim 40 leaves a last group of 8\. Use q8 or f16 KV/);
    expect(kvDtypeProblem(gqa(12))).toMatch(/multiples of 8 .* head dim 12 is not/);
    expect(kvDtypeProblem({ ...gqa(64), headDimV: 72 })).toMatch(/V head dim 72 leaves a last group of 8/);
    for (const dtype of ['f32', 'f16', 'q8'] as const) expect(kvDtypeProblem(gqa(8, dtype))).toBeNull();
    expect(kvDtypeProblem({ ...deepseekV3, dtype: 'q4' })).toBeNull(); // 576 = 18 x 32
    const mla = { ...deepseekV3, latentDim: 32, ropeDim: 8, dtype: 'q4' as const };
    expect(kvDtypeProblem(mla)).toMatch(/latent row of 40 \(32 \+ 8\) leaves a last group of 8/);
    expect(kvDtypeProblem({ ...mla, ropeDim: 16 })).toBeNull(); // kjv-mla: 48 = 32 + 16
  });
});
