/**
 * expectedTensors(spec): every tensor name a Hugging Face checkpoint of this ModelSpec holds, with
 * its shape, for the weight loader's shape check and for parameter counts (`webattn info`).
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
      m.set(`${p}self_attn.q_proj.weight`, [H * D, Hd]);
      m.set(`${p}self_attn.k_proj.weight`, [kvDim, Hd]);
      m.set(`${p}self_attn.v_proj.weight`, [kvDim, Hd]);
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
    m.set(`${p}mlp.gate_proj.weight`, [spec.intermediateSize, Hd]);
    m.set(`${p}mlp.up_proj.weight`, [spec.intermediateSize, Hd]);
    m.set(`${p}mlp.down_proj.weight`, [Hd, spec.intermediateSize]);
  }
  m.set('model.norm.weight', [Hd]);
  if (!spec.tieWordEmbeddings) m.set('lm_head.weight', [spec.vocabSize, Hd]);
  return m;
}
