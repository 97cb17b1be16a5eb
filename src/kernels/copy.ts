/** copy wrapper: the device bandwidth ceiling the decode benchmark compares against. */
import type { GpuContext } from '../gpu/context';
import { bindBuffers, grid1D } from '../gpu/buffers';
import { plainKernelSource } from './sources';

export class CopyKernel {
  private constructor(
    private readonly ctx: GpuContext,
    readonly pipeline: GPUComputePipeline,
  ) {}

  static async create(ctx: GpuContext): Promise<CopyKernel> {
    return new CopyKernel(ctx, await ctx.pipelines.get(plainKernelSource('copy'), {}));
  }

  /** params: uniform { numVec4 u32 }. */
  bind(src: GPUBuffer, dst: GPUBuffer, params: GPUBuffer): GPUBindGroup {
    return bindBuffers(this.ctx, this.pipeline, 'copy.bindGroup', { 0: src, 1: dst, 2: params });
  }

  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, numVec4: number): void {
    const [x, y] = grid1D(this.ctx, numVec4, 256);
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
  }
}
