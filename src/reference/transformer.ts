/**
 * Float64 reference forward pass: token ids → logits [T, vocab] for one full causal sequence,
 * following each family's Hugging Face modeling code. It is the twin the GPU forward step is
 * tested against, so it favours being obviously right over being fast. Reading order (as
 * llama2.c's run.c): small maths helpers, then the pieces of a block (RMSNorm, RoPE, attention,
 * MLA, MLP), then `referenceForward` tying them together.
 *
 * Weights come through `weights(name)` with HF names and HF layouts (Linear weights [out, in],
 * row-major), as listed by expectedTensors(spec).
 *
 * Family notes (what differs from llama):
 *   qwen2    q/k/v biases
 *   qwen3    RMSNorm over head_dim on each q and k head (q_norm / k_norm) before RoPE
 *   gemma    RMSNorm * (1 + w); embeddings * sqrt(hidden) (exact here; HF rounds the factor to the
 *            weights' dtype); GELU-tanh gate
 *   mistral  sliding window
 *   gemma2   sandwich norms (post_attention_layernorm on the attention output; pre_/post_feedforward_
 *            layernorm around the MLP), scale 1/sqrt(query_pre_attn_scalar), sliding window on even
 *            layers, attention and final-logit soft-caps tanh(x / cap) * cap
 *   gemma3   gemma2's block without the attention soft-cap, (1 + w) q/k norms, local layers
 *            (5 of every 6) with their own RoPE base
 *   phi3     fused qkv_proj [q | k | v] and gate_up_proj [gate | up]; partial rotary (the first
 *            rotaryDim values of each head); LongRoPE (short / long factors by position)
 *   smollm3  NoPE layers (no RoPE at all)
 *   minicpm3 MLA with rotate-half RoPE on the rope part; muP: embeddings * scale_emb, each residual
 *            branch * scale_depth / sqrt(layers), final hidden * dim_model_base / hidden
 *   deepseek MLA, decompressed: kv_b_proj expands c_kv into per-head k_nope and v; the rope part
 *            is rotated in interleaved pairs (2i, 2i+1) and k_pe is shared by every head. HF
 *            de-interleaves before rotating; q and k get the same permutation, so q·k is the same.
 */
import { referenceAttention, type ReferenceAttentionArgs } from './attention';
import type { ModelSpec } from '../model/config';
import { fusedSlices } from '../model/expectedTensors';
import { ropeAttentionFactor, ropeInvFrequencies, ropeLongFrom, type RopeSpec } from '../model/ropeFrequencies';

export type WeightFn = (name: string) => Float32Array;

/**
 * What the KV cache hands attention back for rows it stored: `rows` [n, rowValues] of K ('k'), V ('v')
 * or the MLA latent row [c_kv | k_pe] ('latent'), as read back (e.g. kvStored for a KV dtype:
 * f16-rounded or quantised and dequantised). Absent: the rows as computed (f32 KV, in float64).
 */
export type KvRowStore = (rows: Float64Array, rowValues: number, kind: 'k' | 'v' | 'latent') => Float64Array;

// ---------------------------------------------------------------------------------------------
// Maths helpers

/** y [T, out] = x [T, in] · W^T (+ b) with W [out, in] row-major, as torch.nn.Linear. */
export function linear(
  x: ArrayLike<number>,
  T: number,
  w: ArrayLike<number>,
  outDim: number,
  inDim: number,
  bias?: ArrayLike<number>,
): Float64Array {
  if (w.length !== outDim * inDim)
    throw new RangeError(`linear: weight has ${w.length} values, [${outDim}, ${inDim}] needs ${outDim * inDim}`);
  const y = new Float64Array(T * outDim); // [T, out]
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < outDim; o++) {
      let s = bias ? bias[o] : 0;
      const wOff = o * inDim;
      const xOff = t * inDim;
      for (let i = 0; i < inDim; i++) s += x[xOff + i] * w[wOff + i];
      y[t * outDim + o] = s;
    }
  }
  return y;
}

/**
 * RMSNorm over rows of width n, into a new array: x / sqrt(mean(x²) + eps) * w
 * (gemma: * (1 + w)). x [rows, n] → [rows, n].
 */
