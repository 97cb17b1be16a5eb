/**
 * copyPages wrapper: copy-on-write of whole pages inside one page buffer (K or V of one layer).
 * The same {src, dst} pairs are applied to every layer's K and V buffers: bind once per buffer.
 */
import type { GpuContext } from '../gpu/context';
import { bindBuffers, grid1D } from '../gpu/buffers';
import { plainKernelSource } from './sources';

export class CopyPages {
  private constructor(
    private readonly ctx: GpuContext,
    readonly pageWords: number,
    readonly pipeline: GPUComputePipeline,
  ) {}

  /** pageBytes: bytes of one page in the buffers this instance will copy in (a multiple of 4). */
  static async create(ctx: GpuContext, pageBytes: number): Promise<CopyPages> {
    const pageWords = pageBytes / 4;
    const pipeline = await ctx.pipelines.get(plainKernelSource('copyPages'), { PAGE_WORDS: pageWords });
    return new CopyPages(ctx, pageWords, pipeline);
  }

  /** pairs: vec2<u32> [numPairs] (src page, dst page); params: uniform { numPairs u32 }. */
  bind(pairs: GPUBuffer, pages: GPUBuffer, params: GPUBuffer): GPUBindGroup {
    return bindBuffers(this.ctx, this.pipeline, 'copyPages.bindGroup', { 0: pairs, 1: pages, 2: params });
  }

  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, numPairs: number): void {
    if (numPairs === 0) return;
    const [x, y] = grid1D(this.ctx, numPairs * this.pageWords, 64);
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
  }
}
