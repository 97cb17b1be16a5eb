/**
 * rmsNorm wrapper: y = x / sqrt(mean(x²) + eps) * w (gemma: * (1 + w)) over rows of width `dim`,
 * optionally fused with the residual add that precedes it (residual += x; y = norm(residual)),
 * out of place or in place (y is x). One workgroup per row. Never submits.
 *
 * Buffers (rows is a runtime count, in the params uniform):
 *   x         f32 [rows][dim]   input (the sublayer output when fused); the output when inPlace
 *   residual  f32 [rows][dim]   fused only: the residual stream, updated in place
 *   weight    [dim] f32, or f16 bit patterns two per u32 word (weightDtype), as weights.ts uploads
 *   y         f32 [rows][dim]   output (not bound when inPlace)
 *   params    uniform { rows u32 } (16 bytes; rmsNormParams)
 * Typical forward use: xn = norm(h) (plain); after attention / MLP: h += a; xn = norm(h) (fused,
 * x = a, residual = h, y = xn); qwen3 q/k norm: rows = tokens * heads, dim = headDim, inPlace.
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { bindBuffers, grid1D, STORAGE } from '../gpu/buffers';
import type { KernelSource } from '../gpu/pipelineCache';
import type { WeightDtype } from '../model/weights';
import rmsNormWgsl from '../../shaders/model/rmsNorm.wgsl?raw';

export interface RmsNormSpec {
  /** Row width (hidden size, or head dim for q/k norms); any size >= 1. */
  dim: number;
  eps: number;
  weightDtype: WeightDtype;
  /** Gemma: scale by (1 + w) instead of w. */
  weightPlusOne?: boolean;
  /** Fused residual add: residual += x, then normalise residual. */
  fused?: boolean;
  /** Write the output over x (no y buffer). */
  inPlace?: boolean;
}

/** Lanes per workgroup (a power of two: the reduction is a tree). */
const WG = 64;

const source: KernelSource = { name: 'rmsNorm', variant: 'plain', parts: [{ file: 'shaders/model/rmsNorm.wgsl', code: rmsNormWgsl }] };

/** The params uniform's contents for `rows` rows. */
export function rmsNormParams(rows: number): Uint32Array {
  return new Uint32Array([rows, 0, 0, 0]);
}

export class RmsNorm {
  private constructor(
    private readonly ctx: GpuContext,
    readonly spec: RmsNormSpec,
    readonly pipeline: GPUComputePipeline,
    /** Bound in place of residual (not fused) and y (in place), which the kernel never touches then. */
    private readonly placeholders: [GPUBuffer, GPUBuffer],
  ) {}

  /** Rows the buffers of each bind group hold, checked by encode. */
  private readonly capacity = new WeakMap<GPUBindGroup, number>();

  static async create(ctx: GpuContext, spec: RmsNormSpec): Promise<RmsNorm> {
    const { dim, eps } = spec;
    if (!Number.isInteger(dim) || dim < 1) throw new ShapeError(`rmsNorm: dim must be a positive integer, got ${dim}`);
    if (!(eps >= 0) || !Number.isFinite(eps)) throw new ShapeError(`rmsNorm: eps must be finite and >= 0, got ${eps}`);
    if (spec.weightDtype !== 'f32' && spec.weightDtype !== 'f16') throw new ShapeError(`rmsNorm: weightDtype must be f32 or f16, got ${spec.weightDtype}`);
    if (spec.fused && spec.inPlace) throw new ShapeError('rmsNorm: fused writes x only as input; inPlace and fused exclude each other');
    const pipeline = await ctx.pipelines.get(source, {
      DIM: dim,
      EPS: eps,
      WEIGHT_F16: spec.weightDtype === 'f16' ? 1 : 0,
      PLUS_ONE: spec.weightPlusOne ? 1 : 0,
      FUSED: spec.fused ? 1 : 0,
      IN_PLACE: spec.inPlace ? 1 : 0,
      WG,
    });
    // Two: one buffer in two writable bindings is an aliasing error.
    const placeholders: [GPUBuffer, GPUBuffer] = [
      await ctx.createBuffer('rmsNorm.noResidual', 16, STORAGE),
      await ctx.createBuffer('rmsNorm.noY', 16, STORAGE),
    ];
    return new RmsNorm(ctx, spec, pipeline, placeholders);
  }

  /** See the file header for shapes. `residual` only when fused; `y` only when not inPlace. */
  bind(b: { x: GPUBuffer; residual?: GPUBuffer; weight: GPUBuffer; y?: GPUBuffer; params: GPUBuffer }): GPUBindGroup {
    const { dim, fused, inPlace, weightDtype } = this.spec;
    if (!!fused !== !!b.residual) throw new ShapeError(`rmsNorm: residual must be given exactly when fused (fused ${!!fused})`);
    if (!!inPlace === !!b.y) throw new ShapeError(`rmsNorm: y must be given exactly when not inPlace (inPlace ${!!inPlace})`);
    const wordsBytes = weightDtype === 'f16' ? Math.ceil(dim / 2) * 4 : dim * 4;
    if (b.weight.size < wordsBytes) throw new ShapeError(`rmsNorm: weight holds ${b.weight.size} bytes, needs ${wordsBytes} (${dim} ${weightDtype})`);
    for (const [name, buf] of [['x', b.x], ['residual', b.residual], ['y', b.y]] as const) {
      if (buf && buf.size < dim * 4) throw new ShapeError(`rmsNorm: ${name} holds ${buf.size} bytes, less than one row of ${dim} f32`);
    }
    if (b.params.size < 4) throw new ShapeError('rmsNorm: params must hold { rows u32 }');
    const rows = Math.min(...[b.x, b.residual, b.y].filter((buf) => buf).map((buf) => Math.floor(buf!.size / (dim * 4))));
    const group = bindBuffers(this.ctx, this.pipeline, 'rmsNorm.bindGroup', {
      0: b.x,
      1: b.residual ?? this.placeholders[0],
      2: b.weight,
      3: b.y ?? this.placeholders[1],
      4: b.params,
    });
    this.capacity.set(group, rows);
    return group;
  }

  /** `rows` must equal the params uniform's rows and fit the bound buffers; 0 encodes nothing. */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, rows: number): void {
    if (!Number.isInteger(rows) || rows < 0) throw new ShapeError(`rmsNorm: rows must be an integer >= 0, got ${rows}`);
    const capacity = this.capacity.get(bindGroup) ?? 0;
    if (rows > capacity) throw new ShapeError(`rmsNorm: ${rows} rows of ${this.spec.dim} but the bound buffers hold ${capacity}`);
    if (rows === 0) return;
    const [x, y] = grid1D(this.ctx, rows, 1); // one workgroup per row: e.g. 70000 rows with a 65535 limit -> (35000, 2)
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
  }

  destroy(): void {
    this.placeholders.forEach((b) => b.destroy());
  }
}
