/**
 * The GPU side of the paged cache: one K and one V page buffer per layer (MLA: one latent buffer,
 * bound as both), sized once at start-up and never grown or copied. Layout of each buffer:
 *   f32 / f16: Word4 [numPages][numKvHeads][pageSize][headDim / 4]
 *   q8 / q4:   per page, u32 codes [numKvHeads][pageSize][...] then the page's f16 scales
 *              (shaders/attention/kvPagesQ8.wgsl, kvPagesQ4.wgsl), so a page is one contiguous block
 * Bytes per page per layer (K + V) = kvPageBytes(K) + kvPageBytes(V) (src/gpu/dtype.ts); e.g. GQA with
 * 8 KV heads, d 128, page 16: f16 8 * 16 * 256 * 2 = 64 KiB, q8 2 * 16640 = 32.5 KiB, q4 2 * 9216 = 18 KiB.
 *
 * Splitting: each layer has its own buffers, so the pool as a whole can pass
 * maxStorageBufferBindingSize. A layer's K (or V) pages that pass one binding (maxPagesPerLayer) are
 * split across ceil(numPages / maxPagesPerLayer) <= 4 buffers of pagesPerBuffer pages each (the last
 * may be short): page p is local page p % pagesPerBuffer of buffer p / pagesPerBuffer, the page table
 * stays the CSR form, and the kernels made from `pool.spec` (which then carries pagesPerBuffer) pick
 * the buffer by page index (shaders/attention/kvPagesSplit.wgsl); kvAppend writes it one buffer per
 * dispatch. A pool that fits one binding is one buffer and `pool.spec` is the spec given, so its
 * kernels are today's.
 * e.g. binding limit 128 MiB, 8192 pages of 32 KiB (256 MiB): 2 buffers of 4096 pages.
 */
import type { GpuContext } from '../gpu/context';
import { STORAGE } from '../gpu/buffers';
import { OutOfMemoryError, ShapeError } from '../gpu/errors';
import { kvPageBytes } from '../gpu/dtype';
import { KV_SPLIT_MAX_BUFFERS, type AttentionSpec, type PagedKvBuffers } from './pagedAttention';

/** Storage buffers a split pool's kernels bind: flashPrefill's 10 and K / V buffers 1..3. */
const SPLIT_STORAGE_BUFFERS = 16;

export interface KvPoolSpec extends AttentionSpec {
  numLayers: number;
  numPages: number;
}

/**
 * Bytes of one page in one layer's K buffer (headDim = headDimQK) or V buffer (headDimV), scales
 * included; a multiple of 4 (copyPages copies u32 words).
 */
export function pageBufferBytes(spec: AttentionSpec, headDim: number): number {
  return kvPageBytes(spec.kvDtype, spec.numKvHeads * spec.pageSize, headDim);
}

export function maxPagesPerLayer(ctx: GpuContext, spec: AttentionSpec): number {
  const limit = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
  return Math.floor(limit / pageBufferBytes(spec, Math.max(spec.headDimQK, spec.headDimV)));
}

/**
 * The spec of the pool KvPool.create makes for `spec`: the same, or, where a layer's K (or V) pages
 * pass one binding, with pagesPerBuffer set (a split pool). Make the pool's kernels from it. Throws
 * a ShapeError, with the numbers, where more than 4 buffers per layer would be needed.
 */
