/**
 * mlaDecode (the head-blocked MLA split-KV decode, reached through attention() with variant 'mla'
 * and one query token per sequence) vs the float64 reference with V = the first d_c values of each
 * latent row. attention() poisons out, lse and the partials with NaN, so an unwritten head, slot
 * or column fails the check. Head counts cover one block (1, 4, 16), a block with clamped rows
 * (12 of 16), several blocks (128 = 8 x 16) and a partial last block (40 = 16 + 16 + 8): v2, whose
 * score pass splits the block's heads in two halves of 2 keys per lane (SPLIT 2; H 1: one key per lane),
 * and v1 (the bench's baseline) driven directly.
 */
import { describe, expect, it } from 'vitest';
import type { KvDtype } from '../../src/gpu/dtype';
import { attention, type AttentionArgs } from '../../src/api/attention';
import { MlaDecode, type MlaDecodeVersion } from '../../src/kernels/mlaDecode';
import { MergePartials } from '../../src/kernels/mergePartials';
import { KvAppend } from '../../src/kernels/kvAppend';
import { attentionParams } from '../../src/kernels/pagedAttention';
import { KvPool } from '../../src/kernels/kvPool';
import { buildPageTable } from '../../src/kernels/pageTable';
import { readFloat32, STORAGE, UNIFORM, uploadBuffer } from '../../src/gpu/buffers';
import { chooseMlaDecodeTiles } from '../../src/kernels/tiling';
import { kvQuantized, nonFiniteMismatch, referenceAttention, relL2, relL2Finite } from '../../src/reference/attention';
import { expectedShaderF16, gpu, randomArray, rng } from './harness';

interface Case {
  H: number;
  dc: number;
  dr: number;
  seqLensKV: number[];
  pageSize: number;
  kvDtype: KvDtype;
  window?: number;
  /** Gemma-2 style score soft-capping (0 = off). */
  softcap?: number;
  /** One NaN in q (sequence 0, head 1) or in the latent row of key kvLen / 2 of sequence 0 (K and V). */
  poison?: 'q' | 'kv' | 'v';
}

const TOL = { f32: 1e-4, f16: 5e-3, q8: 2e-3, q4: 2e-3 };
const DS = { dc: 512, dr: 64 }; // DeepSeek-V2/V3 latent and rope dims

async function check(c: Case) {
  const seed = (Math.random() * 2 ** 32) >>> 0;
  const rand = rng(seed);
  const tk = c.seqLensKV.reduce((a, b) => a + b, 0);
  const tq = c.seqLensKV.length;
  const D = c.dc + c.dr;
  const args: AttentionArgs = {
    variant: 'mla',
    latentDim: c.dc,
    ropeDim: c.dr,
    q: randomArray(tq * c.H * D, rand),
    kv: randomArray(tk * D, rand),
    numHeads: c.H,
    numKvHeads: 1,
    headDimQK: D,
    headDimV: c.dc,
    seqLensQ: c.seqLensKV.map(() => 1),
    seqLensKV: c.seqLensKV,
    pageSize: c.pageSize,
    kvDtype: c.kvDtype,
    window: c.window ?? 0,
    kernel: 'decode',
    softcap: c.softcap ?? 0,
  };
  const key = Math.floor(c.seqLensKV[0] / 2);
  if (c.poison === 'q') args.q[(1 % c.H) * D + 7] = Number.NaN;
  if (c.poison === 'kv') args.kv![key * D + c.dc + 1] = Number.NaN; // in k_pe: K only
  if (c.poison === 'v') args.kv![key * D + 3] = Number.NaN; // in c_kv: K and V
  const got = await attention(await gpu(), args);
  // q8 / q4: the reference reads the latent rows as quantised (one scale per row / per 32 values of it).
  const k = c.kvDtype === 'q8' || c.kvDtype === 'q4' ? kvQuantized(args.kv!, D, c.kvDtype) : args.kv!;
  const v = new Float64Array(tk * c.dc); // V of the reference: the first d_c values of every row
  for (let t = 0; t < tk; t++) v.set(k.subarray(t * D, t * D + c.dc), t * c.dc);
  const ref = referenceAttention({ ...args, k, v });
  const where = `H${c.H} ${c.dc}+${c.dr} kv [${c.seqLensKV}] page ${c.pageSize} ${c.kvDtype} (seed ${seed})`;
  if (c.poison) {
    expect(nonFiniteMismatch(got.out, ref.out), `out non-finite pattern ${where}`).toBeUndefined();
    expect(nonFiniteMismatch(got.lse, ref.lse), `lse non-finite pattern ${where}`).toBeUndefined();
    expect(ref.out.some((x) => Number.isNaN(x)) && ref.out.some((x) => Number.isFinite(x)), where).toBe(true);
    expect(relL2Finite(got.out, ref.out), `out (finite rows) ${where}`).toBeLessThan(TOL[c.kvDtype]);
    return;
  }
  expect(relL2(got.out, ref.out), `out ${where}`).toBeLessThan(TOL[c.kvDtype]);
  expect(relL2(got.lse, ref.lse), `lse ${where}`).toBeLessThan(TOL[c.kvDtype]);
}

