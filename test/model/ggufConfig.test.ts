import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ModelConfigError, parseConfig } from '../../src/model/config';
import { f32ToDecimal, ggufModelSpec, ggufToHfConfig } from '../../src/model/ggufConfig';
import { type GgufHeader, type GgufKv, type GgufTensorInfo, parseGguf } from '../../src/sources/gguf';

const ROOT = new URL('../../', import.meta.url).pathname;
const REALWORLD = `${ROOT}../shared/realworld/`;
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

const u32 = (value: number): GgufKv => ({ type: 'uint32', value });
const f32 = (value: number): GgufKv => ({ type: 'float32', value: Math.fround(value) });
const str = (value: string): GgufKv => ({ type: 'string', value });

function tensorInfo(name: string, dims: number[]): GgufTensorInfo {
  const numel = dims.reduce((a, b) => a * b, 1);
  return {
    name,
    type: 'F32',
    dims,
    shape: [...dims].reverse(),
    numel,
    byteLength: 4 * numel,
    offset: 0,
    begin: 0,
    end: 0,
  };
}

function header(metadata: [string, GgufKv][], tensors: GgufTensorInfo[] = [], fileName = 'test.gguf'): GgufHeader {
  return {
    fileName,
    version: 3,
    metadata: new Map(metadata),
    tensors: new Map(tensors.map((t) => [t.name, t])),
    alignment: 32,
    dataOffset: 0,
    minFileSize: 0,
  };
}

/**
 * What llama.cpp's convert_hf_to_gguf.py writes for an HF config (set_gguf_parameters of TextModel,
 * LlamaModel, Qwen2Model, Qwen3Model, GemmaModel and DeepseekV2Model, as of commit 1eeb523), plus
 * the tensors that decide tie_word_embeddings and Llama 3's rope_freqs. A test-side re-statement of
 * the converter, so that a real HF config can be checked against what its GGUF says.
 */
// biome-ignore lint/suspicious/noExplicitAny: a parsed config.json, read field by field as the converter does
function convertHfToGguf(c: Record<string, any>, arch: string): { header: GgufHeader; ropeFreqs?: Float32Array } {
  const m: [string, GgufKv][] = [['general.architecture', str(arch)]];
  const a = (k: string, v: GgufKv) => m.push([`${arch}.${k}`, v]);
  const theta = c.rope_theta ?? c.rope_parameters?.rope_theta;
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  a('block_count', u32(c.num_hidden_layers));
  if (c.max_position_embeddings) a('context_length', u32(c.max_position_embeddings));
  a('embedding_length', u32(c.hidden_size));
  a('feed_forward_length', u32(c.intermediate_size));
  a('attention.head_count', u32(c.num_attention_heads));
  // DeepseekV2Model: "deepseek2 using MLA converts into MQA (ie: GQA with 1 group)"
  a('attention.head_count_kv', u32(arch === 'deepseek2' ? 1 : (c.num_key_value_heads ?? c.num_attention_heads)));
  if (theta !== undefined && arch !== 'gemma') a('rope.freq_base', f32(theta));
  a('attention.layer_norm_rms_epsilon', f32(c.rms_norm_eps));
  if (arch !== 'deepseek2' && c.head_dim) {
    a('attention.key_length', u32(c.head_dim));
    a('attention.value_length', u32(c.head_dim));
  }
  a('vocab_size', u32(c.vocab_size));
  if (arch === 'llama') a('rope.dimension_count', u32(headDim));
  let ropeFreqs: Float32Array | undefined;
  const rs = c.rope_scaling;
  if (rs && (rs.rope_type ?? rs.type) === 'llama3') {
    // LlamaModel.generate_extra_tensors
    const factor = rs.factor ?? 8;
    const low = rs.low_freq_factor ?? 1;
    const high = rs.high_freq_factor ?? 4;
    const old = c.original_max_position_embeddings ?? 8192;
    ropeFreqs = new Float32Array(headDim / 2);
    for (let i = 0; i < headDim / 2; i++) {
      const freq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / headDim)));
      const wavelen = (2 * Math.PI) / freq;
      if (wavelen < old / high) ropeFreqs[i] = 1;
      else if (wavelen > old / low) ropeFreqs[i] = factor;
      else {
        const smooth = (old / wavelen - low) / (high - low);
        ropeFreqs[i] = 1 / ((1 - smooth) / factor + smooth);
      }
    }
  } else if (rs && (rs.rope_type ?? rs.type) === 'yarn') {
    a('rope.scaling.type', str('yarn'));
    a('rope.scaling.factor', f32(rs.factor));
    a('rope.scaling.original_context_length', u32(rs.original_max_position_embeddings));
    if (arch === 'deepseek2') a('rope.scaling.yarn_log_multiplier', f32(0.1 * rs.mscale_all_dim));
  } else if (rs && (rs.rope_type ?? rs.type) === 'linear') {
    a('rope.scaling.type', str('linear'));
    a('rope.scaling.factor', f32(rs.factor));
  }
  if (arch === 'deepseek2') {
    a('leading_dense_block_count', u32(c.first_k_dense_replace ?? 0));
    if (c.q_lora_rank) a('attention.q_lora_rank', u32(c.q_lora_rank));
    a('attention.kv_lora_rank', u32(c.kv_lora_rank));
    a('attention.key_length', u32(c.kv_lora_rank + c.qk_rope_head_dim));
    a('attention.value_length', u32(c.kv_lora_rank));
    a('attention.key_length_mla', u32(c.qk_nope_head_dim + c.qk_rope_head_dim));
    a('attention.value_length_mla', u32(c.v_head_dim));
    if (c.n_routed_experts) {
      a('expert_feed_forward_length', u32(c.moe_intermediate_size));
      a('expert_count', u32(c.n_routed_experts));
      a('expert_shared_count', u32(c.n_shared_experts));
      a('expert_weights_scale', f32(c.routed_scaling_factor));
      a('expert_gating_func', u32(c.scoring_func === 'sigmoid' ? 2 : 1));
    }
    a('rope.dimension_count', u32(c.qk_rope_head_dim));
  }
  if (c.bos_token_id !== undefined && c.bos_token_id !== null)
    m.push(['tokenizer.ggml.bos_token_id', u32(c.bos_token_id)]);
  const eos = Array.isArray(c.eos_token_id) ? c.eos_token_id : [c.eos_token_id];
  if (eos[0] !== undefined) m.push(['tokenizer.ggml.eos_token_id', u32(eos[0])]);
  if (eos[1] !== undefined) m.push(['tokenizer.ggml.eot_token_id', u32(eos[1])]);
  if (eos[2] !== undefined) m.push(['tokenizer.ggml.eom_token_id', u32(eos[2])]);
  const tensors = [tensorInfo('token_embd.weight', [c.hidden_size, c.vocab_size])];
  const tied = c.tie_word_embeddings ?? arch === 'gemma';
  if (!tied) tensors.push(tensorInfo('output.weight', [c.hidden_size, c.vocab_size]));
  if (ropeFreqs) tensors.push(tensorInfo('rope_freqs.weight', [headDim / 2]));
  return { header: header(m, tensors, `${arch}.gguf`), ropeFreqs };
}