export function rmsNorm(
  x: ArrayLike<number>,
  rows: number,
  n: number,
  w: ArrayLike<number>,
  eps: number,
  plusOne = false,
): Float64Array {
  const y = new Float64Array(rows * n); // [rows, n]
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[r * n + i] ** 2;
    const inv = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) y[r * n + i] = x[r * n + i] * inv * (plusOne ? 1 + w[i] : w[i]);
  }
  return y;
}

const silu = (x: number) => x / (1 + Math.exp(-x));
/** GELU, tanh approximation (torch gelu(approximate='tanh')). */
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

/**
 * Rotary embedding, in place, on `heads` vectors of width `stride` per token, rotating the
 * `rotaryDim` values starting at `offset` of each, token t at position t.
 *   x [T, heads, stride]
 *   rotate-half (llama): pair i is (i, i + rotaryDim/2)
 *   interleaved (DeepSeek): pair i is (2i, 2i + 1)
 * Each pair (a, b) → (a cos − b sin, b cos + a sin) · attentionFactor, angle = t · invFreq[i].
 */
export function applyRope(
  spec: Pick<ModelSpec, 'rope'>,
  x: Float64Array,
  T: number,
  heads: number,
  stride: number,
  offset = 0,
  positions?: readonly number[],
): void {
  const shortFreq = ropeInvFrequencies(spec); // [rotaryDim / 2]
  // LongRoPE: positions from the original context on use the long factors (see ropeLongFrom).
  const longFrom = ropeLongFrom(spec);
  const longFreq = longFrom === null ? shortFreq : ropeInvFrequencies(spec, 'long');
  const mscale = ropeAttentionFactor(spec);
  const dim = spec.rope.rotaryDim;
  const half = dim / 2;
  for (let t = 0; t < T; t++) {
    const pos = positions ? positions[t] : t;
    const invFreq = longFrom !== null && pos >= longFrom ? longFreq : shortFreq;
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * stride + offset;
      for (let i = 0; i < half; i++) {
        const angle = pos * invFreq[i];
        const cos = Math.cos(angle) * mscale;
        const sin = Math.sin(angle) * mscale;
        const ia = spec.rope.interleaved ? base + 2 * i : base + i;
        const ib = spec.rope.interleaved ? base + 2 * i + 1 : base + i + half;
        const a = x[ia];
        const b = x[ib];
        x[ia] = a * cos - b * sin;
        x[ib] = b * cos + a * sin;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Attention: llama-like (MHA / GQA / MQA) and DeepSeek MLA. Input is the normed hidden state.

/**
 * A projection's weight by its unfused name: phi3 keeps q/k/v in qkv_proj and gate/up in
 * gate_up_proj, and the slice is read straight from the fused rows. W [rows, in].
 */
export function projWeight(spec: ModelSpec, w: WeightFn, name: string): Float32Array {
  const slice = spec.fusedProjections ? fusedSlices(spec).get(name) : undefined;
  if (!slice) return w(name);
  const cols = spec.hiddenSize; // both fused projections read the hidden state
  return w(slice.source).subarray(slice.firstRow * cols, (slice.firstRow + slice.rows) * cols);
}

/** The RoPE layer l rotates with, or null for a NoPE layer (smollm3). */
export function layerRope(spec: ModelSpec, l: number): RopeSpec | null {
  const kind = spec.layers[l].rope;
  return kind === 'none' ? null : kind === 'local' ? spec.localRope! : spec.rope;
}

/** The attention options of layer l: its window (sliding layers) and the score soft-cap. */
export function layerAttention(
  spec: ModelSpec,
  l: number,
): Pick<ReferenceAttentionArgs, 'scale' | 'window' | 'softcap'> {
  const window = spec.layers[l].sliding ? (spec.slidingWindow ?? 0) : 0;
  return {
    scale: spec.softmaxScale,
    window,
    softcap: spec.attnLogitSoftcap ?? 0,
  };
}

/** Self-attention of layer l for the non-MLA families. xn [T, hidden] → [T, hidden]. */
export function selfAttention(
  spec: ModelSpec,
  w: WeightFn,
  l: number,
  xn: Float64Array,
  T: number,
  kvStore?: KvRowStore,
): Float64Array {
  const p = `model.layers.${l}.self_attn.`;
  const { hiddenSize: Hd, numHeads: H, numKvHeads: Hkv, headDim: D } = spec;
  const bias = (name: string) => (spec.attentionBias ? w(`${p}${name}.bias`) : undefined);
  const W = (name: string) => projWeight(spec, w, `${p}${name}.weight`);
  let q = linear(xn, T, W('q_proj'), H * D, Hd, bias('q_proj')); // [T, H, D]
  let k = linear(xn, T, W('k_proj'), Hkv * D, Hd, bias('k_proj')); // [T, Hkv, D]
  let v = linear(xn, T, W('v_proj'), Hkv * D, Hd, bias('v_proj')); // [T, Hkv, D]
  if (spec.qkNorm) {
    // qwen3: w; gemma3: (1 + w), as every gemma norm.
    q = rmsNorm(q, T * H, D, w(`${p}q_norm.weight`), spec.rmsNormEps, spec.normWeightPlusOne); // [T, H, D]
    k = rmsNorm(k, T * Hkv, D, w(`${p}k_norm.weight`), spec.rmsNormEps, spec.normWeightPlusOne); // [T, Hkv, D]
  }
  const rope = layerRope(spec, l);
  if (rope) {
    // Partial rotary (phi3): only the first rope.rotaryDim values of each head turn.
    applyRope({ rope }, q, T, H, D);
    applyRope({ rope }, k, T, Hkv, D);
  }
  if (kvStore) {
    // What the KV pages hold: K after its norm and RoPE, V as projected (one row per token and KV head).
    k = kvStore(k, D, 'k');
    v = kvStore(v, D, 'v');
  }
  const { out } = referenceAttention({
    q,
    k,
    v, // q [T, H, D], k and v [T, Hkv, D]
    numHeads: H,
    numKvHeads: Hkv,
    headDimQK: D,
    headDimV: D,
    seqLensQ: [T],
    seqLensKV: [T],
    causal: true,
    ...layerAttention(spec, l),
  }); // out [T, H, D]
  return linear(out, T, w(`${p}o_proj.weight`), Hd, H * D); // [T, hidden]
}

/** The per-token MLA tensors of layer l before attention, shared by the decompressed and absorbed forms. */
export interface MlaProjections {
  qNope: Float64Array; // [T, H, nope]
  qPe: Float64Array; // [T, H, rope]   roped
  cKv: Float64Array; // [T, kvLoraRank] after kv_a_layernorm
  kPe: Float64Array; // [T, rope]      roped, shared by every head
}

/** DeepSeek MLA projections: queries (through q_a/q_b or q_proj) and the latent row. xn [T, hidden]. */
export function mlaProjections(
  spec: ModelSpec,
  w: WeightFn,
  l: number,
  xn: Float64Array,
  T: number,
  kvStore?: KvRowStore,
): MlaProjections {
  const p = `model.layers.${l}.self_attn.`;
  const { hiddenSize: Hd, numHeads: H } = spec;
  const { qLoraRank, kvLoraRank: C, qkNopeHeadDim: N, qkRopeHeadDim: R } = spec.mla!;
  const Dq = N + R;
  let q: Float64Array; // [T, H, N + R]
  if (qLoraRank === null) {
    q = linear(xn, T, w(`${p}q_proj.weight`), H * Dq, Hd);
  } else {
    const cq = rmsNorm(
      linear(xn, T, w(`${p}q_a_proj.weight`), qLoraRank, Hd),
      T,
      qLoraRank,
      w(`${p}q_a_layernorm.weight`),
      spec.rmsNormEps,
    ); // [T, qLoraRank]
    q = linear(cq, T, w(`${p}q_b_proj.weight`), H * Dq, qLoraRank);
  }
  const compressed = linear(xn, T, w(`${p}kv_a_proj_with_mqa.weight`), C + R, Hd); // [T, C + R] = [c_kv | k_pe]
  const qNope = new Float64Array(T * H * N); // [T, H, N]
  const qPe = new Float64Array(T * H * R); // [T, H, R]
  const cKvRaw = new Float64Array(T * C); // [T, C]
  const kPe = new Float64Array(T * R); // [T, R]
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const src = (t * H + h) * Dq;
      qNope.set(q.subarray(src, src + N), (t * H + h) * N);
      qPe.set(q.subarray(src + N, src + Dq), (t * H + h) * R);
    }
    cKvRaw.set(compressed.subarray(t * (C + R), t * (C + R) + C), t * C);
    kPe.set(compressed.subarray(t * (C + R) + C, (t + 1) * (C + R)), t * R);
  }
  applyRope(spec, qPe, T, H, R);
  applyRope(spec, kPe, T, 1, R);
  const cKv = rmsNorm(cKvRaw, T, C, w(`${p}kv_a_layernorm.weight`), spec.rmsNormEps); // [T, C]
  if (!kvStore) return { qNope, qPe, cKv, kPe };
  // The KV pages hold one latent row per token, [c_kv | k_pe] (C + R values), stored as a whole.
  const row = new Float64Array(T * (C + R)); // [T, C + R]
  for (let t = 0; t < T; t++) {
    row.set(cKv.subarray(t * C, (t + 1) * C), t * (C + R));
    row.set(kPe.subarray(t * R, (t + 1) * R), t * (C + R) + C);
  }
  const stored = kvStore(row, C + R, 'latent');
  for (let t = 0; t < T; t++) {
    cKv.set(stored.subarray(t * (C + R), t * (C + R) + C), t * C);
    kPe.set(stored.subarray(t * (C + R) + C, (t + 1) * (C + R)), t * R);
  }
  return { qNope, qPe, cKv, kPe };
}

/**
 * DeepSeek MLA, decompressed as in DeepseekV2Attention: kv_b_proj turns c_kv into per-head
 * k_nope and v; every head's key is [k_nope_h | k_pe]. xn [T, hidden] → [T, hidden].
 * Also returns the attention output before o_proj, for tests against the absorbed form.
 */
export function mlaAttention(
  spec: ModelSpec,
  w: WeightFn,
  l: number,
  xn: Float64Array,
  T: number,
  kvStore?: KvRowStore,
): { out: Float64Array; heads: Float64Array } {
  const p = `model.layers.${l}.self_attn.`;
  const { hiddenSize: Hd, numHeads: H } = spec;
  const { kvLoraRank: C, qkNopeHeadDim: N, qkRopeHeadDim: R, vHeadDim: V } = spec.mla!;
  const Dq = N + R;
  const { qNope, qPe, cKv, kPe } = mlaProjections(spec, w, l, xn, T, kvStore);
  const kv = linear(cKv, T, w(`${p}kv_b_proj.weight`), H * (N + V), C); // [T, H, N + V] = [k_nope | v]
  const q = new Float64Array(T * H * Dq); // [T, H, N + R]
  const k = new Float64Array(T * H * Dq); // [T, H, N + R]
  const v = new Float64Array(T * H * V); // [T, H, V]
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const th = t * H + h;
      q.set(qNope.subarray(th * N, th * N + N), th * Dq);
      q.set(qPe.subarray(th * R, th * R + R), th * Dq + N);
      k.set(kv.subarray(th * (N + V), th * (N + V) + N), th * Dq);
      k.set(kPe.subarray(t * R, t * R + R), th * Dq + N);
      v.set(kv.subarray(th * (N + V) + N, (th + 1) * (N + V)), th * V);
    }
  }
  const { out: heads } = referenceAttention({
    q,
    k,
    v,
    numHeads: H,
    numKvHeads: H,
    headDimQK: Dq,
    headDimV: V,
    seqLensQ: [T],
    seqLensKV: [T],
    causal: true,
    scale: spec.softmaxScale,
  }); // heads [T, H, V]
  return { out: linear(heads, T, w(`${p}o_proj.weight`), Hd, H * V), heads };
}