const RAGGED = [1, 130, 600];
const cases: Case[] = [
  { H: 1, ...DS, seqLensKV: RAGGED, pageSize: 16, kvDtype: 'f32' },
  { H: 4, ...DS, seqLensKV: RAGGED, pageSize: 1, kvDtype: 'f16' },
  { H: 16, ...DS, seqLensKV: RAGGED, pageSize: 16, kvDtype: 'f32' },
  { H: 128, ...DS, seqLensKV: [1, 70], pageSize: 16, kvDtype: 'f32' },
  { H: 128, ...DS, seqLensKV: [33], pageSize: 1, kvDtype: 'f16' },
  { H: 40, ...DS, seqLensKV: [45], pageSize: 16, kvDtype: 'f32' },
  { H: 12, dc: 32, dr: 16, seqLensKV: RAGGED, pageSize: 16, kvDtype: 'f32' },
  { H: 12, dc: 32, dr: 16, seqLensKV: RAGGED, pageSize: 1, kvDtype: 'f16' },
  { H: 4, dc: 64, dr: 32, seqLensKV: RAGGED, pageSize: 16, kvDtype: 'f16' },
  { H: 128, dc: 64, dr: 32, seqLensKV: [600, 130], pageSize: 16, kvDtype: 'f32' },
  { H: 4, dc: 64, dr: 32, seqLensKV: [600, 5], pageSize: 16, kvDtype: 'f16', window: 100 }, // same pipeline as above
  { H: 16, ...DS, seqLensKV: [300, 17], pageSize: 16, kvDtype: 'f16', softcap: 5 },
  { H: 12, dc: 32, dr: 16, seqLensKV: [600, 17], pageSize: 16, kvDtype: 'f32', poison: 'q' },
  { H: 12, dc: 32, dr: 16, seqLensKV: [600, 17], pageSize: 7, kvDtype: 'f16', poison: 'kv' },
  { H: 16, ...DS, seqLensKV: [130, 17], pageSize: 16, kvDtype: 'f32', poison: 'v' },
  // q8 / q4 latent rows (issue 17); d 48 = 32 + 16: a short last q4 group.
  { H: 16, ...DS, seqLensKV: RAGGED, pageSize: 16, kvDtype: 'q8' },
  { H: 16, ...DS, seqLensKV: RAGGED, pageSize: 16, kvDtype: 'q4' },
  { H: 12, dc: 32, dr: 16, seqLensKV: [130, 17], pageSize: 7, kvDtype: 'q4' },
  { H: 4, dc: 64, dr: 32, seqLensKV: [45, 1], pageSize: 1, kvDtype: 'q8' },
];

// Quantised latent rows are read by the same shader on every adapter (the f32 word snippet): past the first
// q8 case SwiftShader adds only compile time, so the other q8 / q4 cases run on lavapipe only.
const firstQuant = cases.findIndex((c) => c.kvDtype === 'q8' || c.kvDtype === 'q4');
const swiftshader = expectedShaderF16() === false;

