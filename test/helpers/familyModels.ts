/**
 * Tiny configs of the families issue 18 adds, in each family's exact config keys (and so, through
 * expectedTensors, its exact tensor names): small enough for the float64 reference and the software
 * GPUs, shaped so each family's additions show: soft-caps, a sliding window that crosses a page
 * (window 5, pages of 4), a global / local mix, NoPE layers, LongRoPE with an original context of 8
 * (so positions 8.. use the long factors), phi3's fused projections, MiniCPM3's muP scales.
 */
import { base } from './tinyModels';

const factors = (n: number, lo: number, hi: number) =>
  Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / Math.max(1, n - 1));

export const familyConfigs: Record<string, Record<string, unknown>> = {
  // Gemma2ForCausalLM: even layers slide; both soft-caps; query_pre_attn_scalar as the scale.
  gemma2: {
    ...base,
    model_type: 'gemma2',
    architectures: ['Gemma2ForCausalLM'],
    hidden_act: undefined,
    hidden_activation: 'gelu_pytorch_tanh',
    head_dim: 16,
    num_key_value_heads: 2,
    sliding_window: 5,
    query_pre_attn_scalar: 24,
    attn_logit_softcapping: 2.0,
    final_logit_softcapping: 3.0,
  },
  // Gemma3ForCausalLM (text): layers 0, 1 local (base 100), layer 2 global (1e4); (1 + w) q/k norms; MQA.
  gemma3: {
    ...base,
    model_type: 'gemma3_text',
    architectures: ['Gemma3ForCausalLM'],
    hidden_act: undefined,
    hidden_activation: 'gelu_pytorch_tanh',
    num_hidden_layers: 3,
    num_key_value_heads: 1,
    head_dim: 16,
    sliding_window: 5,
    sliding_window_pattern: 3,
    rope_theta: 10000,
    rope_local_base_freq: 100,
    query_pre_attn_scalar: 16,
    attn_logit_softcapping: null,
    final_logit_softcapping: null,
  },
  // Phi-4-mini style: GQA, partial rotary 0.5 (4 of 8 values), LongRoPE past position 8, fused weights.
  phi3: {
    ...base,
    model_type: 'phi3',
    architectures: ['Phi3ForCausalLM'],
    max_position_embeddings: 64,
    original_max_position_embeddings: 8,
    partial_rotary_factor: 0.5,
    rope_scaling: { type: 'longrope', short_factor: factors(2, 1, 1.5), long_factor: factors(2, 2, 6) },
    tie_word_embeddings: false,
  },
  // Phi-3.5-mini style: MHA, full rotary, LongRoPE, a sliding window wider than the context.
  phi35: {
    ...base,
    model_type: 'phi3',
    num_key_value_heads: 4,
    max_position_embeddings: 64,
    original_max_position_embeddings: 8,
    sliding_window: 262144,
    rope_scaling: { type: 'longrope', short_factor: factors(4, 1, 1.2), long_factor: factors(4, 1.5, 9) },
    tie_word_embeddings: false,
  },
  // SmolLM3: layers 1 and 3 NoPE (no_rope_layers 0).
  smollm3: {
    ...base,
    model_type: 'smollm3',
    architectures: ['SmolLM3ForCausalLM'],
    num_hidden_layers: 4,
    no_rope_layers: [1, 0, 1, 0],
    rope_theta: 5000,
    use_sliding_window: false,
    sliding_window: null,
  },
  // MiniCPM3: no model_type (family from architectures), dense MLA with q_lora, muP, LongRoPE.
  minicpm3: {
    ...base,
    model_type: undefined,
    architectures: ['MiniCPM3ForCausalLM'],
    num_key_value_heads: 4,
    q_lora_rank: 16,
    kv_lora_rank: 16,
    qk_nope_head_dim: 8,
    qk_rope_head_dim: 4,
    max_position_embeddings: 64,
    rope_scaling: {
      type: 'longrope',
      short_factor: [1, 1.25],
      long_factor: [2, 5],
      original_max_position_embeddings: 8,
    },
    scale_emb: 3,
    scale_depth: 1.4,
    dim_model_base: 8,
  },
};
