/**
 * GEMV (decode) and GEMM (prefill) over block-quantized weights: Y [M, N] = X [M, K] · Wᵀ (+ bias),
 * W [N, K] in GGUF blocks (q8 = Q8_0, q4 = Q4_0, q5_0, q4_K, q6_K), repacked on upload row by row into
 * 16-byte-aligned planes with every byte kept (quantLayout.ts: packQuantRows; unpackQuantRows gives
 * the file's blocks back). One kernel file each (shaders/model/matvecQuant.wgsl, matmulQuant.wgsl)
 * composed with shaders/model/quant/quantWords.wgsl and one format snippet (quant/<dtype>.wgsl: qUnit
 * / qVec4 dequantize 16 / 4 values in registers; the GEMV adds quant/<dtype>Dot.wgsl, its batch-1
 * step). The weight buffer is bound twice, as vec4<u32> (codes) and u32 (scales). Arithmetic is f32 throughout:
 * scales are unpacked from u32 words with unpack2x16float, so every format runs without
 * `shader-f16`, and f16 arithmetic is not used even where the adapter has it (a Q8_0 code times
 * its f16 scale needs 19 significant bits; f16 holds 11).
 * Shapes (M, N, K, bias flag) are runtime values in the params uniform (matmulParams' layout), so
 * one pipeline per (kernel, format) serves every weight. W may be split by rows across buffers
 * (rowShards.ts; GGUF blocks are per row, so shards are whole rows of blocks): bind takes its
 * shards and encode dispatches each. Never submits.
 */
import type { GpuContext } from '../gpu/context';
import type { KernelSource, ShaderPart } from '../gpu/pipelineCache';
import { DTYPES, isQuantDtype, storageBytes, type MatrixDtype, type QuantDtype } from '../gpu/dtype';
import { ShapeError } from '../gpu/errors';
import { Kernel, type Grid } from './kernel';
import { chooseMatmulTiles, createMatmulOwned, MatMul, type MatmulOwned, type MatmulTiles } from './matmul';
import { RowShardedKernel, type MatrixBuffers, type RowShard } from './rowShards';
import { MatVec, matvecLaneConstants, matvecLanes, type MatvecOptions } from './matvec';
import { laneParts } from './sources';
import { packedRowBytes } from './quantLayout';
import quantWords from '../../shaders/model/quant/quantWords.wgsl?raw';
import q8 from '../../shaders/model/quant/q8.wgsl?raw';
import q4 from '../../shaders/model/quant/q4.wgsl?raw';
import q5_0 from '../../shaders/model/quant/q5_0.wgsl?raw';
import q4_K from '../../shaders/model/quant/q4_K.wgsl?raw';
import q6_K from '../../shaders/model/quant/q6_K.wgsl?raw';
import q8Dot from '../../shaders/model/quant/q8Dot.wgsl?raw';
import q4Dot from '../../shaders/model/quant/q4Dot.wgsl?raw';
import q5_0Dot from '../../shaders/model/quant/q5_0Dot.wgsl?raw';
import q4_KDot from '../../shaders/model/quant/q4_KDot.wgsl?raw';
import q6_KDot from '../../shaders/model/quant/q6_KDot.wgsl?raw';
import matvecQuantWgsl from '../../shaders/model/matvecQuant.wgsl?raw';
import matmulQuantWgsl from '../../shaders/model/matmulQuant.wgsl?raw';

const FORMAT_SNIPPETS: Record<QuantDtype, string> = { q8, q4, q5_0, q4_K, q6_K };
/** The batch-1 GEMV step of each format (qDot4), composed into matvecQuant only. */
const DOT_SNIPPETS: Record<QuantDtype, string> = { q8: q8Dot, q4: q4Dot, q5_0: q5_0Dot, q4_K: q4_KDot, q6_K: q6_KDot };

export interface QuantMatmulSpec {
  /** Output features (rows of W). */
  N: number;
  /** Input features (columns of W), a multiple of the format's block (32; 256 for q4_K / q6_K). */
  K: number;
  weightDtype: QuantDtype;
  /** Adds bias [N], f16 two per u32 word. */
  bias: boolean;
}

/** params uniform { M, N, K, hasBias } (u32), matmulParams' layout: e.g. M 3, q8 [80, 96], bias -> [3, 80, 96, 1]. */
export function quantMatmulParams(spec: { N: number; K: number; bias: boolean }, M: number): Uint32Array {
  return new Uint32Array([M, spec.N, spec.K, spec.bias ? 1 : 0]);
}

