/**
 * matmul wrapper: prefill GEMM Y [M, N] = X [M, K] · Wᵀ (+ bias [N]) for one weight W [N, K]
 * (Hugging Face layout: out_features x in_features), stored f32 or f16 (two per u32, as
 * uploadWeights stores them, unpacked in the shader: no `shader-f16` needed).
 * The shape (M, N, K, bias) is a runtime value in the params uniform, so one pipeline per weight
 * dtype serves every weight of a model and prefill chunks of any length (lavapipe JIT-compiles a
 * pipeline at its first dispatch, seconds each). Never submits.
 * Decode (M <= 8) should use MatVec (matvec.ts), which reads W once for all tokens.
 * W may be split by rows across buffers (rowShards.ts): bind takes its shards and encode dispatches
 * each, writing its rows to their columns of Y.
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { isWeightDtype, storageBytes, type WeightDtype } from '../gpu/dtype';
import { Kernel } from './kernel';
import { kernelSource, weightWord4Format } from './sources';
import { createShardRange, RowShardedKernel, type MatrixBuffers } from './rowShards';

export interface MatmulSpec {
  /** Output features (rows of W). */
  N: number;
  /** Input features (columns of W), a multiple of 4. */
  K: number;
  weightDtype: WeightDtype;
  /** Adds bias [N], stored like W (f32, or f16 pairs in u32). */
  bias: boolean;
}

/**
 * params uniform of matmul and matvec: { M, N, K, hasBias } (u32),
 * e.g. M 3 with W [80, 100] and a bias -> [3, 80, 100, 1].
 */
export function matmulParams(spec: MatmulSpec, M: number): Uint32Array {
  return new Uint32Array([M, spec.N, spec.K, spec.bias ? 1 : 0]);
}

/**
 * Checks a spec against the kernel's requirements. W's size is not limited here: a W past one
 * binding is bound as row shards (bind checks each against the binding limit).
 */
export function checkMatmulSpec(spec: MatmulSpec, kernel: string): void {
  const { N, K } = spec;
  if (!Number.isInteger(N) || N < 1) throw new ShapeError(`${kernel}: N must be a positive integer, got ${N}`);
  if (!Number.isInteger(K) || K < 4 || K % 4 !== 0) {
    throw new ShapeError(`${kernel}: K must be a positive multiple of 4, got ${K}`);
  }
  if (!isWeightDtype(spec.weightDtype)) {
    throw new ShapeError(`${kernel}: weight dtype must be f32 or f16, got ${String(spec.weightDtype)}`);
  }
}

/** Bytes of W [N, K] in its dtype (or of `rows` of its rows). */
export function weightBytes(spec: MatmulSpec, rows = spec.N): number {
  return storageBytes(spec.weightDtype, rows * spec.K);
}

export interface MatmulArgs {
  /** f32 [M][K]. */
  x: GPUBuffer;
  /** [N][K] in the spec's weightDtype: one buffer, or its row shards (rowShards.ts). */
  w: MatrixBuffers;
  /** [ceil(N / 4) * 4] in the weightDtype, exactly when the spec has a bias. */
  bias?: GPUBuffer;
  /** f32 [M][N]. */
  y: GPUBuffer;
  /** uniform matmulParams(spec, M). */
  params: GPUBuffer;
}

/** Binding 5 (shard): the bound W shard's uniform { firstRow, rows } (rowShards.ts). */
const MATMUL_BINDINGS = { x: 0, w: 1, bias: 2, y: 3, params: 4, shard: 5 };

/** The bias placeholder and the whole-W range uniform { 0, N } a GEMM / GEMV owns. */
export interface MatmulOwned {
  /** Bound as bias when the spec has none (never read then); undefined with a bias. */
  noBias: GPUBuffer | undefined;
  /** The range of an unsplit W: rows 0..N - 1. */
  wholeRange: GPUBuffer;
}

/** Creates what a GEMM / GEMV of `spec` owns (MatmulOwned). */
export async function createMatmulOwned(
  ctx: GpuContext,
  name: string,
  spec: { N: number; bias: boolean },
): Promise<MatmulOwned> {
  return {
    noBias: spec.bias ? undefined : await Kernel.placeholder(ctx, `${name}.noBias`),
    wholeRange: await createShardRange(ctx, `${name}.wholeRange`, 0, spec.N),
  };
}

/**
 * What matmul and matvec share: the spec, the bias placeholder, the bind checks, the dispatch per
 * W shard. The W storage snippet is f32 or f16 packed in u32 pairs (sources.ts weightWord4Format).
 */
export abstract class MatmulKernel extends RowShardedKernel<MatmulArgs> {
  protected constructor(
    ctx: GpuContext,
    name: string,
    pipeline: GPUComputePipeline,
    readonly spec: MatmulSpec,
    private readonly own: MatmulOwned,
  ) {
    const owned = own.noBias ? [own.noBias, own.wholeRange] : [own.wholeRange];
    super({ ctx, name, pipeline, bindings: MATMUL_BINDINGS, unit: 'tokens', owned });
  }

  protected get matrixRows(): number {
    return this.spec.N;
  }

