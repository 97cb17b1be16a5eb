import { describe, expect, it } from 'vitest';
import { ModelConfigError, parseConfig } from '../../src/model/config';
import { expectedTensors } from '../../src/model/expectedTensors';
import { ropeAttentionFactor, ropeInvFrequencies, yarnGetMscale } from '../../src/model/ropeFrequencies';

// Configs modelled on the real ones (fields as they ship on the Hub).
const smolLM2 = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  bos_token_id: 0,
  eos_token_id: 0,
  hidden_act: 'silu',
  hidden_size: 576,
  intermediate_size: 1536,
  max_position_embeddings: 8192,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 100000,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  vocab_size: 49152,
};

const llama32 = {
  model_type: 'llama',
  hidden_size: 2048,
  intermediate_size: 8192,
  num_hidden_layers: 16,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  head_dim: 64,
  vocab_size: 128256,
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  rope_scaling: {
    factor: 32,
    high_freq_factor: 4,
    low_freq_factor: 1,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  tie_word_embeddings: true,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  hidden_act: 'silu',
};

const qwen25 = {
  architectures: ['Qwen2ForCausalLM'],
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: 'silu',
  hidden_size: 896,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 24,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const qwen3 = {
  architectures: ['Qwen3ForCausalLM'],
  attention_bias: false,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: 'silu',
  hidden_size: 1024,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  model_type: 'qwen3',
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const gemma2b = {
  architectures: ['GemmaForCausalLM'],
  bos_token_id: 2,
  eos_token_id: 1,
  head_dim: 256,
  hidden_act: 'gelu',
  hidden_size: 2048,
  intermediate_size: 16384,
  max_position_embeddings: 8192,
  model_type: 'gemma',
  num_attention_heads: 8,
  num_hidden_layers: 18,
  num_key_value_heads: 1,
  pad_token_id: 0,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 10000.0,
  vocab_size: 256000,
};

const mistral7b = {
  architectures: ['MistralForCausalLM'],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 4096,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  model_type: 'mistral',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
  vocab_size: 32000,
};

const deepseekV2Lite = {
  architectures: ['DeepseekV2ForCausalLM'],
  attention_bias: false,
  bos_token_id: 100000,
  eos_token_id: 100001,
  first_k_dense_replace: 1,
  hidden_act: 'silu',
  hidden_size: 2048,
  intermediate_size: 10944,
  kv_lora_rank: 512,
  max_position_embeddings: 163840,
  model_type: 'deepseek_v2',
  moe_intermediate_size: 1408,
  moe_layer_freq: 1,
  n_group: 1,
  n_routed_experts: 64,
  n_shared_experts: 2,
  norm_topk_prob: false,
  num_attention_heads: 16,
  num_experts_per_tok: 6,
  num_hidden_layers: 27,
  num_key_value_heads: 16,
  q_lora_rank: null,
  qk_nope_head_dim: 128,
  qk_rope_head_dim: 64,
  rms_norm_eps: 1e-6,
  rope_scaling: {
    beta_fast: 32,
    beta_slow: 1,
    factor: 40,
    mscale: 0.707,
    mscale_all_dim: 0.707,
    original_max_position_embeddings: 4096,
    type: 'yarn',
  },
  rope_theta: 10000,
  tie_word_embeddings: false,
  topk_group: 1,
  v_head_dim: 128,
  vocab_size: 102400,
};

/** DeepSeek-V2-Lite's attention with every layer dense (first_k_dense_replace = num layers). */
const deepseekDense = { ...deepseekV2Lite, first_k_dense_replace: 27 };

describe('parseConfig: families', () => {
  it('llama (SmolLM2-135M): GQA, head_dim from hidden/heads, tied', () => {
    const s = parseConfig(smolLM2);
    expect(s).toMatchObject({
      family: 'llama',
      hiddenSize: 576,
      intermediateSize: 1536,
      numLayers: 30,
      vocabSize: 49152,
      numHeads: 9,
      numKvHeads: 3,
      headDim: 64,
      headDimV: 64,
      attention: 'gqa',
      rmsNormEps: 1e-5,
      normWeightPlusOne: false,
      embedScale: 1,
      activation: 'silu',
      attentionBias: false,
      qkNorm: false,
      tieWordEmbeddings: true,
      maxPositionEmbeddings: 8192,
      rope: { theta: 100000, rotaryDim: 64, interleaved: false, scaling: { type: 'none' } },
      slidingWindow: null,
      bosTokenId: 0,
      eosTokenIds: [0],
    });
    expect(s.mla).toBeUndefined();
    expect(s.softmaxScale).toBeCloseTo(1 / 8, 15);
  });

  it('llama 3.2 with llama3 rope_scaling and a list of EOS ids', () => {
    const s = parseConfig(llama32);
    expect(s.rope.scaling).toEqual({
      type: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
    expect(s.eosTokenIds).toEqual([128001, 128008, 128009]);
    expect(s.headDim).toBe(64);
    expect(s.attention).toBe('gqa');
  });

  it('transformers v5 rope_parameters (theta inside) and generic yarn for llama-like families', () => {
    const v5 = {
      ...llama32,
      rope_scaling: undefined,
      rope_theta: undefined,
      rope_parameters: { ...llama32.rope_scaling, rope_theta: 500000 },
    };
    expect(parseConfig(v5).rope).toEqual(parseConfig(llama32).rope);
    expect(parseConfig({ ...qwen3, rope_parameters: { rope_type: 'default', rope_theta: 5e6 } }).rope).toMatchObject({
      theta: 5e6,
      scaling: { type: 'none' },
    });
    expect(parseConfig({ ...qwen3, rope_parameters: { rope_type: 'default' } }).rope.theta).toBe(1000000);
    // HF's generic yarn: attention factor 0.1 ln(factor) + 1, original length defaults to
    // max_position_embeddings, and the softmax scale is left alone (that is DeepSeek's own rule).
    const y = parseConfig({ ...qwen3, rope_scaling: { rope_type: 'yarn', factor: 4 } });
    expect(y.rope.scaling).toMatchObject({
      type: 'yarn',
      factor: 4,
      originalMaxPositionEmbeddings: 40960,
      betaFast: 32,
      betaSlow: 1,
    });
    expect(ropeAttentionFactor(y)).toBeCloseTo(0.1 * Math.log(4) + 1, 15);
    expect(y.softmaxScale).toBeCloseTo(1 / Math.sqrt(128), 15);
  });

  it('llama rope_scaling with the older key `type` (linear)', () => {
    const s = parseConfig({ ...smolLM2, rope_scaling: { type: 'linear', factor: 4 } });
    expect(s.rope.scaling).toEqual({ type: 'linear', factor: 4 });
    const base = ropeInvFrequencies(parseConfig(smolLM2));
    const lin = ropeInvFrequencies(s);
    lin.forEach((f, i) => expect(f).toBeCloseTo(base[i] / 4, 15));
  });

  it('qwen2 (Qwen2.5-0.5B): q/k/v biases, no window unless use_sliding_window', () => {
    const s = parseConfig(qwen25);
    expect(s).toMatchObject({
      family: 'qwen2',
      numHeads: 14,
      numKvHeads: 2,
      headDim: 64,
      attentionBias: true,
      qkNorm: false,
      slidingWindow: null,
      tieWordEmbeddings: true,
    });
    const t = expectedTensors(s);
    expect(t.get('model.layers.0.self_attn.q_proj.bias')).toEqual([896]);
    expect(t.get('model.layers.0.self_attn.k_proj.bias')).toEqual([128]);
    expect(t.has('model.layers.0.self_attn.o_proj.bias')).toBe(false);
  });

  it('qwen3 (Qwen3-0.6B): explicit head_dim, q/k norm', () => {
    const s = parseConfig(qwen3);
    expect(s).toMatchObject({
      family: 'qwen3',
      headDim: 128,
      numHeads: 16,
      numKvHeads: 8,
      qkNorm: true,
      attentionBias: false,
      eosTokenIds: [151645],
    });
    expect(s.softmaxScale).toBeCloseTo(1 / Math.sqrt(128), 15);
    const t = expectedTensors(s);
    expect(t.get('model.layers.27.self_attn.q_norm.weight')).toEqual([128]);
    expect(t.get('model.layers.0.self_attn.q_proj.weight')).toEqual([2048, 1024]); // 16 · 128 rows
    expect(t.get('model.layers.0.self_attn.o_proj.weight')).toEqual([1024, 2048]);
  });

  it('gemma (Gemma-2B): MQA, (1 + w) norm, sqrt(hidden) embeddings, GELU-tanh, tied by default', () => {
    const s = parseConfig(gemma2b);
    expect(s).toMatchObject({
      family: 'gemma',
      attention: 'mqa',
      numKvHeads: 1,
      headDim: 256,
      normWeightPlusOne: true,
      activation: 'gelu_tanh',
      tieWordEmbeddings: true,
      bosTokenId: 2,
      eosTokenIds: [1],
    });
    expect(s.embedScale).toBeCloseTo(Math.sqrt(2048), 12);
    expect(expectedTensors(s).has('lm_head.weight')).toBe(false);
  });

  it('gemma-3 style dims (1 KV head, head_dim 256 over hidden 1152) and hidden_activation', () => {
    const s = parseConfig({
      ...gemma2b,
      hidden_size: 1152,
      num_attention_heads: 4,
      head_dim: 256,
      hidden_activation: 'gelu_pytorch_tanh',
      intermediate_size: 6912,
    });
    expect(s.headDim).toBe(256); // not 1152 / 4
    expect(s.activation).toBe('gelu_tanh');
    expect(() => parseConfig({ ...gemma2b, hidden_activation: 'relu' })).toThrow(/hidden_activation/);
  });

  it('mistral (Mistral-7B-v0.1): GQA with a sliding window, untied', () => {
    const s = parseConfig(mistral7b);
    expect(s).toMatchObject({
      family: 'mistral',
      attention: 'gqa',
      numKvHeads: 8,
      headDim: 128,
      slidingWindow: 4096,
      tieWordEmbeddings: false,
    });
    expect(expectedTensors(s).get('lm_head.weight')).toEqual([32000, 4096]);
    expect(parseConfig({ ...mistral7b, sliding_window: null }).slidingWindow).toBeNull();
  });

  it('the variant follows the numbers, not the name', () => {
    expect(parseConfig({ ...mistral7b, num_key_value_heads: 32 }).attention).toBe('mha');
    expect(parseConfig({ ...mistral7b, num_key_value_heads: 1 }).attention).toBe('mqa');
    expect(parseConfig({ ...gemma2b, num_key_value_heads: 8 }).attention).toBe('mha');
    const noKv = { ...smolLM2 } as Record<string, unknown>;
    delete noKv.num_key_value_heads;
    expect(parseConfig(noKv).attention).toBe('mha');
    expect(parseConfig({ ...smolLM2, head_dim: 32 }).headDim).toBe(32); // head_dim wins in any family
  });

  it('DeepSeek-V2-Lite is refused: MoE is not supported yet', () => {
    expect(() => parseConfig(deepseekV2Lite)).toThrow(ModelConfigError);
    expect(() => parseConfig(deepseekV2Lite)).toThrow(/config\.json: n_routed_experts: .*MoE is not supported yet/);
    expect(() => parseConfig({ ...deepseekV2Lite, model_type: 'deepseek_v3' })).toThrow(/MoE is not supported yet/);
  });

  it('dense DeepSeek (V2-Lite attention, every layer dense): MLA with YaRN as DeepSeek defines it', () => {
    const s = parseConfig(deepseekDense);
    expect(s).toMatchObject({
      family: 'deepseek_v2',
      attention: 'mla',
      numHeads: 16,
      numKvHeads: 1,
      headDim: 192,
      headDimV: 128,
      mla: { qLoraRank: null, kvLoraRank: 512, qkNopeHeadDim: 128, qkRopeHeadDim: 64, vHeadDim: 128 },
      rope: { theta: 10000, rotaryDim: 64, interleaved: true },
      tieWordEmbeddings: false,
    });
    expect(s.rope.scaling).toMatchObject({
      type: 'yarn',
      factor: 40,
      originalMaxPositionEmbeddings: 4096,
      betaFast: 32,
      betaSlow: 1,
      mscale: 0.707,
      mscaleAllDim: 0.707,
    });
    // mscale == mscale_all_dim: the cos/sin factor cancels to 1 ...
    expect(ropeAttentionFactor(s)).toBeCloseTo(1, 15);
    // ... and the softmax scale grows by mscale^2, mscale = 0.1 · 0.707 · ln 40 + 1.
    const m = 0.1 * 0.707 * Math.log(40) + 1;
    expect(s.softmaxScale).toBeCloseTo((m * m) / Math.sqrt(192), 14);
    // V3-style: mscale 1, mscale_all_dim 1 → the same, and without mscale_all_dim no softmax change
    // while cos/sin carry yarn_get_mscale(40, mscale).
    const noAllDim = parseConfig({
      ...deepseekDense,
      rope_scaling: { ...deepseekDense.rope_scaling, mscale_all_dim: undefined, mscale: 1 },
    });
    expect(noAllDim.softmaxScale).toBeCloseTo(1 / Math.sqrt(192), 15);
    expect(ropeAttentionFactor(noAllDim)).toBeCloseTo(yarnGetMscale(40, 1), 15);
    const t = expectedTensors(s);
    expect(t.get('model.layers.0.self_attn.q_proj.weight')).toEqual([16 * 192, 2048]);
    expect(t.get('model.layers.0.self_attn.kv_a_proj_with_mqa.weight')).toEqual([576, 2048]);
    expect(t.get('model.layers.0.self_attn.kv_a_layernorm.weight')).toEqual([512]);
    expect(t.get('model.layers.0.self_attn.kv_b_proj.weight')).toEqual([16 * 256, 512]);
    expect(t.get('model.layers.0.self_attn.o_proj.weight')).toEqual([2048, 16 * 128]);
    expect(t.get('model.layers.26.mlp.gate_proj.weight')).toEqual([10944, 2048]);
    expect(t.has('model.layers.0.self_attn.q_a_proj.weight')).toBe(false);
    expect(t.get('lm_head.weight')).toEqual([102400, 2048]);
  });

  it('DeepSeek with q_lora_rank set (V3 style) lists q_a_proj / q_a_layernorm / q_b_proj', () => {
    const s = parseConfig({ ...deepseekDense, model_type: 'deepseek_v3', q_lora_rank: 1536, n_routed_experts: null });
    expect(s.family).toBe('deepseek_v3');
    expect(s.mla!.qLoraRank).toBe(1536);
    const t = expectedTensors(s);
    expect(t.get('model.layers.3.self_attn.q_a_proj.weight')).toEqual([1536, 2048]);
    expect(t.get('model.layers.3.self_attn.q_a_layernorm.weight')).toEqual([1536]);
    expect(t.get('model.layers.3.self_attn.q_b_proj.weight')).toEqual([16 * 192, 1536]);
    expect(t.has('model.layers.3.self_attn.q_proj.weight')).toBe(false);
  });

  it('expectedTensors lists exactly the HF tensors of a llama layer', () => {
    const t = expectedTensors(parseConfig({ ...smolLM2, num_hidden_layers: 1 }));
    expect([...t.keys()].sort()).toEqual(
      [
        'model.embed_tokens.weight',
        'model.layers.0.input_layernorm.weight',
        'model.layers.0.self_attn.q_proj.weight',
        'model.layers.0.self_attn.k_proj.weight',
        'model.layers.0.self_attn.v_proj.weight',
        'model.layers.0.self_attn.o_proj.weight',
        'model.layers.0.post_attention_layernorm.weight',
        'model.layers.0.mlp.gate_proj.weight',
        'model.layers.0.mlp.up_proj.weight',
        'model.layers.0.mlp.down_proj.weight',
        'model.norm.weight',
      ].sort(),
    );
    expect(t.get('model.layers.0.self_attn.k_proj.weight')).toEqual([192, 576]);
    expect(t.get('model.layers.0.mlp.down_proj.weight')).toEqual([576, 1536]);
  });
});

describe('RoPE frequencies', () => {
  it('llama3 scaling keeps high frequencies, divides low ones by factor, blends between', () => {
    const base = ropeInvFrequencies(parseConfig({ ...llama32, rope_scaling: null }));
    const scaled = ropeInvFrequencies(parseConfig(llama32));
    let kept = 0;
    let divided = 0;
    let blended = 0;
    base.forEach((f, i) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < 8192 / 4) {
        expect(scaled[i]).toBe(f);
        kept++;
      } else if (wavelen > 8192 / 1) {
        expect(scaled[i]).toBeCloseTo(f / 32, 15);
        divided++;
      } else {
        expect(scaled[i]).toBeLessThan(f);
        expect(scaled[i]).toBeGreaterThan(f / 32);
        blended++;
      }
    });
    expect(kept).toBeGreaterThan(0);
    expect(divided).toBeGreaterThan(0);
    expect(blended).toBeGreaterThan(0);
    expect(scaled[0]).toBe(1); // pair 0 is the highest frequency
  });

  it('yarn: extrapolated (unchanged) below the low correction dim, interpolated (/ factor) above the high one', () => {
    const s = parseConfig(deepseekDense);
    const base = ropeInvFrequencies(parseConfig({ ...deepseekDense, rope_scaling: null }));
    const y = ropeInvFrequencies(s);
    // correction dims for rotaryDim 64, theta 1e4, original 4096: beta_fast 32 → floor(10.6) = 10,
    // beta_slow 1 → ceil(22.97) = 23.
    const corr = (rot: number) => (64 * Math.log(4096 / (rot * 2 * Math.PI))) / (2 * Math.log(10000));
    expect(Math.floor(corr(32))).toBe(10);
    expect(Math.ceil(corr(1))).toBe(23);
    for (let i = 0; i <= 10; i++) expect(y[i]).toBeCloseTo(base[i], 15);
    for (let i = 23; i < 32; i++) expect(y[i]).toBeCloseTo(base[i] / 40, 15);
    const r = (16 - 10) / (23 - 10);
    expect(y[16]).toBeCloseTo(base[16] * (1 - r) + (base[16] / 40) * r, 15);
  });

  it('the default is 1 / theta^(2i / rotaryDim)', () => {
    const f = ropeInvFrequencies(parseConfig(smolLM2));
    expect(f.length).toBe(32);
    expect(f[0]).toBe(1);
    expect(f[1]).toBeCloseTo(Math.pow(100000, -2 / 64), 15);
    expect(ropeAttentionFactor(parseConfig(smolLM2))).toBe(1);
  });
});

describe('parseConfig: errors name the file and the field', () => {
  const bad = (json: unknown, re: RegExp, source?: string) => {
    let err: unknown;
    try {
      parseConfig(json, source);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModelConfigError);
    expect((err as Error).message).toMatch(re);
  };

  it('unknown model_type lists the supported ones', () => {
    bad(
      { ...smolLM2, model_type: 'gpt2' },
      new RegExp(
        '^config\\.json: model_type: "gpt2" is not supported \\(supported: llama, mistral, qwen2, qwen3, gemma, ' +
          'gemma2, gemma3_text, phi3, smollm3, minicpm3, deepseek_v2, deepseek_v3\\)',
      ),
    );
    // Without model_type the family comes from architectures (MiniCPM3-4B); without both it is required.
    bad({ ...smolLM2, model_type: undefined, architectures: undefined }, /model_type: is required/);
    bad(
      { ...smolLM2, model_type: undefined, architectures: ['GPT2LMHeadModel'] },
      /architectures: .*names no supported family/,
    );
  });

  it('missing and malformed fields', () => {
    bad(
      { ...smolLM2, hidden_size: undefined },
      /^models\/x\/config\.json: hidden_size: is required/,
      'models/x/config.json',
    );
    bad({ ...smolLM2, hidden_size: '576' }, /hidden_size: must be a finite number/);
    bad({ ...smolLM2, num_hidden_layers: 0 }, /num_hidden_layers: must be an integer >= 1/);
    bad({ ...smolLM2, num_key_value_heads: 4 }, /num_key_value_heads: 4 must divide num_attention_heads 9/);
    bad({ ...smolLM2, hidden_size: 577, head_dim: undefined }, /head_dim: absent, and hidden_size 577/);
    bad({ ...smolLM2, rms_norm_eps: -1 }, /rms_norm_eps: must be > 0/);
    bad({ ...smolLM2, tie_word_embeddings: 'yes' }, /tie_word_embeddings: must be true or false/);
    bad({ ...smolLM2, eos_token_id: [1, 'x'] }, /eos_token_id/);
    bad([], /config\.json: must be a JSON object/);
    bad(null, /must be a JSON object/);
  });

  it('rope_scaling problems', () => {
    bad({ ...smolLM2, rope_scaling: { type: 'dynamic', factor: 2 } }, /rope_scaling\.type: "dynamic" is not supported/);
    bad({ ...smolLM2, rope_scaling: { factor: 2 } }, /rope_scaling\.rope_type: is required/);
    bad(
      { ...llama32, rope_scaling: { ...llama32.rope_scaling, low_freq_factor: undefined } },
      /rope_scaling\.low_freq_factor: is required/,
    );
    bad({ ...smolLM2, rope_scaling: { type: 'linear', factor: 0 } }, /rope_scaling\.factor: must be > 0/);
  });

  it('unsupported options are refused, not ignored', () => {
    bad({ ...smolLM2, hidden_act: 'relu' }, /hidden_act: "relu" is not supported/);
    bad({ ...smolLM2, attention_bias: true }, /attention_bias: true is not supported for llama/);
    bad({ ...smolLM2, mlp_bias: true }, /mlp_bias/);
    bad({ ...qwen25, use_sliding_window: true }, /use_sliding_window/);
    bad({ ...deepseekDense, kv_lora_rank: undefined }, /kv_lora_rank: is required/);
    bad({ ...deepseekDense, qk_rope_head_dim: undefined }, /qk_rope_head_dim: is required/);
  });
});