/** Bytes of W [N, K] in GGUF blocks (as in a file): e.g. q4 [7, 96] -> 7 * 3 * 18 = 378. */
export function quantWeightBytes(dtype: QuantDtype, N: number, K: number): number {
  const { blockValues, blockBytes } = DTYPES[dtype];
  return N * Math.ceil(K / blockValues) * blockBytes;
}

/**
 * Bytes of the GPU buffer holding W: N packed rows (quantLayout.ts), each its planes padded to 16
 * bytes. e.g. q4 [7, 96] -> 7 * (48 + 16) = 448; q8 [2048, 8192] -> 2048 * 8704, GGUF's bytes exactly.
 */
export function quantBufferBytes(dtype: QuantDtype, N: number, K: number): number {
  return N * packedRowBytes(dtype, K);
}

/** Checks a spec: the format, K a whole number of blocks (W past one binding is bound as row shards). */
export function checkQuantSpec(spec: QuantMatmulSpec, kernel: string): void {
  const { N, K, weightDtype } = spec;
  if (!isQuantDtype(weightDtype))
    throw new ShapeError(`${kernel}: ${String(weightDtype)} is not a block-quantized dtype`);
  if (!Number.isInteger(N) || N < 1) throw new ShapeError(`${kernel}: N must be a positive integer, got ${N}`);
  const bv = DTYPES[weightDtype].blockValues;
  if (!Number.isInteger(K) || K < bv || K % bv !== 0) {
    throw new ShapeError(`${kernel}: K must be a positive multiple of ${bv} for ${weightDtype} blocks, got ${K}`);
  }
}

/**
 * quantWords + the format snippet + the kernel, cached per format; `lanes` (matvecQuant) puts a lane
 * snippet first (sources.ts laneParts: subgroups or plain), adds the format's GEMV step
 * (quant/<dtype>Dot.wgsl) and names the lanes in the variant.
 */
export function quantKernelSource(
  name: string,
  file: string,
  code: string,
  dtype: QuantDtype,
  lanes?: { subgroups: boolean },
): KernelSource {
  const parts: ShaderPart[] = [
    ...(lanes ? laneParts(lanes.subgroups) : []),
    { file: 'shaders/model/quant/quantWords.wgsl', code: quantWords },
    { file: `shaders/model/quant/${dtype}.wgsl`, code: FORMAT_SNIPPETS[dtype] },
    ...(lanes ? [{ file: `shaders/model/quant/${dtype}Dot.wgsl`, code: DOT_SNIPPETS[dtype] }] : []),
    { file, code },
  ];
  return { name, variant: lanes?.subgroups ? `${dtype}+subgroups` : dtype, parts };
}

export interface QuantMatmulBuffers {
  /** f32 [M][K] */
  x: GPUBuffer;
  /** W [N, K] in packed rows (quantLayout.ts), quantBufferBytes long: one buffer, or its row shards (rowShards.ts) */
  w: MatrixBuffers;
  /** f16 [N], two per u32 (only with spec.bias) */
  bias?: GPUBuffer;
  /** f32 [M][N] */
  y: GPUBuffer;
  /** uniform { M, N, K, hasBias } (matmulParams) */
  params: GPUBuffer;
}

/**
 * Binding 5 (shard): the bound W shard's uniform { firstRow, rows } (rowShards.ts); 6 (wWords): the
 * W shard's buffer again, read as u32 words (1 is its vec4<u32> view).
 */
const BINDINGS = { x: 0, w: 1, bias: 2, y: 3, params: 4, shard: 5, wWords: 6 };

/**
 * What QuantMatVec and QuantMatMul share: the spec, the bias placeholder and whole-W range, the
 * bind checks, the dispatch per W shard.
 */
abstract class QuantMatmulKernel extends RowShardedKernel<QuantMatmulBuffers> {
  protected constructor(
    ctx: GpuContext,
    name: string,
    pipeline: GPUComputePipeline,
    readonly spec: QuantMatmulSpec,
    private readonly own: MatmulOwned,
  ) {
    const owned = own.noBias ? [own.noBias, own.wholeRange] : [own.wholeRange];
    super({ ctx, name, pipeline, bindings: BINDINGS, unit: 'tokens', owned });
  }

