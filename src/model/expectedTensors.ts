/**
 * expectedTensors(spec): every tensor name a Hugging Face checkpoint of this ModelSpec holds, with
 * its shape, for the weight loader's shape check and for parameter counts (`webattn info`).
 * fusedSlices(spec): phi3's fused qkv_proj / gate_up_proj as the row ranges the runtime reads as
 * q_proj, k_proj, v_proj, gate_proj and up_proj; runtimeTensors(spec): the names the GPU forward
 * binds (the checkpoint's, with the fused ones split).
 */
import type { ModelSpec } from './config';

/**
 * Every tensor the HF checkpoint holds for this spec, with its shape ([out, in] for Linear weights).
 * Worked example (SmolLM2-135M: hidden 576, 9 heads, 3 KV heads, head_dim 64, intermediate 1536):
 * model.layers.0.self_attn.k_proj.weight → [192, 576]; lm_head.weight absent (tied).
 */
export function expectedTensors(spec: ModelSpec): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const Hd = spec.hiddenSize;
  const H = spec.numHeads;
  m.set('model.embed_tokens.weight', [spec.vocabSize, Hd]);
  for (let l = 0; l < spec.numLayers; l++) {
    const p = `model.layers.${l}.`;
    m.set(`${p}input_layernorm.weight`, [Hd]);
    if (spec.mla) {
      const { qLoraRank, kvLoraRank, qkNopeHeadDim, qkRopeHeadDim, vHeadDim } = spec.mla;
      const qHead = qkNopeHeadDim + qkRopeHeadDim;
      if (qLoraRank === null) {
        m.set(`${p}self_attn.q_proj.weight`, [H * qHead, Hd]);
      } else {
        m.set(`${p}self_attn.q_a_proj.weight`, [qLoraRank, Hd]);
        m.set(`${p}self_attn.q_a_layernorm.weight`, [qLoraRank]);
        m.set(`${p}self_attn.q_b_proj.weight`, [H * qHead, qLoraRank]);
      }
      m.set(`${p}self_attn.kv_a_proj_with_mqa.weight`, [kvLoraRank + qkRopeHeadDim, Hd]);
      m.set(`${p}self_attn.kv_a_layernorm.weight`, [kvLoraRank]);
      m.set(`${p}self_attn.kv_b_proj.weight`, [H * (qkNopeHeadDim + vHeadDim), kvLoraRank]);
      m.set(`${p}self_attn.o_proj.weight`, [Hd, H * vHeadDim]);
    } else {
      const D = spec.headDim;
      const kvDim = spec.numKvHeads * D;
      if (spec.fusedProjections) {
        m.set(`${p}self_attn.qkv_proj.weight`, [H * D + 2 * kvDim, Hd]);
      } else {
        m.set(`${p}self_attn.q_proj.weight`, [H * D, Hd]);
        m.set(`${p}self_attn.k_proj.weight`, [kvDim, Hd]);
        m.set(`${p}self_attn.v_proj.weight`, [kvDim, Hd]);
      }
      if (spec.attentionBias) {
        m.set(`${p}self_attn.q_proj.bias`, [H * D]);
        m.set(`${p}self_attn.k_proj.bias`, [kvDim]);
        m.set(`${p}self_attn.v_proj.bias`, [kvDim]);
      }
      if (spec.qkNorm) {
        m.set(`${p}self_attn.q_norm.weight`, [D]);
        m.set(`${p}self_attn.k_norm.weight`, [D]);
      }
      m.set(`${p}self_attn.o_proj.weight`, [Hd, H * D]);
    }
    m.set(`${p}post_attention_layernorm.weight`, [Hd]);
    if (spec.sandwichNorms) {
      m.set(`${p}pre_feedforward_layernorm.weight`, [Hd]);
      m.set(`${p}post_feedforward_layernorm.weight`, [Hd]);
    }
    if (spec.fusedProjections) {
      m.set(`${p}mlp.gate_up_proj.weight`, [2 * spec.intermediateSize, Hd]);
    } else {
      m.set(`${p}mlp.gate_proj.weight`, [spec.intermediateSize, Hd]);
      m.set(`${p}mlp.up_proj.weight`, [spec.intermediateSize, Hd]);
    }
    m.set(`${p}mlp.down_proj.weight`, [Hd, spec.intermediateSize]);
  }
  m.set('model.norm.weight', [Hd]);
  if (!spec.tieWordEmbeddings) m.set('lm_head.weight', [spec.vocabSize, Hd]);
  return m;
}

/** Rows [firstRow, firstRow + rows) of the 2-D checkpoint tensor `source`. */
export interface TensorSlice {
  source: string;
  firstRow: number;
  rows: number;
}

/**
 * phi3's fused projections as row slices, keyed by the unfused name (Phi3Attention splits qkv_proj's
 * output as [q (H·D) | k (Hkv·D) | v (Hkv·D)]; Phi3MLP chunks gate_up_proj's into [gate (I) | up (I)]).
 * Worked example (Phi-3.5-mini: 32 heads of 96, MHA, I 8192): qkv_proj [9216, 3072] → q rows 0..3071,
 * k 3072..6143, v 6144..9215; gate_up_proj [16384, 3072] → gate rows 0..8191, up 8192..16383.
 * Empty for every other family.
 */
export function fusedSlices(spec: ModelSpec): Map<string, TensorSlice> {
  const m = new Map<string, TensorSlice>();
  if (!spec.fusedProjections) return m;
  const qDim = spec.numHeads * spec.headDim;
  const kvDim = spec.numKvHeads * spec.headDim;
  const I = spec.intermediateSize;
  for (let l = 0; l < spec.numLayers; l++) {
    const a = `model.layers.${l}.self_attn.`;
    const qkv = `${a}qkv_proj.weight`;
    m.set(`${a}q_proj.weight`, { source: qkv, firstRow: 0, rows: qDim });
    m.set(`${a}k_proj.weight`, { source: qkv, firstRow: qDim, rows: kvDim });
    m.set(`${a}v_proj.weight`, { source: qkv, firstRow: qDim + kvDim, rows: kvDim });
    const gateUp = `model.layers.${l}.mlp.gate_up_proj.weight`;
    m.set(`model.layers.${l}.mlp.gate_proj.weight`, { source: gateUp, firstRow: 0, rows: I });
    m.set(`model.layers.${l}.mlp.up_proj.weight`, { source: gateUp, firstRow: I, rows: I });
  }
  return m;
}

/** The tensors the GPU forward binds: expectedTensors with each fused tensor replaced by its slices. */
export function runtimeTensors(spec: ModelSpec): Map<string, number[]> {
  const expected = expectedTensors(spec);
  const slices = fusedSlices(spec);
  if (!slices.size) return expected;
  const fused = new Set([...slices.values()].map((s) => s.source));
  const m = new Map<string, number[]>();
  for (const [name, shape] of expected) {
    if (!fused.has(name)) {
      m.set(name, shape);
      continue;
    }
    for (const [part, s] of slices) if (s.source === name) m.set(part, [s.rows, shape[1]]);
  }
  return m;
}
