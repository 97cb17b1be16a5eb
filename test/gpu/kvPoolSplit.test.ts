/**
 * A KV pool split across buffers (a layer's pages past one storage binding, forced here with a
 * simulated small binding limit, as weightShards.test.ts does for weights) gives the same results as
 * the same pool in one buffer: splitKvDecode's outputs equal bit for bit (the same arithmetic, only
 * the buffer a row is loaded from differs); flashPrefill, q8 decode and mlaDecode over a split pool
 * match the float64 twin; kvAppend writes the same bytes across the buffer boundaries (f16 and q8),
 * and copy-on-write across buffers (encodeSplitPageCopies) equals the copyPages kernel in one buffer.
 * A device of fewer than 16 storage buffers per stage (SwiftShader: 12) is refused, with the numbers.
 */
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { readBuffer, STORAGE, UNIFORM, uploadBuffer, writeBuffer } from '../../src/gpu/buffers';
import { ShapeError } from '../../src/gpu/errors';
import { attention, resolveVariant, type AttentionArgs } from '../../src/api/attention';
import { kvQuantized, referenceAttention, relL2 } from '../../src/reference/attention';
import { KvAppend } from '../../src/kernels/kvAppend';
import { CopyPages, encodeSplitPageCopies } from '../../src/kernels/copyPages';
import type { PageCopy } from '../../src/kv/kvCacheManager';
import { KvPool, kvPoolLayout, pageBufferBytes, type KvPoolSpec } from '../../src/kernels/kvPool';
import type { AttentionSpec, PagedKvBuffers } from '../../src/kernels/pagedAttention';
import { expectedShaderF16, gpu, randomArray, rng } from './harness';

/** ctx with some limits lowered (a phone's 128 MiB binding, shrunk to a few pages). */
function withLimits(ctx: GpuContext, lower: Partial<Record<keyof GPUSupportedLimits, number>>): GpuContext {
  const real = ctx.limits;
  const limits = new Proxy(real, {
    get: (target, key) => (key in lower ? lower[key as keyof GPUSupportedLimits] : target[key as keyof typeof target]),
  });
  return Object.create(ctx, { limits: { get: () => limits } }) as GpuContext;
}

/** ctx whose binding limit holds `pages` pages of spec's largest row. */
async function smallBinding(spec: AttentionSpec, pages: number): Promise<GpuContext> {
  const bytes = pages * pageBufferBytes(spec, Math.max(spec.headDimQK, spec.headDimV));
  return withLimits(await gpu(), { maxStorageBufferBindingSize: bytes });
}

const swiftshader = expectedShaderF16() === false;
// A pipeline takes seconds to compile on a software GPU (cold cache), so: f16 decode is compared with
// the same pool in one buffer, bit for bit (two compiles); f16 prefill, q8 decode (the q8 row reader,
// which prefill shares) and MLA decode only against the float64 twin (one compile each). The naive
// passes read through the same snippets.
type Case = [kernel: 'decode' | 'prefill', seqLensQ: number[], against: 'one buffer' | 'the float64 twin'];
const CASES: Record<'f16' | 'q8', Case[]> = {
  f16: [
    ['decode', [1, 1], 'one buffer'],
    ['prefill', [5, 3], 'the float64 twin'],
  ],
  q8: [['decode', [1, 1], 'the float64 twin']],
};
const TOL = { f16: 5e-3, q8: 2e-3 }; // as attention.test.ts

