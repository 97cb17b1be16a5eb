/**
 * DeepSeek MLA in the absorbed form: the parts of a layer around the attention kernels, which the
 * Transformer encodes in place of llama's q/k/v block when the config has kv_lora_rank. Same shape
 * as the Transformer: set-up once (kernels, buffers), bind per layer, encode per step.
 *
 * Names: H heads, C = kv_lora_rank (the latent), N = qk_nope_head_dim, R = qk_rope_head_dim,
 * V = v_head_dim. kv_b_proj [H (N + V), C] holds per head W_UK[h] (N rows) then W_UV[h] (V rows).
 * Per layer, before attention:
 *   q      = xn Wq  [T][H][N + R]         (or q_b(rmsNorm(q_a(xn))) when q_lora_rank is set)
 *   kva    = xn Wkv_a  [T][C + R]        = [c_kv | k_pe] before the norm
 *   latent = [rmsNorm(c_kv) | k_pe]      (rmsNorm with stride C + R; then RoPE rotates k_pe and q's rope part,
 *                                         interleaved pairs, by the Transformer's rope)
 *   query  = [W_UK[h]^T q_nope[h] | q_pe[h]]  [T][H][C + R]   (headMatmul)
 * The cache row is `latent` (one per token, V aliases K), so attention over it with the model's
 * softmax scale gives o_lat [T][H][C], since q_nope·k_nope = (W_UK^T q_nope)·c_kv. After attention:
 *   heads  = W_UV[h] o_lat[h]  [T][H][V]  (headMatmul), then the Transformer's o_proj.
 */
import type { GpuContext } from '../gpu/context';
import type { AttentionSpec } from '../kernels/pagedAttention';
import type { MatmulSpec } from '../kernels/matmul';
import { HeadMatmul } from '../kernels/headMatmul';
import { RmsNorm } from '../kernels/rmsNorm';
import type { RopeSpec } from '../kernels/rope';
import type { ModelSpec } from './config';
import type { KvDtype, WeightDtype } from '../gpu/dtype';

/** The projections an MLA layer adds (q_proj, or q_a_proj + q_b_proj; kv_a_proj_with_mqa). */
export type MlaProj = 'q' | 'qa' | 'qb' | 'kva';

export function mlaProjSpecs(spec: ModelSpec, wd: WeightDtype): Partial<Record<MlaProj, MatmulSpec>> {
  const { qLoraRank, kvLoraRank: C, qkNopeHeadDim: N, qkRopeHeadDim: R } = spec.mla!;
  const Hd = spec.hiddenSize;
  const qOut = spec.numHeads * (N + R);
  const lin = (out: number, inDim: number): MatmulSpec => ({ N: out, K: inDim, weightDtype: wd, bias: false });
  return {
    ...(qLoraRank === null ? { q: lin(qOut, Hd) } : { qa: lin(qLoraRank, Hd), qb: lin(qOut, qLoraRank) }),
    kva: lin(C + R, Hd),
  };
}

/** The attention kernels' view: one latent row [c_kv | k_pe] per token, read as K and (its first C values) as V. */
export function mlaAttentionSpec(spec: ModelSpec, pageSize: number, kvDtype: KvDtype): AttentionSpec {
  const { kvLoraRank: C, qkRopeHeadDim: R } = spec.mla!;
  return { numKvHeads: 1, groupSize: spec.numHeads, headDimQK: C + R, headDimV: C, pageSize, kvDtype, vAliasesK: true };
}

/** RoPE operands: q's rope part after the nope part of each head; k_pe after c_kv in the latent row. */
export function mlaRopeOperands(spec: ModelSpec): Pick<RopeSpec, 'q' | 'k'> {
  const { kvLoraRank: C, qkNopeHeadDim: N, qkRopeHeadDim: R } = spec.mla!;
  return { q: { heads: spec.numHeads, headStride: N + R, offset: N }, k: { heads: 1, headStride: C + R, offset: C } };
}

/** A layer's MLA binds; L is the Transformer's projection (GEMM + GEMV bind groups). */
export interface MlaLayer<L> {
  q?: L;
  qa?: L;
  qaNorm?: GPUBindGroup;
  qb?: L;
  kva: L;
  latentNorm: GPUBindGroup;
  absorbQuery: GPUBindGroup;
  absorbOutput: GPUBindGroup;
}

export class MlaAttention {
  private constructor(
    private readonly spec: ModelSpec,
    private readonly k: { qaNorm?: RmsNorm; latentNorm: RmsNorm; absorbQuery: HeadMatmul; absorbOutput: HeadMatmul },
    /** The step's MLA buffers, sized for maxTokens. */
    readonly b: {
      q: GPUBuffer; // f32 [T][H][N + R]: q projection, roped in place
      cq?: GPUBuffer; // f32 [T][qLoraRank]: q_a output, normed in place
      kva: GPUBuffer; // f32 [T][C + R]: kv_a output
      latent: GPUBuffer; // f32 [T][C + R]: the cache rows, k_pe roped in place
      heads: GPUBuffer; // f32 [T][H][V]: per-head outputs, o_proj's input
    },
  ) {}