describe('mlaDecode vs float64 reference', () => {
  for (const [i, c] of cases.entries()) {
    const extra =
      `${c.window ? `, window ${c.window}` : ''}${c.softcap ? `, soft-cap ${c.softcap}` : ''}` +
      (c.poison ? `, NaN in ${c.poison}` : '');
    const name = `H${c.H} d_c ${c.dc} + d_rope ${c.dr}, kv [${c.seqLensKV}], page ${c.pageSize}${extra} [${c.kvDtype}]`;
    const quant = c.kvDtype === 'q8' || c.kvDtype === 'q4';
    it.skipIf(swiftshader && quant && i !== firstQuant)(name, () => check(c));
  }
});

/**
 * The kernel driven directly (not through attention()), so the plain-load variant, the one for
 * adapters without a fixed subgroup size, is checked on adapters that have subgroups too.
 */
async function runDirect(
  H: number,
  dc: number,
  dr: number,
  seqLensKV: number[],
  subgroups: boolean,
  rand: () => number,
  version: MlaDecodeVersion = 2,
) {
  const ctx = await gpu();
  const D = dc + dr;
  const pageSize = 16;
  const spec = {
    numKvHeads: 1,
    groupSize: H,
    headDimQK: D,
    headDimV: dc,
    pageSize,
    kvDtype: 'f32' as const,
    vAliasesK: true,
  };
  const tk = seqLensKV.reduce((a, b) => a + b, 0);
  const q = randomArray(seqLensKV.length * H * D, rand);
  const kv = randomArray(tk * D, rand);
  // Sequence i's pages follow sequence i-1's: token j of it goes to slot firstPage_i * 16 + j.
  const slots = new Int32Array(tk);
  const tables: number[][] = [];
  let page = 0;
  let row = 0;
  for (const n of seqLensKV) {
    const pages = Math.ceil(n / pageSize);
    tables.push(Array.from({ length: pages }, (_, p) => page + p));
    for (let j = 0; j < n; j++) slots[row++] = page * pageSize + j;
    page += pages;
  }
  const meta = buildPageTable(
    seqLensKV.map((kvLen, i) => ({ kvLen, qLen: 1, blockTable: tables[i] })),
    pageSize,
  );
  const owned: { destroy(): void }[] = [];
  const up = async (data: ArrayBufferView, usage = STORAGE) => {
    const b = await uploadBuffer(ctx, 'mlaDecode.test', data, usage);
    owned.push(b);
    return b;
  };
  try {
    const pool = await KvPool.create(ctx, { ...spec, numLayers: 1, numPages: page });
    owned.push(pool);
    const append = await KvAppend.create(ctx, spec);
    const decode = await MlaDecode.create(ctx, spec, { subgroups, version });
    const merge = await MergePartials.create(ctx, H, dc);
    const plan = decode.plan(meta);
    const bytes = decode.partialBytes(plan.numSlots);
    const step = {
      qoIndptr: await up(meta.qoIndptr),
      kvIndptr: await up(meta.kvIndptr),
      kvPageIndices: await up(meta.kvPageIndices),
      kvLastPageLen: await up(meta.kvLastPageLen),
      params: await up(
        new Uint8Array(attentionParams(meta.numSeqs, { scale: 1 / Math.sqrt(D), causal: true, window: 0 })),
        UNIFORM,
      ),
    };
    const out = await up(new Float32Array(seqLensKV.length * H * dc).fill(NaN));
    const lse = await up(new Float32Array(seqLensKV.length * H).fill(NaN));
    const partialO = await up(new Float32Array(bytes.o / 4).fill(NaN));
    const partialML = await up(new Float32Array(bytes.ml / 4).fill(NaN));
    const appendParams = await up(new Uint32Array([tk, 0, 0, 0]), UNIFORM);
    const pages = pool.layers[0];
    const appendBind = append.bind({ newK: await up(kv), slotMapping: await up(slots), pages, params: appendParams });
    const decodeBind = decode.bind({ q: await up(q), pages, step, work: await up(plan.work), partialO, partialML });
    const slotIndptr = await up(plan.slotIndptr);
    const mergeBind = merge.bind({ partialO, partialML, slotIndptr, qoIndptr: step.qoIndptr, out, lse });
    await ctx.validated('mlaDecode.test', async () => {
      const enc = ctx.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      append.encode(pass, appendBind, tk);
      decode.encode(pass, decodeBind, plan.numWorkItems);
      merge.encode(pass, mergeBind, meta.numSeqs);
      pass.end();
      ctx.device.queue.submit([enc.finish()]);
    });
    const got = await readFloat32(ctx, out, seqLensKV.length * H * dc);
    const v = new Float32Array(tk * dc);
    for (let t = 0; t < tk; t++) v.set(kv.subarray(t * D, t * D + dc), t * dc);
    const ref = referenceAttention({
      q,
      k: kv,
      v,
      numHeads: H,
      numKvHeads: 1,
      headDimQK: D,
      headDimV: dc,
      seqLensQ: seqLensKV.map(() => 1),
      seqLensKV,
    });
    return relL2(got, ref.out);
  } finally {
    for (const b of owned) b.destroy();
  }
}