/** attention() over `small`'s split pool against the float64 twin (of the quantised K / V for q8). */
async function expectTwin(small: GpuContext, a: AttentionArgs): Promise<void> {
  const got = await attention(small, a);
  const r = resolveVariant(a);
  // MLA: V is the first latentDim values of each latent row.
  const rows = r.k.length / r.headDimQK;
  const v = r.mla
    ? Float32Array.from(
        { length: rows * r.headDimV },
        (_, i) => r.k[Math.floor(i / r.headDimV) * r.headDimQK + (i % r.headDimV)],
      )
    : r.v!;
  const q8 = a.kvDtype === 'q8';
  const ref = referenceAttention({
    ...r,
    k: q8 ? kvQuantized(r.k, r.headDimQK, 'q8') : r.k,
    v: q8 ? kvQuantized(v, r.headDimV, 'q8') : v,
  });
  const tol = TOL[a.kvDtype as 'f16' | 'q8'];
  expect(relL2(got.out, ref.out)).toBeLessThan(tol);
  expect(relL2(got.lse, ref.lse)).toBeLessThan(tol);
}
const DTYPES = ['f16', 'q8'] as const;
// A split pool's kernels bind 16 storage buffers (kvPool.ts); a device with fewer (SwiftShader: 12)
// is refused with the numbers, and runs only that check.
const canSplit = (await gpu()).limits.maxStorageBuffersPerShaderStage >= 16;

describe.skipIf(canSplit)('KV pool split across buffers on a device of few storage buffers', () => {
  it('refuses a pool past one binding, with the numbers', async () => {
    const spec: AttentionSpec = {
      numKvHeads: 2,
      groupSize: 2,
      headDimQK: 16,
      headDimV: 8,
      pageSize: 4,
      kvDtype: 'f16',
    };
    const small = await smallBinding(spec, 4);
    expect(kvPoolLayout(small, { ...spec, numPages: 4 }).pagesPerBuffer).toBeUndefined();
    await expect(KvPool.create(small, { ...spec, numLayers: 1, numPages: 11 })).rejects.toThrow(
      /11 pages of 256 bytes .* bind 16 storage buffers; this device allows \d+\. At most 4 pages per layer/,
    );
  });
});

