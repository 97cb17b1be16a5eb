/**
 * matmul wrapper: prefill GEMM Y [M, N] = X [M, K] · Wᵀ (+ bias [N]) for one weight W [N, K]
 * (Hugging Face layout: out_features x in_features), stored f32 or f16 (two per u32, as
 * uploadWeights stores them, unpacked in the shader: no `shader-f16` needed).
 * The shape (M, N, K, bias) is a runtime value in the params uniform, so one pipeline per weight
 * dtype serves every weight of a model and prefill chunks of any length (lavapipe JIT-compiles a
 * pipeline at its first dispatch, seconds each). Never submits.
 * Decode (M <= 8) should use MatVec (matvec.ts), which reads W once for all tokens.
 */
import type { GpuContext } from '../gpu/context';
import type { KernelSource, ShaderPart } from '../gpu/pipelineCache';
import { ShapeError } from '../gpu/errors';
import { bindBuffers, STORAGE } from '../gpu/buffers';
import storageF32 from '../../shaders/kv/storageF32.wgsl?raw';
import storageF16Packed from '../../shaders/kv/storageF16Packed.wgsl?raw';
import matmulWgsl from '../../shaders/model/matmul.wgsl?raw';

import type { WeightDtype } from '../model/weights';

export interface MatmulSpec {
  /** Output features (rows of W). */
  N: number;
  /** Input features (columns of W), a multiple of 4. */
  K: number;
  weightDtype: WeightDtype;
  /** Adds bias [N], stored like W (f32, or f16 pairs in u32). */
  bias: boolean;
}

/** params uniform of matmul and matvec: { M, N, K, hasBias } (u32), e.g. M 3 with W [80, 100] and a bias -> [3, 80, 100, 1]. */
export function matmulParams(spec: MatmulSpec, M: number): Uint32Array {
  return new Uint32Array([M, spec.N, spec.K, spec.bias ? 1 : 0]);
}

/** Checks a spec against the kernel's requirements and the adapter's binding limit. */
export function checkMatmulSpec(ctx: GpuContext, spec: MatmulSpec, kernel: string): void {
  const { N, K } = spec;
  if (!Number.isInteger(N) || N < 1) throw new ShapeError(`${kernel}: N must be a positive integer, got ${N}`);
  if (!Number.isInteger(K) || K < 4 || K % 4 !== 0) {
    throw new ShapeError(`${kernel}: K must be a positive multiple of 4, got ${K}`);
  }
  if (spec.weightDtype !== 'f32' && spec.weightDtype !== 'f16') {
    throw new ShapeError(`${kernel}: weight dtype must be f32 or f16, got ${String(spec.weightDtype)}`);
  }
  const bytes = weightBytes(spec);
  if (bytes > ctx.limits.maxStorageBufferBindingSize) {
    throw new ShapeError(
      `${kernel}: W [${N}, ${K}] ${spec.weightDtype} is ${bytes} bytes, over this adapter's ` +
        `maxStorageBufferBindingSize (${ctx.limits.maxStorageBufferBindingSize}); split it by rows`,
    );
  }
}

/** Bytes of W [N, K] in its dtype. */
export function weightBytes(spec: MatmulSpec): number {
  return spec.N * spec.K * (spec.weightDtype === 'f16' ? 2 : 4);
}

/**
 * The kernel composed with the weight storage snippet: f32, or f16 packed in u32 pairs (the KV page
 * snippets: same words of 4 values, same byte layout as uploadWeights writes). f16 weights always
 * take the packed path: unpack2x16float is as fast here, and lavapipe compiled the native
 * `vec4<f16>` variant 5-10x slower (matvec ~20 s per pipeline).
 */
export function weightKernelSource(name: string, file: string, code: string, dtype: WeightDtype): KernelSource {
  const storage: ShaderPart =
    dtype === 'f32'
      ? { file: 'shaders/kv/storageF32.wgsl', code: storageF32 }
      : { file: 'shaders/kv/storageF16Packed.wgsl', code: storageF16Packed };
  return { name, variant: dtype === 'f32' ? 'f32' : 'f16packed', parts: [storage, { file, code }] };
}

/**
 * Checks the buffers bound to a matmul or matvec against the spec and returns the bind group.
 * x f32 [M][K], w [N][K] (weightDtype), bias [ceil(N / 4) * 4] (weightDtype; undefined without),
 * y f32 [M][N], params uniform (matmulParams). Without a bias `placeholder` fills binding 2.
 */
