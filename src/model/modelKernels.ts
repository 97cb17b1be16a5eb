/**
 * The kernels one model needs, specialised once at load from its spec (src/model/transformer.ts binds
 * and encodes them): embedding, norms, RoPE, KV append, attention (flashPrefill, split-KV or mlaDecode
 * + merge), copy-on-write, the gated MLP, and a GEMM + GEMV per projection role and stored dtype.
 *
 * Kernels are keyed by (role, dtype): a GGUF file mixes formats across layers (a Q4_K_M file holds
 * Q4_K for most projections, Q6_K for some layers' v_proj / down_proj, Q5_0 / Q8_0 where rows are
 * not whole 256-blocks, F16 where they are not whole 32-blocks), and each tensor stays in its own
 * format (ggufModelFiles.ts ggufNativeTensors). The shapes are runtime values of the params uniform
 * and equal across layers, so one pipeline pair per (role, dtype) that the weights actually hold
 * serves every layer; transformer.ts picks each layer's pair at bind time (Kernels.proj).
 */
import type { TransformerOptions } from './transformerOptions';
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { pageBufferBytes } from '../kernels/kvPool';
import type { AttentionSpec } from '../kernels/pagedAttention';
import { FlashPrefill } from '../kernels/flashPrefill';
import { SplitKvDecode, type SplitKvKernel } from '../kernels/splitKvDecode';
import { MlaDecode } from '../kernels/mlaDecode';
import { MergePartials } from '../kernels/mergePartials';
import { CopyPages } from '../kernels/copyPages';
import { KvAppend } from '../kernels/kvAppend';
import type { MatMul, MatmulSpec } from '../kernels/matmul';
import type { MatVec } from '../kernels/matvec';
import { RmsNorm } from '../kernels/rmsNorm';
import { Rope, type RopeSpec as RopeKernelSpec } from '../kernels/rope';
import { Embedding } from '../kernels/embedding';
import { GatedActivation } from '../kernels/gatedActivation';
import type { ModelSpec } from './config';
import { ropeAttentionFactor, ropeLongFrom } from './ropeFrequencies';
import { storedDtype, type LoadDtype } from './weights';
import type { MatrixDtype, WeightDtype } from '../gpu/dtype';
import {
  createMatmul,
  createMatvec,
  type AnyMatmulSpec,
  type QuantMatMul,
  type QuantMatVec,
} from '../kernels/matmulQuant';
import { createEmbedding, type QuantEmbedding } from '../kernels/embeddingQuant';
import { mlaProjSpecs, mlaRopeOperands, type MlaProj } from './mlaAttention';

/** Projections by role (MLA: q or qa + qb, and kva, instead of q, k, v). */
export type Proj = 'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down' | 'lmHead' | MlaProj;

/** The GEMM (prefill) and GEMV (decode) of one projection role at one stored dtype. */
export interface ProjKernels {
  gemm: MatMul | QuantMatMul;
  gemv: MatVec | QuantMatVec;
}

/** The stored dtype of an uploaded weight, by HF name (GpuWeight.dtype). */
export type WeightDtypeOf = (name: string) => MatrixDtype;

export interface Kernels {
  embedding: Embedding | QuantEmbedding;
  gatherLast: Embedding;
  normPlain: RmsNorm;
  normFused: RmsNorm;
  /** gemma2/3 sandwich norms: the attention and MLP outputs normalised in place before the residual add. */
  normInPlace?: RmsNorm;
  /** qwen3 q/k norm: one kernel, bound once for q rows and once for k rows. */
  headNorm?: RmsNorm;
  rope: Rope;
  /** gemma3: the local layers' RoPE (rope_local_base_freq). */
  ropeLocal?: Rope;
  append: KvAppend;
  prefill: FlashPrefill;
  /** Split-KV decode; MLA: the head-blocked kernel that reads each latent row once per head block. */
  decode: SplitKvKernel; // SplitKvDecode, or MlaDecode for MLA
  merge: MergePartials;
  /** Copy-on-write of whole pages: in the K buffers, and the V buffers when their page size differs
   *  (MLA: no V buffer). */
  copyK: CopyPages;
  copyV?: CopyPages;
  act: GatedActivation;
  /**
   * The kernels of projection `role` for the weight `name` at its stored dtype, created at load for
   * every (role, dtype) the weights hold: e.g. v_proj Q6_K in layer 0 and Q4_K in layer 1 -> two pairs.
   */
  proj(role: Proj, name: string): ProjKernels;
}

