/**
 * mlaDecode wrapper: split-KV decode for absorbed MLA (one latent row per token, V = its first
 * d_c values), a head block of 16 heads (up to 32) per workgroup so the latent cache is read
 * H / BLOCK_M times per step instead of H / 4 (shaders/attention/mlaDecode.wgsl says why).
 * Same plan / partialBytes / bind / encode as SplitKvDecode and the same partial layout, so
 * mergePartials combines its chunks and a caller swaps one for the other by `spec.vAliasesK`.
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import type { PageTableMetadata } from '../kv/pageTable';
import { bindWorkListKernel, checkSpec, encodeWorkListKernel, pagedConstants, WORK_ITEM_U32, type AttentionSpec, type PagedKvBuffers, type StepBuffers } from './pagedAttention';
import type { DecodePlan } from './splitKvDecode';
import { kvStorage, mlaDecodeSource } from './sources';
import { chooseMlaDecodeTiles, type TileConfig } from './tiling';

/** Workgroups a decode step aims for: enough to fill a large GPU, few enough that merging is cheap. */
const TARGET_WORKGROUPS = 512;
/** Smallest chunk of keys per workgroup (a multiple of BLOCK_N). */
const MIN_CHUNK = 256;

export interface MlaDecodeOptions {
  /** Most heads per workgroup (a power of two <= 32; default 16). */
  maxHeadsPerWorkgroup?: number;
  /** Use subgroup shuffles where the adapter has them at one fixed size (default true). */
  subgroups?: boolean;
}

/**
 * The subgroup size when the adapter has `subgroups` and every subgroup has the same size
 * (lavapipe 8, SwiftShader 4, most GPUs 32 or 64), a power of two dividing the workgroup; else 0.
 */
function fixedSubgroupSize(ctx: GpuContext): number {
  const info = ctx.adapterInfo as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const size = info.subgroupMinSize;
  if (!ctx.features.subgroups || !size || size !== info.subgroupMaxSize) return 0;
  return Number.isInteger(Math.log2(size)) && size <= 128 ? size : 0;
}

export class MlaDecode {
  private constructor(
    private readonly ctx: GpuContext,
    readonly spec: AttentionSpec,
    readonly tiles: TileConfig,
    readonly pipeline: GPUComputePipeline,
  ) {}

  static async create(ctx: GpuContext, spec: AttentionSpec, opts: MlaDecodeOptions = {}): Promise<MlaDecode> {
    checkSpec(spec);
    if (!spec.vAliasesK || spec.numKvHeads !== 1) {
      throw new ShapeError(`mlaDecode: needs an MLA spec (vAliasesK, numKvHeads 1); got numKvHeads ${spec.numKvHeads}, vAliasesK ${spec.vAliasesK}`);
    }
    const tiles = chooseMlaDecodeTiles(spec.groupSize, spec.headDimV, ctx.limits.maxComputeWorkgroupStorageSize, opts.maxHeadsPerWorkgroup);
    if (tiles.workgroupSize > ctx.limits.maxComputeInvocationsPerWorkgroup) {
      throw new ShapeError(`mlaDecode: needs ${tiles.workgroupSize} invocations per workgroup; this adapter allows ${ctx.limits.maxComputeInvocationsPerWorkgroup}`);
    }
    const sgSize = opts.subgroups === false ? 0 : fixedSubgroupSize(ctx);
    // f16 pages are read through the packed snippet even where `shader-f16` exists: the bytes are
    // the same, and on lavapipe a vec2<u32> load is 2 per-lane loads where a vec4<f16> is 4.
    const storage = kvStorage(ctx, spec.kvDtype) === 'f32' ? 'f32' : 'f16packed';
    const pipeline = await ctx.pipelines.get(mlaDecodeSource(storage, sgSize > 0), {
      ...pagedConstants(spec),
      BLOCK_M: tiles.blockM,
      BLOCK_N: tiles.blockN,
      ACC_PER_THREAD: tiles.accPerThread,
      SG_SIZE: Math.max(1, sgSize),
    });
    return new MlaDecode(ctx, spec, tiles, pipeline);
  }

  /**
   * Chunk size: the total KV work (keys x head blocks) spread over about TARGET_WORKGROUPS
   * workgroups, a multiple of BLOCK_N, at least MIN_CHUNK. Worked example: batch 1 at 16384 keys,
   * H 128 in 8 head blocks: 16384 * 8 / 512 = 256 -> 64 slots x 8 = 512 workgroups.
   */
  plan(meta: PageTableMetadata): DecodePlan {
    const headBlocks = Math.ceil(this.spec.groupSize / this.tiles.blockM);
    let totalKv = 0;
    for (let i = 0; i < meta.numSeqs; i++) {
      if (meta.qLens[i] !== 1) {
        throw new ShapeError(`mlaDecode: sequence ${i} has ${meta.qLens[i]} query tokens; decode takes exactly 1`);
      }
      totalKv += meta.kvLens[i];
    }
    const n = this.tiles.blockN;
    const ideal = Math.ceil((totalKv * headBlocks) / TARGET_WORKGROUPS);
    const chunkSize = Math.max(MIN_CHUNK, Math.ceil(ideal / n) * n);
    const items: number[] = [];
    const slotIndptr = new Uint32Array(meta.numSeqs + 1);
    let slot = 0;
    for (let i = 0; i < meta.numSeqs; i++) {
      for (let start = 0; start < meta.kvLens[i]; start += chunkSize, slot++) {
        const end = Math.min(meta.kvLens[i], start + chunkSize);
        for (let r = 0; r < this.spec.groupSize; r += this.tiles.blockM) items.push(i, r, start, end, slot);
      }
      slotIndptr[i + 1] = slot;
    }
    const work = new Uint32Array(items);
    if (work.length / WORK_ITEM_U32 > this.ctx.limits.maxComputeWorkgroupsPerDimension) {
      throw new ShapeError(`mlaDecode: ${work.length / WORK_ITEM_U32} work items exceed the dispatch limit`);
    }
    return { work, slotIndptr, numSlots: slot, chunkSize };
  }

  /**
   * The most slots and work items plan() can return for numSeqs sequences of at most maxKvLen keys
   * each (chunks hold >= MIN_CHUNK keys), for callers that size their buffers once (as SplitKvDecode).
   */
  maxPlan(numSeqs: number, maxKvLen: number): { slots: number; workItems: number } {
    const slots = numSeqs * Math.ceil(maxKvLen / MIN_CHUNK);
    return { slots, workItems: slots * Math.ceil(this.spec.groupSize / this.tiles.blockM) };
  }

  /** Bytes of the partial buffers for `numSlots` slots: o [slots][H][Dv] f32 and (m, l) [slots][H]. */
  partialBytes(numSlots: number): { o: number; ml: number } {
    const h = this.spec.groupSize;
    return { o: numSlots * h * this.spec.headDimV * 4, ml: numSlots * h * 8 };
  }

  /** kv.vPages must be kv.kPages (the latent rows); q [numSeqs][H][d_c + d_rope] f32. */
  bind(
    q: GPUBuffer,
    kv: PagedKvBuffers,
    step: StepBuffers,
    work: GPUBuffer,
    partialO: GPUBuffer,
    partialML: GPUBuffer,
  ): GPUBindGroup {
    return bindWorkListKernel(this.ctx, this.pipeline, 'mlaDecode.bindGroup', q, kv, step, work, partialO, partialML);
  }

  /** One workgroup per work item (sequence, chunk, head block). */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, numWorkItems: number): void {
    encodeWorkListKernel(pass, this.pipeline, bindGroup, numWorkItems, 1);
  }
}
