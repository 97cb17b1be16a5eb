/**
 * Prefill chunks of 2-16 query tokens per sequence (speculative verification, chunked-prefill tails)
 * through the split-KV decode kernel (splitKvDecode v3 + mergePartials) instead of flashPrefill:
 * against the float64 reference through attention() (kvAppend, the KvCacheManager's slots, the page
 * table), with a causal mask inside the chunk, ragged batches, a sliding window, group sizes 1-64 and
 * NaN in one V row that only some of the chunk's queries see. Fresh random inputs each run (the seed is
 * in the message), outputs poisoned by attention(), rel L2 < 1e-4 (f32 KV) / 5e-3 (f16 KV).
 * Also: the routing (decodeTakes) and the plan's slot layout and capacity.
 */
import { describe, expect, it } from 'vitest';
import type { KvDtype } from '../../src/gpu/dtype';
import { attention, type AttentionArgs } from '../../src/api/attention';
import { buildPageTable } from '../../src/kernels/pageTable';
import { DECODE_MAX_QUERY_TOKENS, decodeTakes } from '../../src/kernels/pagedAttention';
import { SplitKvDecode } from '../../src/kernels/splitKvDecode';
import { nonFiniteMismatch, referenceAttention, relL2, relL2Finite } from '../../src/reference/attention';
import { expectedShaderF16, gpu, randomArray, rng } from './harness';

interface Case {
  name: string;
  H: number;
  Hkv: number;
  D: number;
  seqLensQ: number[];
  seqLensKV: number[];
  pageSize: number;
  kvDtype: KvDtype;
  causal?: boolean;
  window?: number;
  /** NaN in V row `nanKey` of sequence 0, KV head 0: queries before it stay finite (causal). */
  nanKey?: number;
}

const TOL = { f32: 1e-4, f16: 5e-3, q8: 2e-3, q4: 2e-3 };

async function check(c: Case): Promise<void> {
  const seed = (Math.random() * 2 ** 32) >>> 0;
  const rand = rng(seed);
  const tq = c.seqLensQ.reduce((a, b) => a + b, 0);
  const tk = c.seqLensKV.reduce((a, b) => a + b, 0);
  const args: AttentionArgs = {
    q: randomArray(tq * c.H * c.D, rand),
    k: randomArray(tk * c.Hkv * c.D, rand),
    v: randomArray(tk * c.Hkv * c.D, rand),
    numHeads: c.H,
    numKvHeads: c.Hkv,
    headDimQK: c.D,
    headDimV: c.D,
    seqLensQ: c.seqLensQ,
    seqLensKV: c.seqLensKV,
    causal: c.causal ?? true,
    window: c.window ?? 0,
    pageSize: c.pageSize,
    kvDtype: c.kvDtype,
    kernel: 'decode',
  };
  if (c.nanKey !== undefined) args.v![c.nanKey * c.Hkv * c.D + 2] = Number.NaN;
  const ctx = await gpu();
  const got = await attention(ctx, args);
  const ref = referenceAttention({ ...args, k: args.k!, v: args.v! });
  const where = `${c.name} (seed ${seed}, adapter ${ctx.adapterDescription})`;
  if (c.nanKey !== undefined) {
    expect(nonFiniteMismatch(got.out, ref.out), `out non-finite pattern ${where}`).toBeUndefined();
    expect(ref.out.some(Number.isNaN) && ref.out.some(Number.isFinite), `some rows see the NaN ${where}`).toBe(true);
    expect(relL2Finite(got.out, ref.out), `out rel L2 (finite rows) ${where}`).toBeLessThan(TOL[c.kvDtype]);
    expect(relL2Finite(got.lse, ref.lse), `lse rel L2 (finite rows) ${where}`).toBeLessThan(TOL[c.kvDtype]);
    return;
  }
  expect(relL2(got.out, ref.out), `out rel L2 ${where}`).toBeLessThan(TOL[c.kvDtype]);
  expect(relL2(got.lse, ref.lse), `lse rel L2 ${where}`).toBeLessThan(TOL[c.kvDtype]);
}