describe.skipIf(!canSplit).each(DTYPES)('KV pool split across buffers [%s]', (kvDtype) => {
  const H = 4;
  const Hkv = 2;
  const D = 16;
  const Dv = 8;
  const pageSize = 4;
  const seqLensKV = [23, 17]; // 6 + 5 = 11 pages: 3 buffers of 4 pages (the last 3)
  const spec: AttentionSpec = { numKvHeads: Hkv, groupSize: H / Hkv, headDimQK: D, headDimV: Dv, pageSize, kvDtype };

  function args(rand: () => number, seqLensQ: number[], kernel: AttentionArgs['kernel']): AttentionArgs {
    const tq = seqLensQ.reduce((a, b) => a + b, 0);
    const tk = seqLensKV.reduce((a, b) => a + b, 0);
    return {
      q: randomArray(tq * H * D, rand),
      k: randomArray(tk * Hkv * D, rand),
      v: randomArray(tk * Hkv * Dv, rand),
      numHeads: H,
      numKvHeads: Hkv,
      headDimQK: D,
      headDimV: Dv,
      seqLensQ,
      seqLensKV,
      pageSize,
      kvDtype,
      kernel,
    };
  }

  it('splits the pool only where one buffer passes the binding', async () => {
    const small = await smallBinding(spec, 4);
    expect(kvPoolLayout(small, { ...spec, numPages: 11 }).pagesPerBuffer).toBe(4);
    expect(kvPoolLayout(small, { ...spec, numPages: 4 }).pagesPerBuffer).toBeUndefined();
    expect(kvPoolLayout(await gpu(), { ...spec, numPages: 11 }).pagesPerBuffer).toBeUndefined();
    // 17 pages of at most 4 per buffer need 5 buffers: refused, with the numbers.
    expect(() => kvPoolLayout(small, { ...spec, numPages: 17 })).toThrow(ShapeError);
    expect(() => kvPoolLayout(small, { ...spec, numPages: 17 })).toThrow(/17 pages .* need 5 buffers per layer/);
  });

  it.each(CASES[kvDtype])('%s, q lens %j, over 3 buffers vs %s', async (kernel, seqLensQ, against) => {
    const a = args(rng(7), seqLensQ, kernel);
    if (against === 'the float64 twin') return expectTwin(await smallBinding(spec, 4), a);
    const one = await attention(await gpu(), a);
    const split = await attention(await smallBinding(spec, 4), a);
    expect(one.out.some(Number.isNaN)).toBe(false);
    expect(one.lse.some(Number.isNaN)).toBe(false);
    expect(split.out).toEqual(one.out);
    expect(split.lse).toEqual(one.lse);
  });

  it('kvAppend across buffer boundaries, then copy-on-write across buffers, equal one buffer', async () => {
    const ctx = await gpu();
    const rand = rng(11);
    const numPages = 10; // 3 buffers of 4, 4, 2 pages
    const poolSpec: KvPoolSpec = { ...spec, numLayers: 1, numPages };
    const small = await smallBinding(spec, 4);
    const onePool = await KvPool.create(ctx, poolSpec);
    const splitPool = await KvPool.create(small, poolSpec);
    expect(splitPool.buffersPerLayer).toBe(3);
    expect(splitPool.spec.pagesPerBuffer).toBe(4);
    // Every slot of every page but the last, in a scrambled order (slot -1 skips one token).
    const slots = Int32Array.from(
      { length: (numPages - 1) * pageSize },
      (_, i) => (i * 7) % ((numPages - 1) * pageSize),
    );
    slots[5] = -1;
    const newK = randomArray(slots.length * Hkv * D, rand);
    const newV = randomArray(slots.length * Hkv * Dv, rand);
    const owned: GPUBuffer[] = [];
    const upload = async (label: string, data: ArrayBufferView, usage?: number) => {
      const b = await uploadBuffer(ctx, `test.${label}`, data, usage);
      owned.push(b);
      return b;
    };
    const bufs = {
      newK: await upload('k', newK),
      newV: await upload('v', newV),
      slotMapping: await upload('slots', slots),
      params: await upload('params', new Uint32Array([slots.length, 0, 0, 0]), UNIFORM),
    };
    const layerBuffers = (l: PagedKvBuffers, v: boolean) => {
      const all = v ? [l.vPages, ...(l.vMore ?? [])] : [l.kPages, ...(l.kMore ?? [])];
      return all.filter((b, i) => all.indexOf(b) === i); // the padded slots repeat buffer 0
    };
    // Poison both pools (0xff: NaN in f16, a scale of NaN in q8) so an unwritten byte shows.
    for (const pool of [onePool, splitPool]) {
      for (const v of [false, true]) {
        for (const b of layerBuffers(pool.layers[0], v)) writeBuffer(ctx, b, new Uint8Array(b.size).fill(0xff));
      }
    }
    const oneAppend = await KvAppend.create(ctx, onePool.spec);
    const splitAppend = await KvAppend.create(small, splitPool.spec);
    const copies: PageCopy[] = [
      { src: 1, dst: 9 }, // buffer 0 -> buffer 2
      { src: 6, dst: 2 }, // buffer 1 -> buffer 0
      { src: 4, dst: 7 }, // within buffer 1
    ];
    const flatPairs = Uint32Array.from(copies.flatMap((c) => [c.src, c.dst]));
    const pairs = await upload('pairs', flatPairs);
    const copyParams = await upload('copyParams', new Uint32Array([copies.length, 0, 0, 0]), UNIFORM);
    const kBytes = pageBufferBytes(spec, D);
    const vBytes = pageBufferBytes(spec, Dv);
    const copyK = await CopyPages.create(ctx, kBytes);
    const copyV = await CopyPages.create(ctx, vBytes);
    const scratch = await ctx.createBuffer('test.scratch', copies.length * kBytes, STORAGE);

    /** Each pool's K and V as one byte string over all its pages. */
    const contents = async () => {
      const read = async (pool: KvPool, v: boolean) => {
        const pageBytes = v ? vBytes : kBytes;
        const ppb = pool.spec.pagesPerBuffer ?? numPages;
        const out = new Uint8Array(numPages * pageBytes);
        for (const [i, b] of layerBuffers(pool.layers[0], v).entries()) {
          const pages = Math.min(ppb, numPages - i * ppb);
          out.set(new Uint8Array(await readBuffer(ctx, b)).subarray(0, pages * pageBytes), i * ppb * pageBytes);
        }
        return out;
      };
      return {
        one: [await read(onePool, false), await read(onePool, true)],
        split: [await read(splitPool, false), await read(splitPool, true)],
      };
    };

    await ctx.validated('kvPoolSplit append', () => {
      const enc = ctx.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      oneAppend.encode(pass, oneAppend.bind({ ...bufs, pages: onePool.layers[0] }), slots.length);
      splitAppend.encode(pass, splitAppend.bind({ ...bufs, pages: splitPool.layers[0] }), slots.length);
      pass.end();
      ctx.device.queue.submit([enc.finish()]);
    });
    const appended = await contents();
    expect(appended.split).toEqual(appended.one);
    // The appended pages differ from the poison, the unwritten last page does not.
    const page = (bytes: Uint8Array, p: number) => bytes.subarray(p * kBytes, (p + 1) * kBytes);
    expect(page(appended.one[0], 4).every((x) => x === 0xff)).toBe(false);
    expect(page(appended.one[0], 9).every((x) => x === 0xff)).toBe(true);

    await ctx.validated('kvPoolSplit copy-on-write', () => {
      const enc = ctx.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      copyK.encode(pass, copyK.bind({ pairs, pages: onePool.layers[0].kPages, params: copyParams }), copies.length);
      copyV.encode(pass, copyV.bind({ pairs, pages: onePool.layers[0].vPages, params: copyParams }), copies.length);
      pass.end();
      const ppb = splitPool.spec.pagesPerBuffer!;
      encodeSplitPageCopies(enc, layerBuffers(splitPool.layers[0], false), ppb, kBytes, flatPairs, scratch);
      encodeSplitPageCopies(enc, layerBuffers(splitPool.layers[0], true), ppb, vBytes, flatPairs, scratch);
      ctx.device.queue.submit([enc.finish()]);
    });
    const copied = await contents();
    expect(copied.split).toEqual(copied.one);
    for (const c of copies) expect(page(copied.one[0], c.dst)).toEqual(page(appended.one[0], c.src));

    for (const b of [...owned, scratch]) b.destroy();
    onePool.destroy();
    splitPool.destroy();
  });
});

