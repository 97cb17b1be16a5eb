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
 * maxStorageBufferBindingSize; a single layer's K (or V) buffer must fit one binding, and
 * maxPagesPerLayer() says how many pages that allows.
 */
import type { GpuContext } from '../gpu/context';
import { STORAGE } from '../gpu/buffers';
import { ShapeError } from '../gpu/errors';
import { kvPageBytes } from '../gpu/dtype';
import type { AttentionSpec, PagedKvBuffers } from './pagedAttention';

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

export class KvPool {
  private constructor(
    readonly spec: KvPoolSpec,
    readonly layers: PagedKvBuffers[],
  ) {}

  static async create(ctx: GpuContext, spec: KvPoolSpec): Promise<KvPool> {
    const max = maxPagesPerLayer(ctx, spec);
    if (spec.numPages > max) {
      throw new ShapeError(
        `KV pool: ${spec.numPages} pages of ${pageBufferBytes(spec, Math.max(spec.headDimQK, spec.headDimV))} bytes ` +
          `pass this adapter's storage binding limit; at most ${max} pages per layer`,
      );
    }
    const layers: PagedKvBuffers[] = [];
    try {
      for (let l = 0; l < spec.numLayers; l++) {
        const kPages = await ctx.createBuffer(
          `kvPool.k.${l}`,
          spec.numPages * pageBufferBytes(spec, spec.headDimQK),
          STORAGE,
        );
        // MLA: V is read from the latent rows of the K buffer; nothing is stored twice.
        const vPages = spec.vAliasesK
          ? kPages
          : await ctx.createBuffer(`kvPool.v.${l}`, spec.numPages * pageBufferBytes(spec, spec.headDimV), STORAGE);
        layers.push({ kPages, vPages });
      }
    } catch (e) {
      for (const l of layers) {
        l.kPages.destroy();
        l.vPages.destroy();
      } // destroy() twice is harmless
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
      l.kPages.destroy();
      l.vPages.destroy();
    }
  }
}