  /** `make(label, floats)` creates a storage buffer the caller owns. */
  static async create(
    ctx: GpuContext,
    spec: ModelSpec,
    wd: WeightDtype,
    maxTokens: number,
    make: (label: string, floats: number) => Promise<GPUBuffer>,
  ): Promise<MlaAttention> {
    const { qLoraRank, kvLoraRank: C, qkNopeHeadDim: N, qkRopeHeadDim: R, vHeadDim: V } = spec.mla!;
    const H = spec.numHeads;
    const M = maxTokens;
    const kvb = { heads: H, wCols: C, wHeadRows: N + V, weightDtype: wd };
    const k = {
      qaNorm:
        qLoraRank === null
          ? undefined
          : await RmsNorm.create(ctx, { dim: qLoraRank, eps: spec.rmsNormEps, weightDtype: wd, inPlace: true }),
      latentNorm: await RmsNorm.create(ctx, { dim: C, stride: C + R, eps: spec.rmsNormEps, weightDtype: wd }),
      absorbQuery: await HeadMatmul.create(ctx, { ...kvb, wRow0: 0, transposed: true, in: N, copy: R }),
      absorbOutput: await HeadMatmul.create(ctx, { ...kvb, wRow0: N, transposed: false, in: C }),
    };
    const b = {
      q: await make('mla.q', M * H * (N + R)),
      cq: qLoraRank === null ? undefined : await make('mla.cq', M * qLoraRank),
      kva: await make('mla.kva', M * (C + R)),
      latent: await make('mla.latent', M * (C + R)),
      heads: await make('mla.heads', M * H * V),
    };
    return new MlaAttention(spec, k, b);
  }

  /**
   * Layer l's binds. io: the layer's normed input xn, the attention kernels' query [T][H][C + R]
   * and output o_lat [T][H][C], and the step's { T } uniform; `linear` binds a projection.
   */
  bindLayer<L>(
    l: number,
    w: (name: string) => GPUBuffer,
    io: { xn: GPUBuffer; query: GPUBuffer; attnOut: GPUBuffer; tokens: GPUBuffer },
    linear: (role: MlaProj, weight: string, x: GPUBuffer, y: GPUBuffer) => L,
  ): MlaLayer<L> {
    const p = `model.layers.${l}.self_attn.`;
    const { k, b } = this;
    const kvb = w(`${p}kv_b_proj.weight`);
    const lora = this.spec.mla!.qLoraRank !== null;
    return {
      q: lora ? undefined : linear('q', `${p}q_proj.weight`, io.xn, b.q),
      qa: lora ? linear('qa', `${p}q_a_proj.weight`, io.xn, b.cq!) : undefined,
      qaNorm: lora ? k.qaNorm!.bind({ x: b.cq!, weight: w(`${p}q_a_layernorm.weight`), params: io.tokens }) : undefined,
      qb: lora ? linear('qb', `${p}q_b_proj.weight`, b.cq!, b.q) : undefined,
      kva: linear('kva', `${p}kv_a_proj_with_mqa.weight`, io.xn, b.kva),
      latentNorm: k.latentNorm.bind({
        x: b.kva,
        weight: w(`${p}kv_a_layernorm.weight`),
        y: b.latent,
        params: io.tokens,
      }),
      absorbQuery: k.absorbQuery.bind({ x: b.q, w: kvb, y: io.query, params: io.tokens }),
      absorbOutput: k.absorbOutput.bind({ x: io.attnOut, w: kvb, y: b.heads, params: io.tokens }),
    };
  }

  /** xn -> q [T][H][N + R] and the latent rows [T][C + R], both before RoPE. */
  encodeProjections<L>(
    pass: GPUComputePassEncoder,
    L: MlaLayer<L>,
    T: number,
    linear: (lin: L, M: number) => void,
  ): void {
    if (L.q) {
      linear(L.q, T);
    } else {
      linear(L.qa!, T);
      this.k.qaNorm!.encode(pass, L.qaNorm!, T);
      linear(L.qb!, T);
    }
    linear(L.kva, T);
    this.k.latentNorm.encode(pass, L.latentNorm, T);
  }

  /** Roped q -> the attention query [q_lat | q_pe] [T][H][C + R]. */
  encodeQuery(pass: GPUComputePassEncoder, L: MlaLayer<unknown>, T: number): void {
    this.k.absorbQuery.encode(pass, L.absorbQuery, T);
  }

  /** o_lat [T][H][C] -> heads [T][H][V] (o_proj's input). */
  encodeOutput(pass: GPUComputePassEncoder, L: MlaLayer<unknown>, T: number): void {
    this.k.absorbOutput.encode(pass, L.absorbOutput, T);
  }
}
