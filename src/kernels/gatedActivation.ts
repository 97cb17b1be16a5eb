/**
 * gatedActivation wrapper: out = act(gate) * up (SiLU or GELU-tanh), the middle of a gated MLP.
 * Two input layouts, one kernel (it reads with a row stride and an offset):
 *   'split':  gate f32 [numTokens][I] and up f32 [numTokens][I], two buffers
 *   'concat': one buffer f32 [numTokens][2I], gate | up per row (a fused gate_up projection);
 *             bind it as gate and leave up out
 * Output out f32 [numTokens][I] (its own buffer); params uniform { numTokens u32 } (16 bytes;
 * gatedActivationParams). Never submits.
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { bindBuffers, grid1D } from '../gpu/buffers';
import type { KernelSource } from '../gpu/pipelineCache';
import gatedActivationWgsl from '../../shaders/model/gatedActivation.wgsl?raw';

export type Activation = 'silu' | 'geluTanh';

export interface GatedActivationSpec {
  /** Intermediate size I. */
  intermediate: number;
  activation: Activation;
  layout: 'split' | 'concat';
}

const source: KernelSource = {
  name: 'gatedActivation',
  variant: 'plain',
  parts: [{ file: 'shaders/model/gatedActivation.wgsl', code: gatedActivationWgsl }],
};

/** The params uniform's contents for `numTokens` tokens. */
export function gatedActivationParams(numTokens: number): Uint32Array {
  return new Uint32Array([numTokens, 0, 0, 0]);
}

export class GatedActivation {
  private readonly capacity = new WeakMap<GPUBindGroup, number>();

  private constructor(
    private readonly ctx: GpuContext,
    readonly spec: GatedActivationSpec,
    readonly pipeline: GPUComputePipeline,
  ) {}

  static async create(ctx: GpuContext, spec: GatedActivationSpec): Promise<GatedActivation> {
    const I = spec.intermediate;
    if (!Number.isInteger(I) || I < 1) throw new ShapeError(`gatedActivation: intermediate must be a positive integer, got ${I}`);
    if (spec.activation !== 'silu' && spec.activation !== 'geluTanh') throw new ShapeError(`gatedActivation: activation must be silu or geluTanh, got ${spec.activation}`);
    if (spec.layout !== 'split' && spec.layout !== 'concat') throw new ShapeError(`gatedActivation: layout must be split or concat, got ${spec.layout}`);
    const concat = spec.layout === 'concat';
    const pipeline = await ctx.pipelines.get(source, {
      I,
      IN_STRIDE: concat ? 2 * I : I,
      UP_OFFSET: concat ? I : 0,
      ACTIVATION: spec.activation === 'silu' ? 0 : 1,
    });
    return new GatedActivation(ctx, spec, pipeline);
  }

  /** See the file header; `up` exactly for the 'split' layout. */
  bind(b: { gate: GPUBuffer; up?: GPUBuffer; out: GPUBuffer; params: GPUBuffer }): GPUBindGroup {
    const I = this.spec.intermediate;
    const concat = this.spec.layout === 'concat';
    if (concat === !!b.up) throw new ShapeError(`gatedActivation: up must be given exactly for the split layout (layout ${this.spec.layout})`);
    if (b.out === b.gate || b.out === b.up) throw new ShapeError('gatedActivation: out must be its own buffer');
    if (b.params.size < 4) throw new ShapeError('gatedActivation: params must hold { numTokens u32 }');
    const inRow = (concat ? 2 * I : I) * 4;
    const tokens = [b.gate, b.up].filter((x) => x).map((x) => Math.floor(x!.size / inRow));
    const group = bindBuffers(this.ctx, this.pipeline, 'gatedActivation.bindGroup', { 0: b.gate, 1: b.up ?? b.gate, 2: b.out, 3: b.params });
    this.capacity.set(group, Math.min(...tokens, Math.floor(b.out.size / (I * 4))));
    return group;
  }

  /** `numTokens` must equal the params uniform's numTokens; 0 encodes nothing. */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, numTokens: number): void {
    if (!Number.isInteger(numTokens) || numTokens < 0) throw new ShapeError(`gatedActivation: numTokens must be an integer >= 0, got ${numTokens}`);
    const capacity = this.capacity.get(bindGroup) ?? 0;
    if (numTokens > capacity) throw new ShapeError(`gatedActivation: ${numTokens} tokens but the bound buffers hold ${capacity}`);
    if (numTokens === 0) return;
    const [x, y] = grid1D(this.ctx, numTokens * this.spec.intermediate, 64);
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
  }
}
