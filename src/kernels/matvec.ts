/**
 * matvec wrapper: decode GEMV Y [M, N] = X [M, K] · Wᵀ (+ bias [N]) for M = 1..8 tokens, reading
 * each row of W [N, K] once for all of them (memory-bound: time ≈ W bytes ÷ bandwidth).
 * Same spec, buffers and params uniform as MatMul (matmul.ts); M is a runtime value (params and
 * encode), as are N, K and the bias flag, so one pipeline per weight dtype serves every weight and
 * decode batch size up to MATVEC_MAX_TOKENS. Never submits.
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { Kernel } from './kernel';
import { checkMatmulSpec, MatmulKernel, type MatmulSpec } from './matmul';
import { kernelSource, weightWord4Format } from './sources';

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

export class MatVec extends MatmulKernel {
  private constructor(
    ctx: GpuContext,
    pipeline: GPUComputePipeline,
    spec: MatmulSpec,
    placeholder: GPUBuffer | undefined,
  ) {
    super(ctx, 'matvec', pipeline, spec, placeholder);
  }

  static async create(ctx: GpuContext, spec: MatmulSpec): Promise<MatVec> {
    checkMatmulSpec(ctx, spec, 'matvec');
    const src = kernelSource('matvec', { word: weightWord4Format(spec.weightDtype) });
    const needs = { invocations: WG, workgroupBytes: 16 * MATVEC_MAX_TOKENS * WG };
    const pipeline = await Kernel.compile(ctx, 'matvec', src, { WG }, needs);
    const placeholder = spec.bias ? undefined : await Kernel.placeholder(ctx, 'matvec.noBias');
    return new MatVec(ctx, pipeline, spec, placeholder);
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

  /** `M` (1..8) must equal the params uniform's M. */
  protected override checkCount(M: number): void {
    if (M > MATVEC_MAX_TOKENS) {
      throw new ShapeError(`matvec: M must be 0..${MATVEC_MAX_TOKENS} tokens, got ${M}; use MatMul for more`);
    }
  }
}
