/**
 * gatedActivation wrapper: out = act(gate) * up (SiLU or GELU-tanh), the middle of a gated MLP.
 * Two input layouts, one kernel (it reads with a row stride and an offset):
 *   'split':  gate f32 [numTokens][I] and up f32 [numTokens][I], two buffers
 *   'concat': one buffer f32 [numTokens][2I], gate | up per row (a fused gate_up projection);
 *             bind it as gate and leave up out
 * Output out f32 [numTokens][I] (its own buffer); params uniform { numTokens u32 } (16 bytes;
 * gatedActivationParams). Grid: numTokens * I threads in workgroups of 64, folded into (x, y).
 * Never submits.
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { Kernel, type Grid, type KernelInit } from './kernel';
import { kernelSource } from './sources';

export type Activation = 'silu' | 'geluTanh';

export interface GatedActivationSpec {
  /** Intermediate size I. */
  intermediate: number;
  activation: Activation;
  layout: 'split' | 'concat';
}

export interface GatedActivationArgs {
  gate: GPUBuffer;
  up?: GPUBuffer;
  out: GPUBuffer;
  params: GPUBuffer;
}

/** The params uniform's contents for `numTokens` tokens. */
export function gatedActivationParams(numTokens: number): Uint32Array {
  return new Uint32Array([numTokens, 0, 0, 0]);
}

export class GatedActivation extends Kernel<GatedActivationArgs> {
  private constructor(
    init: KernelInit,
    readonly spec: GatedActivationSpec,
  ) {
    super(init);
  }

  static async create(ctx: GpuContext, spec: GatedActivationSpec): Promise<GatedActivation> {
    const I = spec.intermediate;
    if (!Number.isInteger(I) || I < 1) {
      throw new ShapeError(`gatedActivation: intermediate must be a positive integer, got ${I}`);
    }
    if (spec.activation !== 'silu' && spec.activation !== 'geluTanh') {
      throw new ShapeError(`gatedActivation: activation must be silu or geluTanh, got ${spec.activation}`);
    }
    if (spec.layout !== 'split' && spec.layout !== 'concat') {
      throw new ShapeError(`gatedActivation: layout must be split or concat, got ${spec.layout}`);
    }
    const concat = spec.layout === 'concat';
    const pipeline = await Kernel.compile(ctx, 'gatedActivation', kernelSource('gatedActivation'), {
      I,
      IN_STRIDE: concat ? 2 * I : I,
      UP_OFFSET: concat ? I : 0,
      ACTIVATION: spec.activation === 'silu' ? 0 : 1,
    });
    const bindings = { gate: 0, up: 1, out: 2, params: 3 };
    return new GatedActivation({ ctx, name: 'gatedActivation', pipeline, bindings, unit: 'tokens' }, spec);
  }

  /** See the file header; `up` exactly for the 'split' layout (concat binds gate twice). */
  bind(b: GatedActivationArgs): GPUBindGroup {
    const I = this.spec.intermediate;
    const concat = this.spec.layout === 'concat';
    if (concat === !!b.up) {
      throw new ShapeError(
        `gatedActivation: up must be given exactly for the split layout (layout ${this.spec.layout})`,
      );
    }
    if (b.out === b.gate || b.out === b.up) throw new ShapeError('gatedActivation: out must be its own buffer');
    this.need('params', b.params, 4, '{ numTokens u32 }');
    const inRow = (concat ? 2 * I : I) * 4;
    const tokens = [b.gate, b.up].filter((x) => x).map((x) => Math.floor(x!.size / inRow));
    return this.bindGroup({ ...b, up: b.up ?? b.gate }, Math.min(...tokens, Math.floor(b.out.size / (I * 4))));
  }

  grid(numTokens: number): Grid {
    return this.grid1D(numTokens * this.spec.intermediate, 64);
  }
}
