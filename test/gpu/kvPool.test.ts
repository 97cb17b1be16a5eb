/**
 * kvAppend writes each token's K and V rows exactly where the documented page layout says
 * ([page][kvHead][tokenInPage][dim]), leaves other slots untouched, and copyPages performs the
 * copy-on-write the KvCacheManager asks for. Pages are read back and decoded on the host.
 */
import { describe, expect, it } from 'vitest';
import type { KvDtype } from '../../src/gpu/dtype';
import { readBuffer, UNIFORM, uploadBuffer, writeBuffer } from '../../src/gpu/buffers';
import { KvAppend } from '../../src/kernels/kvAppend';
import { CopyPages } from '../../src/kernels/copyPages';
import type { AttentionSpec } from '../../src/kernels/pagedAttention';
import { KvCacheManager } from '../../src/kv/kvCacheManager';
import { KvPool, pageBufferBytes } from '../../src/kernels/kvPool';
import { f16BitsToF32, f32ToF16Bits } from '../../src/sources/halfFloat';
import { gpu, randomArray, rng } from './harness';

/** Reads a page buffer back as floats, whatever its storage dtype. */
async function readPages(buffer: GPUBuffer, dtype: KvDtype): Promise<Float32Array> {
  const ctx = await gpu();
  const bytes = await readBuffer(ctx, buffer);
  if (dtype === 'f32') return new Float32Array(bytes);
  return Float32Array.from(new Uint16Array(bytes), f16BitsToF32);
}

const asStored = (x: number, dtype: KvDtype) => (dtype === 'f32' ? Math.fround(x) : f16BitsToF32(f32ToF16Bits(x)));

