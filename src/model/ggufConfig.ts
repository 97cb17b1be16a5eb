/**
 * GGUF metadata → the Hugging Face config.json object convert_hf_to_gguf.py read it from → ModelSpec
 * through parseConfig, so one function (config.ts) decides everything that follows from the numbers
 * (attention variant, head dims, softmax scale, RoPE scaling). This file only renames keys.
 *
 * Keys read, for `general.architecture` = A (A in GGUF_ARCHITECTURES):
 *   A.embedding_length → hidden_size            A.feed_forward_length → intermediate_size
 *   A.block_count → num_hidden_layers           A.context_length → max_position_embeddings
 *   A.attention.head_count → num_attention_heads,  A.attention.head_count_kv → num_key_value_heads
 *   A.attention.key_length → head_dim (value_length must match; MLA: see below)
 *   A.attention.layer_norm_rms_epsilon → rms_norm_eps     A.rope.freq_base → rope_theta
 *   A.rope.scaling.{type, factor, original_context_length} → rope_scaling (linear, yarn)
 *   A.vocab_size (else the token list, else token_embd's rows) → vocab_size
 *   tokenizer.ggml.{bos,eos,eot,eom}_token_id → bos_token_id, eos_token_id (a list)
 *   no `output.weight` tensor → tie_word_embeddings
 *   `rope_freqs.weight` (Llama 3.1+: per-pair frequency divisors) → rope_scaling llama3, found by
 *     recomputing convert_hf_to_gguf's factors; the caller passes its values (ropeFreqs)
 *   deepseek2: attention.q_lora_rank (0 or absent: none), attention.kv_lora_rank,
 *     rope.dimension_count → qk_rope_head_dim; attention.key_length_mla / value_length_mla (newer
 *     files, where key_length / value_length describe the absorbed MQA form) or else key_length /
 *     value_length → qk_nope_head_dim + qk_rope_head_dim, v_head_dim; rope.scaling.yarn_log_multiplier
 *     = 0.1 · mscale_all_dim; expert_count, leading_dense_block_count, expert_shared_count,
 *     expert_feed_forward_length, expert_used_count → the MoE fields (which parseConfig refuses).
 * Floats are stored as f32; each is read back as the shortest decimal that rounds to the same f32
 * (9.99999974e-6 → 1e-5), which is what the HF config said.
 *
 * Tensors differ from the HF checkpoint's in two ways that ggufTensors.ts undoes, so the spec here
 * equals the HF one: llama's q/k rows are permuted for llama.cpp's adjacent-pair RoPE, and gemma's
 * norm weights are stored plus one.
 */
import type { GgufHeader, GgufKv } from '../sources/gguf';
import { ModelConfigError, type ModelSpec, parseConfig } from './config';

/** general.architecture → HF model_type. deepseek2 holds DeepSeek-V2 and V3 (see deepseekFamily). */
export const GGUF_ARCHITECTURES = {
  llama: 'llama',
  qwen2: 'qwen2',
  qwen3: 'qwen3',
  gemma: 'gemma',
  deepseek2: 'deepseek_v2',
} as const;
export type GgufArchitecture = keyof typeof GGUF_ARCHITECTURES;

export interface GgufConfigOptions {
  /** The values of the `rope_freqs.weight` tensor, when the file has one. */
  ropeFreqs?: Float32Array;
}

/** The shortest decimal that rounds to the same f32: how a Python float went into the file. */
export function f32ToDecimal(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  for (let digits = 1; digits <= 9; digits++) {
    const d = Number(x.toPrecision(digits));
    if (Math.fround(d) === x) return d;
  }
  return x;
}

