/**
 * flashPrefill wrapper: FlashAttention-2 over the paged cache for a ragged batch of query chunks.
 * Specialise once (create), plan the work list once per step (plan), bind once per set of buffers
 * (bind), encode per layer (encode, from Kernel). Never submits.
 *
 * Bind arguments: q, pages, step, work (WorkListArgs) and
 *   out  f32 [numQ][numKvHeads * groupSize][headDimV]
 *   lse  f32 [numQ][numKvHeads * groupSize]   natural-log sum-exp of the scaled scores
 * Grid: (numWorkItems, numKvHeads): one workgroup per (row tile, KV head).
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { Kernel, type Grid, type KernelInit } from './kernel';
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
import { isSoftwareAdapter } from './matvec';
import { fixedSubgroupSize } from './splitKvDecode';
import { choosePrefillTiles, chooseTiles, type PrefillTileOptions } from './tiling';

/**
 * Which inner loop: 3 (current, attentionTile.wgsl: S, P and the softmax statistics in registers,
 * double-buffered K / V tiles, one barrier per tile), or the previous ones kept as the bench's
 * baselines (the ladder): 2 (attentionTileV2.wgsl: Q, S and P in workgroup memory, the K / V tile
 * as stored) and 1 (attentionTileV1.wgsl: the tile unpacked to f32).
 */
export type FlashPrefillVersion = 1 | 2 | 3;

export interface FlashPrefillOptions {
  /** Default 3. */
  version?: FlashPrefillVersion;
  /** v3 tile overrides (tests and tuning: e.g. lanesPerRow 4 runs the subgroup path on a CPU driver). */
  tiles?: Pick<PrefillTileOptions, 'lanesPerRow' | 'blockM' | 'maxBlockN' | 'kvBuffers' | 'kvDirect'>;
}

/** The tiles a FlashPrefill was made with: BLOCK_M rows per work item, and the rest for reports. */
export interface FlashPrefillTiles {
  blockM: number;
  blockN: number;
  workgroupSize: number;
  workgroupBytes: number;
  /** v3 only (1 for v1 / v2). */
  lanesPerRow: number;
  /** v3 only (1 for v1 / v2, whose K and V share one tile). */
  kvBuffers: number;
}

export interface FlashPrefillArgs extends WorkListArgs {
  out: GPUBuffer;
  lse: GPUBuffer;
}

export class FlashPrefill extends Kernel<FlashPrefillArgs> {
  private constructor(
    init: KernelInit,
    readonly spec: AttentionSpec,
    readonly tiles: FlashPrefillTiles,
  ) {
    super(init);
  }

  static async create(ctx: GpuContext, spec: AttentionSpec, opts: FlashPrefillOptions = {}): Promise<FlashPrefill> {
    checkSpec(spec);
    const version = opts.version ?? 3;
    // f16 pages are read through the packed snippet even where `shader-f16` exists (as mlaDecode):
    // the bytes are the same, unpack2x16float is one cheap op on GPUs, and lavapipe's native
    // vec4<f16> conversions in v2's inner loops made it 0.92x v1 (packed: 1.22x v1; bench, same run).
    const native = kvWord4Format(ctx, spec.kvDtype);
    const word = version >= 2 && native === 'f16' ? 'f16packed' : native;
    const kv = kvPagesFormat(spec.kvDtype);
    const split = isSplit(spec);
    if (version === 3) {
      const t = choosePrefillTiles(
        spec.headDimQK,
        spec.headDimV,
        ctx.limits.maxComputeWorkgroupStorageSize,
        ctx.limits.maxComputeInvocationsPerWorkgroup,
        word === 'f32' ? 16 : 8,
        { subgroupSize: fixedSubgroupSize(ctx), software: isSoftwareAdapter(ctx), vInK: spec.vAliasesK, ...opts.tiles },
      );
      const pipeline = await Kernel.compile(
        ctx,
        'flashPrefill',
        kernelSource('flashPrefill', { word, kv, split, subgroups: t.lanesPerRow > 1 }),
        {
          ...pagedConstants(spec),
          BLOCK_M: t.blockM,
          BLOCK_N: t.blockN,
          LANES_PER_ROW: t.lanesPerRow,
          KV_BUFFERS: t.kvBuffers,
          V_IN_K: spec.vAliasesK ? 1 : 0,
          KV_DIRECT: t.kvDirect ? 1 : 0,
        },
        { invocations: t.workgroupSize, workgroupBytes: t.workgroupBytes },
      );
      return FlashPrefill.make(ctx, spec, pipeline, t);
    }
    const tiles = chooseTiles(
      spec.headDimQK,
      spec.headDimV,
      ctx.limits.maxComputeWorkgroupStorageSize,
      ctx.limits.maxComputeInvocationsPerWorkgroup,
      32,
      version === 2 && spec.kvDtype === 'f16' ? 8 : 16,
    );
    const pipeline = await Kernel.compile(
      ctx,
      'flashPrefill',
      kernelSource(version === 2 ? 'flashPrefillV2' : 'flashPrefillV1', { word, kv, split }),
      {
        ...pagedConstants(spec),
        BLOCK_M: tiles.blockM,
        BLOCK_N: tiles.blockN,
        WORKGROUP_SIZE: tiles.workgroupSize,
        ACC_PER_THREAD: tiles.accPerThread,
      },
      { invocations: tiles.workgroupSize, workgroupBytes: tiles.workgroupBytes },
    );
    return FlashPrefill.make(ctx, spec, pipeline, { ...tiles, lanesPerRow: 1, kvBuffers: 1 });
  }

  private static make(
    ctx: GpuContext,
    spec: AttentionSpec,
    pipeline: GPUComputePipeline,
    t: FlashPrefillTiles,
  ): FlashPrefill {
    const tiles: FlashPrefillTiles = {
      blockM: t.blockM,
      blockN: t.blockN,
      workgroupSize: t.workgroupSize,
      workgroupBytes: t.workgroupBytes,
      lanesPerRow: t.lanesPerRow,
      kvBuffers: t.kvBuffers,
    };
    const bindings = { ...workListBindings(spec), out: 9, lse: 10 };
    return new FlashPrefill({ ctx, name: 'flashPrefill', pipeline, bindings, unit: 'work items' }, spec, tiles);
  }

  /**
   * Work list: one item per BLOCK_M-row tile of every sequence (rows = qLen * groupSize).
   * e.g. qLens [5, 1], groupSize 4, BLOCK_M 16: seq 0 has 20 rows -> tiles at rows 0, 16; seq 1 -> 0.
   */
  plan(meta: PageTableMetadata): WorkPlan {
    const items: number[] = [];
    for (let i = 0; i < meta.numSeqs; i++) {
      const rows = meta.qLens[i] * this.spec.groupSize;
      for (let r = 0; r < rows; r += this.tiles.blockM) items.push(i, r, 0, meta.kvLens[i], 0);
    }
    const n = items.length / WORK_ITEM_U32;
    if (n > this.ctx.limits.maxComputeWorkgroupsPerDimension) {
      throw new ShapeError(
        `flashPrefill: ${n} row tiles exceed the dispatch limit; split the step into smaller prefill chunks`,
      );
    }
    return { work: new Uint32Array(items), numWorkItems: n };
  }

  /** See the file header; capacity: the work items the work buffer holds. */
  bind(b: FlashPrefillArgs): GPUBindGroup {
    return this.bindGroup({ ...workListBuffers(this.spec, b), out: b.out, lse: b.lse }, workItemsHeld(b.work));
  }

  grid(numWorkItems: number): Grid {
    return [numWorkItems, this.spec.numKvHeads];
  }
}