// ---------------------------------------------------------------------------------------------
// MLP

/** Gated MLP: down(act(gate(x)) * up(x)). xn [T, hidden] → [T, hidden]. */
export function mlp(spec: ModelSpec, w: WeightFn, l: number, xn: Float64Array, T: number): Float64Array {
  const p = `model.layers.${l}.mlp.`;
  const { hiddenSize: Hd, intermediateSize: I } = spec;
  const gate = linear(xn, T, projWeight(spec, w, `${p}gate_proj.weight`), I, Hd); // [T, I]
  const up = linear(xn, T, projWeight(spec, w, `${p}up_proj.weight`), I, Hd); // [T, I]
  const act = spec.activation === 'silu' ? silu : geluTanh;
  for (let i = 0; i < gate.length; i++) gate[i] = act(gate[i]) * up[i];
  return linear(gate, T, w(`${p}down_proj.weight`), Hd, I); // [T, hidden]
}

// ---------------------------------------------------------------------------------------------
// The forward pass

/** tanh(x / cap) * cap, in place (gemma2's soft-caps); cap null: unchanged. */
export function softcapInPlace(x: Float64Array | Float32Array, cap: number | null): void {
  if (cap === null) return;
  for (let i = 0; i < x.length; i++) x[i] = Math.tanh(x[i] / cap) * cap;
}

