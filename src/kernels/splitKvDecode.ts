/**
 * splitKvDecode wrapper (Flash-Decoding): one query token per sequence, each sequence's KV range
 * split into chunks handled by separate workgroups; mergePartials combines the partials.
 *
 * Bind arguments: q, pages, step, work (WorkListArgs) and
 *   partialO   f32 [numSlots][numKvHeads * groupSize][headDimV]   unnormalised
 *   partialML  vec2<f32> [numSlots][numKvHeads * groupSize]       (running max m, sum l)
 * sized by partialBytes(plan.numSlots). Grid: (numWorkItems, numKvHeads).
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { Kernel, type Grid } from './kernel';
import type { PageTableMetadata } from './pageTable';
import {
  checkSpec,
  pagedConstants,
  WORK_ITEM_U32,
  workListBindings,
  isSplit,
  workItemsHeld,
  workListBuffers,
  type AttentionSpec,
  type WorkListArgs,
  type WorkPlan,
} from './pagedAttention';
import { kernelSource, kvPagesFormat, kvWord4Format } from './sources';
import { chooseDecodeTiles, type TileConfig } from './tiling';

/** Workgroups a decode step aims for: enough to fill a large GPU, few enough that merging is cheap. */
const TARGET_WORKGROUPS = 512;
/**
 * Smallest chunk of keys per workgroup (a multiple of BLOCK_N): v2 one 64-key tile, so batch-1
 * decode at 1K context with 8 KV heads launches 16 x 8 = 128 workgroups; v1 (the bench baseline) 128.
 */
const MIN_CHUNK = { 1: 128, 2: 64 } as const;

/** Which splitKvDecode: 2 (current), or 1, the previous kernel kept as the bench's baseline. */
export type SplitKvDecodeVersion = 1 | 2;

export interface SplitKvDecodeOptions {
  /** Default 2. */
  version?: SplitKvDecodeVersion;
  /** Share q through subgroup shuffles where the adapter has one fixed subgroup size (default true; v2 only). */
  subgroups?: boolean;
}

/**
 * The subgroup size when the adapter has `subgroups` and every subgroup has the same size
 * (lavapipe 8, SwiftShader 4, most GPUs 32 or 64), a power of two dividing the workgroup; else 0.
 */
export function fixedSubgroupSize(ctx: GpuContext): number {
  const info = ctx.adapterInfo as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const size = info.subgroupMinSize;
  if (!ctx.features.subgroups || !size || size !== info.subgroupMaxSize) return 0;
  return Number.isInteger(Math.log2(size)) && size <= 128 ? size : 0;
}

export interface DecodePlan extends WorkPlan {
  /** Slots (sequence, chunk) of sequence i: slotIndptr[i] .. slotIndptr[i+1]. */
  slotIndptr: Uint32Array;
  numSlots: number;
  chunkSize: number;
}

export interface SplitKvArgs extends WorkListArgs {
  partialO: GPUBuffer;
  partialML: GPUBuffer;
}

/** Bindings of every split-KV decode kernel: the work-list ones (split pools: 6 more) and the two partial outputs. */
const splitKvBindings = (spec: AttentionSpec) => ({ ...workListBindings(spec), partialO: 9, partialML: 10 });

/**
 * What every split-KV decode kernel shares (this one and mlaDecode): the work list of (sequence,
 * KV chunk, row tile) items, the partial (o, m, l) slots mergePartials combines, bind and grid.
 * A subclass only chooses its tiles and pipeline, and its smallest chunk.
 */
export abstract class SplitKvKernel extends Kernel<SplitKvArgs> {
  protected constructor(
    ctx: GpuContext,
    name: string,
    pipeline: GPUComputePipeline,
    readonly spec: AttentionSpec,
    readonly tiles: TileConfig,
    /** Smallest chunk of keys per workgroup (a multiple of BLOCK_N): each subclass's MIN_CHUNK. */
    private readonly minChunk: number,
  ) {
    super({ ctx, name, pipeline, bindings: splitKvBindings(spec), unit: 'work items' });
  }