const cases: Case[] = [
  // G 4, d 128, f16: the bench's GQA shape; 2 and 5 tokens against long and short contexts.
  {
    name: 'GQA g4 d128 f16, 2 + 5 tokens',
    H: 8,
    Hkv: 2,
    D: 128,
    seqLensQ: [2, 5],
    seqLensKV: [300, 40],
    pageSize: 16,
    kvDtype: 'f16',
  },
  // Ragged, qLen 16 (the most the decode kernel takes) next to a decode token, page 7, MHA.
  {
    name: 'MHA d64 ragged 16 / 1 / 3 tokens, page 7',
    H: 4,
    Hkv: 4,
    D: 64,
    seqLensQ: [16, 1, 3],
    seqLensKV: [97, 20, 3],
    pageSize: 7,
    kvDtype: 'f32',
  },
  // G 7: row tiles straddle tokens (rows = token x 7 heads).
  {
    name: 'GQA g7 d80, 4 + 2 tokens',
    H: 7,
    Hkv: 1,
    D: 80,
    seqLensQ: [4, 2],
    seqLensKV: [54, 17],
    pageSize: 16,
    kvDtype: 'f32',
  },
  {
    name: 'sliding window 16, 8 + 4 tokens',
    H: 4,
    Hkv: 2,
    D: 64,
    seqLensQ: [8, 4],
    seqLensKV: [200, 30],
    pageSize: 16,
    kvDtype: 'f32',
    window: 16,
  },
  { name: 'MQA g8 d256 f16 page 1', H: 8, Hkv: 1, D: 256, seqLensQ: [3], seqLensKV: [70], pageSize: 1, kvDtype: 'f16' },
  {
    name: 'g64 (tiled heads) d64, 2 tokens',
    H: 64,
    Hkv: 1,
    D: 64,
    seqLensQ: [2],
    seqLensKV: [130],
    pageSize: 16,
    kvDtype: 'f32',
  },
  {
    name: 'non-causal, 6 tokens',
    H: 4,
    Hkv: 2,
    D: 64,
    seqLensQ: [6, 2],
    seqLensKV: [50, 9],
    pageSize: 16,
    kvDtype: 'f32',
    causal: false,
  },
  // Queries at positions 14..29: key 15's NaN reaches the 14 later ones, not the one at 14.
  {
    name: 'NaN in one V row inside the chunk',
    H: 4,
    Hkv: 2,
    D: 64,
    seqLensQ: [16],
    seqLensKV: [30],
    pageSize: 16,
    kvDtype: 'f16',
    nanKey: 15,
  },
];

// SwiftShader (no shader-f16, 4-lane subgroups) runs the first three cases: the same shader, its own tiles.
const swiftshader = expectedShaderF16() === false;

describe('split-KV decode kernel on 2-16 query tokens per sequence vs float64 reference', () => {
  cases.forEach((c, i) => it.skipIf(swiftshader && i > 2)(c.name, () => check(c)));

  it('routes steps of 1..16 query tokens per sequence to the decode kernel, longer ones to flashPrefill', () => {
    expect(DECODE_MAX_QUERY_TOKENS).toBe(16);
    expect(decodeTakes([1, 1, 3], 16)).toBe(true);
    expect(decodeTakes([16], 16)).toBe(true);
    expect(decodeTakes([1, 17], 16)).toBe(false);
    expect(decodeTakes([2], 1)).toBe(false); // mlaDecode: one token
    expect(decodeTakes([0, 1], 16)).toBe(false);
    expect(decodeTakes([], 16)).toBe(false);
  });

  it('plans [chunk][token] slots and grows its chunks to fit the caller buffers', async () => {
    const ctx = await gpu();
    const k = await SplitKvDecode.create(ctx, {
      numKvHeads: 2,
      groupSize: 4,
      headDimQK: 64,
      headDimV: 64,
      pageSize: 16,
      kvDtype: 'f32',
    });
    expect(k.maxQueryTokens).toBe(16);
    const blockTable = (n: number, from: number) => Array.from({ length: Math.ceil(n / 16) }, (_, i) => from + i);
    const meta = buildPageTable(
      [
        { kvLen: 1000, qLen: 3, blockTable: blockTable(1000, 0) },
        { kvLen: 100, qLen: 1, blockTable: blockTable(100, 100) },
      ],
      16,
    );
    const plan = k.plan(meta);
    const chunks = (n: number) => Math.ceil(n / plan.chunkSize);
    expect(plan.slotIndptr[1]).toBe(3 * chunks(1000));
    expect(plan.numSlots).toBe(3 * chunks(1000) + chunks(100));
    // Every item's slot is its chunk's first: sequence start + chunk x qLen.
    for (let w = 0; w < plan.numWorkItems; w++) {
      const [seq, , kvStart, , slot] = plan.work.subarray(5 * w, 5 * w + 5);
      const qLen = seq === 0 ? 3 : 1;
      expect(slot).toBe(plan.slotIndptr[seq] + (kvStart / plan.chunkSize) * qLen);
    }
    // Buffers for 8 slots: the chunks grow until the plan fits, and a step that cannot fit is not taken.
    const small = { slots: 8, workItems: 64 };
    expect(k.takes(meta, small)).toBe(true);
    const fitted = k.plan(meta, small);
    expect(fitted.numSlots).toBeLessThanOrEqual(8);
    expect(k.takes(meta, { slots: 3, workItems: 64 })).toBe(false);
  });
});
