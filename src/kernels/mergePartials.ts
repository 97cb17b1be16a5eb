/** mergePartials wrapper: log-sum-exp merge of splitKvDecode's partials into out and lse. */
import type { GpuContext } from '../gpu/context';
import { bindBuffers } from '../gpu/buffers';
import { plainKernelSource } from './sources';

export class MergePartials {
  private constructor(
    private readonly ctx: GpuContext,
    readonly numHeads: number,
    readonly pipeline: GPUComputePipeline,
  ) {}

  static async create(ctx: GpuContext, numHeads: number, headDimV: number): Promise<MergePartials> {
    const pipeline = await ctx.pipelines.get(plainKernelSource('mergePartials'), {
      NUM_HEADS: numHeads,
      HEAD_DIM_V: headDimV,
    });
    return new MergePartials(ctx, numHeads, pipeline);
  }

  bind(
    partialO: GPUBuffer,
    partialML: GPUBuffer,
    slotIndptr: GPUBuffer,
    qoIndptr: GPUBuffer,
    out: GPUBuffer,
    lse: GPUBuffer,
  ): GPUBindGroup {
    return bindBuffers(this.ctx, this.pipeline, 'mergePartials.bindGroup', {
      0: partialO,
      1: partialML,
      2: slotIndptr,
      3: qoIndptr,
      4: out,
      5: lse,
    });
  }

  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, numSeqs: number): void {
    if (numSeqs === 0) return;
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(numSeqs, this.numHeads);
  }
}