/**
 * Logits [T, vocab] (row t = the prediction after token t) for tokenIds at positions 0..T-1.
 *   x = embed[ids] * embedScale
 *   per layer: x += rs · attn(norm(x)); x += rs · mlp(norm(x))      (rs: residualScale, MiniCPM3)
 *     sandwich (gemma2/3): x += post_attn_norm(attn(input_norm(x)));
 *                          x += post_ff_norm(mlp(pre_ff_norm(x)))
 *   logits = softcap(norm(x) · logitScale · lm_head^T) (lm_head = embed_tokens when tied)
 * kvStore: what the KV cache gives back for the rows it stores (e.g. kvStored('q4'): the twin of a
 * q4 KV cache); absent: f32 KV (exact, float64).
 */
export function referenceForward(
  spec: ModelSpec,
  weights: WeightFn,
  tokenIds: number[],
  kvStore?: KvRowStore,
): Float64Array {
  const T = tokenIds.length;
  const { hiddenSize: Hd, vocabSize: Vocab, rmsNormEps: eps, normWeightPlusOne: plusOne } = spec;
  if (T === 0) throw new RangeError('referenceForward: no tokens');
  const norm = (x: Float64Array, name: string) => rmsNorm(x, T, Hd, weights(name), eps, plusOne);

  // Embedding gather. x [T, hidden]
  const embed = weights('model.embed_tokens.weight'); // [vocab, hidden]
  const x = new Float64Array(T * Hd);
  tokenIds.forEach((id, t) => {
    if (!Number.isInteger(id) || id < 0 || id >= Vocab)
      throw new RangeError(`referenceForward: token ${t} id ${id} outside the vocabulary 0..${Vocab - 1}`);
    for (let i = 0; i < Hd; i++) x[t * Hd + i] = embed[id * Hd + i] * spec.embedScale;
  });

  const rs = spec.residualScale;
  for (let l = 0; l < spec.numLayers; l++) {
    const p = `model.layers.${l}.`;
    // Attention sub-block. xn, a [T, hidden]
    const xn = norm(x, `${p}input_layernorm.weight`);
    let a = spec.mla
      ? mlaAttention(spec, weights, l, xn, T, kvStore).out
      : selfAttention(spec, weights, l, xn, T, kvStore);
    if (spec.sandwichNorms) a = norm(a, `${p}post_attention_layernorm.weight`);
    for (let i = 0; i < x.length; i++) x[i] += rs * a[i];
    // MLP sub-block. xn2, m [T, hidden]
    const mlpNorm = spec.sandwichNorms ? 'pre_feedforward_layernorm' : 'post_attention_layernorm';
    const xn2 = norm(x, `${p}${mlpNorm}.weight`);
    let m = mlp(spec, weights, l, xn2, T);
    if (spec.sandwichNorms) m = norm(m, `${p}post_feedforward_layernorm.weight`);
    for (let i = 0; i < x.length; i++) x[i] += rs * m[i];
  }

  // Final norm and LM head. logits [T, vocab]
  const xf = norm(x, 'model.norm.weight'); // [T, hidden]
  if (spec.logitScale !== 1) for (let i = 0; i < xf.length; i++) xf[i] *= spec.logitScale;
  const head = spec.tieWordEmbeddings ? embed : weights('lm_head.weight'); // [vocab, hidden]
  const logits = linear(xf, T, head, Vocab, Hd);
  softcapInPlace(logits, spec.finalLogitSoftcap);
  return logits;
}
