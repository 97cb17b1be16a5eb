/**
 * q8 / q4 KV pages (issue 17): kvAppend quantises each row where the page layout of
 * shaders/attention/kvPagesQ8.wgsl / kvPagesQ4.wgsl says (codes, then the page's f16 scales), the same
 * way as the float64 twin (quantizeKvRows), leaves other slots untouched; copyPages (copy-on-write)
 * and fork move quantised pages whole, scales included; a NaN / Inf input makes its scale group NaN.
 * Pages are read back and decoded on the host.
 */
import { describe, expect, it } from 'vitest';
import { kvScalesPerRow, type KvQuantDtype } from '../../src/gpu/dtype';
import { readBuffer, UNIFORM, uploadBuffer, writeBuffer } from '../../src/gpu/buffers';
import { KvAppend } from '../../src/kernels/kvAppend';
import { CopyPages } from '../../src/kernels/copyPages';
import type { AttentionSpec } from '../../src/kernels/pagedAttention';
import { KvCacheManager } from '../../src/kv/kvCacheManager';
import { KvPool, pageBufferBytes } from '../../src/kernels/kvPool';
import { quantizeKvRows } from '../../src/reference/attention';
import { f16BitsToF32 } from '../../src/sources/halfFloat';
import { gpu, randomArray, rng } from './harness';

/** The codes and scales of row r (0 .. numPages * rows) of a q8 / q4 page buffer, per the WGSL layout. */
function decodeRow(bytes: Uint8Array, dtype: KvQuantDtype, rows: number, values: number, pageBytes: number) {
  const codeBytes = dtype === 'q8' ? values : values / 2;
  const groups = kvScalesPerRow(dtype, values);
  return (pageRow: number) => {
    const page = Math.floor(pageRow / rows);
    const r = pageRow % rows;
    const base = page * pageBytes;
    const codes: number[] = [];
    for (let j = 0; j < values; j++) {
      const b = bytes[base + r * codeBytes + (dtype === 'q8' ? j : j >> 1)];
      codes.push(dtype === 'q8' ? (b << 24) >> 24 : ((j & 1 ? b >> 4 : b) & 15) - 8);
    }
    const scaleBits: number[] = [];
    for (let g = 0; g < groups; g++) {
      const o = base + rows * codeBytes + 2 * (r * groups + g);
      scaleBits.push(bytes[o] | (bytes[o + 1] << 8));
    }
    return { codes, scaleBits };
  };
}

