/**
 * copyPages wrapper: copy-on-write of whole pages inside one page buffer (K or V of one layer).
 * The same {src, dst} pairs are applied to every layer's K and V buffers: bind once per buffer.
 *
 * Bind arguments: pairs vec2<u32> [numPairs] (src page, dst page); pages u32 [numPages][pageWords];
 * params uniform { numPairs u32 }. Grid: numPairs * pageWords threads in workgroups of 64, folded into (x, y).
 */
import type { GpuContext } from '../gpu/context';
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