/** Typed access to the metadata; every error names the file and the GGUF key. */
class MetadataReader {
  constructor(
    readonly header: GgufHeader,
    readonly prefix: string,
  ) {}
  fail(key: string, why: string): never {
    throw new ModelConfigError(`${this.header.fileName}: GGUF metadata ${key}: ${why}`);
  }
  get(key: string): GgufKv | undefined {
    return this.header.metadata.get(key);
  }
  /** A numeric scalar (any integer or float type); a per-layer array whose entries all agree is that value. */
  num(key: string): number | undefined {
    const kv = this.get(key);
    if (kv === undefined) return undefined;
    if (kv.type === 'array' && kv.itemType !== 'string' && kv.itemType !== 'bool') {
      const values = Array.from(kv.value as ArrayLike<number | bigint>, Number);
      if (values.length === 0 || values.some((v) => v !== values[0])) {
        this.fail(
          key,
          `per-layer values [${values.slice(0, 8).join(', ')}${values.length > 8 ? ', ...' : ''}] are not supported`,
        );
      }
      return kv.itemType === 'float32' ? f32ToDecimal(values[0]) : values[0];
    }
    if (kv.type === 'string' || kv.type === 'bool' || kv.type === 'array')
      this.fail(key, `must be a number, got a ${kv.type}`);
    const v = kv.value as number | bigint;
    if (typeof v === 'bigint') this.fail(key, `${v} is too large`);
    return kv.type === 'float32' ? f32ToDecimal(v as number) : (v as number);
  }
  /** `${architecture}.${key}`. */
  arch(key: string): number | undefined {
    return this.num(`${this.prefix}.${key}`);
  }
  archRequired(key: string): number {
    const v = this.arch(key);
    if (v === undefined) this.fail(`${this.prefix}.${key}`, 'is required');
    return v;
  }
  str(key: string): string | undefined {
    const kv = this.get(key);
    if (kv === undefined) return undefined;
    if (kv.type !== 'string') this.fail(key, `must be a string, got a ${kv.type}`);
    return kv.value as string;
  }
  bool(key: string): boolean | undefined {
    const kv = this.get(key);
    if (kv === undefined) return undefined;
    if (kv.type !== 'bool') this.fail(key, `must be a bool, got a ${kv.type}`);
    return kv.value as boolean;
  }
}

/** The architecture of a GGUF header, refused (naming general.architecture) when the runtime has none for it. */
export function ggufArchitecture(header: GgufHeader): GgufArchitecture {
  const r: MetadataReader = new MetadataReader(header, '');
  const arch = r.str('general.architecture');
  if (arch === undefined) r.fail('general.architecture', 'is required');
  if (!Object.hasOwn(GGUF_ARCHITECTURES, arch)) {
    r.fail(
      'general.architecture',
      `"${arch}" is not supported (supported: ${Object.keys(GGUF_ARCHITECTURES).join(', ')})`,
    );
  }
  return arch as GgufArchitecture;
}

/**
 * Llama 3.1's rope_scaling from the per-pair factors convert_hf_to_gguf.py writes to rope_freqs:
 * 1 for wavelengths below orig/high, `factor` above orig/low, 1 / ((1 - s)/factor + s) between.
 * The script always takes low 1, high 4 and original 8192 unless the config says otherwise, so
 * those are tried with factor = the largest entry, and the result must reproduce every entry.
 */
function llama3FromRopeFreqs(
  r: MetadataReader,
  freqs: Float32Array,
  theta: number,
  dim: number,
): Record<string, number> {
  const field = 'rope_freqs.weight';
  if (freqs.length !== dim / 2) r.fail(field, `has ${freqs.length} values, expected rotary dim / 2 = ${dim / 2}`);
  const factor = f32ToDecimal(Math.max(...freqs));
  const scaling = { factor, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
  const low = scaling.original_max_position_embeddings / scaling.low_freq_factor;
  const high = scaling.original_max_position_embeddings / scaling.high_freq_factor;
  for (let i = 0; i < dim / 2; i++) {
    // torch computes the base frequencies in float32: 1 / theta^(2i/dim)
    const freq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / dim)));
    const wavelen = (2 * Math.PI) / freq;
    let expected: number;
    if (wavelen < high) expected = 1;
    else if (wavelen > low) expected = factor;
    else {
      const smooth =
        (scaling.original_max_position_embeddings / wavelen - scaling.low_freq_factor) /
        (scaling.high_freq_factor - scaling.low_freq_factor);
      expected = 1 / ((1 - smooth) / factor + smooth);
    }
    if (Math.abs(freqs[i] - expected) > 1e-4 * expected) {
      r.fail(
        field,
        `entry ${i} is ${freqs[i]}, but llama3 scaling with factor ${factor}, low 1, high 4, original 8192 gives ` +
          `${expected}; other rope_freqs are not supported`,
      );
    }
  }
  return scaling;
}

/**
 * The Hugging Face config.json object a GGUF header stands for (see the key table at the top).
 * Throws ModelConfigError naming the GGUF key for missing or mistyped metadata and unsupported
 * architectures.
 */