describe.each(['q8', 'q4'] as const)('paged KV pool on quantised pages [%s]', (kvDtype) => {
  // d 40 = 32 + 8: q4 has a short last scale group. Pages of 2 heads x 5 slots: two scales share a
  // u32 word across heads and tokens, so a lost half would show.
  const spec: AttentionSpec = { numKvHeads: 2, groupSize: 1, headDimQK: 40, headDimV: 8, pageSize: 5, kvDtype };
  const numPages = 6;
  const rows = spec.numKvHeads * spec.pageSize;

  async function poisonedPool() {
    const ctx = await gpu();
    const pool = await KvPool.create(ctx, { ...spec, numLayers: 1, numPages });
    writeBuffer(ctx, pool.layers[0].kPages, new Uint8Array(pool.layers[0].kPages.size).fill(0xff));
    writeBuffer(ctx, pool.layers[0].vPages, new Uint8Array(pool.layers[0].vPages.size).fill(0xff));
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

  async function readRows(buffer: GPUBuffer, values: number) {
    const bytes = new Uint8Array(await readBuffer(await gpu(), buffer));
    return decodeRow(bytes, kvDtype, rows, values, pageBufferBytes(spec, values));
  }

  /** Row (t, h) of x as the twin quantises it. */
  function twinRow(x: Float32Array, values: number, t: number, h: number) {
    const q = quantizeKvRows(x.subarray((t * 2 + h) * values, (t * 2 + h + 1) * values), values, kvDtype);
    return { codes: Array.from(q.codes), scales: Array.from(q.scales) };
  }

  function expectRow(got: { codes: number[]; scaleBits: number[] }, want: ReturnType<typeof twinRow>, what: string) {
    expect(got.scaleBits.map(f16BitsToF32), `${what} scales`).toEqual(want.scales);
    // A code may differ by one where x / scale sits on a rounding edge (the GPU's f32 division is not
    // exactly rounded); with random data that is rare, so allow one per row.
    const off = got.codes.filter((c, j) => c !== want.codes[j]);
    expect(off.length, `${what} codes ${got.codes} vs ${want.codes}`).toBeLessThanOrEqual(1);
    got.codes.forEach((c, j) => expect(Math.abs(c - want.codes[j]), `${what} code ${j}`).toBeLessThanOrEqual(1));
  }

  it('kvAppend quantises rows into codes then scales per page, as the twin does, and skips slot -1', async () => {
    const rand = rng((Math.random() * 2 ** 32) >>> 0);
    const slots = Int32Array.from([7, 0, 29, -1, 12, 13, 4, 25, 8]); // pages 1, 0, 5, -, 2, 2, 0, 5, 1
    const { numKvHeads: H, headDimQK: D, headDimV: Dv, pageSize: P } = spec;
    const k = randomArray(slots.length * H * D, rand, 3);
    const v = randomArray(slots.length * H * Dv, rand);
    k.fill(0, 2 * H * D, 2 * H * D + D); // an all-zero row: scale 0, codes 0
    const pool = await poisonedPool();
    await append(pool, k, v, slots);
    const kRow = await readRows(pool.layers[0].kPages, D);
    const vRow = await readRows(pool.layers[0].vPages, Dv);
    const written = new Set<number>();
    slots.forEach((slot, t) => {
      if (slot < 0) return;
      for (let h = 0; h < H; h++) {
        const row = Math.floor(slot / P) * rows + h * P + (slot % P); // slot 7, head 1 -> 10 + 5 + 2 = 17
        expectRow(kRow(row), twinRow(k, D, t, h), `K slot ${slot} head ${h}`);
        expectRow(vRow(row), twinRow(v, Dv, t, h), `V slot ${slot} head ${h}`);
        written.add(row);
      }
    });
    expect(twinRow(k, D, 2, 0).scales.every((s) => s === 0)).toBe(true);
    // Every other row still holds the poison: codes of 0xff bytes, scale bits 0xffff.
    for (let row = 0; row < numPages * rows; row++) {
      if (written.has(row)) continue;
      expect(
        kRow(row).scaleBits.every((b) => b === 0xffff),
        `row ${row} scales untouched`,
      ).toBe(true);
      expect(new Set(kRow(row).codes).size, `row ${row} codes untouched`).toBe(1);
    }
    pool.destroy();
  });

  it('a NaN or Inf input makes its scale group the f16 NaN (0x7e00) with codes 0, as the twin', async () => {
    const rand = rng((Math.random() * 2 ** 32) >>> 0);
    const slots = Int32Array.from([3, 11, 17]);
    const { numKvHeads: H, headDimQK: D, headDimV: Dv, pageSize: P } = spec;
    const k = randomArray(slots.length * H * D, rand, 3);
    const v = randomArray(slots.length * H * Dv, rand);
    k[(0 * H + 0) * D + 35] = Number.NaN; // token 0, head 0: q8 the whole row, q4 its group 1
    k[(1 * H + 1) * D + 3] = Number.POSITIVE_INFINITY; // token 1, head 1: q4 its group 0
    v[(2 * H + 0) * Dv + 5] = Number.NEGATIVE_INFINITY;
    const pool = await poisonedPool();
    await append(pool, k, v, slots);
    const kRow = await readRows(pool.layers[0].kPages, D);
    const vRow = await readRows(pool.layers[0].vPages, Dv);
    slots.forEach((slot, t) => {
      for (let h = 0; h < H; h++) {
        const row = Math.floor(slot / P) * rows + h * P + (slot % P);
        expectRow(kRow(row), twinRow(k, D, t, h), `K slot ${slot} head ${h}`);
        expectRow(vRow(row), twinRow(v, Dv, t, h), `V slot ${slot} head ${h}`);
      }
    });
    const kBits = (t: number, h: number) => kRow(Math.floor(slots[t] / P) * rows + h * P + (slots[t] % P)).scaleBits;
    expect(kBits(0, 0)).toEqual(kvDtype === 'q8' ? [0x7e00] : [kBits(0, 0)[0], 0x7e00]);
    expect(kBits(1, 1)[0]).toBe(0x7e00);
    if (kvDtype === 'q4') expect(kBits(1, 1)[1]).not.toBe(0x7e00);
    pool.destroy();
  });

  it('copy-on-write and fork: a fork writing into a shared partial quantised page gets its own copy', async () => {
    const ctx = await gpu();
    const rand = rng((Math.random() * 2 ** 32) >>> 0);
    const { numKvHeads: H, headDimQK: D, headDimV: Dv, pageSize: P } = spec;
    const cache = new KvCacheManager({ numPages, pageSize: P, enablePrefixCache: false });
    cache.addSequence(1);
    const a = cache.appendSlots(1, 7); // pages: one full, one with 2 of 5 tokens
    if (!a.ok) throw new Error(a.reason);
    const pool = await poisonedPool();
    const k0 = randomArray(7 * H * D, rand);
    await append(pool, k0, randomArray(7 * H * Dv, rand), a.slots);
    cache.fork(1, 2);
    const b = cache.appendSlots(2, 1);
    if (!b.ok) throw new Error(b.reason);
    expect(b.copies.length).toBe(1);
    const { src, dst } = b.copies[0];
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
    const kRow = await readRows(pool.layers[0].kPages, D);
    for (let h = 0; h < H; h++) {
      // Offsets 0, 1 (tokens 5, 6) were copied, codes and scales; offset 2 of the copy holds the
      // fork's token; the parent's page is untouched there (poison).
      for (let off = 0; off < 2; off++) {
        expect(kRow(dst * rows + h * P + off)).toEqual(kRow(src * rows + h * P + off));
        expectRow(kRow(src * rows + h * P + off), twinRow(k0, D, 5 + off, h), `parent token ${5 + off}`);
      }
      expectRow(kRow(dst * rows + h * P + 2), twinRow(newK, D, 0, h), `fork token head ${h}`);
      expect(kRow(src * rows + h * P + 2).scaleBits.every((x) => x === 0xffff)).toBe(true);
    }
    pairs.destroy();
    params.destroy();
    pool.destroy();
  });
});
