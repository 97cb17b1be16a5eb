"""The four configs: same width, depth, MLP and vocabulary; only the attention differs."""

COMMON = {
    'vocab_size': 2048,
    'hidden_size': 128,
    'intermediate_size': 384,
    'num_hidden_layers': 4,
    'num_attention_heads': 8,
    'hidden_act': 'silu',
    'rms_norm_eps': 1e-5,
    'rope_theta': 10000.0,
    'max_position_embeddings': 256,
    'tie_word_embeddings': True,
    'bos_token_id': 0,
    'eos_token_id': 1,
    'attention_bias': False,
    'torch_dtype': 'float16',
}


def llama(kv_heads):
    return {'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', **COMMON,
            'num_key_value_heads': kv_heads, 'head_dim': 16, 'mlp_bias': False}


MLA = {
    'architectures': ['DeepseekV2ForCausalLM'],
    'model_type': 'deepseek_v2',
    **COMMON,
    'num_key_value_heads': 8,
    'q_lora_rank': None,
    'kv_lora_rank': 32,
    'qk_nope_head_dim': 16,
    'qk_rope_head_dim': 16,
    'v_head_dim': 16,
    # Dense: no routed experts, every layer a plain gated MLP.
    'n_routed_experts': None,
    'n_shared_experts': None,
    'first_k_dense_replace': 4,
    'moe_layer_freq': 1,
    'rope_scaling': None,
}

MODELS = {
    'kjv-mha': llama(8),
    'kjv-gqa': llama(2),
    'kjv-mqa': llama(1),
    'kjv-mla': MLA,
}


def kv_values_per_token_per_layer(c):
    """Values cached per token and layer: K and V heads, or MLA's latent row [c_kv | k_pe]."""
    if c['model_type'].startswith('deepseek'):
        return c['kv_lora_rank'] + c['qk_rope_head_dim']
    return 2 * c['num_key_value_heads'] * c['head_dim']


def kv_bytes_per_token_f16(c):
    return 2 * c['num_hidden_layers'] * kv_values_per_token_per_layer(c)