describe('mlaDecode driven directly', () => {
  it.each([true, false])('subgroups %s: H16 DeepSeek dims and H12 d_c 32, ragged', async (subgroups) => {
    const seed = (Math.random() * 2 ** 32) >>> 0;
    const rand = rng(seed);
    expect(await runDirect(16, 512, 64, [130, 1, 300], subgroups, rand), `seed ${seed}`).toBeLessThan(1e-4);
    expect(await runDirect(12, 32, 16, [600, 17], subgroups, rand), `seed ${seed}`).toBeLessThan(1e-4);
  });

  // v1, the bench's baseline (one key per lane; the bench checks it against naive before timing it too):
  // one small shape, on lavapipe only (one more pipeline to JIT; SwiftShader runs v2's paths).
  it.skipIf(swiftshader)('v1: H12 d_c 32, ragged', async () => {
    const seed = (Math.random() * 2 ** 32) >>> 0;
    expect(await runDirect(12, 32, 16, [600, 17, 1], true, rng(seed), 1), `seed ${seed}`).toBeLessThan(1e-4);
  });
});

describe('mlaDecode tiles', () => {
  it('takes 16 heads per workgroup (up to 32 when asked, 16 on a 16 KiB adapter)', () => {
    expect(chooseMlaDecodeTiles(16, 512, 32768)).toMatchObject({ blockM: 16, accPerThread: 16 });
    expect(chooseMlaDecodeTiles(128, 512, 32768)).toMatchObject({ blockM: 16, accPerThread: 16 });
    expect(chooseMlaDecodeTiles(128, 512, 32768, 32)).toMatchObject({ blockM: 32, accPerThread: 32 });
    const small = chooseMlaDecodeTiles(128, 512, 16384, 32);
    expect(small.blockM).toBe(16);
    expect(small.workgroupBytes).toBeLessThanOrEqual(16384);
    expect(chooseMlaDecodeTiles(3, 32, 16384)).toMatchObject({ blockM: 4, accPerThread: 1 });
  });

  it('plans (sequence, chunk, head block) work items and refuses non-MLA specs', async () => {
    const ctx = await gpu();
    const spec = {
      numKvHeads: 1,
      groupSize: 40,
      headDimQK: 576,
      headDimV: 512,
      pageSize: 16,
      kvDtype: 'f16' as const,
      vAliasesK: true,
    };
    const k = await MlaDecode.create(ctx, spec);
    const bm = k.tiles.blockM;
    const meta = { numSeqs: 2, qLens: [1, 1], kvLens: [1000, 3] } as Parameters<MlaDecode['plan']>[0];
    const plan = k.plan(meta);
    const blocks = Math.ceil(40 / bm);
    const chunks0 = Math.ceil(1000 / plan.chunkSize);
    expect(plan.numSlots).toBe(chunks0 + 1);
    expect(plan.work.length / 5).toBe(plan.numSlots * blocks);
    expect(Array.from(plan.slotIndptr)).toEqual([0, chunks0, chunks0 + 1]);
    await expect(MlaDecode.create(ctx, { ...spec, vAliasesK: false })).rejects.toThrow(/MLA spec/);
  });
});