  /**
   * Checks the buffers against the spec and returns the bind group (of every W shard: encode
   * dispatches each); capacity: the rows of x and y. x f32 [M][K], w [N][K] (weightDtype; one
   * buffer or row shards), bias [ceil(N / 4) * 4] (weightDtype; only with a bias), y f32 [M][N],
   * params uniform (matmulParams).
   */
  bind(b: MatmulArgs): GPUBindGroup {
    const { N, K, weightDtype } = this.spec;
    const shards = this.shardsOf(
      'w',
      b.w,
      this.own.wholeRange,
      (rows) => weightBytes(this.spec, rows),
      (rows) => `[${rows}, ${K}] ${weightDtype}`,
    );
    for (const s of shards) this.checkShardRows(s.rows);
    this.need('x', b.x, K * 4, `one row of ${K} f32`);
    this.need('y', b.y, N * 4, `one row of ${N} f32`);
    if (this.spec.bias) {
      if (!b.bias) throw new ShapeError(`${this.name}: the spec has a bias but none was bound`);
      // The kernel reads the bias in words of 4 values; ctx.createBuffer pads to 16 bytes, enough.
      this.need(
        'bias',
        b.bias,
        storageBytes(weightDtype, Math.ceil(N / 4) * 4),
        `[${N}] ${weightDtype} read in words of 4`,
      );
    } else if (b.bias) {
      throw new ShapeError(`${this.name}: a bias was bound to a kernel created without one`);
    }
    const rows = Math.min(Math.floor(b.x.size / (K * 4)), Math.floor(b.y.size / (N * 4)));
    const bias = b.bias ?? this.own.noBias!;
    return this.bindShards(shards, (s) => ({ ...b, w: s.buffer, bias, shard: s.range }), rows);
  }

  /** Extra checks on one W shard's rows (the GEMM's column tiles against the dispatch limit). */
  protected checkShardRows(_rows: number): void {}
}

export interface MatmulTiles {
  lanesX: number;
  lanesY: number;
  /** Output tile = (lanesY * 4) x (lanesX * 4): each lane computes 4 x 4 outputs. */
  tileM: number;
  tileN: number;
  /** K step in vec4s. */
  tileK4: number;
  workgroupBytes: number;
}

/**
 * Largest tiles that fit the adapter: workgroup memory = 16 * (TILE_M + TILE_N) * (TILE_K4 + 1)
 * bytes (rows padded by one vec4). Worked examples:
 *   8 x 8 lanes, TILE_K4 16: tiles 32 x 32, 16 * 64 * 17 = 17408 bytes (32 KiB adapters);
 *   16 x 16 lanes, TILE_K4 4: tiles 64 x 64, 16 * 128 * 5 = 10240 bytes (fits 16 KiB).
 * Order measured on lavapipe (M 256, N K 512, f16; noisy, 2 loaded cores): 8x8x16 ~2.4 GFLOP/s,
 * 16x16x4 ~2.1, 8x8x8 ~2.0.
 */
export function chooseMatmulTiles(limits: GPUSupportedLimits): MatmulTiles {
  const candidates: [number, number, number][] = [
    [8, 8, 16],
    [16, 16, 4],
    [8, 8, 8],
    [4, 4, 8],
  ];
  for (const [lanesX, lanesY, tileK4] of candidates) {
    const tileM = lanesY * 4;
    const tileN = lanesX * 4;
    const bytes = 16 * (tileM + tileN) * (tileK4 + 1);
    if (
      lanesX * lanesY <= limits.maxComputeInvocationsPerWorkgroup &&
      lanesX <= limits.maxComputeWorkgroupSizeX &&
      lanesY <= limits.maxComputeWorkgroupSizeY &&
      bytes <= limits.maxComputeWorkgroupStorageSize
    ) {
      return { lanesX, lanesY, tileM, tileN, tileK4, workgroupBytes: bytes };
    }
  }
  throw new ShapeError(`matmul: no tile fits ${limits.maxComputeWorkgroupStorageSize} bytes of workgroup storage`);
}

export class MatMul extends MatmulKernel {
  private constructor(
    ctx: GpuContext,
    pipeline: GPUComputePipeline,
    spec: MatmulSpec,
    readonly tiles: MatmulTiles,
    own: MatmulOwned,
  ) {
    super(ctx, 'matmul', pipeline, spec, own);
  }

  static async create(ctx: GpuContext, spec: MatmulSpec, tiles = chooseMatmulTiles(ctx.limits)): Promise<MatMul> {
    checkMatmulSpec(spec, 'matmul');
    const src = kernelSource('matmul', { word: weightWord4Format(spec.weightDtype) });
    const pipeline = await Kernel.compile(ctx, 'matmul', src, {
      LANES_X: tiles.lanesX,
      LANES_Y: tiles.lanesY,
      TILE_K4: tiles.tileK4,
    });
    return new MatMul(ctx, pipeline, spec, tiles, await createMatmulOwned(ctx, 'matmul', spec));
  }

  /**
   * Grid over a W shard of `rows` rows (all N when unsplit): (ceil(rows / tileN), ceil(M / tileM)).
   * e.g. M 512, N 2048 with 32 x 32 tiles -> (64, 16); M 33, N 257 -> (9, 2). `M` must equal the
   * params uniform's M.
   */
  protected gridRows(M: number, rows: number): [number, number] {
    return [Math.ceil(rows / this.tiles.tileN), Math.ceil(M / this.tiles.tileM)];
  }

  protected override checkShardRows(rows: number): void {
    const gridX = Math.ceil(rows / this.tiles.tileN);
    if (gridX > this.ctx.limits.maxComputeWorkgroupsPerDimension) {
      throw new ShapeError(
        `matmul: ${rows} rows of W need ${gridX} column tiles, over the dispatch limit; split W by rows`,
      );
    }
  }

  protected override checkCount(M: number): void {
    const y = Math.ceil(M / this.tiles.tileM);
    if (y > this.ctx.limits.maxComputeWorkgroupsPerDimension) {
      throw new ShapeError(`matmul: M ${M} needs ${y} row tiles, over the dispatch limit; split the step`);
    }
  }
}
