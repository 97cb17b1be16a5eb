/**
 * mlaDecode wrapper: split-KV decode for absorbed MLA (one latent row per token, V = its first
 * d_c values), a head block of 16 heads (up to 32) per workgroup so the latent cache is read
 * H / BLOCK_M times per step instead of H / 4 (shaders/attention/mlaDecode.wgsl says why).
 * A SplitKvKernel like SplitKvDecode (same plan / partialBytes / bind / encode, same partial layout),
 * so mergePartials combines its chunks and a caller swaps one for the other by `spec.vAliasesK`.
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { checkWorkgroup, Kernel } from './kernel';
import { checkSpec, isSplit, pagedConstants, type AttentionSpec } from './pagedAttention';
import { fixedSubgroupSize, SplitKvKernel } from './splitKvDecode';
import { kernelSource, kvPagesFormat, kvWord4Format } from './sources';
import { chooseMlaDecodeTiles, type TileConfig } from './tiling';

/**
 * Smallest chunk of keys per workgroup (a multiple of BLOCK_N): v2 one 128-key tile, so batch-1 decode
 * at H 16 and 4K context launches 32 workgroups (H 128: 256); v1 (the bench baseline) 256.
 */
const MIN_CHUNK = { 1: 256, 2: 128 } as const;

/** Which mlaDecode: 2 (current), or 1, the previous kernel kept as the bench's baseline. */
export type MlaDecodeVersion = 1 | 2;

export interface MlaDecodeOptions {
  /** Most heads per workgroup (a power of two <= 32; default 16). */
  maxHeadsPerWorkgroup?: number;
  /** Use subgroup shuffles where the adapter has them at one fixed size (default true). */
  subgroups?: boolean;
  /** Default 2. */
  version?: MlaDecodeVersion;
}

/**
 * plan / maxPlan / partialBytes / bind / grid come from SplitKvKernel, encode from Kernel. Chunks: the total KV work
 * (keys x head blocks) over about 512 workgroups, at least MIN_CHUNK keys. Worked example: batch 1
 * at 16384 keys, H 128 in 8 head blocks: 16384 * 8 / 512 = 256 -> 64 slots x 8 = 512 workgroups.
 */
export class MlaDecode extends SplitKvKernel {
  private constructor(
    ctx: GpuContext,
    pipeline: GPUComputePipeline,
    spec: AttentionSpec,
    tiles: TileConfig,
    readonly version: MlaDecodeVersion,
    /** v2: head groups of the score pass, = keys per lane (1 or 2; mlaDecode.wgsl SPLIT). */
    readonly split: number,
  ) {
    super(ctx, version === 1 ? 'mlaDecodeV1' : 'mlaDecode', pipeline, spec, tiles, MIN_CHUNK[version]);
  }

  static async create(ctx: GpuContext, spec: AttentionSpec, opts: MlaDecodeOptions = {}): Promise<MlaDecode> {
    checkSpec(spec);
    if (!spec.vAliasesK || spec.numKvHeads !== 1) {
      throw new ShapeError(
        `mlaDecode: needs an MLA spec (vAliasesK, numKvHeads 1); ` +
          `got numKvHeads ${spec.numKvHeads}, vAliasesK ${spec.vAliasesK}`,
      );
    }
    const tiles = chooseMlaDecodeTiles(
      spec.groupSize,
      spec.headDimV,
      ctx.limits.maxComputeWorkgroupStorageSize,
      opts.maxHeadsPerWorkgroup,
    );
    checkWorkgroup(ctx, 'mlaDecode', { invocations: tiles.workgroupSize });
    const sgSize = opts.subgroups === false ? 0 : fixedSubgroupSize(ctx);
    // f16 pages are read through the packed snippet even where `shader-f16` exists: the bytes are
    // the same, and on lavapipe a vec2<u32> load is 2 per-lane loads where a vec4<f16> is 4.
    const word = kvWord4Format(ctx, spec.kvDtype) === 'f32' ? 'f32' : 'f16packed';
    const version = opts.version ?? 2;
    // v2 scores 2 keys per lane over half the block's heads, so each q word serves 2 keys. A subgroup
    // must lie inside one half (q words are shuffled within it): SG_SIZE <= BLOCK_N / 2.
    const split = version === 2 && tiles.blockM % 2 === 0 && sgSize <= tiles.blockN / 2 ? 2 : 1;
    const name = version === 1 ? 'mlaDecodeV1' : 'mlaDecode';
    const source = kernelSource(name, {
      word,
      kv: kvPagesFormat(spec.kvDtype),
      subgroups: sgSize > 0,
      split: isSplit(spec),
    });
    const pipeline = await Kernel.compile(ctx, name, source, {
      ...pagedConstants(spec),
      BLOCK_M: tiles.blockM,
      BLOCK_N: tiles.blockN,
      ACC_PER_THREAD: tiles.accPerThread,
      SG_SIZE: Math.max(1, sgSize),
      ...(version === 2 ? { SPLIT: split } : {}),
    });
    return new MlaDecode(ctx, pipeline, spec, tiles, version, split);
  }
}
