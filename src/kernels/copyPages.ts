/**
 * copyPages wrapper: copy-on-write of whole pages inside one page buffer (K or V of one layer).
 * The same {src, dst} pairs are applied to every layer's K and V buffers: bind once per buffer.
 *
 * Bind arguments: pairs vec2<u32> [numPairs] (src page, dst page); pages u32 [numPages][pageWords];
 * params uniform { numPairs u32 }. Grid: numPairs * pageWords threads in workgroups of 64, folded into (x, y).
 * A split pool (pages across several buffers per layer): encodeSplitPageCopies below instead.
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { Kernel, type Grid, type KernelInit } from './kernel';
import { kernelSource } from './sources';

export interface CopyPagesArgs {
  pairs: GPUBuffer;
  pages: GPUBuffer;
  params: GPUBuffer;
}

export class CopyPages extends Kernel<CopyPagesArgs> {
  private constructor(
    init: KernelInit,
    readonly pageWords: number,
  ) {
    super(init);
  }

  /** pageBytes: bytes of one page in the buffers this instance will copy in (a multiple of 4). */
  static async create(ctx: GpuContext, pageBytes: number): Promise<CopyPages> {
    const pageWords = pageBytes / 4;
    const pipeline = await Kernel.compile(ctx, 'copyPages', kernelSource('copyPages'), { PAGE_WORDS: pageWords });
    const bindings = { pairs: 0, pages: 1, params: 2 };
    return new CopyPages({ ctx, name: 'copyPages', pipeline, bindings, unit: 'page pairs' }, pageWords);
  }

  /** Capacity: the pairs the pairs buffer holds. */
  bind(b: CopyPagesArgs): GPUBindGroup {
    return this.bindGroup({ ...b }, Math.floor(b.pairs.size / 8));
  }

  grid(numPairs: number): Grid {
    return this.grid1D(numPairs * this.pageWords, 64);
  }
}

/**
 * Copy-on-write in a split pool (AttentionSpec.pagesPerBuffer), where a pair may cross buffers: one
 * layer's K (or V) buffers `buffers` (buffer 0 first, as KvPool lays them out). `pairs` is
 * [src0, dst0, src1, dst1, ...], the same flat form as StepBatch.copies and the copyPages kernel's
 * pairs buffer. copyBufferToBuffer cannot copy within one buffer, so every page goes through
 * `scratch` (at least pairs.length / 2 pages,
 * COPY_SRC | COPY_DST): all sources first, then all destinations, so a page that is both a source and
 * a destination is read before it is overwritten. Encodes 2 copies per pair; no kernel, no allocation.
 * e.g. pagesPerBuffer 4, pages of 512 bytes, {src 2, dst 5}: buffer 0 bytes 1024.. -> scratch 0.. ->
 * buffer 1 bytes 512...
 */
export function encodeSplitPageCopies(
  encoder: GPUCommandEncoder,
  buffers: readonly GPUBuffer[],
  pagesPerBuffer: number,
  pageBytes: number,
  pairs: Uint32Array,
  scratch: GPUBuffer,
): void {
  const n = pairs.length / 2;
  if (scratch.size < n * pageBytes) {
    throw new ShapeError(`copyPages: scratch of ${scratch.size} bytes holds fewer than ${n} pages`);
  }
  const at = (page: number): [GPUBuffer, number] => {
    const b = buffers[Math.floor(page / pagesPerBuffer)];
    if (!b) throw new ShapeError(`copyPages: page ${page} is past the pool's ${buffers.length} buffers`);
    return [b, (page % pagesPerBuffer) * pageBytes];
  };
  for (let i = 0; i < n; i++) {
    const [b, off] = at(pairs[2 * i]);
    encoder.copyBufferToBuffer(b, off, scratch, i * pageBytes, pageBytes);
  }
  for (let i = 0; i < n; i++) {
    const [b, off] = at(pairs[2 * i + 1]);
    encoder.copyBufferToBuffer(scratch, i * pageBytes, b, off, pageBytes);
  }
}
