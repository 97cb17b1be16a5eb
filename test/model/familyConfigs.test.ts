/**
 * parseConfig for the families of issue 18: HF's defaults where a config is silent (gemma2's
 * soft-caps and even sliding layers, gemma3's pattern and local base, smollm3's NoPE interval,
 * MiniCPM3's no-op muP), transformers-v5 per-layer-type rope_parameters, and refusals that name the
 * field for options a family does not read.
 */
import { describe, expect, it } from 'vitest';
import { ModelConfigError, parseConfig } from '../../src/model/config';
import { runtimeTensors } from '../../src/model/expectedTensors';
import { base } from '../helpers/tinyModels';
import { familyConfigs } from '../helpers/familyModels';

const refused = (json: Record<string, unknown>, field: string, why: RegExp) => {
  let err: unknown;
  try {
    parseConfig(json);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ModelConfigError);
  expect((err as Error).message.startsWith(`config.json: ${field}: `), (err as Error).message).toBe(true);
  expect((err as Error).message).toMatch(why);
};

describe('parseConfig: issue-18 families', () => {
  it("gemma2 without the keys takes HF's defaults: caps 50 / 30, scale 256^-1/2, window 4096 on even layers", () => {
    const spec = parseConfig({
      ...base,
      model_type: 'gemma2',
      num_hidden_layers: 4,
      head_dim: 16,
      sliding_window: undefined,
    });
    expect(spec.attnLogitSoftcap).toBe(50);
    expect(spec.finalLogitSoftcap).toBe(30);
    expect(spec.softmaxScale).toBeCloseTo(1 / 16, 12);
    expect(spec.slidingWindow).toBe(4096);
    expect(spec.layers.map((l) => l.sliding)).toEqual([true, false, true, false]);
    expect(spec.tieWordEmbeddings && spec.sandwichNorms && spec.normWeightPlusOne).toBe(true);
    expect(spec.qkNorm).toBe(false); // gemma3 adds q/k norms, gemma2 has none
    // null switches a cap off
    const uncapped = parseConfig({
      ...familyConfigs.gemma2,
      attn_logit_softcapping: null,
      final_logit_softcapping: null,
    });
    expect([uncapped.attnLogitSoftcap, uncapped.finalLogitSoftcap]).toEqual([null, null]);
  });

  it('layer_types wins over the family rule', () => {
    const types = ['full_attention', 'sliding_attention', 'full_attention'];
    const spec = parseConfig({ ...familyConfigs.gemma3, layer_types: types });
    expect(spec.layers.map((l) => `${l.sliding}/${l.rope}`)).toEqual(['false/global', 'true/local', 'false/global']);
    refused({ ...familyConfigs.gemma3, layer_types: ['full_attention'] }, 'layer_types', /list of 3 entries/);
    refused(
      { ...familyConfigs.gemma3, layer_types: ['full_attention', 'chunked', 'full_attention'] },
      'layer_types',
      /each one of/,
    );
  });

  it('gemma3 transformers v5: rope_parameters per layer type', () => {
    const spec = parseConfig({
      ...familyConfigs.gemma3,
      rope_theta: undefined,
      rope_local_base_freq: undefined,
      rope_parameters: {
        full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1e6 },
        sliding_attention: { rope_type: 'default', rope_theta: 1e4 },
      },
    });
    expect(spec.rope.theta).toBe(1e6);
    expect(spec.rope.scaling).toEqual({ type: 'linear', factor: 8 });
    expect(spec.localRope).toEqual({ theta: 1e4, rotaryDim: 16, interleaved: false, scaling: { type: 'none' } });
  });

  it('smollm3: NoPE every no_rope_layer_interval-th layer by default; slides only with use_sliding_window', () => {
    const spec = parseConfig({ ...base, model_type: 'smollm3', num_hidden_layers: 8 });
    expect(spec.layers.map((l) => l.rope)).toEqual([
      'global',
      'global',
      'global',
      'none',
      'global',
      'global',
      'global',
      'none',
    ]);
    expect(spec.slidingWindow).toBeNull();
    expect(spec.tieWordEmbeddings).toBe(true);
    const sliding = parseConfig({ ...familyConfigs.smollm3, use_sliding_window: true, sliding_window: 6 });
    expect(sliding.layers.map((l) => l.sliding)).toEqual([false, true, false, true]); // the NoPE layers
    refused({ ...familyConfigs.smollm3, no_rope_layers: [1, 0] }, 'no_rope_layers', /each of the 4 layers/);
  });

  it('phi3: fused tensors in the checkpoint, their slices at run time; Phi-3-mini-4k without rope_scaling', () => {
    const spec = parseConfig(familyConfigs.phi3);
    const run = runtimeTensors(spec);
    expect(run.get('model.layers.1.self_attn.q_proj.weight')).toEqual([32, 32]);
    expect(run.get('model.layers.1.self_attn.k_proj.weight')).toEqual([16, 32]);
    expect(run.get('model.layers.1.mlp.up_proj.weight')).toEqual([48, 32]);
    expect(run.has('model.layers.1.self_attn.qkv_proj.weight')).toBe(false);
    const mini4k = parseConfig({ ...base, model_type: 'phi3', sliding_window: 2047, rope_scaling: null });
    expect(mini4k.rope.scaling.type).toBe('none');
    expect(mini4k.layers.every((l) => l.sliding)).toBe(true);
    refused(
      { ...familyConfigs.phi3, rope_scaling: { type: 'longrope', short_factor: [1], long_factor: [1, 2] } },
      'rope_scaling.short_factor',
      /list of 2 numbers/,
    );
  });

  it('minicpm3 without muP keys is unscaled; with model_type minicpm3 it reads the same', () => {
    const plain = parseConfig({
      ...familyConfigs.minicpm3,
      scale_emb: undefined,
      scale_depth: undefined,
      dim_model_base: undefined,
    });
    expect([plain.embedScale, plain.residualScale, plain.logitScale]).toEqual([1, 1, 1]);
    const typed = parseConfig({ ...familyConfigs.minicpm3, model_type: 'minicpm3' });
    expect(typed).toEqual(parseConfig(familyConfigs.minicpm3));
    refused({ ...familyConfigs.minicpm3, kv_lora_rank: undefined }, 'kv_lora_rank', /required for minicpm3/);
  });

  it('options a family does not read are refused by name, not ignored', () => {
    const llama = { ...base, model_type: 'llama' };
    refused({ ...llama, partial_rotary_factor: 0.5 }, 'partial_rotary_factor', /only supported for phi3/);
    refused({ ...llama, no_rope_layers: [1, 0] }, 'no_rope_layers', /only read for smollm3/);
    refused({ ...llama, attn_logit_softcapping: 50 }, 'attn_logit_softcapping', /only read for gemma2/);
    refused({ ...llama, final_logit_softcapping: 30 }, 'final_logit_softcapping', /only read for gemma2/);
    refused({ ...llama, query_pre_attn_scalar: 64 }, 'query_pre_attn_scalar', /only read for gemma2/);
    refused({ ...llama, rope_local_base_freq: 1e4 }, 'rope_local_base_freq', /only read for gemma3_text/);
    refused({ ...llama, scale_emb: 12 }, 'scale_emb', /only read for minicpm3/);
    refused({ ...llama, num_local_experts: 8 }, 'num_local_experts', /mixture-of-experts/);
    refused({ ...llama, quantization_config: { quant_method: 'fp8' } }, 'quantization_config', /pre-quantized .*fp8/);
    const longrope = { type: 'longrope', short_factor: [1, 1, 1, 1], long_factor: [1, 1, 1, 1] };
    refused(
      { ...llama, rope_scaling: longrope },
      'rope_scaling.type',
      /longrope is only supported for phi3 and minicpm3/,
    );
    refused({ ...llama, model_type: 'gpt_oss' }, 'model_type', /sink/);
    refused({ ...llama, model_type: 't5', is_encoder_decoder: true }, 'is_encoder_decoder', /encoder-decoder/);
  });
});