export function kvPoolLayout<S extends AttentionSpec & { numPages: number }>(ctx: GpuContext, spec: S): S {
  const { pagesPerBuffer: _, ...base } = spec;
  const plain = base as S;
  const max = maxPagesPerLayer(ctx, plain);
  if (spec.numPages <= max) return plain;
  const pageBytes = pageBufferBytes(spec, Math.max(spec.headDimQK, spec.headDimV));
  const limit = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
  const buffers = Math.ceil(spec.numPages / Math.max(1, max));
  const what = `KV pool: ${spec.numPages} pages of ${pageBytes} bytes (${spec.numPages * pageBytes} bytes per layer)`;
  if (max < 1 || buffers > KV_SPLIT_MAX_BUFFERS) {
    throw new ShapeError(
      `${what} need ${max < 1 ? 'more than one binding per page' : `${buffers} buffers per layer`} of at most ` +
        `${limit} bytes (this adapter's storage binding limit); at most ${KV_SPLIT_MAX_BUFFERS} buffers of ` +
        `${max} pages, ${KV_SPLIT_MAX_BUFFERS * max} pages per layer`,
    );
  }
  if (ctx.limits.maxStorageBuffersPerShaderStage < SPLIT_STORAGE_BUFFERS) {
    throw new ShapeError(
      `${what} pass one binding (${limit} bytes), and a split pool's kernels bind ${SPLIT_STORAGE_BUFFERS} ` +
        `storage buffers; this device allows ${ctx.limits.maxStorageBuffersPerShaderStage}. ` +
        `At most ${max} pages per layer`,
    );
  }
  return { ...plain, pagesPerBuffer: Math.ceil(spec.numPages / buffers) };
}

export class KvPool {
  private constructor(
    /** The spec to make this pool's kernels from: pagesPerBuffer is set where the pool is split. */
    readonly spec: KvPoolSpec,
    readonly layers: PagedKvBuffers[],
  ) {}

  /** Buffers per layer for K (and for V): 1, or 2..4 for a split pool. */
  get buffersPerLayer(): number {
    const ppb = this.spec.pagesPerBuffer;
    return ppb ? Math.ceil(this.spec.numPages / ppb) : 1;
  }

  static async create(ctx: GpuContext, given: KvPoolSpec): Promise<KvPool> {
    const spec = kvPoolLayout(ctx, given);
    const ppb = spec.pagesPerBuffer ?? spec.numPages;
    const counts: number[] = []; // pages of each buffer of a layer
    for (let p = 0; p < spec.numPages; p += ppb) counts.push(Math.min(ppb, spec.numPages - p));
    const made: GPUBuffer[] = [];
    const buffers = async (kind: string, l: number, headDim: number): Promise<GPUBuffer[]> => {
      const out: GPUBuffer[] = [];
      for (let b = 0; b < counts.length; b++) {
        const label = counts.length > 1 ? `kvPool.${kind}.${l}.${b}` : `kvPool.${kind}.${l}`;
        out.push(await ctx.createBuffer(label, counts[b] * pageBufferBytes(spec, headDim), STORAGE));
        made.push(out[b]);
      }
      return out;
    };
    // Buffers 1..3 of a split layer; the slots past its last buffer repeat buffer 0 (never touched).
    const more = (bs: GPUBuffer[]) => [1, 2, 3].map((b) => bs[b] ?? bs[0]);
    const layers: PagedKvBuffers[] = [];
    try {
      for (let l = 0; l < spec.numLayers; l++) {
        const k = await buffers('k', l, spec.headDimQK);
        // MLA: V is read from the latent rows of the K buffer; nothing is stored twice.
        const v = spec.vAliasesK ? k : await buffers('v', l, spec.headDimV);
        layers.push(
          counts.length > 1
            ? { kPages: k[0], vPages: v[0], kMore: more(k), vMore: more(v) }
            : {
                kPages: k[0],
                vPages: v[0],
              },
        );
      }
    } catch (e) {
      for (const b of made) b.destroy();
      if (e instanceof OutOfMemoryError) {
        const total = new KvPool(spec, []).totalBytes;
        throw new OutOfMemoryError(
          `KV pool: ${spec.numLayers} layers x ${spec.numPages} pages = ${total} bytes do not fit this GPU's ` +
            `memory (${e.message})`,
        );
      }
      throw e;
    }
    return new KvPool(spec, layers);
  }

  get totalBytes(): number {
    const v = this.spec.vAliasesK ? 0 : pageBufferBytes(this.spec, this.spec.headDimV);
    return this.spec.numLayers * this.spec.numPages * (pageBufferBytes(this.spec, this.spec.headDimQK) + v);
  }

  destroy(): void {
    for (const l of this.layers) {
      for (const b of [l.kPages, l.vPages, ...(l.kMore ?? []), ...(l.vMore ?? [])]) b.destroy(); // twice is harmless
    }
  }
}