/** The kernels that bind a layer's KV pages: made once for the model's spec, again for a split pool's. */
export interface AttentionKernels {
  append: KvAppend;
  prefill: FlashPrefill;
  decode: SplitKvKernel;
}

/**
 * The attention and append kernels for `attn`: the model's spec at load, or a split pool's spec
 * (KvPool.spec, pagesPerBuffer set) before such a pool is bound (Transformer.prepareKv).
 */
export async function createAttentionKernels(ctx: GpuContext, attn: AttentionSpec): Promise<AttentionKernels> {
  return {
    append: await KvAppend.create(ctx, attn),
    prefill: await FlashPrefill.create(ctx, attn),
    decode: attn.vAliasesK ? await mlaDecodeOrGeneric(ctx, attn) : await SplitKvDecode.create(ctx, attn),
  };
}

export async function createKernels(
  ctx: GpuContext,
  spec: ModelSpec,
  attn: AttentionSpec,
  opts: Required<TransformerOptions>,
  /** The stored dtype of each uploaded weight (GpuWeight.dtype). */
  dtypeOf: WeightDtypeOf,
): Promise<Kernels> {
  const wd = vectorDtype(opts.weightDtype);
  const norm = { dim: spec.hiddenSize, eps: spec.rmsNormEps, weightDtype: wd, weightPlusOne: spec.normWeightPlusOne };
  const kernels = new Map<string, ProjKernels>(); // `${role}:${dtype}`
  for (const [role, s] of Object.entries(plainProjSpecs(spec, wd)) as [Proj, MatmulSpec][]) {
    for (const weightDtype of new Set(projTensors(spec, role).map(dtypeOf))) {
      const any: AnyMatmulSpec = { ...s, weightDtype };
      kernels.set(`${role}:${weightDtype}`, { gemm: await createMatmul(ctx, any), gemv: await createMatvec(ctx, any) });
    }
  }
  const proj = (role: Proj, name: string): ProjKernels => {
    const found = kernels.get(`${role}:${dtypeOf(name)}`);
    if (!found) throw new ShapeError(`${name}: no ${role} kernel for its dtype ${dtypeOf(name)} was created`);
    return found;
  };
  return {
    embedding: await createEmbedding(ctx, {
      vocab: spec.vocabSize,
      dim: spec.hiddenSize,
      tableDtype: dtypeOf(EMBED),
      scale: spec.embedScale,
    }),
    gatherLast: await Embedding.create(ctx, { vocab: opts.maxTokens, dim: spec.hiddenSize, tableDtype: 'f32' }),
    normPlain: await RmsNorm.create(ctx, norm),
    normFused: await RmsNorm.create(ctx, { ...norm, fused: true }),
    normInPlace: spec.sandwichNorms ? await RmsNorm.create(ctx, { ...norm, inPlace: true }) : undefined,
    // rows = tokens x heads, normalised in place over head_dim
    headNorm: spec.qkNorm
      ? await RmsNorm.create(ctx, {
          dim: spec.headDim,
          eps: spec.rmsNormEps,
          weightDtype: wd,
          weightPlusOne: spec.normWeightPlusOne,
          inPlace: true,
        })
      : undefined,
    rope: await Rope.create(ctx, ropeKernelSpec(spec, { rope: spec.rope })),
    ropeLocal: spec.localRope ? await Rope.create(ctx, ropeKernelSpec(spec, { rope: spec.localRope })) : undefined,
    ...(await createAttentionKernels(ctx, attn)),
    merge: await MergePartials.create(ctx, spec.numHeads, attn.headDimV),
    copyK: await CopyPages.create(ctx, pageBufferBytes(attn, attn.headDimQK)),
    copyV: attn.vAliasesK ? undefined : await CopyPages.create(ctx, pageBufferBytes(attn, attn.headDimV)),
    act: await GatedActivation.create(ctx, {
      intermediate: spec.intermediateSize,
      activation: spec.activation === 'silu' ? 'silu' : 'geluTanh',
      layout: 'split',
    }),
    proj,
  };
}