  protected get matrixRows(): number {
    return this.spec.N;
  }

  /** The W shards (one when unsplit), checked. */
  protected shards(b: QuantMatmulBuffers): readonly RowShard[] {
    const { K, weightDtype } = this.spec;
    return this.shardsOf(
      'w',
      b.w,
      this.own.wholeRange,
      (rows) => quantBufferBytes(weightDtype, rows, K),
      (rows) => `[${rows}, ${K}] ${weightDtype} in packed rows`,
    );
  }

  /** One bind group per W shard over the other buffers of `b`, each holding `tokens`. */
  protected bindOver(shards: readonly RowShard[], b: QuantMatmulBuffers, tokens: number): GPUBindGroup {
    const bias = b.bias ?? this.own.noBias!;
    return this.bindShards(shards, (s) => ({ ...b, w: s.buffer, wWords: s.buffer, bias, shard: s.range }), tokens);
  }
}

/** Checks the buffers other than W against the spec; returns the tokens they hold (rows of x and y). */
function checkBuffers(
  k: { need: (what: string, b: GPUBuffer, bytes: number, shape: string) => void; name: string },
  spec: QuantMatmulSpec,
  b: QuantMatmulBuffers,
): number {
  const { N, K } = spec;
  k.need('x', b.x, K * 4, `one row of ${K} f32`);
  k.need('y', b.y, N * 4, `one row of ${N} f32`);
  if (spec.bias) {
    if (!b.bias) throw new ShapeError(`${k.name}: the spec has a bias but none was bound`);
    k.need('bias', b.bias, Math.ceil(N / 2) * 4, `[${N}] f16 in pairs`);
  } else if (b.bias) {
    throw new ShapeError(`${k.name}: a bias was bound to a kernel created without one`);
  }
  return Math.min(Math.floor(b.x.size / (K * 4)), Math.floor(b.y.size / (N * 4)));
}

/** MAX_TOKENS of matvecQuant.wgsl. */
export const QUANT_MATVEC_MAX_TOKENS = 8;
/** Decode GEMV: one workgroup per strip of 4 rows, each W byte read once for all M (1..8) tokens. */
export class QuantMatVec extends QuantMatmulKernel {
  private constructor(ctx: GpuContext, spec: QuantMatmulSpec, pipeline: GPUComputePipeline, own: MatmulOwned) {
    super(ctx, 'matvecQuant', pipeline, spec, own);
  }

  /** Lanes as MatVec (matvecLanes: subgroupAdd, one subgroup per workgroup on software adapters). */
  static async create(ctx: GpuContext, spec: QuantMatmulSpec, opts: MatvecOptions = {}): Promise<QuantMatVec> {
    checkQuantSpec(spec, 'matvecQuant');
    const lanes = matvecLanes(ctx, opts);
    const src = quantKernelSource('matvecQuant', 'shaders/model/matvecQuant.wgsl', matvecQuantWgsl, spec.weightDtype, {
      subgroups: lanes.sgSize > 1,
    });
    const needs = { invocations: lanes.wg, workgroupBytes: 16 * lanes.numSg };
    const pipeline = await Kernel.compile(ctx, 'matvecQuant', src, matvecLaneConstants(lanes), needs);
    return new QuantMatVec(ctx, spec, pipeline, await createMatmulOwned(ctx, 'matvecQuant', spec));
  }

  bind(b: QuantMatmulBuffers): GPUBindGroup {
    const shards = this.shards(b);
    const tokens = checkBuffers({ need: (...a) => this.need(...a), name: this.name }, this.spec, b);
    return this.bindOver(shards, b, Math.min(tokens, QUANT_MATVEC_MAX_TOKENS));
  }

  protected override checkCount(M: number): void {
    if (M > QUANT_MATVEC_MAX_TOKENS) {
      throw new ShapeError(
        `matvecQuant: M must be 0..${QUANT_MATVEC_MAX_TOKENS} tokens, got ${M}; use QuantMatMul for more`,
      );
    }
  }

  /** ceil(rows / 4) strips of the W shard (all N when unsplit) folded into (x, y) past the per-dimension limit. */
  protected gridRows(_M: number, rows: number): Grid {
    return this.grid1D(Math.ceil(rows / 4), 1);
  }
}

