/**
 * copy wrapper: the device bandwidth ceiling the decode benchmark compares against.
 * Bind arguments: src, dst vec4<f32> [numVec4]; params uniform { numVec4 u32 }.
 * Grid: numVec4 / 256 workgroups, folded into (x, y).
 */
import type { GpuContext } from '../gpu/context';
import { Kernel, type Grid } from './kernel';
import { kernelSource } from './sources';

export interface CopyArgs {
  src: GPUBuffer;
  dst: GPUBuffer;
  params: GPUBuffer;
}

export class CopyKernel extends Kernel<CopyArgs> {
  static async create(ctx: GpuContext): Promise<CopyKernel> {
    const pipeline = await Kernel.compile(ctx, 'copy', kernelSource('copy'), {}, { invocations: 256 });
    return new CopyKernel({ ctx, name: 'copy', pipeline, bindings: { src: 0, dst: 1, params: 2 }, unit: 'vec4s' });
  }

  /** Capacity: the vec4s both buffers hold. */
  bind(b: CopyArgs): GPUBindGroup {
    return this.bindGroup({ ...b }, Math.floor(Math.min(b.src.size, b.dst.size) / 16));
  }

  grid(numVec4: number): Grid {
    return this.grid1D(numVec4, 256);
  }
}
