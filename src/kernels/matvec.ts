/**
 * matvec wrapper: decode GEMV Y [M, N] = X [M, K] · Wᵀ (+ bias [N]) for M = 1..8 tokens, reading
 * each row of W [N, K] once for all of them (memory-bound: time ≈ W bytes ÷ bandwidth).
 * Same spec, buffers and params uniform as MatMul (matmul.ts); M is a runtime value (params and
 * encode), as are N, K and the bias flag, so one pipeline per weight dtype serves every weight and
 * decode batch size up to MATVEC_MAX_TOKENS. Never submits.
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { STORAGE } from '../gpu/buffers';
import { bindMatmulBuffers, checkMatmulSpec, weightKernelSource, type MatmulSpec } from './matmul';
import matvecWgsl from '../../shaders/model/matvec.wgsl?raw';

/** MAX_TOKENS in matvec.wgsl: the most tokens one dispatch serves. */
export const MATVEC_MAX_TOKENS = 8;
/**
 * Lanes per workgroup: a power of two (the reduction is a tree) and >= MATVEC_MAX_TOKENS (lane m
 * writes token m). Measured on lavapipe (N = K = 1024, 1 token, f16; noisy): WG 8 1.1 ms, 16
 * 1.1 ms, 64 2.5 ms, 256 8 ms; SwiftShader is 30-50 ms at 8..64 and seconds at 256. 64 is kept for
 * real GPUs (two warps / one wavefront); the workgroup memory Dawn zero-fills per workgroup
 * (16 * MAX_TOKENS * WG bytes) is what small WG saves on CPUs.
 */
const WG = 64;
/** Rows of W per workgroup (ROWS in matvec.wgsl). */
const ROWS = 4;

export class MatVec {
  private constructor(
    private readonly ctx: GpuContext,
    readonly spec: MatmulSpec,
    readonly pipeline: GPUComputePipeline,
    private readonly placeholder: GPUBuffer | undefined,
  ) {}

  static async create(ctx: GpuContext, spec: MatmulSpec): Promise<MatVec> {
    checkMatmulSpec(ctx, spec, 'matvec');
    const bytes = 16 * MATVEC_MAX_TOKENS * WG;
    if (bytes > ctx.limits.maxComputeWorkgroupStorageSize || WG > ctx.limits.maxComputeInvocationsPerWorkgroup) {
      throw new ShapeError(`matvec: needs ${bytes} bytes of workgroup storage and ${WG} lanes`);
    }
    const src = weightKernelSource('matvec', 'shaders/model/matvec.wgsl', matvecWgsl, spec.weightDtype);
    const pipeline = await ctx.pipelines.get(src, { WG });
    const placeholder = spec.bias ? undefined : await ctx.createBuffer('matvec.noBias', 16, STORAGE);
    return new MatVec(ctx, spec, pipeline, placeholder);
  }

  /** x f32 [M][K], w [N][K], bias [N] (only with spec.bias), y f32 [M][N], params uniform matmulParams(spec, M). */
  bind(x: GPUBuffer, w: GPUBuffer, bias: GPUBuffer | undefined, y: GPUBuffer, params: GPUBuffer): GPUBindGroup {
    return bindMatmulBuffers(this.ctx, 'matvec', this.pipeline, this.spec, this.placeholder, { x, w, bias, y, params });
  }

  /**
   * Grid: one workgroup per strip of 4 rows, ceil(N / 4) strips laid out as (x, y) with
   * x <= maxComputeWorkgroupsPerDimension (the shader numbers strips wid.y * x + wid.x and skips
   * those past N). e.g. N 4096 -> (1024, 1); N 151936 (a vocabulary) -> 37984 strips -> (37984, 1);
   * N 300000 with a 65535 limit -> 75000 strips -> (37500, 2).
   */
  grid(): [number, number] {
    const strips = Math.ceil(this.spec.N / ROWS);
    const maxX = this.ctx.limits.maxComputeWorkgroupsPerDimension;
    if (strips <= maxX) return [strips, 1];
    const y = Math.ceil(strips / maxX);
    return [Math.ceil(strips / y), y];
  }

  /** `M` (1..8) must equal the params uniform's M; 0 encodes nothing. */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, M: number): void {
    if (!Number.isInteger(M) || M < 0 || M > MATVEC_MAX_TOKENS) {
      throw new ShapeError(`matvec: M must be 0..${MATVEC_MAX_TOKENS} tokens, got ${M}; use MatMul for more`);
    }
    if (M === 0) return;
    const [x, y] = this.grid();
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
  }

  destroy(): void {
    this.placeholder?.destroy();
  }
}
