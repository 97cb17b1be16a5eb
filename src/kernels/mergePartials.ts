/**
 * mergePartials wrapper: log-sum-exp merge of a split-KV decode's partials into out and lse.
 *
 * Bind arguments:
 *   partialO    f32 [numSlots][numHeads][headDimV]   from splitKvDecode / mlaDecode
 *   partialML   vec2<f32> [numSlots][numHeads]
 *   slotIndptr  u32 [numSeqs + 1]   from the decode plan
 *   qoIndptr    u32 [numSeqs + 1]   the step's page table
 *   out         f32 [numQ][numHeads][headDimV];  lse f32 [numQ][numHeads]
 * Grid: (numSeqs, numHeads).
 */
import type { GpuContext } from '../gpu/context';
import { Kernel, type Grid, type KernelInit } from './kernel';
import { kernelSource } from './sources';

export interface MergePartialsArgs {
  partialO: GPUBuffer;
  partialML: GPUBuffer;
  slotIndptr: GPUBuffer;
  qoIndptr: GPUBuffer;
  out: GPUBuffer;
  lse: GPUBuffer;
}

const BINDINGS = { partialO: 0, partialML: 1, slotIndptr: 2, qoIndptr: 3, out: 4, lse: 5 };

export class MergePartials extends Kernel<MergePartialsArgs> {
  private constructor(
    init: KernelInit,
    readonly numHeads: number,
  ) {
    super(init);
  }

  static async create(ctx: GpuContext, numHeads: number, headDimV: number): Promise<MergePartials> {
    const pipeline = await Kernel.compile(ctx, 'mergePartials', kernelSource('mergePartials'), {
      NUM_HEADS: numHeads,
      HEAD_DIM_V: headDimV,
    });
    return new MergePartials({ ctx, name: 'mergePartials', pipeline, bindings: BINDINGS, unit: 'sequences' }, numHeads);
  }

  /** Capacity: the sequences slotIndptr describes. */
  bind(b: MergePartialsArgs): GPUBindGroup {
    return this.bindGroup({ ...b }, Math.floor(b.slotIndptr.size / 4) - 1);
  }

  grid(numSeqs: number): Grid {
    return [numSeqs, this.numHeads];
  }
}