export function ggufToHfConfig(header: GgufHeader, opts: GgufConfigOptions = {}): Record<string, unknown> {
  const arch = ggufArchitecture(header);
  const r: MetadataReader = new MetadataReader(header, arch);
  const a = (k: string) => `${arch}.${k}`;
  const cfg: Record<string, unknown> = { model_type: GGUF_ARCHITECTURES[arch] };

  cfg.hidden_size = r.archRequired('embedding_length');
  cfg.intermediate_size = r.archRequired('feed_forward_length');
  cfg.num_hidden_layers = r.archRequired('block_count');
  cfg.num_attention_heads = r.archRequired('attention.head_count');
  const kvHeads = r.arch('attention.head_count_kv');
  if (kvHeads !== undefined) cfg.num_key_value_heads = kvHeads;
  const ctx = r.arch('context_length');
  if (ctx !== undefined) cfg.max_position_embeddings = ctx;
  const eps = r.arch('attention.layer_norm_rms_epsilon');
  if (eps !== undefined) cfg.rms_norm_eps = eps;
  const theta = r.arch('rope.freq_base') ?? 10000;
  cfg.rope_theta = theta;

  const tokens = header.metadata.get('tokenizer.ggml.tokens');
  const embd = header.tensors.get('token_embd.weight');
  const vocab = r.arch('vocab_size') ?? (tokens?.type === 'array' ? tokens.value.length : undefined) ?? embd?.dims[1];
  if (vocab === undefined)
    r.fail(a('vocab_size'), 'is required (no tokenizer.ggml.tokens or token_embd.weight either)');
  if (embd && embd.dims[1] !== vocab) {
    r.fail(a('vocab_size'), `${vocab} disagrees with token_embd.weight's ${embd.dims[1]} rows`);
  }
  cfg.vocab_size = vocab;
  // A file with tensors and no output.weight ties the output projection to the embedding.
  cfg.tie_word_embeddings = header.tensors.size > 0 && !header.tensors.has('output.weight');

  const keyLength = r.arch('attention.key_length');
  const valueLength = r.arch('attention.value_length');
  const ropeDim = r.arch('rope.dimension_count');

  if (arch === 'deepseek2') {
    const qLora = r.arch('attention.q_lora_rank');
    cfg.q_lora_rank = qLora ? qLora : null;
    cfg.kv_lora_rank = r.archRequired('attention.kv_lora_rank');
    if (ropeDim === undefined) r.fail(a('rope.dimension_count'), 'is required for MLA (qk_rope_head_dim)');
    cfg.qk_rope_head_dim = ropeDim;
    const keyMla = r.arch('attention.key_length_mla');
    const valueMla = r.arch('attention.value_length_mla');
    const qkHead = keyMla ?? keyLength;
    const vHead = valueMla ?? valueLength;
    if (qkHead === undefined) r.fail(a('attention.key_length'), 'is required for MLA');
    if (vHead === undefined) r.fail(a('attention.value_length'), 'is required for MLA');
    cfg.qk_nope_head_dim = qkHead - ropeDim;
    cfg.v_head_dim = vHead;
    const experts = r.arch('expert_count');
    if (experts) {
      cfg.n_routed_experts = experts;
      cfg.first_k_dense_replace = r.arch('leading_dense_block_count') ?? 0;
      cfg.moe_layer_freq = 1;
      const shared = r.arch('expert_shared_count');
      if (shared !== undefined) cfg.n_shared_experts = shared;
      const moeFf = r.arch('expert_feed_forward_length');
      if (moeFf !== undefined) cfg.moe_intermediate_size = moeFf;
      const used = r.arch('expert_used_count');
      if (used !== undefined) cfg.num_experts_per_tok = used;
    }
    // llama.cpp's expert_gating_func 2 (sigmoid) is DeepSeek-V3's router; V2 uses softmax (1).
    if (r.arch('expert_gating_func') === 2) cfg.model_type = 'deepseek_v3';
  } else {
    if (keyLength !== undefined) cfg.head_dim = keyLength;
    const headDim = keyLength ?? (cfg.hidden_size as number) / (cfg.num_attention_heads as number);
    if (valueLength !== undefined && valueLength !== headDim) {
      r.fail(a('attention.value_length'), `${valueLength} differs from the key head width ${headDim}; not supported`);
    }
    if (ropeDim !== undefined && ropeDim !== headDim) {
      r.fail(
        a('rope.dimension_count'),
        `${ropeDim} rotates part of the ${headDim}-wide heads; partial RoPE is not supported`,
      );
    }
  }

  const scalingType = r.str(a('rope.scaling.type'));
  const factor = r.arch('rope.scaling.factor') ?? r.arch('rope.scale_linear');
  if (scalingType === 'linear' || (scalingType === undefined && r.arch('rope.scale_linear') !== undefined)) {
    if (factor === undefined) r.fail(a('rope.scaling.factor'), 'is required for linear scaling');
    if (factor !== 1) cfg.rope_scaling = { rope_type: 'linear', factor };
  } else if (scalingType === 'yarn') {
    if (factor === undefined) r.fail(a('rope.scaling.factor'), 'is required for yarn scaling');
    const yarn: Record<string, number> = { factor };
    const original = r.arch('rope.scaling.original_context_length');
    if (original !== undefined) yarn.original_max_position_embeddings = original;
    const betaFast = r.arch('rope.scaling.yarn_beta_fast');
    const betaSlow = r.arch('rope.scaling.yarn_beta_slow');
    if (betaFast !== undefined) yarn.beta_fast = betaFast;
    if (betaSlow !== undefined) yarn.beta_slow = betaSlow;
    const logMul = r.arch('rope.scaling.yarn_log_multiplier');
    if (logMul !== undefined) {
      // convert_hf_to_gguf writes 0.1 · mscale_all_dim; llama.cpp then takes mscale = mscale_all_dim.
      const m = f32ToDecimal(Math.fround(logMul / 0.1));
      yarn.mscale = m;
      yarn.mscale_all_dim = m;
    }
    cfg.rope_scaling = { rope_type: 'yarn', ...yarn };
  } else if (scalingType !== undefined && scalingType !== 'none') {
    r.fail(a('rope.scaling.type'), `"${scalingType}" is not supported (supported: none, linear, yarn)`);
  }

  if (header.tensors.has('rope_freqs.weight')) {
    if (cfg.rope_scaling) r.fail('rope_freqs.weight', `given together with ${a('rope.scaling.type')}; not supported`);
    if (!opts.ropeFreqs)
      r.fail('rope_freqs.weight', 'is in the file: pass its values as ropeFreqs to read the RoPE scaling');
    const dim =
      (cfg.head_dim as number | undefined) ?? (cfg.hidden_size as number) / (cfg.num_attention_heads as number);
    cfg.rope_scaling = { rope_type: 'llama3', ...llama3FromRopeFreqs(r, opts.ropeFreqs, theta, dim) };
  }

  const tokenId = (name: string) => {
    const id = r.num(`tokenizer.ggml.${name}_token_id`);
    if (id !== undefined && (!Number.isInteger(id) || id < 0))
      r.fail(`tokenizer.ggml.${name}_token_id`, `must be a token id, got ${id}`);
    return id;
  };
  const bos = tokenId('bos');
  if (bos !== undefined) cfg.bos_token_id = bos;
  const eos = [tokenId('eos'), tokenId('eot'), tokenId('eom')].filter((id): id is number => id !== undefined);
  if (eos.length) cfg.eos_token_id = [...new Set(eos)];
  return cfg;
}

