/**
 * flashPrefill v3's other tile paths, forced on the CPU drivers (which take one lane per row and
 * K / V straight from the pages by default, as attention.test.ts runs them): the GPUs' path (K / V
 * tiles in workgroup memory, double-buffered, several lanes per row whose partial scores meet by
 * subgroup shuffles), the single-buffered tiles, and several lanes per row over direct reads.
 * Against the float64 reference on fresh random inputs, outputs poisoned by attention(), relative
 * L2: < 1e-4 with f32 KV, < 5e-3 with f16 KV. Both CPU drivers have one fixed subgroup size
 * (lavapipe 8, SwiftShader 4), so 4 lanes per row run on both; SwiftShader compiles slowly, so it
 * runs the first case (the GPU path) only.
 */
import { describe, expect, it } from 'vitest';
import { attention, type AttentionArgs } from '../../src/api/attention';
import type { FlashPrefillOptions } from '../../src/kernels/flashPrefill';
import { referenceAttention, relL2 } from '../../src/reference/attention';
import { expectedShaderF16, gpu, randomArray, rng } from './harness';

interface Case {
  name: string;
  tiles: NonNullable<FlashPrefillOptions['tiles']>;
  H: number;
  Hkv: number;
  D: number;
  seqLensQ: number[];
  seqLensKV: number[];
  pageSize: number;
  kvDtype: 'f32' | 'f16';
  causal?: boolean;
  window?: number;
  softcap?: number;
}

const TOL = { f32: 1e-4, f16: 5e-3 };

const cases: Case[] = [
  {
    name: 'GPU path: double-buffered tiles, 4 lanes per row, GQA g4 d128 f16, ragged chunks, page 7',
    tiles: { lanesPerRow: 4, kvDirect: false, kvBuffers: 2, maxBlockN: 16 },
    H: 8,
    Hkv: 2,
    D: 128,
    seqLensQ: [17, 40],
    seqLensKV: [30, 40],
    pageSize: 7,
    kvDtype: 'f16',
  },
  {
    name: 'single-buffered tiles, 1 lane per row, d80 f32, window 16, soft-cap 5',
    tiles: { lanesPerRow: 1, kvDirect: false, kvBuffers: 1, maxBlockN: 8 },
    H: 4,
    Hkv: 2,
    D: 80,
    seqLensQ: [54, 9],
    seqLensKV: [54, 20],
    pageSize: 16,
    kvDtype: 'f32',
    window: 16,
    softcap: 5,
  },
  {
    name: 'direct reads, 2 lanes per row, MHA d64 f32, non-causal',
    tiles: { lanesPerRow: 2, kvDirect: true, blockM: 16 },
    H: 2,
    Hkv: 2,
    D: 64,
    seqLensQ: [17, 30],
    seqLensKV: [17, 30],
    pageSize: 1,
    kvDtype: 'f32',
    causal: false,
  },
];

const swiftshader = expectedShaderF16() === false;

describe('flashPrefill v3 tile paths vs float64 reference', () => {
  cases.forEach((c, i) =>
    it.skipIf(swiftshader && i > 0)(c.name, async () => {
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
        softcap: c.softcap ?? 0,
        pageSize: c.pageSize,
        kvDtype: c.kvDtype,
        kernel: 'prefill',
        prefill: { version: 3, tiles: c.tiles },
      };
      const ctx = await gpu();
      const got = await attention(ctx, args);
      const ref = referenceAttention({ ...args, k: args.k!, v: args.v! });
      const where = `${c.name} (seed ${seed}, adapter ${ctx.adapterDescription})`;
      expect(relL2(got.out, ref.out), `out rel L2 ${where}`).toBeLessThan(TOL[c.kvDtype]);
      expect(relL2(got.lse, ref.lse), `lse rel L2 ${where}`).toBeLessThan(TOL[c.kvDtype]);
    }),
  );
});
