/**
 * flashPrefill wrapper: FlashAttention-2 over the paged cache for a ragged batch of query chunks.
 * Specialise once (create), plan the work list once per step (planWork), bind once per set of
 * buffers (bind), encode per layer (encode). Never submits.
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import type { PageTableMetadata } from '../kv/pageTable';
import { bindWorkListKernel, checkSpec, encodeWorkListKernel, pagedConstants, WORK_ITEM_U32, type AttentionSpec, type PagedKvBuffers, type StepBuffers } from './pagedAttention';
import { kvStorage, pagedKernelSource } from './sources';
import { chooseTiles, type TileConfig } from './tiling';

export class FlashPrefill {
  private constructor(
    private readonly ctx: GpuContext,
    readonly spec: AttentionSpec,
    readonly tiles: TileConfig,
    readonly pipeline: GPUComputePipeline,
  ) {}

  static async create(ctx: GpuContext, spec: AttentionSpec): Promise<FlashPrefill> {
    checkSpec(spec);
    const tiles = chooseTiles(
      spec.headDimQK,
      spec.headDimV,
      ctx.limits.maxComputeWorkgroupStorageSize,
      ctx.limits.maxComputeInvocationsPerWorkgroup,
    );
    const pipeline = await ctx.pipelines.get(pagedKernelSource('flashPrefill', kvStorage(ctx, spec.kvDtype)), {
      ...pagedConstants(spec),
      BLOCK_M: tiles.blockM,
      BLOCK_N: tiles.blockN,
      WORKGROUP_SIZE: tiles.workgroupSize,
      ACC_PER_THREAD: tiles.accPerThread,
    });
    return new FlashPrefill(ctx, spec, tiles, pipeline);
  }

  /**
   * Work list: one item per BLOCK_M-row tile of every sequence (rows = qLen * groupSize).
   * e.g. qLens [5, 1], groupSize 4, BLOCK_M 16: seq 0 has 20 rows -> tiles at rows 0, 16; seq 1 -> 0.
   */
  planWork(meta: PageTableMetadata): Uint32Array {
    const items: number[] = [];
    for (let i = 0; i < meta.numSeqs; i++) {
      const rows = meta.qLens[i] * this.spec.groupSize;
      for (let r = 0; r < rows; r += this.tiles.blockM) items.push(i, r, 0, meta.kvLens[i], 0);
    }
    const n = items.length / WORK_ITEM_U32;
    if (n > this.ctx.limits.maxComputeWorkgroupsPerDimension) {
      throw new ShapeError(`flashPrefill: ${n} row tiles exceed the dispatch limit; split the step into smaller prefill chunks`);
    }
    return new Uint32Array(items);
  }

  bind(
    q: GPUBuffer,
    kv: PagedKvBuffers,
    step: StepBuffers,
    work: GPUBuffer,
    out: GPUBuffer,
    lse: GPUBuffer,
  ): GPUBindGroup {
    return bindWorkListKernel(this.ctx, this.pipeline, 'flashPrefill.bindGroup', q, kv, step, work, out, lse);
  }

  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, numWorkItems: number): void {
    encodeWorkListKernel(pass, this.pipeline, bindGroup, numWorkItems, this.spec.numKvHeads);
  }
}

