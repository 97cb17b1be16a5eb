/**
 * Tiny model checkpoints for tests: one config per family shaped like the real ones, fresh random
 * weights, and a writer that lays them out as a Hugging Face folder (config.json + model.safetensors).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelSpec } from '../../src/model/config';
import { expectedTensors } from '../../src/model/expectedTensors';
import type { WeightFn } from '../../src/reference/transformer';
import { parseConfig } from '../../src/model/config';
const specOf = (c: Record<string, unknown>): ModelSpec => parseConfig(c);
import { writeSafetensors, type TensorToWrite } from '../../src/sources/safetensors';

// Tiny configs, one per family, shaped like the real ones. Fresh random weights every run.
export const base = {
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 37,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  hidden_act: 'silu',
};
export const configs: Record<string, Record<string, unknown>> = {
  llama: { ...base, model_type: 'llama', tie_word_embeddings: false },
  llama3: {
    ...base,
    model_type: 'llama',
    rope_scaling: {
      rope_type: 'llama3',
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 16,
    },
  },
  mistral: { ...base, model_type: 'mistral', sliding_window: 4 },
  qwen2: { ...base, model_type: 'qwen2', tie_word_embeddings: true },
  qwen3: { ...base, model_type: 'qwen3', head_dim: 12, tie_word_embeddings: true },
  gemma: { ...base, model_type: 'gemma', num_key_value_heads: 1, head_dim: 16, hidden_act: 'gelu' },
  deepseek: {
    ...base,
    model_type: 'deepseek_v2',
    num_key_value_heads: 4,
    kv_lora_rank: 16,
    q_lora_rank: null,
    qk_nope_head_dim: 8,
    qk_rope_head_dim: 4,
    v_head_dim: 6,
    n_routed_experts: null,
    rope_scaling: {
      type: 'yarn',
      factor: 4,
      original_max_position_embeddings: 8,
      beta_fast: 32,
      beta_slow: 1,
      mscale: 0.707,
      mscale_all_dim: 0.707,
    },
  },
  deepseekV3: {
    ...base,
    model_type: 'deepseek_v3',
    num_key_value_heads: 4,
    kv_lora_rank: 12,
    q_lora_rank: 20,
    qk_nope_head_dim: 4,
    qk_rope_head_dim: 8,
    v_head_dim: 8,
    n_routed_experts: 8,
    first_k_dense_replace: 2, // both layers dense
    rope_scaling: { type: 'yarn', factor: 8, original_max_position_embeddings: 16, mscale: 1.0, mscale_all_dim: 0.5 },
  },
};

export const randn = () => {
  let u = 0;
  while (u === 0) u = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
};

/**
 * Random weights for every expected tensor: Linear ~ N(0, 1/in), norms ~ 1 ± 0.2 (gemma: ± 0.2 around 0),
 * biases ~ 0.1.
 */
export function randomWeights(spec: ModelSpec): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  for (const [name, shape] of expectedTensors(spec)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNorm = name.endsWith('norm.weight');
    const scale = name.endsWith('.bias')
      ? 0.1
      : name.includes('embed_tokens') || shape.length === 1
        ? 1
        : 1 / Math.sqrt(shape[1]);
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = isNorm ? (spec.normWeightPlusOne ? 0 : 1) + 0.2 * randn() : scale * randn();
    m.set(name, a);
  }
  return m;
}

export const lookup =
  (m: Map<string, Float32Array>): WeightFn =>
  (name) => {
    const w = m.get(name);
    if (!w) throw new Error(`no tensor ${name}`);
    return w;
  };

export const randomIds = (T: number, vocab: number) =>
  Array.from({ length: T }, () => Math.floor(Math.random() * vocab));

/** Writes config + weights as a model folder; F16 weights are stored rounded (the reference must use the same). */
export function writeCheckpoint(
  config: Record<string, unknown>,
  weights: Map<string, Float32Array>,
  dtype: 'F32' | 'F16' = 'F32',
): string {
  const dir = mkdtempSync(join(tmpdir(), 'webattn-model-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, data] of weights) tensors[name] = { dtype, shape: shapes(config, name), data };
  writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors));
  return dir;
}

const shapeCache = new WeakMap<object, Map<string, number[]>>();
function shapes(config: Record<string, unknown>, name: string): number[] {
  let m = shapeCache.get(config);
  if (!m) {
    m = expectedTensors(specOf(config));
    shapeCache.set(config, m);
  }
  return m.get(name)!;
}