describe.each(['f32', 'f16'] as const)('paged KV pool [%s]', (kvDtype) => {
  const spec: AttentionSpec = { numKvHeads: 2, groupSize: 1, headDimQK: 16, headDimV: 8, pageSize: 5, kvDtype };
  const numPages = 6;

  async function poisonedPool() {
    const ctx = await gpu();
    const pool = await KvPool.create(ctx, { ...spec, numLayers: 1, numPages });
    const poison = new Uint8Array(pool.layers[0].kPages.size).fill(0xff); // NaN in f32 and f16
    writeBuffer(ctx, pool.layers[0].kPages, poison);
    writeBuffer(ctx, pool.layers[0].vPages, poison.subarray(0, pool.layers[0].vPages.size));
    return pool;
  }

  async function append(pool: KvPool, k: Float32Array, v: Float32Array, slots: Int32Array) {
    const ctx = await gpu();
    const kernel = await KvAppend.create(ctx, spec);
    const bufs = [
      await uploadBuffer(ctx, 'test.k', k),
      await uploadBuffer(ctx, 'test.v', v),
      await uploadBuffer(ctx, 'test.slots', slots),
      await uploadBuffer(ctx, 'test.params', new Uint32Array([slots.length, 0, 0, 0]), UNIFORM),
    ];
    await ctx.validated('kvAppend test', () => {
      const [newK, newV, slotMapping, params] = bufs;
      const bind = kernel.bind({ newK, newV, slotMapping, pages: pool.layers[0], params });
      const enc = ctx.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      kernel.encode(pass, bind, slots.length);
      pass.end();
      ctx.device.queue.submit([enc.finish()]);
    });
    bufs.forEach((b) => b.destroy());
  }

  it('kvAppend scatters rows into [page][kvHead][token][dim] and skips slot -1', async () => {
    const rand = rng((Math.random() * 2 ** 32) >>> 0);
    const slots = Int32Array.from([7, 0, 29, -1, 12, 13, 4, 25]); // pages 1, 0, 5, -, 2, 2, 0, 5
    const { numKvHeads: H, headDimQK: D, headDimV: Dv, pageSize: P } = spec;
    const k = randomArray(slots.length * H * D, rand);
    const v = randomArray(slots.length * H * Dv, rand);
    const pool = await poisonedPool();
    await append(pool, k, v, slots);
    const kp = await readPages(pool.layers[0].kPages, kvDtype);
    const vp = await readPages(pool.layers[0].vPages, kvDtype);
    const written = new Set<number>();
    slots.forEach((slot, t) => {
      if (slot < 0) return;
      const page = Math.floor(slot / P);
      const off = slot % P;
      for (let h = 0; h < H; h++) {
        const row = (page * H + h) * P + off; // e.g. slot 7 -> page 1, off 2; head 1 -> row (1*2+1)*5+2 = 17
        for (let d = 0; d < D; d++) {
          expect(kp[row * D + d]).toBe(asStored(k[(t * H + h) * D + d], kvDtype));
          written.add(row * D + d);
        }
        for (let d = 0; d < Dv; d++) expect(vp[row * Dv + d]).toBe(asStored(v[(t * H + h) * Dv + d], kvDtype));
      }
    });
    // Everything else still holds the poison.
    for (let i = 0; i < kp.length; i++) if (!written.has(i)) expect(Number.isNaN(kp[i])).toBe(true);
    pool.destroy();
  });

  it('copy-on-write: a fork writing into a shared partial page gets its own copy', async () => {
    const ctx = await gpu();
    const rand = rng((Math.random() * 2 ** 32) >>> 0);
    const { numKvHeads: H, headDimQK: D, headDimV: Dv } = spec;
    const cache = new KvCacheManager({ numPages, pageSize: spec.pageSize, enablePrefixCache: false });
    cache.addSequence(1);
    const a = cache.appendSlots(1, 7); // pages: one full, one with 2 of 5 tokens
    if (!a.ok) throw new Error(a.reason);
    const pool = await poisonedPool();
    await append(pool, randomArray(7 * H * D, rand), randomArray(7 * H * Dv, rand), a.slots);
    cache.fork(1, 2);
    const b = cache.appendSlots(2, 1);
    if (!b.ok) throw new Error(b.reason);
    expect(b.copies.length).toBe(1);
    const { src, dst } = b.copies[0];
    expect(cache.blockTable(1)[1]).toBe(src);
    expect(cache.blockTable(2)[1]).toBe(dst);

    const pairs = await uploadBuffer(ctx, 'test.pairs', Uint32Array.from(b.copies.flatMap((c) => [c.src, c.dst])));
    const params = await uploadBuffer(ctx, 'test.params', new Uint32Array([b.copies.length, 0, 0, 0]), UNIFORM);
    for (const [buffer, dim] of [
      [pool.layers[0].kPages, D],
      [pool.layers[0].vPages, Dv],
    ] as const) {
      const copy = await CopyPages.create(ctx, pageBufferBytes(spec, dim));
      await ctx.validated('copyPages test', () => {
        const enc = ctx.device.createCommandEncoder();
        const pass = enc.beginComputePass();
        copy.encode(pass, copy.bind({ pairs, pages: buffer, params }), b.copies.length);
        pass.end();
        ctx.device.queue.submit([enc.finish()]);
      });
    }
    const newK = randomArray(H * D, rand);
    await append(pool, newK, randomArray(H * Dv, rand), b.slots);
    const kp = await readPages(pool.layers[0].kPages, kvDtype);
    const pageVals = (p: number) => kp.subarray(p * H * spec.pageSize * D, (p + 1) * H * spec.pageSize * D);
    const srcPage = pageVals(src);
    const dstPage = pageVals(dst);
    // Token offsets 0, 1 were copied; offset 2 of the copy holds the fork's new token; the
    // parent's page is untouched at offset 2 (still poison).
    for (let h = 0; h < H; h++) {
      for (let off = 0; off < 2; off++) {
        for (let d = 0; d < D; d++) {
          const i = (h * spec.pageSize + off) * D + d;
          expect(Number.isNaN(srcPage[i])).toBe(false);
          expect(dstPage[i]).toBe(srcPage[i]);
        }
      }
      for (let d = 0; d < D; d++) {
        const i = (h * spec.pageSize + 2) * D + d;
        expect(dstPage[i]).toBe(asStored(newK[h * D + d], kvDtype));
        expect(Number.isNaN(srcPage[i])).toBe(true);
      }
    }
    pairs.destroy();
    params.destroy();
    pool.destroy();
  });
});
