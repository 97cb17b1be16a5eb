/**
 * splitKvDecode wrapper (Flash-Decoding): each sequence's KV range split into chunks handled by
 * separate workgroups; mergePartials combines the partials. Takes one query token per sequence, and
 * (v3) up to DECODE_MAX_QUERY_TOKENS (speculative verification, chunked-prefill tails: see
 * decodeTakes in pagedAttention.ts for the routing).
 *
 * Bind arguments: q, pages, step, work (WorkListArgs) and
 *   partialO   f32 [numSlots][numKvHeads * groupSize][headDimV]   unnormalised
 *   partialML  vec2<f32> [numSlots][numKvHeads * groupSize]       (running max m, sum l)
 * sized by partialBytes(plan.numSlots); a sequence's slots are [chunk][query token].
 * Grid: (numWorkItems, numKvHeads).
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { Kernel, type Grid } from './kernel';
import type { PageTableMetadata } from './pageTable';
import {
  checkSpec,
  DECODE_MAX_QUERY_TOKENS,
  decodeTakes,
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
import { chooseDecodeTiles, chooseSplitKvTiles, type TileConfig } from './tiling';
import { isSoftwareAdapter } from './adapterKind';

/** Workgroups a decode step aims for: enough to fill a large GPU, few enough that merging is cheap. */
const TARGET_WORKGROUPS = 512;
/**
 * Smallest chunk of keys per workgroup (a multiple of BLOCK_N): v3 and v2 one 64-key tile, so batch-1
 * decode at 1K context with 8 KV heads launches 16 x 8 = 128 workgroups (and 512 from 4K on); v1 (the
 * bench baseline) 128.
 */
const MIN_CHUNK = { 1: 128, 2: 64, 3: 64 } as const;

/**
 * Which splitKvDecode: 3 (current; needs one fixed subgroup size), 2 (the previous one, and what runs
 * where v3 cannot), 1 (the one before). Both old ones stay as the bench's baselines (the ladder).
 */
export type SplitKvDecodeVersion = 1 | 2 | 3;