describe.skipIf(!canSplit || swiftshader)('KV pool split across buffers [MLA]', () => {
  it('mlaDecode over 2 buffers matches the float64 twin', async () => {
    const rand = rng(3);
    const latent = 16;
    const rope = 8;
    const seqLensKV = [9, 6]; // 3 + 2 = 5 pages of 4: buffers of 3 and 2 pages
    const tk = 15;
    const a: AttentionArgs = {
      variant: 'mla',
      q: randomArray(2 * 4 * (latent + rope), rand),
      kv: randomArray(tk * (latent + rope), rand),
      numHeads: 4,
      numKvHeads: 1,
      headDimQK: latent + rope,
      headDimV: latent,
      latentDim: latent,
      ropeDim: rope,
      seqLensQ: [1, 1],
      seqLensKV,
      pageSize: 4,
      kvDtype: 'f16',
      kernel: 'decode',
    };
    const spec: AttentionSpec = {
      numKvHeads: 1,
      groupSize: 4,
      headDimQK: latent + rope,
      headDimV: latent,
      pageSize: 4,
      kvDtype: 'f16',
      vAliasesK: true,
    };
    const small = await smallBinding(spec, 3);
    expect(kvPoolLayout(small, { ...spec, numPages: 5 }).pagesPerBuffer).toBe(3);
    await expectTwin(small, a);
  });
});