/**
 * The rope kernel for one of the model's RoPEs (global or gemma3's local one): partial rotary
 * (phi3: the first rotaryDim values of each head), LongRoPE's second table from longFrom on.
 */
export function ropeKernelSpec(spec: ModelSpec, rope: Pick<ModelSpec, 'rope'>): RopeKernelSpec {
  const longFrom = ropeLongFrom(rope);
  return {
    rotaryDim: rope.rope.rotaryDim,
    interleaved: rope.rope.interleaved,
    attentionFactor: ropeAttentionFactor(rope),
    ...(longFrom !== null ? { longFrom } : {}),
    ...(spec.mla
      ? mlaRopeOperands(spec)
      : {
          q: { heads: spec.numHeads, headStride: spec.headDim },
          k: { heads: spec.numKvHeads, headStride: spec.headDim },
        }),
  };
}

/** mlaDecode where the adapter can run its head blocks (it says so with a ShapeError), else the generic
 *  split-KV kernel. */
export async function mlaDecodeOrGeneric(ctx: GpuContext, attn: AttentionSpec): Promise<SplitKvKernel> {
  try {
    return await MlaDecode.create(ctx, attn);
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    return SplitKvDecode.create(ctx, attn);
  }
}

export const EMBED = 'model.embed_tokens.weight';

/** What norms, biases and per-head weights are stored as: f16 when the matrices are quantized (storedDtype). */
export function vectorDtype(load: LoadDtype): WeightDtype {
  return load === 'f32' ? 'f32' : 'f16';
}

/** Layer 0's tensor of each projection role (lmHead aside): it stands for every layer (same shapes and dtypes). */
export const PROJ_TENSORS: Partial<Record<Proj, string>> = {
  q: 'self_attn.q_proj',
  k: 'self_attn.k_proj',
  v: 'self_attn.v_proj',
  o: 'self_attn.o_proj',
  qa: 'self_attn.q_a_proj',
  qb: 'self_attn.q_b_proj',
  kva: 'self_attn.kv_a_proj_with_mqa',
  gate: 'mlp.gate_proj',
  up: 'mlp.up_proj',
  down: 'mlp.down_proj',
};

export function projTensor(spec: ModelSpec, role: Proj, layer = 0): string {
  if (role === 'lmHead') return spec.tieWordEmbeddings ? EMBED : 'lm_head.weight';
  return `model.layers.${layer}.${PROJ_TENSORS[role]}.weight`;
}

/** The weight of `role` in every layer (the LM head: one). */
export function projTensors(spec: ModelSpec, role: Proj): string[] {
  if (role === 'lmHead') return [projTensor(spec, role)];
  return Array.from({ length: spec.numLayers }, (_, l) => projTensor(spec, role, l));
}

/** The shape of every projection (the same for all layers) and its stored dtype at a plain load (layer 0's). */
export function projSpecs(spec: ModelSpec, load: LoadDtype): Partial<Record<Proj, AnyMatmulSpec>> {
  const plain = plainProjSpecs(spec, vectorDtype(load));
  return Object.fromEntries(
    Object.entries(plain).map(([role, s]) => {
      const weightDtype = storedDtype(projTensor(spec, role as Proj), [s.N, s.K], load);
      return [role, { ...s, weightDtype }];
    }),
  );
}

export function plainProjSpecs(spec: ModelSpec, wd: WeightDtype): Partial<Record<Proj, MatmulSpec>> {
  const H = spec.hiddenSize;
  const bias = spec.attentionBias;
  const qkv = spec.mla
    ? mlaProjSpecs(spec, wd)
    : {
        q: { N: spec.numHeads * spec.headDim, K: H, weightDtype: wd, bias },
        k: { N: spec.numKvHeads * spec.headDim, K: H, weightDtype: wd, bias },
        v: { N: spec.numKvHeads * spec.headDimV, K: H, weightDtype: wd, bias },
      };
  return {
    ...qkv,
    o: { N: H, K: spec.numHeads * spec.headDimV, weightDtype: wd, bias: false },
    gate: { N: spec.intermediateSize, K: H, weightDtype: wd, bias: false },
    up: { N: spec.intermediateSize, K: H, weightDtype: wd, bias: false },
    down: { N: H, K: spec.intermediateSize, weightDtype: wd, bias: false },
    lmHead: { N: spec.vocabSize, K: H, weightDtype: wd, bias: false },
  };
}