export interface SplitKvDecodeOptions {
  /** Default: 3 where the adapter has one fixed subgroup size its tiles fit, else 2. */
  version?: SplitKvDecodeVersion;
  /** Use subgroups where the adapter has one fixed size (default true; false: v2's plain lane path). */
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

/** What a caller's buffers hold: partial slots (partialBytes) and work items (the work buffer). */
export interface DecodeCapacity {
  slots: number;
  workItems: number;
}

/**
 * What every split-KV decode kernel shares (this one and mlaDecode): the work list of (sequence,
 * KV chunk, row tile) items, the partial (o, m, l) slots mergePartials combines, bind and grid.
 * A subclass only chooses its tiles and pipeline, its smallest chunk and how many query tokens per
 * sequence it takes.
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
    /** Most query tokens per sequence the kernel takes (rows = tokens x group size): 1 = decode only. */
    readonly maxQueryTokens = 1,
  ) {
    super({ ctx, name, pipeline, bindings: splitKvBindings(spec), unit: 'work items' });
  }

  /**
   * Can this kernel run the step: every sequence has 1..maxQueryTokens query tokens (decodeTakes),
   * and, with `capacity`, its plan fits the caller's partial slots and work buffer at the largest
   * chunk (one chunk per sequence: a slot per query token).
   */
  takes(meta: PageTableMetadata, capacity?: DecodeCapacity): boolean {
    if (!decodeTakes(meta.qLens, this.maxQueryTokens)) return false;
    const fewest = this.count(meta, Math.max(this.minChunk, ...meta.kvLens));
    const limit = this.ctx.limits.maxComputeWorkgroupsPerDimension;
    return fewest.workItems <= limit && (!capacity || fits(fewest, capacity));
  }

  /**
   * Chunk size: the total KV work (keys x row tiles) spread over about TARGET_WORKGROUPS workgroups,
   * a multiple of BLOCK_N, at least the kernel's smallest chunk, doubled while the plan would not fit
   * `capacity` (a prefill chunk through this kernel wants a slot per query token and chunk).
   * Worked example: batch 1 decode at 16384 keys, 8 KV heads, one row tile: 16384 * 8 / 512 = 256 ->
   * chunks of 256 keys, 64 slots, 64 * 8 = 512 workgroups.
   */
  plan(meta: PageTableMetadata, capacity?: DecodeCapacity): DecodePlan {
    if (!decodeTakes(meta.qLens, this.maxQueryTokens)) {
      const bad = meta.qLens.findIndex((n) => n < 1 || n > this.maxQueryTokens);
      throw new ShapeError(
        `${this.name}: sequence ${bad} has ${meta.qLens[bad]} query tokens; it takes 1..${this.maxQueryTokens}`,
      );
    }
    let work = 0;
    for (let i = 0; i < meta.numSeqs; i++) work += meta.kvLens[i] * this.rowTiles(meta.qLens[i]);
    const n = this.tiles.blockN;
    const ideal = Math.ceil((work * this.spec.numKvHeads) / TARGET_WORKGROUPS);
    const maxKv = Math.max(0, ...meta.kvLens);
    let chunkSize = Math.max(this.minChunk, Math.ceil(ideal / n) * n);
    while (capacity && chunkSize < maxKv && !fits(this.count(meta, chunkSize), capacity)) chunkSize *= 2;
    const items: number[] = [];
    const slotIndptr = new Uint32Array(meta.numSeqs + 1);
    let slot = 0;
    for (let i = 0; i < meta.numSeqs; i++) {
      const rows = meta.qLens[i] * this.spec.groupSize;
      for (let start = 0; start < meta.kvLens[i]; start += chunkSize, slot += meta.qLens[i]) {
        const end = Math.min(meta.kvLens[i], start + chunkSize);
        for (let r = 0; r < rows; r += this.tiles.blockM) items.push(i, r, start, end, slot);
      }
      slotIndptr[i + 1] = slot;
    }
    const plan = { work: new Uint32Array(items), numWorkItems: items.length / WORK_ITEM_U32, slotIndptr };
    if (capacity && !fits({ slots: slot, workItems: plan.numWorkItems }, capacity)) {
      throw new ShapeError(
        `${this.name}: the step wants ${slot} partial slots and ${plan.numWorkItems} work items; ` +
          `the buffers hold ${capacity.slots} and ${capacity.workItems} (check takes() first)`,
      );
    }
    if (plan.numWorkItems > this.ctx.limits.maxComputeWorkgroupsPerDimension) {
      throw new ShapeError(`${this.name}: ${plan.numWorkItems} work items exceed the dispatch limit`);
    }
    return { ...plan, numSlots: slot, chunkSize };
  }

  /** Row tiles of a sequence with qLen query tokens (rows = qLen x group size). */
  private rowTiles(qLen: number): number {
    return Math.ceil((qLen * this.spec.groupSize) / this.tiles.blockM);
  }

  /** Slots and work items of the plan at one chunk size. */
  private count(meta: PageTableMetadata, chunkSize: number): DecodeCapacity {
    let slots = 0;
    let workItems = 0;
    for (let i = 0; i < meta.numSeqs; i++) {
      const chunks = Math.ceil(meta.kvLens[i] / chunkSize);
      slots += chunks * meta.qLens[i];
      workItems += chunks * this.rowTiles(meta.qLens[i]);
    }
    return { slots, workItems };
  }

  /**
   * The most slots and work items plan() can return for numSeqs one-token sequences of at most
   * maxKvLen keys each (chunks hold at least the smallest chunk), for callers that size their buffers
   * once; a step of more query tokens fits them or goes to flashPrefill (takes()).
   * e.g. 16 sequences up to 4096 keys, one row tile, chunks >= 128: 16 * ceil(4096 / 128) = 512 slots and items.
   */
  maxPlan(numSeqs: number, maxKvLen: number): DecodeCapacity {
    const slots = numSeqs * Math.ceil(maxKvLen / this.minChunk);
    return { slots, workItems: slots * this.rowTiles(1) };
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

const fits = (need: DecodeCapacity, have: DecodeCapacity) =>
  need.slots <= have.slots && need.workItems <= have.workItems;

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
    super(
      ctx,
      'splitKvDecode',
      pipeline,
      spec,
      tiles,
      version === 3 ? Math.max(tiles.blockN, MIN_CHUNK[3]) : MIN_CHUNK[version],
      version === 3 ? DECODE_MAX_QUERY_TOKENS : 1,
    );
  }

  static async create(ctx: GpuContext, spec: AttentionSpec, opts: SplitKvDecodeOptions = {}): Promise<SplitKvDecode> {
    checkSpec(spec);
    const fixed = opts.subgroups === false ? 0 : fixedSubgroupSize(ctx);
    const maxBytes = ctx.limits.maxComputeWorkgroupStorageSize;
    // CPU drivers (gated on the adapter: it only helps them): one subgroup per workgroup. A CPU runs a
    // workgroup's subgroups one after another, so more of them per workgroup only add the merge of their
    // states at the end of each chunk (reading NUM_SG partial rows per output word): lavapipe, GQA 32/8
    // d 128 at 16K, 256-key chunks: 28% less CPU time with 1 subgroup (8 lanes) than with 8 (64 lanes).
    // GPUs keep 64-lane workgroups (2 warps / 1 wavefront) for occupancy.
    const software = isSoftwareAdapter(ctx);
    const v3 = chooseSplitKvTiles(spec.groupSize, spec.headDimQK, spec.headDimV, maxBytes, fixed, software);
    const version = opts.version ?? (v3 ? 3 : 2);
    const word = kvWord4Format(ctx, spec.kvDtype);
    const kv = kvPagesFormat(spec.kvDtype);
    const split = isSplit(spec);
    if (version === 3) {
      if (!v3) {
        throw new ShapeError(
          `splitKvDecode v3: needs one fixed subgroup size its tiles fit (this adapter: ${fixed || 'none'})`,
        );
      }
      // f16 pages are read as packed u32 pairs even where `shader-f16` exists: the same 8 bytes, and
      // on lavapipe a vec2<u32> load is 2 per-lane loads where a vec4<f16> is 4.
      const packed = word === 'f32' ? 'f32' : 'f16packed';
      const source = kernelSource('splitKvDecode', { word: packed, kv, subgroups: true, split });
      const pipeline = await Kernel.compile(
        ctx,
        'splitKvDecode',
        source,
        { ...pagedConstants(spec), BLOCK_M: v3.blockM, SG_SIZE: v3.subgroupSize, NUM_SG: v3.numSubgroups },
        { workgroupBytes: v3.workgroupBytes, invocations: v3.workgroupSize },
      );
      return new SplitKvDecode(ctx, pipeline, spec, v3, 3, v3.subgroupSize);
    }
    const sg = version === 1 ? 0 : fixed;
    const sgSize = sg <= 64 ? sg : 0; // a subgroup within one 64-lane workgroup
    const tiles = chooseDecodeTiles(spec.groupSize, spec.headDimQK, spec.headDimV, maxBytes, sgSize);
    const source =
      version === 1
        ? kernelSource('splitKvDecodeV1', { word, kv, split })
        : kernelSource('splitKvDecodeV2', { word, kv, subgroups: sgSize > 0, split });
    const pipeline = await Kernel.compile(
      ctx,
      version === 1 ? 'splitKvDecodeV1' : 'splitKvDecodeV2',
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
