/**
 * latentNorm wrapper: MLA's cache row from kv_a_proj_with_mqa's output, rows [c_kv (dim) | k_pe]:
 * RMSNorm (kv_a_layernorm) over the first `dim` values, the rest copied (see
 * shaders/model/latentNorm.wgsl). One workgroup per row. Never submits.
 *
 * Buffers (rows is a runtime count, in the params uniform):
 *   x       f32 [rows][stride]
 *   weight  [dim] f32, or f16 bit patterns two per u32 word (weightDtype), as weights.ts uploads
 *   y       f32 [rows][stride]
 *   params  uniform { rows u32 } (16 bytes)
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { bindBuffers, grid1D } from '../gpu/buffers';
import type { KernelSource } from '../gpu/pipelineCache';
import type { WeightDtype } from '../model/weights';
import latentNormWgsl from '../../shaders/model/latentNorm.wgsl?raw';

export interface LatentNormSpec {
  /** Normalised values per row (kv_lora_rank). */
  dim: number;
  /** Row width (kv_lora_rank + qk_rope_head_dim). */
  stride: number;
  eps: number;
  weightDtype: WeightDtype;
}

const WG = 64;
const source: KernelSource = { name: 'latentNorm', variant: 'plain', parts: [{ file: 'shaders/model/latentNorm.wgsl', code: latentNormWgsl }] };

export class LatentNorm {
  private readonly capacity = new WeakMap<GPUBindGroup, number>();

  private constructor(
    private readonly ctx: GpuContext,
    readonly spec: LatentNormSpec,
    readonly pipeline: GPUComputePipeline,
  ) {}

  static async create(ctx: GpuContext, spec: LatentNormSpec): Promise<LatentNorm> {
    const { dim, stride, eps } = spec;
    if (!Number.isInteger(dim) || dim < 1 || !Number.isInteger(stride) || stride < dim) {
      throw new ShapeError(`latentNorm: need integers 1 <= dim <= stride, got dim ${dim}, stride ${stride}`);
    }
    if (!(eps >= 0) || !Number.isFinite(eps)) throw new ShapeError(`latentNorm: eps must be finite and >= 0, got ${eps}`);
    const pipeline = await ctx.pipelines.get(source, { DIM: dim, STRIDE: stride, EPS: eps, WEIGHT_F16: spec.weightDtype === 'f16' ? 1 : 0, WG });
    return new LatentNorm(ctx, spec, pipeline);
  }

  /** See the file header for shapes; x and y must be different buffers. */
  bind(b: { x: GPUBuffer; weight: GPUBuffer; y: GPUBuffer; params: GPUBuffer }): GPUBindGroup {
    const { dim, stride, weightDtype } = this.spec;
    const wBytes = weightDtype === 'f16' ? Math.ceil(dim / 2) * 4 : dim * 4;
    if (b.weight.size < wBytes) throw new ShapeError(`latentNorm: weight holds ${b.weight.size} bytes, needs ${wBytes} (${dim} ${weightDtype})`);
    if (b.x === b.y) throw new ShapeError('latentNorm: x and y must be different buffers');
    if (b.params.size < 4) throw new ShapeError('latentNorm: params must hold { rows u32 }');
    const group = bindBuffers(this.ctx, this.pipeline, 'latentNorm.bindGroup', { 0: b.x, 1: b.weight, 2: b.y, 3: b.params });
    this.capacity.set(group, Math.floor(Math.min(b.x.size, b.y.size) / (4 * stride)));
    return group;
  }

  /** `rows` must equal the params uniform's rows; 0 encodes nothing. */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, rows: number): void {
    const capacity = this.capacity.get(bindGroup) ?? 0;
    if (!Number.isInteger(rows) || rows < 0 || rows > capacity) throw new ShapeError(`latentNorm: ${rows} rows; the bound buffers hold ${capacity}`);
    if (rows === 0) return;
    const [x, y] = grid1D(this.ctx, rows, 1);
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
  }
}
