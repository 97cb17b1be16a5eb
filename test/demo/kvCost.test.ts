/**
 * The demo's pure helpers (no DOM, no GPU): reading a config.json's attention dims through the
 * runtime's parser, the KV bill per variant, failure classification and download progress text.
 */
import { describe, expect, it } from 'vitest';
import { dimsFromConfig, variantBills } from '../../demo/kvCost';
import { ProgressTracker, classifyError, formatSeconds } from '../../demo/engineClient';

const llama2_7b = {
  model_type: 'llama',
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 32,
  hidden_size: 4096,
  intermediate_size: 11008,
  vocab_size: 32000,
  max_position_embeddings: 4096,
  tie_word_embeddings: false,
};
const qwen25_05b = {
  model_type: 'qwen2',
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  hidden_size: 896,
  intermediate_size: 4864,
  vocab_size: 151936,
  max_position_embeddings: 32768,
  tie_word_embeddings: true,
};
const deepseekV3 = {
  model_type: 'deepseek_v3',
  num_hidden_layers: 61,
  num_attention_heads: 128,
  num_key_value_heads: 128,
  hidden_size: 7168,
  kv_lora_rank: 512,
  qk_rope_head_dim: 64,
  qk_nope_head_dim: 128,
  v_head_dim: 128,
  q_lora_rank: 1536,
  intermediate_size: 18432,
  moe_intermediate_size: 2048,
  n_routed_experts: 256,
  vocab_size: 129280,
};
// DeepSeek-V3's attention with a dense MLP: the runtime refuses MoE layers, the KV bill is the same.
const deepseekV3Dense = { ...deepseekV3, n_routed_experts: null };

describe('dimsFromConfig', () => {
  it('reads MHA, GQA, MQA and MLA configs, head dim from hidden_size / heads when absent', () => {
    expect(dimsFromConfig(llama2_7b)).toMatchObject({
      variant: 'mha',
      numLayers: 32,
      numHeads: 32,
      numKvHeads: 32,
      headDim: 128,
      maxContext: 4096,
    });
    expect(dimsFromConfig(qwen25_05b)).toMatchObject({ variant: 'gqa', numKvHeads: 2, headDim: 64 });
    expect(dimsFromConfig({ ...qwen25_05b, num_key_value_heads: 1, head_dim: 256 })).toMatchObject({
      variant: 'mqa',
      headDim: 256,
    });
    expect(dimsFromConfig(deepseekV3Dense)).toMatchObject({
      variant: 'mla',
      numKvHeads: 1,
      headDim: 192,
      latentDim: 512,
      ropeDim: 64,
    });
    // Multimodal configs keep the language model under text_config.
    expect(dimsFromConfig({ model_type: 'llava', text_config: llama2_7b })).toMatchObject({
      variant: 'mha',
      numLayers: 32,
    });
  });

  it('estimates parameters from the shapes (Llama-2-7B has 6.74B)', () => {
    const p = dimsFromConfig(llama2_7b).parameters!;
    expect(Math.abs(p - 6.738e9) / 6.738e9).toBeLessThan(0.01);
    const q = dimsFromConfig(qwen25_05b).parameters!; // 494M with tied embeddings
    expect(Math.abs(q - 0.494e9) / 0.494e9).toBeLessThan(0.03);
  });

  it("names the missing field (the runtime's ModelConfigError)", () => {
    const partial = { model_type: 'llama', hidden_size: 64, intermediate_size: 128, num_attention_heads: 8 };
    expect(() => dimsFromConfig(partial, 'x/config.json')).toThrow('x/config.json: num_hidden_layers: is required');
    const odd = {
      model_type: 'llama',
      num_hidden_layers: 2,
      num_attention_heads: 3,
      hidden_size: 100,
      intermediate_size: 64,
      vocab_size: 10,
    };
    expect(() => dimsFromConfig(odd)).toThrow(/head_dim: absent, and hidden_size 100 \/ num_attention_heads 3/);
    expect(() => dimsFromConfig([1, 2])).toThrow(/must be a JSON object/);
  });

  it('refuses what the runtime cannot run, with its message', () => {
    expect(() => dimsFromConfig({ ...llama2_7b, model_type: 'gpt2' })).toThrow(
      expect.objectContaining({
        name: 'ModelConfigError',
        message: expect.stringContaining('"gpt2" is not supported'),
      }),
    );
    expect(() => dimsFromConfig(deepseekV3)).toThrow(/mixture-of-experts .*MoE is not supported yet/);
  });
});

