/**
 * rmsNorm wrapper: y = x / sqrt(mean(x²) + eps) * w (gemma: * (1 + w)) over the first `dim` values
 * of rows of `stride` values (default dim), optionally fused with the residual add that precedes
 * it (residual += x; y = norm(residual)), out of place or in place (y is x). With stride > dim
 * (MLA's latent norm: kv_a_layernorm over c_kv of the row [c_kv | k_pe]) the rest of each row is
 * copied from x to y unchanged. One workgroup per row. Never submits.
 *
 * Bind arguments (rows is a runtime count, in the params uniform):
 *   x         f32 [rows][stride]   input (the sublayer output when fused); the output when inPlace
 *   residual  f32 [rows][stride]   fused only: the residual stream, updated in place
 *   weight    [dim] f32, or f16 bit patterns two per u32 word (weightDtype), as weights.ts uploads
 *   y         f32 [rows][stride]   output (not given when inPlace)
 *   params    uniform { rows u32 } (16 bytes; rmsNormParams)
 * Typical forward use: xn = norm(h) (plain); after attention / MLP: h += a; xn = norm(h) (fused,
 * x = a, residual = h, y = xn); qwen3 q/k norm: rows = tokens * heads, dim = headDim, inPlace;
 * MLA: { dim: kv_lora_rank, stride: kv_lora_rank + qk_rope_head_dim }, x = kv_a output, y = latent.
 * Grid: one workgroup per row, folded into (x, y).
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { isWeightDtype, storageBytes, type WeightDtype } from '../gpu/dtype';
import { Kernel, type Grid, type KernelInit } from './kernel';
import { kernelSource } from './sources';

export interface RmsNormSpec {
  /** Normalised values per row (hidden size, head dim for q/k norms, kv_lora_rank); any size >= 1. */
  dim: number;
  /** Values from one row to the next (default dim); past dim they are copied. Not with fused / inPlace. */
  stride?: number;
  eps: number;
  weightDtype: WeightDtype;
  /** Gemma: scale by (1 + w) instead of w. */
  weightPlusOne?: boolean;
  /** Fused residual add: residual += x, then normalise residual. */
  fused?: boolean;
  /** Write the output over x (no y buffer). */
  inPlace?: boolean;
}

export interface RmsNormArgs {
  x: GPUBuffer;
  residual?: GPUBuffer;
  weight: GPUBuffer;
  y?: GPUBuffer;
  params: GPUBuffer;
}

/** Lanes per workgroup (a power of two: the reduction is a tree). */
const WG = 64;
const BINDINGS = { x: 0, residual: 1, weight: 2, y: 3, params: 4 };

/** The params uniform's contents for `rows` rows. */
export function rmsNormParams(rows: number): Uint32Array {
  return new Uint32Array([rows, 0, 0, 0]);
}

export class RmsNorm extends Kernel<RmsNormArgs> {
  private constructor(
    init: KernelInit,
    readonly spec: RmsNormSpec,
    readonly stride: number,
    /** Bound in place of residual (not fused) and y (in place), which the kernel never touches then. */
    private readonly placeholders: [GPUBuffer, GPUBuffer],
  ) {
    super(init);
  }

  static async create(ctx: GpuContext, spec: RmsNormSpec): Promise<RmsNorm> {
    const { dim, eps } = spec;
    const stride = spec.stride ?? dim;
    if (!Number.isInteger(dim) || dim < 1) throw new ShapeError(`rmsNorm: dim must be a positive integer, got ${dim}`);
    if (!Number.isInteger(stride) || stride < dim) {
      throw new ShapeError(`rmsNorm: need integers 1 <= dim <= stride, got dim ${dim}, stride ${stride}`);
    }
    if (!(eps >= 0) || !Number.isFinite(eps)) throw new ShapeError(`rmsNorm: eps must be finite and >= 0, got ${eps}`);
    if (!isWeightDtype(spec.weightDtype)) {
      throw new ShapeError(`rmsNorm: weightDtype must be f32 or f16, got ${spec.weightDtype}`);
    }
    if (spec.fused && spec.inPlace) {
      throw new ShapeError('rmsNorm: fused writes x only as input; inPlace and fused exclude each other');
    }
    if (stride > dim && (spec.fused || spec.inPlace)) {
      throw new ShapeError(
        `rmsNorm: stride ${stride} > dim ${dim} copies the row tail to y; not with fused or inPlace`,
      );
    }
    const pipeline = await Kernel.compile(
      ctx,
      'rmsNorm',
      kernelSource('rmsNorm'),
      {
        DIM: dim,
        // Only when set, so the pipelines (and cache keys) of plain norms stay what they were.
        ...(stride !== dim ? { STRIDE: stride } : {}),
        EPS: eps,
        WEIGHT_F16: spec.weightDtype === 'f16' ? 1 : 0,
        PLUS_ONE: spec.weightPlusOne ? 1 : 0,
        FUSED: spec.fused ? 1 : 0,
        IN_PLACE: spec.inPlace ? 1 : 0,
        WG,
      },
      { invocations: WG, workgroupBytes: 4 * WG },
    );
    // Two: one buffer in two writable bindings is an aliasing error.
    const placeholders: [GPUBuffer, GPUBuffer] = [
      await Kernel.placeholder(ctx, 'rmsNorm.noResidual'),
      await Kernel.placeholder(ctx, 'rmsNorm.noY'),
    ];
    const init = { ctx, name: 'rmsNorm', pipeline, bindings: BINDINGS, unit: 'rows', owned: placeholders };
    return new RmsNorm(init, spec, stride, placeholders);
  }

  /** See the file header for shapes. `residual` only when fused; `y` only when not inPlace. */
  bind(b: RmsNormArgs): GPUBindGroup {
    const { dim, fused, inPlace, weightDtype } = this.spec;
    const row = this.stride * 4;
    if (!!fused !== !!b.residual) {
      throw new ShapeError(`rmsNorm: residual must be given exactly when fused (fused ${!!fused})`);
    }
    if (!!inPlace === !!b.y)
      throw new ShapeError(`rmsNorm: y must be given exactly when not inPlace (inPlace ${!!inPlace})`);
    if (this.stride > dim && b.y === b.x)
      throw new ShapeError('rmsNorm: with stride > dim, x and y must be different buffers');
    const wordsBytes = weightDtype === 'f16' ? Math.ceil(dim / 2) * 4 : storageBytes(weightDtype, dim);
    this.need('weight', b.weight, wordsBytes, `${dim} ${weightDtype}`);
    for (const [name, buf] of [
      ['x', b.x],
      ['residual', b.residual],
      ['y', b.y],
    ] as const) {
      if (buf) this.need(name, buf, row, `one row of ${this.stride} f32`);
    }
    this.need('params', b.params, 4, '{ rows u32 }');
    const rows = Math.min(...[b.x, b.residual, b.y].filter((buf) => buf).map((buf) => Math.floor(buf!.size / row)));
    const buffers = { ...b, residual: b.residual ?? this.placeholders[0], y: b.y ?? this.placeholders[1] };
    return this.bindGroup(buffers, rows);
  }

  /** One workgroup per row: e.g. 70000 rows with a 65535 limit -> (35000, 2). */
  grid(rows: number): Grid {
    return this.grid1D(rows, 1);
  }
}