/** Prefill GEMM: matmul.wgsl's tiles, W dequantized 16 values at a time into the staged tile. */
export class QuantMatMul extends QuantMatmulKernel {
  private constructor(
    ctx: GpuContext,
    spec: QuantMatmulSpec,
    readonly tiles: MatmulTiles,
    pipeline: GPUComputePipeline,
    own: MatmulOwned,
  ) {
    super(ctx, 'matmulQuant', pipeline, spec, own);
  }

  static async create(
    ctx: GpuContext,
    spec: QuantMatmulSpec,
    tiles = chooseMatmulTiles(ctx.limits),
  ): Promise<QuantMatMul> {
    checkQuantSpec(spec, 'matmulQuant');
    if (tiles.tileK4 % 4 !== 0)
      throw new ShapeError(`matmulQuant: TILE_K4 must be a multiple of 4, got ${tiles.tileK4}`);
    const src = quantKernelSource('matmulQuant', 'shaders/model/matmulQuant.wgsl', matmulQuantWgsl, spec.weightDtype);
    const pipeline = await Kernel.compile(
      ctx,
      'matmulQuant',
      src,
      { LANES_X: tiles.lanesX, LANES_Y: tiles.lanesY, TILE_K4: tiles.tileK4 },
      { invocations: tiles.lanesX * tiles.lanesY, workgroupBytes: tiles.workgroupBytes },
    );
    return new QuantMatMul(ctx, spec, tiles, pipeline, await createMatmulOwned(ctx, 'matmulQuant', spec));
  }

  bind(b: QuantMatmulBuffers): GPUBindGroup {
    const shards = this.shards(b);
    for (const s of shards) {
      const gridX = Math.ceil(s.rows / this.tiles.tileN);
      if (gridX > this.ctx.limits.maxComputeWorkgroupsPerDimension) {
        throw new ShapeError(
          `matmulQuant: ${s.rows} rows of W need ${gridX} column tiles, over the dispatch limit; split W by rows`,
        );
      }
    }
    const tokens = checkBuffers({ need: (...a) => this.need(...a), name: this.name }, this.spec, b);
    return this.bindOver(shards, b, tokens);
  }

  /**
   * (ceil(rows / tileN), ceil(M / tileM)) over a W shard of `rows` rows (all N when unsplit); e.g.
   * M 33, N 257 with 32 x 32 tiles -> (9, 2).
   */
  protected gridRows(M: number, rows: number): Grid {
    const y = Math.ceil(M / this.tiles.tileM);
    if (y > this.ctx.limits.maxComputeWorkgroupsPerDimension) {
      throw new ShapeError(`matmulQuant: M ${M} needs ${y} row tiles, over the dispatch limit; split the step`);
    }
    return [Math.ceil(rows / this.tiles.tileN), y];
  }
}

/** A GEMM / GEMV spec whose weight is any matrix dtype: a plain one (MatMul / MatVec) or GGUF blocks. */
export interface AnyMatmulSpec {
  N: number;
  K: number;
  weightDtype: MatrixDtype;
  bias: boolean;
}

/** The prefill GEMM for a weight of any matrix dtype; both kinds bind the same named buffers. */
export function createMatmul(ctx: GpuContext, spec: AnyMatmulSpec): Promise<MatMul | QuantMatMul> {
  const { weightDtype } = spec;
  return isQuantDtype(weightDtype)
    ? QuantMatMul.create(ctx, { ...spec, weightDtype })
    : MatMul.create(ctx, { ...spec, weightDtype });
}

/** The decode GEMV (M <= 8) for a weight of any matrix dtype. */
export function createMatvec(
  ctx: GpuContext,
  spec: AnyMatmulSpec,
  opts: MatvecOptions = {},
): Promise<MatVec | QuantMatVec> {
  const { weightDtype } = spec;
  return isQuantDtype(weightDtype)
    ? QuantMatVec.create(ctx, { ...spec, weightDtype }, opts)
    : MatVec.create(ctx, { ...spec, weightDtype }, opts);
}

/** Bytes the GPU buffer of W [N, K] takes in any matrix dtype (packed GGUF rows; plain: N * K values). */
export function matrixBufferBytes(dtype: MatrixDtype, N: number, K: number): number {
  return isQuantDtype(dtype) ? quantBufferBytes(dtype, N, K) : storageBytes(dtype, N * K);
}