describe('variantBills', () => {
  it('prices Llama-2-7B at 128K: 64 GiB as MHA, 16 GiB as its GQA 32/8 sibling, 2 GiB MQA, 4.5 GiB MLA', () => {
    const bills = variantBills(dimsFromConfig(llama2_7b), 'f16', 131072, 1);
    const by = Object.fromEntries(bills.map((b) => [b.variant, b]));
    expect(by.mha).toMatchObject({ actual: true, bytesPerToken: 512 * 1024, cacheBytes: 64 * 2 ** 30 });
    expect(by.gqa).toMatchObject({
      actual: false,
      bytesPerToken: 128 * 1024,
      cacheBytes: 16 * 2 ** 30,
      shape: '2 × 8 KV heads × 128',
    });
    expect(by.mqa.cacheBytes).toBe(2 * 2 ** 30);
    expect(by.mla.bytesPerToken).toBe((512 + 64) * 2 * 32);
  });

  it('keeps a GQA model its own groups and an MLA model its own latent row; f32 doubles, sequences multiply', () => {
    const q = variantBills(dimsFromConfig(qwen25_05b), 'f32', 1000, 3);
    expect(q.find((b) => b.actual)!.variant).toBe('gqa');
    expect(q.find((b) => b.variant === 'gqa')!.cacheBytes).toBe(24 * 2 * 2 * 64 * 4 * 1000 * 3);
    const d = variantBills(dimsFromConfig(deepseekV3Dense), 'f16', 1, 1);
    expect(d.find((b) => b.actual)!).toMatchObject({ variant: 'mla', bytesPerToken: 576 * 2 * 61 }); // 68.6 KiB
  });
});

describe('classifyError', () => {
  it('sorts failures into what the page offers next', () => {
    const e = (name: string, message: string) => Object.assign(new Error(message), { name });
    expect(classifyError(e('ModelSourceError', 'org/x: model.safetensors: got 10 of 20 bytes; retry')).kind).toBe(
      'download',
    );
    expect(classifyError(e('DeviceLostError', 'the GPU device was lost')).kind).toBe('device-lost');
    expect(classifyError(e('QuotaExceededError', 'The quota has been exceeded.')).kind).toBe('storage-full');
    expect(
      classifyError(
        e('EngineRequestError', 'request 3: 200 prompt tokens + 128 max tokens = 328 pass the context of 256'),
      ).kind,
    ).toBe('kv-full');
    expect(
      classifyError(
        e('ShapeError', 'matmul: weight of 300000000 bytes exceeds maxStorageBufferBindingSize (134217728)'),
      ).kind,
    ).toBe('binding-limit');
    expect(classifyError(e('ModelConfigError', "config.json: model_type 'gpt2' is not supported")).kind).toBe(
      'unsupported',
    );
    expect(classifyError(e('AbortError', 'aborted')).kind).toBe('abort');
    expect(classifyError(new Error('something else')).kind).toBe('other');
  });
});

describe('ProgressTracker', () => {
  it('sums files and reports bytes of the current file', () => {
    const t = new ProgressTracker();
    t.update({ file: 'config.json', loadedBytes: 500, totalBytes: 500 });
    const r = t.update({ file: 'model.safetensors', loadedBytes: 1024 * 1024, totalBytes: 4 * 1024 * 1024 });
    expect(r.loadedBytes).toBe(500 + 1024 * 1024);
    expect(r.totalBytes).toBe(500 + 4 * 1024 * 1024);
    expect(r.text).toContain('model.safetensors 1 MiB of 4 MiB');
    expect(t.update({ file: 'x', loadedBytes: 1, totalBytes: undefined }).fraction).toBeUndefined();
  });

  it('formats seconds', () => {
    expect(formatSeconds(3.21)).toBe('3.2 s');
    expect(formatSeconds(42.4)).toBe('42 s');
    expect(formatSeconds(125)).toBe('2 min 5 s');
  });
});