describe('f32ToDecimal', () => {
  it('gives back the decimal a Python float was before it went through f32', () => {
    for (const x of [1e-5, 1e-6, 0.707, 0.0707, 10000, 1000042, 500000, 0.1, 32, 1.5e-7, -2.5]) {
      expect(f32ToDecimal(Math.fround(x))).toBe(x);
    }
    expect(f32ToDecimal(0)).toBe(0);
    expect(f32ToDecimal(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('GGUF metadata → ModelSpec on the real GGUF files', () => {
  it('every kjv-gqa GGUF gives the ModelSpec of the shipped HF folder, field for field', () => {
    const hf = parseConfig(json(`${ROOT}models/kjv-gqa/config.json`));
    for (const t of ['F32', 'F16', 'Q8_0', 'Q4_0', 'Q4_K_M', 'Q6_K']) {
      const f = parseGguf(readFileSync(`${REALWORLD}gguf/kjv-gqa-${t}.gguf`), `kjv-gqa-${t}.gguf`);
      expect(ggufModelSpec(f)).toEqual(hf);
    }
  });

  it("stories260K gives llama2.c's shape (dim 64, hidden 172, 5 layers, 8/4 heads, vocab 512, seq 512, tied)", () => {
    for (const t of ['F32', 'F16', 'Q4_K_M', 'Q6_K']) {
      const spec = ggufModelSpec(parseGguf(readFileSync(`${REALWORLD}gguf/stories260K-${t}.gguf`)));
      expect(spec).toMatchObject({
        family: 'llama',
        hiddenSize: 64,
        intermediateSize: 172,
        numLayers: 5,
        numHeads: 8,
        numKvHeads: 4,
        headDim: 8,
        attention: 'gqa',
        vocabSize: 512,
        maxPositionEmbeddings: 512,
        tieWordEmbeddings: true,
        rmsNormEps: 1e-5,
        rope: { theta: 10000, rotaryDim: 8, interleaved: false, scaling: { type: 'none' } },
        bosTokenId: 1,
        eosTokenIds: [2],
      });
    }
  });

  it('the llama vocabularies give Llama-2-7B and DeepSeek-LLM-7B shapes; the others are refused by name', () => {
    const vocab = (name: string) =>
      parseGguf(readFileSync(`${REALWORLD}gguf-vocab/ggml-vocab-${name}.gguf`), `${name}.gguf`);
    expect(ggufModelSpec(vocab('llama-spm'))).toMatchObject({
      hiddenSize: 4096,
      intermediateSize: 11008,
      numLayers: 32,
      numHeads: 32,
      numKvHeads: 32,
      attention: 'mha',
      vocabSize: 32000,
      maxPositionEmbeddings: 4096,
      rmsNormEps: 1e-5,
      bosTokenId: 1,
      eosTokenIds: [2],
    });
    expect(ggufModelSpec(vocab('deepseek-llm'))).toMatchObject({
      hiddenSize: 4096,
      numLayers: 30,
      vocabSize: 102400,
      rmsNormEps: 1e-6,
    });
    const refused: [string, string][] = [
      ['falcon', 'falcon'],
      ['gpt-2', 'gpt2'],
      ['phi-3', 'phi3'],
    ];
    for (const [file, arch] of refused) {
      expect(() => ggufModelSpec(vocab(file))).toThrow(
        `${file}.gguf: GGUF metadata general.architecture: "${arch}" is not supported ` +
          '(supported: llama, qwen2, qwen3, gemma, deepseek2)',
      );
    }
  });
});

describe('GGUF metadata → ModelSpec for real HF configs, through what convert_hf_to_gguf.py writes', () => {
  const cases: [string, string, Record<string, unknown>?][] = [
    ['Llama-3.2-1B-Instruct/config.json', 'llama'],
    ['Qwen2.5-0.5B-Instruct/config.json', 'qwen2'],
    ['Qwen3-0.6B-Base-ft-transformers-v5/config.json', 'qwen3'],
    ['SmolLM2-135M-Instruct/config.json', 'llama'],
    ['SmolLM2-360M-Instruct/config.json', 'llama'],
    ['TinyLlama-1.1B-Chat-v1.0/config.json', 'llama'],
    ['Falcon3-1B-Base/config.json', 'llama'],
    // DeepSeek-V2-Lite made dense (the runtime refuses MoE): same MLA shape and yarn scaling
    ['DeepSeek-V2-Lite/config.json', 'deepseek2', { n_routed_experts: null }],
  ];
  for (const [path, arch, patch] of cases) {
    it(`${path}${patch ? ' (dense)' : ''}`, () => {
      const c = { ...json(`${REALWORLD}${path}`), ...patch };
      const hf = parseConfig(c, path);
      const { header: h, ropeFreqs } = convertHfToGguf(c, arch);
      const spec = ggufModelSpec(h, { ropeFreqs });
      expect(spec).toEqual({ ...hf, softmaxScale: spec.softmaxScale });
      expect(spec.softmaxScale).toBeCloseTo(hf.softmaxScale, 12);
    });
  }

  it('gemma (google/gemma-2b config): MQA, head_dim 256, tied, GELU, norm weights +1', () => {
    const c = {
      model_type: 'gemma',
      hidden_size: 2048,
      intermediate_size: 16384,
      num_hidden_layers: 18,
      num_attention_heads: 8,
      num_key_value_heads: 1,
      head_dim: 256,
      vocab_size: 256000,
      max_position_embeddings: 8192,
      rms_norm_eps: 1e-6,
      hidden_activation: 'gelu_pytorch_tanh',
      bos_token_id: 2,
      eos_token_id: 1,
    };
    const { header: h } = convertHfToGguf(c, 'gemma');
    const spec = ggufModelSpec(h);
    expect(spec).toEqual(parseConfig(c));
    expect(spec).toMatchObject({
      attention: 'mqa',
      normWeightPlusOne: true,
      tieWordEmbeddings: true,
      activation: 'gelu_tanh',
    });
  });

  it('DeepSeek-V2-Lite itself is refused for its MoE layers, as parseConfig refuses the HF config', () => {
    const c = json(`${REALWORLD}DeepSeek-V2-Lite/config.json`);
    expect(() => parseConfig(c)).toThrow('MoE is not supported yet');
    expect(() => ggufModelSpec(convertHfToGguf(c, 'deepseek2').header)).toThrow(
      /n_routed_experts \(GGUF deepseek2\.expert_count\): 64 routed experts make 26 of 27 layers mixture-of-experts/,
    );
  });

  it('older DeepSeek files (key_length = qk_nope + qk_rope, no *_mla keys) read the same', () => {
    const c = { ...json(`${REALWORLD}DeepSeek-V2-Lite/config.json`), n_routed_experts: null };
    const { header: h } = convertHfToGguf(c, 'deepseek2');
    const md = h.metadata;
    md.set('deepseek2.attention.key_length', u32(192));
    md.set('deepseek2.attention.value_length', u32(128));
    md.delete('deepseek2.attention.key_length_mla');
    md.delete('deepseek2.attention.value_length_mla');
    expect(ggufModelSpec(h).mla).toEqual({
      qLoraRank: null,
      kvLoraRank: 512,
      qkNopeHeadDim: 128,
      qkRopeHeadDim: 64,
      vHeadDim: 128,
    });
  });
});

describe('GGUF metadata errors name the key', () => {
  const base = (): [string, GgufKv][] => [
    ['general.architecture', str('llama')],
    ['llama.block_count', u32(2)],
    ['llama.embedding_length', u32(64)],
    ['llama.feed_forward_length', u32(128)],
    ['llama.attention.head_count', u32(4)],
    ['llama.vocab_size', u32(100)],
  ];
  const spec = (edit: (m: Map<string, GgufKv>) => void, tensors: GgufTensorInfo[] = []) => {
    const h = header(base(), tensors);
    edit(h.metadata);
    return () => ggufModelSpec(h);
  };

  it('a minimal llama header reads', () => {
    expect(spec(() => {})()).toMatchObject({ numLayers: 2, headDim: 16, numKvHeads: 4, tieWordEmbeddings: false });
  });
  const cases: [string, (m: Map<string, GgufKv>) => void, string][] = [
    [
      'no architecture',
      (m) => m.delete('general.architecture'),
      'test.gguf: GGUF metadata general.architecture: is required',
    ],
    [
      'architecture not a string',
      (m) => m.set('general.architecture', u32(1)),
      'general.architecture: must be a string, got a uint32',
    ],
    [
      'missing block_count',
      (m) => m.delete('llama.block_count'),
      'test.gguf: GGUF metadata llama.block_count: is required',
    ],
    [
      'block_count a string',
      (m) => m.set('llama.block_count', str('2')),
      'llama.block_count: must be a number, got a string',
    ],
    [
      'per-layer head counts',
      (m) => m.set('llama.attention.head_count', { type: 'array', itemType: 'int32', value: new Int32Array([4, 8]) }),
      'llama.attention.head_count: per-layer values [4, 8] are not supported',
    ],
    [
      'head_count_kv that does not divide',
      (m) => m.set('llama.attention.head_count_kv', u32(3)),
      'num_key_value_heads (GGUF llama.attention.head_count_kv): 3 must divide num_attention_heads 4',
    ],
    [
      'partial rope',
      (m) => m.set('llama.rope.dimension_count', u32(8)),
      'llama.rope.dimension_count: 8 rotates part of the 16-wide heads',
    ],
    [
      'longrope',
      (m) => m.set('llama.rope.scaling.type', str('longrope')),
      'llama.rope.scaling.type: "longrope" is not supported',
    ],
    [
      'value_length differs',
      (m) => m.set('llama.attention.value_length', u32(8)),
      'llama.attention.value_length: 8 differs from the key head width 16',
    ],
    [
      'bad token id',
      (m) => m.set('tokenizer.ggml.bos_token_id', { type: 'int32', value: -1 }),
      'bos_token_id: must be a token id, got -1',
    ],
  ];
  for (const [what, edit, message] of cases) {
    it(what, () => {
      const run = spec(edit);
      expect(run).toThrow(ModelConfigError);
      expect(run).toThrow(message);
    });
  }

  it('rope_freqs without its values, or with values llama3 scaling cannot produce', () => {
    const freqs = [tensorInfo('rope_freqs.weight', [8])];
    expect(spec(() => {}, freqs)).toThrow('rope_freqs.weight: is in the file: pass its values as ropeFreqs');
    const h = header(base(), freqs);
    expect(() => ggufModelSpec(h, { ropeFreqs: new Float32Array([1, 2, 1, 2, 1, 2, 1, 2]) })).toThrow(
      'other rope_freqs are not supported',
    );
  });

  it('vocab_size that disagrees with token_embd', () => {
    const run = spec(() => {}, [tensorInfo('token_embd.weight', [64, 99])]);
    expect(run).toThrow("llama.vocab_size: 100 disagrees with token_embd.weight's 99 rows");
  });

  it('ggufToHfConfig falls back on the token list and token_embd for vocab_size', () => {
    const h = header(base(), [tensorInfo('token_embd.weight', [64, 100])]);
    h.metadata.delete('llama.vocab_size');
    expect(ggufToHfConfig(h)).toMatchObject({ vocab_size: 100, tie_word_embeddings: true, model_type: 'llama' });
  });
});