/** Which GGUF key an HF config field came from, for error messages. */
function ggufKeyOf(arch: string, field: string): string | undefined {
  const table: Record<string, string> = {
    hidden_size: 'embedding_length',
    intermediate_size: 'feed_forward_length',
    num_hidden_layers: 'block_count',
    num_attention_heads: 'attention.head_count',
    num_key_value_heads: 'attention.head_count_kv',
    head_dim: 'attention.key_length',
    max_position_embeddings: 'context_length',
    rms_norm_eps: 'attention.layer_norm_rms_epsilon',
    rope_theta: 'rope.freq_base',
    vocab_size: 'vocab_size',
    kv_lora_rank: 'attention.kv_lora_rank',
    q_lora_rank: 'attention.q_lora_rank',
    qk_rope_head_dim: 'rope.dimension_count',
    qk_nope_head_dim: 'attention.key_length',
    v_head_dim: 'attention.value_length',
    n_routed_experts: 'expert_count',
  };
  if (table[field]) return `${arch}.${table[field]}`;
  if (field.startsWith('rope_scaling.')) return `${arch}.rope.scaling.*`;
  return undefined;
}

/**
 * The ModelSpec of a GGUF file: ggufToHfConfig, then parseConfig. A parseConfig error names the HF
 * field and, after it, the GGUF key it came from.
 */
export function ggufModelSpec(header: GgufHeader, opts: GgufConfigOptions = {}): ModelSpec {
  const cfg = ggufToHfConfig(header, opts);
  const source = `${header.fileName} (GGUF metadata as config.json)`;
  try {
    return parseConfig(cfg, source);
  } catch (e) {
    if (!(e instanceof ModelConfigError)) throw e;
    const rest = e.message.startsWith(`${source}: `) ? e.message.slice(source.length + 2) : e.message;
    const field = rest.split(':')[0];
    const key = ggufKeyOf(ggufArchitecture(header), field);
    throw new ModelConfigError(key ? `${source}: ${field} (GGUF ${key})${rest.slice(field.length)}` : e.message);
  }
}