export function bindMatmulBuffers(
  ctx: GpuContext,
  kernel: string,
  pipeline: GPUComputePipeline,
  spec: MatmulSpec,
  placeholder: GPUBuffer | undefined,
  buffers: { x: GPUBuffer; w: GPUBuffer; bias?: GPUBuffer; y: GPUBuffer; params: GPUBuffer },
): GPUBindGroup {
  const { N, K } = spec;
  const elem = spec.weightDtype === 'f16' ? 2 : 4;
  const need = (what: string, buf: GPUBuffer, bytes: number, shape: string) => {
    if (buf.size < bytes) {
      throw new ShapeError(`${kernel}: ${what} (${buf.label || 'unlabelled'}) has ${buf.size} bytes, ${shape} needs ${bytes}`);
    }
  };
  need('w', buffers.w, N * K * elem, `[${N}, ${K}] ${spec.weightDtype}`);
  need('x', buffers.x, K * 4, `one row of ${K} f32`);
  need('y', buffers.y, N * 4, `one row of ${N} f32`);
  if (spec.bias) {
    if (!buffers.bias) throw new ShapeError(`${kernel}: the spec has a bias but none was bound`);
    // The kernel reads the bias in words of 4 values; ctx.createBuffer pads to 16 bytes, enough.
    need('bias', buffers.bias, Math.ceil(N / 4) * 4 * elem, `[${N}] ${spec.weightDtype} read in words of 4`);
  } else if (buffers.bias) {
    throw new ShapeError(`${kernel}: a bias was bound to a kernel created without one`);
  }
  return bindBuffers(ctx, pipeline, `${kernel}.bindGroup`, {
    0: buffers.x,
    1: buffers.w,
    2: buffers.bias ?? placeholder!,
    3: buffers.y,
    4: buffers.params,
  });
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

export class MatMul {
  private constructor(
    private readonly ctx: GpuContext,
    readonly spec: MatmulSpec,
    readonly tiles: MatmulTiles,
    readonly pipeline: GPUComputePipeline,
    private readonly placeholder: GPUBuffer | undefined,
  ) {}

  static async create(ctx: GpuContext, spec: MatmulSpec, tiles = chooseMatmulTiles(ctx.limits)): Promise<MatMul> {
    checkMatmulSpec(ctx, spec, 'matmul');
    const gridX = Math.ceil(spec.N / tiles.tileN);
    if (gridX > ctx.limits.maxComputeWorkgroupsPerDimension) {
      throw new ShapeError(`matmul: N ${spec.N} needs ${gridX} column tiles, over the dispatch limit; split W by rows`);
    }
    const src = weightKernelSource('matmul', 'shaders/model/matmul.wgsl', matmulWgsl, spec.weightDtype);
    const pipeline = await ctx.pipelines.get(src, {
      LANES_X: tiles.lanesX,
      LANES_Y: tiles.lanesY,
      TILE_K4: tiles.tileK4,
    });
    const placeholder = spec.bias ? undefined : await ctx.createBuffer('matmul.noBias', 16, STORAGE);
    return new MatMul(ctx, spec, tiles, pipeline, placeholder);
  }

  /** x f32 [M][K], w [N][K], bias [N] (only with spec.bias), y f32 [M][N], params uniform matmulParams(spec, M). */
  bind(x: GPUBuffer, w: GPUBuffer, bias: GPUBuffer | undefined, y: GPUBuffer, params: GPUBuffer): GPUBindGroup {
    return bindMatmulBuffers(this.ctx, 'matmul', this.pipeline, this.spec, this.placeholder, { x, w, bias, y, params });
  }

  /**
   * Grid: (ceil(N / tileN), ceil(M / tileM)). e.g. M 512, N 2048 with 32 x 32 tiles -> (64, 16);
   * M 33, N 257 -> (9, 2). `M` must equal the params uniform's M.
   */
  grid(M: number): [number, number] {
    return [Math.ceil(this.spec.N / this.tiles.tileN), Math.ceil(M / this.tiles.tileM)];
  }

  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, M: number): void {
    if (!Number.isInteger(M) || M < 0) throw new ShapeError(`matmul: M must be a non-negative integer, got ${M}`);
    if (M === 0) return;
    const [x, y] = this.grid(M);
    if (y > this.ctx.limits.maxComputeWorkgroupsPerDimension) {
      throw new ShapeError(`matmul: M ${M} needs ${y} row tiles, over the dispatch limit; split the step`);
    }
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
  }

  destroy(): void {
    this.placeholder?.destroy();
  }
}