  /**
   * Chunk size: the total KV work spread over about TARGET_WORKGROUPS workgroups, a multiple of
   * BLOCK_N, at least the kernel's smallest chunk. Worked example: batch 1 at 16384 keys, 8 KV heads,
   * one row tile: 16384 * 8 / 512 = 256 -> chunks of 256 keys, 64 slots, 64 * 8 = 512 workgroups.
   */
  plan(meta: PageTableMetadata): DecodePlan {
    const rowTiles = Math.ceil(this.spec.groupSize / this.tiles.blockM);
    let totalKv = 0;
    for (let i = 0; i < meta.numSeqs; i++) {
      if (meta.qLens[i] !== 1) {
        throw new ShapeError(`${this.name}: sequence ${i} has ${meta.qLens[i]} query tokens; decode takes exactly 1`);
      }
      totalKv += meta.kvLens[i];
    }
    const n = this.tiles.blockN;
    const ideal = Math.ceil((totalKv * this.spec.numKvHeads * rowTiles) / TARGET_WORKGROUPS);
    const chunkSize = Math.max(this.minChunk, Math.ceil(ideal / n) * n);
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
    const numWorkItems = work.length / WORK_ITEM_U32;
    if (numWorkItems > this.ctx.limits.maxComputeWorkgroupsPerDimension) {
      throw new ShapeError(`${this.name}: ${numWorkItems} work items exceed the dispatch limit`);
    }
    return { work, numWorkItems, slotIndptr, numSlots: slot, chunkSize };
  }

  /**
   * The most slots and work items plan() can return for numSeqs sequences of at most maxKvLen keys
   * each (chunks hold at least the smallest chunk), for callers that size their buffers once.
   * e.g. 16 sequences up to 4096 keys, one row tile, chunks >= 128: 16 * ceil(4096 / 128) = 512 slots and items.
   */
  maxPlan(numSeqs: number, maxKvLen: number): { slots: number; workItems: number } {
    const slots = numSeqs * Math.ceil(maxKvLen / this.minChunk);
    return { slots, workItems: slots * Math.ceil(this.spec.groupSize / this.tiles.blockM) };
  }

  /** Bytes of the partial buffers for `numSlots` slots: o [slots][H][Dv] f32 and (m, l) [slots][H]. */
  partialBytes(numSlots: number): { o: number; ml: number } {
    const h = this.spec.numKvHeads * this.spec.groupSize;
    return { o: numSlots * h * this.spec.headDimV * 4, ml: numSlots * h * 8 };
  }

  /** See the file header; capacity: the work items the work buffer holds. */
  bind(b: SplitKvArgs): GPUBindGroup {
    return this.bindGroup(
      { ...workListBuffers(this.spec, b), partialO: b.partialO, partialML: b.partialML },
      workItemsHeld(b.work),
    );
  }

  grid(numWorkItems: number): Grid {
    return [numWorkItems, this.spec.numKvHeads];
  }
}

/** Flash-Decoding for MHA / GQA / MQA: a workgroup owns a (sequence, chunk, KV head, row tile). */
export class SplitKvDecode extends SplitKvKernel {
  private constructor(
    ctx: GpuContext,
    pipeline: GPUComputePipeline,
    spec: AttentionSpec,
    tiles: TileConfig,
    readonly version: SplitKvDecodeVersion,
    /** The subgroup size q is shuffled across (0: plain loads). */
    readonly subgroupSize: number,
  ) {
    super(ctx, 'splitKvDecode', pipeline, spec, tiles, MIN_CHUNK[version]);
  }

  static async create(ctx: GpuContext, spec: AttentionSpec, opts: SplitKvDecodeOptions = {}): Promise<SplitKvDecode> {
    checkSpec(spec);
    const version = opts.version ?? 2;
    const sg = version === 1 || opts.subgroups === false ? 0 : fixedSubgroupSize(ctx);
    const sgSize = sg <= 64 ? sg : 0; // a subgroup within one 64-lane workgroup
    const tiles = chooseDecodeTiles(
      spec.groupSize,
      spec.headDimQK,
      spec.headDimV,
      ctx.limits.maxComputeWorkgroupStorageSize,
      sgSize,
    );
    const word = kvWord4Format(ctx, spec.kvDtype);
    const kv = kvPagesFormat(spec.kvDtype);
    const source =
      version === 1
        ? kernelSource('splitKvDecodeV1', { word, kv, split: isSplit(spec) })
        : kernelSource('splitKvDecode', { word, kv, subgroups: sgSize > 0, split: isSplit(spec) });
    const pipeline = await Kernel.compile(
      ctx,
      'splitKvDecode',
      source,
      {
        ...pagedConstants(spec),
        BLOCK_M: tiles.blockM,
        BLOCK_N: tiles.blockN,
        ACC_PER_THREAD: tiles.accPerThread,
        ...(version === 1 ? {} : { SG_SIZE: Math.max(1, sgSize), NUM_SG: sgSize > 1 ? tiles.blockN / sgSize : 1 }),
      },
      { workgroupBytes: tiles.workgroupBytes },
    );
    return new SplitKvDecode(ctx, pipeline, spec, tiles, version, sgSize);
  }
}
