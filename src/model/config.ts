/**
 * Hugging Face `config.json` → ModelSpec: everything the runtime and the float64 reference need to
 * know about a checkpoint, in one flat, checked object. The family comes from `model_type`; the
 * attention variant from the numbers (num_key_value_heads vs num_attention_heads, kv_lora_rank),
 * never from a name. Every error is a ModelConfigError naming the source file and the field.
 *
 * What follows from the spec alone lives beside it: ropeFrequencies.ts (RoPE tables, yarn factors)
 * and expectedTensors.ts (every HF tensor name with its shape).
 */
import { type RopeScaling, type RopeSpec, yarnGetMscale } from './ropeFrequencies';

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
}

export type ModelFamily =
  | 'llama'
  | 'mistral'
  | 'qwen2'
  | 'qwen3'
  | 'gemma'
  | 'gemma2'
  | 'gemma3_text'
  | 'phi3'
  | 'smollm3'
  | 'minicpm3'
  | 'deepseek_v2'
  | 'deepseek_v3';
export const SUPPORTED_MODEL_TYPES: readonly ModelFamily[] = [
  'llama',
  'mistral',
  'qwen2',
  'qwen3',
  'gemma',
  'gemma2',
  'gemma3_text',
  'phi3',
  'smollm3',
  'minicpm3',
  'deepseek_v2',
  'deepseek_v3',
];

/**
 * The family of a config without `model_type` (MiniCPM3-4B ships none: its class comes through
 * `auto_map`), from `architectures`.
 */
const FAMILY_OF_ARCHITECTURE: Record<string, ModelFamily> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
  GemmaForCausalLM: 'gemma',
  Gemma2ForCausalLM: 'gemma2',
  Gemma3ForCausalLM: 'gemma3_text',
  Phi3ForCausalLM: 'phi3',
  SmolLM3ForCausalLM: 'smollm3',
  MiniCPM3ForCausalLM: 'minicpm3',
  DeepseekV2ForCausalLM: 'deepseek_v2',
  DeepseekV3ForCausalLM: 'deepseek_v3',
};

/** Model types seen in the wild that are refused for a reason more precise than "not supported". */
const REFUSED_MODEL_TYPES: Record<string, string> = {
  gpt_oss:
    'gpt_oss is not supported: its attention adds a learned per-head sink logit (`sinks` tensors) to every ' +
    'softmax and its MLP is mixture-of-experts (num_local_experts)',
  t5: 't5 is an encoder-decoder; webattn runs decoder-only causal LMs',
  gpt_neox: 'gpt_neox is not supported (LayerNorm, fused query_key_value, parallel residual)',
};

export interface MlaSpec {
  /** null: queries from q_proj directly (DeepSeek-V2-Lite); else q_a_proj → q_a_layernorm → q_b_proj. */
  qLoraRank: number | null;
  /** d_c: width of the compressed KV latent c_kv (512 for DeepSeek). */
  kvLoraRank: number;
  qkNopeHeadDim: number;
  /** d_rope: width of the shared, roped key part k_pe (64 for DeepSeek). */
  qkRopeHeadDim: number;
  vHeadDim: number;
}

/**
 * What differs between the layers of one model.
 *   sliding: keys in (p - slidingWindow, p] only (mistral: every layer; gemma2: even layers; gemma3:
 *            all but every sliding_window_pattern-th; from `layer_types` where the config has it)
 *   rope:    'global' (spec.rope), 'local' (spec.localRope: gemma3's sliding layers) or 'none'
 *            (SmolLM3's NoPE layers, `no_rope_layers` 0)
 */
export interface LayerSpec {
  sliding: boolean;
  rope: 'global' | 'local' | 'none';
}

export interface ModelSpec {
  family: ModelFamily;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  vocabSize: number;
  numHeads: number;
  /**
   * KV heads as stored in the cache: num_key_value_heads for MHA/GQA/MQA; 1 for MLA (one latent
   * row [c_kv | k_pe] per token shared by every head, the absorbed form the kernels run).
   */
  numKvHeads: number;
  /** Q·K width per head (MLA: qkNopeHeadDim + qkRopeHeadDim, the decompressed form). */
  headDim: number;
  /** V width per head (MLA: vHeadDim). */
  headDimV: number;
  attention: 'mha' | 'gqa' | 'mqa' | 'mla';
  mla?: MlaSpec;
  rmsNormEps: number;
  /** Gemma: RMSNorm multiplies by (1 + w) instead of w. */
  normWeightPlusOne: boolean;
  /** Gemma: sqrt(hidden_size); MiniCPM3: scale_emb; 1 elsewhere. */
  embedScale: number;
  /**
   * gemma2 / gemma3: sandwich norms. The attention output goes through post_attention_layernorm
   * before the residual add, the MLP input is pre_feedforward_layernorm(h) and its output goes
   * through post_feedforward_layernorm before the add. Elsewhere post_attention_layernorm is the
   * MLP's input norm.
   */
  sandwichNorms: boolean;
  /** MiniCPM3 (muP): each sub-block's output times scale_depth / sqrt(num_layers) before the residual add. */
  residualScale: number;
  /** MiniCPM3 (muP): the final normed hidden state times dim_model_base / hidden_size before the LM head. */
  logitScale: number;
  /** phi3: the checkpoint holds q/k/v as one qkv_proj and gate/up as one gate_up_proj (split at load). */
  fusedProjections: boolean;
  /** gemma2: scores become tanh(s / cap) * cap before the softmax (after the scale); null: none. */
  attnLogitSoftcap: number | null;
  /** gemma2 (gemma3 when set): logits become tanh(x / cap) * cap. null: none. */
  finalLogitSoftcap: number | null;
  /** Gate activation of the gated MLP: down(act(gate(x)) * up(x)). */
  activation: 'silu' | 'gelu_tanh';
  /** q_proj / k_proj / v_proj carry biases (qwen2). o_proj never does here. */
  attentionBias: boolean;
  /** qwen3: RMSNorm over head_dim on q and k (q_norm / k_norm) before RoPE. */
  qkNorm: boolean;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  /** Theta, rotated width, pair layout and scaling (see ropeFrequencies.ts). */
  rope: RopeSpec;
  /** gemma3: the RoPE of layers whose `rope` is 'local' (rope_local_base_freq, no scaling); else null. */
  localRope: RopeSpec | null;
  /**
   * Multiplier on q·k before softmax: 1/sqrt(headDim), times mscale^2 for DeepSeek YaRN;
   * gemma2 / gemma3: 1/sqrt(query_pre_attn_scalar).
   */
  softmaxScale: number;
  /** The window of the layers with `sliding` (keys in (p - w, p] only); null: every layer is full causal. */
  slidingWindow: number | null;
  /** One per layer: window and RoPE kind. */
  layers: LayerSpec[];
  bosTokenId: number | null;
  eosTokenIds: number[];
}

type Json = Record<string, unknown>;

/** Field readers that throw a ModelConfigError naming source and field. */
class Reader {
  constructor(
    readonly json: Json,
    readonly source: string,
    readonly prefix = '',
  ) {}
  fail(field: string, why: string): never {
    throw new ModelConfigError(`${this.source}: ${this.prefix}${field}: ${why}`);
  }
  has(field: string): boolean {
    return this.json[field] !== undefined && this.json[field] !== null;
  }
  num(field: string, def?: number): number {
    const v = this.json[field];
    if (v === undefined || v === null) {
      if (def === undefined) this.fail(field, 'is required');
      return def!;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.fail(field, `must be a finite number (got ${JSON.stringify(v)})`);
    }
    return v as number;
  }
  pos(field: string, def?: number): number {
    const v = this.num(field, def);
    if (!(v > 0)) this.fail(field, `must be > 0 (got ${v})`);
    return v;
  }
  int(field: string, def?: number, min = 1): number {
    const v = this.num(field, def);
    if (!Number.isInteger(v) || v < min) this.fail(field, `must be an integer >= ${min} (got ${v})`);
    return v;
  }
  intOrNull(field: string, min = 1): number | null {
    return this.has(field) ? this.int(field, undefined, min) : null;
  }
  bool(field: string, def: boolean): boolean {
    const v = this.json[field];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') this.fail(field, `must be true or false (got ${JSON.stringify(v)})`);
    return v as boolean;
  }
  str(field: string): string | undefined {
    const v = this.json[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') this.fail(field, `must be a string (got ${JSON.stringify(v)})`);
    return v as string;
  }
  /** A list of finite numbers of exactly `length` entries. */
  numbers(field: string, length: number): number[] {
    const v = this.json[field];
    if (!Array.isArray(v) || v.length !== length || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      const got = Array.isArray(v) ? `${v.length} entries` : JSON.stringify(v);
      this.fail(field, `must be a list of ${length} numbers (got ${got})`);
    }
    return v as number[];
  }
  /** A list of `length` entries, each one of `allowed`. */
  choices<T extends string | number>(field: string, length: number, allowed: readonly T[]): T[] {
    const v = this.json[field];
    if (!Array.isArray(v) || v.length !== length || !v.every((x) => allowed.includes(x as T))) {
      const got = Array.isArray(v) ? `${v.length} entries: ${JSON.stringify(v).slice(0, 80)}` : JSON.stringify(v);
      this.fail(field, `must be a list of ${length} entries, each one of ${JSON.stringify(allowed)} (got ${got})`);
    }
    return v as T[];
  }
  obj(field: string): Reader | null {
    const v = this.json[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(field, `must be an object (got ${JSON.stringify(v)})`);
    return new Reader(v as Json, this.source, `${this.prefix}${field}.`);
  }
}

const isDeepseek = (f: ModelFamily) => f === 'deepseek_v2' || f === 'deepseek_v3';
const isGemma = (f: ModelFamily) => f === 'gemma' || f === 'gemma2' || f === 'gemma3_text';
/** Families whose attention is MLA (kv_lora_rank): DeepSeek, and MiniCPM3 (dense). */
const isMlaFamily = (f: ModelFamily) => isDeepseek(f) || f === 'minicpm3';

function parseRopeScaling(
  r: Reader,
  s: Reader | null,
  family: ModelFamily,
  maxPos: number,
  rotaryDim: number,
): RopeScaling {
  // transformers v5 writes `rope_parameters` (theta inside, rope_type 'default' = none); older
  // configs `rope_scaling` with `rope_type` or the older key `type`.
  if (!s) return { type: 'none' };
  const type = s.str('rope_type') ?? s.str('type');
  if (type === undefined) s.fail('rope_type', 'is required (or the older key "type")');
  switch (type) {
    case 'default':
      return { type: 'none' };
    case 'linear':
      return { type: 'linear', factor: s.pos('factor') };
    case 'llama3': {
      const sc = {
        type: 'llama3' as const,
        factor: s.pos('factor'),
        lowFreqFactor: s.pos('low_freq_factor'),
        highFreqFactor: s.pos('high_freq_factor'),
        originalMaxPositionEmbeddings: s.int('original_max_position_embeddings'),
      };
      if (sc.highFreqFactor <= sc.lowFreqFactor) {
        s.fail('high_freq_factor', `must be > low_freq_factor ${sc.lowFreqFactor} (got ${sc.highFreqFactor})`);
      }
      return sc;
    }
    case 'yarn': {
      const factor = s.pos('factor');
      // DeepSeek's own code defaults original_max_position_embeddings to 4096, HF's generic yarn to
      // the config's max_position_embeddings.
      const original = s.int('original_max_position_embeddings', isDeepseek(family) ? 4096 : maxPos);
      const mscale = s.num('mscale', 1);
      const mscaleAllDim = s.num('mscale_all_dim', 0);
      let attentionFactor: number;
      if (isDeepseek(family)) {
        // DeepseekV2YarnRotaryEmbedding: cos/sin * yarn_get_mscale(f, mscale) / yarn_get_mscale(f, mscale_all_dim).
        attentionFactor = yarnGetMscale(factor, mscale) / yarnGetMscale(factor, mscaleAllDim);
      } else if (s.has('attention_factor')) {
        attentionFactor = s.pos('attention_factor');
      } else if (s.has('mscale') && s.has('mscale_all_dim')) {
        attentionFactor = yarnGetMscale(factor, mscale) / yarnGetMscale(factor, mscaleAllDim);
      } else {
        attentionFactor = yarnGetMscale(factor);
      }
      return {
        type: 'yarn',
        factor,
        originalMaxPositionEmbeddings: original,
        betaFast: s.num('beta_fast', 32),
        betaSlow: s.num('beta_slow', 1),
        mscale,
        mscaleAllDim,
        attentionFactor,
      };
    }
    case 'longrope': {
      // HF _compute_longrope_parameters (Phi-3 / Phi-4-mini; MiniCPM3's own MiniCPMLongRoPE is the
      // same): original_max_position_embeddings at the top level (Phi) or in rope_scaling
      // (MiniCPM3); factor = max_position_embeddings / original when the top level has it;
      // attention factor sqrt(1 + ln(factor) / ln(original)) unless given, 1 for factor <= 1.
      const top = r.has('original_max_position_embeddings');
      const original = top
        ? r.int('original_max_position_embeddings')
        : s.int('original_max_position_embeddings', maxPos);
      const factor = top || !s.has('factor') ? maxPos / original : s.pos('factor');
      const attentionFactor = s.has('attention_factor')
        ? s.pos('attention_factor')
        : factor <= 1
          ? 1
          : Math.sqrt(1 + Math.log(factor) / Math.log(original));
      return {
        type: 'longrope',
        shortFactor: s.numbers('short_factor', rotaryDim / 2),
        longFactor: s.numbers('long_factor', rotaryDim / 2),
        originalMaxPositionEmbeddings: original,
        attentionFactor,
      };
    }
    default:
      return s.fail(
        s.has('rope_type') ? 'rope_type' : 'type',
        `"${type}" is not supported (supported: default, linear, llama3, yarn, longrope)`,
      );
  }
}

function parseActivation(r: Reader, family: ModelFamily): 'silu' | 'gelu_tanh' {
  if (isGemma(family)) {
    // HF GemmaMLP: hidden_activation, or approximate GELU when it is unset (Gemma 1 configs say
    // hidden_act "gelu", which HF overrides with gelu_pytorch_tanh).
    const act = r.str('hidden_activation');
    const approximate = ['gelu_pytorch_tanh', 'gelu_tanh', 'gelu_new', 'gelu_fast'];
    if (act === undefined || approximate.includes(act)) return 'gelu_tanh';
    return r.fail('hidden_activation', `"${act}" is not supported for gemma (supported: gelu_pytorch_tanh)`);
  }
  const act = r.str('hidden_act') ?? 'silu';
  if (act === 'silu' || act === 'swish') return 'silu';
  if (act === 'gelu_pytorch_tanh' || act === 'gelu_new') return 'gelu_tanh';
  return r.fail('hidden_act', `"${act}" is not supported (supported: silu, gelu_pytorch_tanh)`);
}

function parseEos(r: Reader): number[] {
  const v = r.json.eos_token_id;
  if (v === undefined || v === null) return [];
  const ids = Array.isArray(v) ? v : [v];
  for (const id of ids) {
    if (!Number.isInteger(id) || (id as number) < 0) {
      r.fail('eos_token_id', `must be a token id or a list of them (got ${JSON.stringify(v)})`);
    }
  }
  return ids as number[];
}

/** Most layers a config may declare. */
export const MAX_LAYERS = 1024;

/**
 * The family: `model_type`, or `architectures` when a config has no model_type (MiniCPM3-4B).
 * Known non-causal-LM or unsupported kinds are refused with the reason.
 */
function parseFamily(r: Reader): ModelFamily {
  const supported = `supported: ${SUPPORTED_MODEL_TYPES.join(', ')}`;
  const modelType = r.str('model_type');
  if (r.bool('is_encoder_decoder', false)) {
    r.fail(
      'is_encoder_decoder',
      `true: ${modelType ?? 'this model'} is an encoder-decoder; webattn runs decoder-only causal LMs`,
    );
  }
  if (modelType !== undefined) {
    if (REFUSED_MODEL_TYPES[modelType]) r.fail('model_type', REFUSED_MODEL_TYPES[modelType]);
    if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
      r.fail('model_type', `"${modelType}" is not supported (${supported})`);
    }
    return modelType as ModelFamily;
  }
  const arch = r.json.architectures;
  if (Array.isArray(arch) && arch.length) {
    for (const a of arch) if (typeof a === 'string' && FAMILY_OF_ARCHITECTURE[a]) return FAMILY_OF_ARCHITECTURE[a];
    return r.fail(
      'architectures',
      `${JSON.stringify(arch)} names no supported family, and model_type is absent (${supported})`,
    );
  }
  return r.fail('model_type', `is required (or architectures; ${supported})`);
}

/**
 * Which layers slide, from `layer_types` when given, else the family's rule:
 *   mistral: every layer (when sliding_window is set)
 *   gemma2: "sliding_attention" if (i + 1) % 2 else "full_attention" (layer 0 slides)
 *   gemma3: "sliding_attention" if (i + 1) % sliding_window_pattern else "full_attention"
 *           (pattern 6: layers 5, 11, 17, ... are global)
 *   smollm3: only with use_sliding_window, then the NoPE layers
 * e.g. gemma-3-1b (26 layers, pattern 6): 22 sliding layers, 4 global ones.
 */
function parseSliding(r: Reader, family: ModelFamily, numLayers: number, noRope: boolean[]): boolean[] {
  if (r.has('layer_types')) {
    const types = r.choices('layer_types', numLayers, ['full_attention', 'sliding_attention'] as const);
    const sliding = types.map((t) => t === 'sliding_attention');
    if (sliding.some((x) => x) && !r.has('sliding_window'))
      r.fail('sliding_window', 'is required by the sliding_attention layers');
    // Qwen2 / SmolLM3 list sliding layers that only slide with use_sliding_window.
    if ((family === 'qwen2' || family === 'qwen3' || family === 'smollm3') && !r.bool('use_sliding_window', false)) {
      return sliding.map(() => false);
    }
    return sliding;
  }
  const all = (v: boolean) => Array.from({ length: numLayers }, () => v);
  switch (family) {
    case 'mistral':
    case 'phi3':
      return all(r.has('sliding_window'));
    case 'gemma2':
      return Array.from({ length: numLayers }, (_, i) => (i + 1) % 2 !== 0);
    case 'gemma3_text': {
      const pattern = r.int('sliding_window_pattern', 6);
      return Array.from({ length: numLayers }, (_, i) => (i + 1) % pattern !== 0);
    }
    case 'smollm3':
      return r.bool('use_sliding_window', false) && r.has('sliding_window') ? noRope : all(false);
    default:
      return all(false);
  }
}

/** SmolLM3's NoPE layers: `no_rope_layers` (1 = RoPE, 0 = none), else every no_rope_layer_interval-th layer. */
function parseNoRope(r: Reader, family: ModelFamily, numLayers: number): boolean[] {
  if (family !== 'smollm3') {
    if (r.has('no_rope_layers')) r.fail('no_rope_layers', `NoPE layers are only read for smollm3 (got ${family})`);
    return Array.from({ length: numLayers }, () => false);
  }
  if (r.has('no_rope_layers')) {
    const v = r.json.no_rope_layers;
    if (!Array.isArray(v) || v.length < numLayers || !v.every((x) => x === 0 || x === 1)) {
      r.fail(
        'no_rope_layers',
        `must list 0 or 1 for each of the ${numLayers} layers (got ${JSON.stringify(v)?.slice(0, 80)})`,
      );
    }
    return (v as number[]).slice(0, numLayers).map((x) => x === 0);
  }
  const interval = r.int('no_rope_layer_interval', 4);
  return Array.from({ length: numLayers }, (_, i) => (i + 1) % interval === 0);
}

/** A soft-cap value: null or absent means none, else a positive number. */
function softcap(r: Reader, field: string, def: number | null): number | null {
  if (r.json[field] === null) return null;
  if (r.json[field] === undefined) return def;
  return r.pos(field);
}

/**
 * Parses a config.json object (already JSON.parse'd) into a ModelSpec.
 * `source` names the file in error messages (e.g. 'models/smollm/config.json').
 */
export function parseConfig(json: unknown, source = 'config.json'): ModelSpec {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    const got = Array.isArray(json) ? 'an array' : json === null ? 'null' : typeof json;
    throw new ModelConfigError(`${source}: must be a JSON object (got ${got})`);
  }
  const r = new Reader(json as Json, source);
  const family = parseFamily(r);
  const deepseek = isDeepseek(family);
  const gemma = isGemma(family);
  const gemma23 = family === 'gemma2' || family === 'gemma3_text';

  const hiddenSize = r.int('hidden_size');
  const intermediateSize = r.int('intermediate_size');
  const numLayers = r.int('num_hidden_layers');
  // The deepest real checkpoints have ~128 layers (Llama-3.1-405B: 126); 1e8 would build a tensor
  // map for 19 s before failing on "Map maximum size exceeded".
  if (numLayers > MAX_LAYERS) r.fail('num_hidden_layers', `must be in 1..${MAX_LAYERS} (got ${numLayers})`);
  const vocabSize = r.int('vocab_size');
  const numHeads = r.int('num_attention_heads');
  const defaultMaxPos: Partial<Record<ModelFamily, number>> = {
    gemma: 8192,
    gemma2: 8192,
    gemma3_text: 131072,
    minicpm3: 32768,
  };
  const maxPositionEmbeddings = r.int('max_position_embeddings', defaultMaxPos[family] ?? 2048);
  const rmsNormEps = r.pos('rms_norm_eps', 1e-6);
  const activation = parseActivation(r, family);
  // HF defaults: gemma*, smollm3 and minicpm3 tie the LM head to the embeddings.
  const tiedByDefault = gemma || family === 'smollm3' || family === 'minicpm3';
  const tieWordEmbeddings = r.bool('tie_word_embeddings', tiedByDefault);
  if (r.bool('mlp_bias', false)) r.fail('mlp_bias', 'MLP biases are not supported');

  // Biases: qwen2 always has q/k/v biases; elsewhere `attention_bias` would add them to o_proj
  // (and DeepSeek's low-rank projections) too, which no checkpoint we target uses.
  const attentionBias = family === 'qwen2';
  if (family !== 'qwen2' && r.bool('attention_bias', false)) {
    r.fail('attention_bias', `true is not supported for ${family}`);
  }

  // Per-layer kinds: NoPE layers (smollm3), then which layers slide.
  const noRope = parseNoRope(r, family, numLayers);
  if ((family === 'qwen2' || family === 'qwen3') && r.bool('use_sliding_window', false)) {
    r.fail('use_sliding_window', 'per-layer sliding windows (max_window_layers) are not supported');
  }
  const sliding = parseSliding(r, family, numLayers, noRope);
  const slidingWindow = sliding.some((x) => x) ? r.int('sliding_window', gemma23 ? 4096 : undefined) : null;

  // v5 configs of gemma3 hold one rope_parameters per layer type.
  const ropeParamsRaw = r.obj('rope_parameters');
  const perType = ropeParamsRaw && (ropeParamsRaw.has('full_attention') || ropeParamsRaw.has('sliding_attention'));
  const ropeParameters = perType ? ropeParamsRaw!.obj('full_attention') : ropeParamsRaw;
  const localParameters = perType ? ropeParamsRaw!.obj('sliding_attention') : null;
  const defaultTheta = family === 'gemma3_text' ? 1e6 : family === 'smollm3' ? 2e6 : 10000;
  const theta = ropeParameters?.has('rope_theta')
    ? ropeParameters.pos('rope_theta')
    : r.pos('rope_theta', defaultTheta);
  const scalingReader = ropeParameters ?? r.obj('rope_scaling');

  let numKvHeads: number;
  let headDim: number;
  let headDimV: number;
  let attention: ModelSpec['attention'];
  let mla: MlaSpec | undefined;
  let rotaryDim: number;
  let interleaved = false;

  if (isMlaFamily(family) && r.has('kv_lora_rank')) {
    mla = {
      qLoraRank: r.intOrNull('q_lora_rank'),
      kvLoraRank: r.int('kv_lora_rank'),
      qkNopeHeadDim: r.int('qk_nope_head_dim'),
      qkRopeHeadDim: r.int('qk_rope_head_dim'),
      // MiniCPM3 ships no v_head_dim: hidden_size / num_attention_heads (MiniCPM3Config).
      vHeadDim: family === 'minicpm3' ? r.int('v_head_dim', Math.floor(hiddenSize / numHeads)) : r.int('v_head_dim'),
    };
    if (mla.qkRopeHeadDim % 2) r.fail('qk_rope_head_dim', `must be even (got ${mla.qkRopeHeadDim})`);
    attention = 'mla';
    numKvHeads = 1;
    headDim = mla.qkNopeHeadDim + mla.qkRopeHeadDim;
    headDimV = mla.vHeadDim;
    rotaryDim = mla.qkRopeHeadDim;
    // DeepSeek rotates (2i, 2i+1) pairs of the rope part; HF's deepseek_v3 port has a switch.
    // MiniCPM3 rotates halves (llama's apply_rotary_pos_emb).
    interleaved = deepseek ? r.bool('rope_interleave', true) : false;
  } else {
    if (isMlaFamily(family)) r.fail('kv_lora_rank', `is required for ${family} (MLA)`);
    numKvHeads = r.int('num_key_value_heads', numHeads);
    if (numKvHeads > numHeads || numHeads % numKvHeads) {
      r.fail('num_key_value_heads', `${numKvHeads} must divide num_attention_heads ${numHeads}`);
    }
    headDim = r.has('head_dim') ? r.int('head_dim') : gemma23 ? 256 : hiddenSize / numHeads;
    if (!Number.isInteger(headDim)) {
      r.fail('head_dim', `absent, and hidden_size ${hiddenSize} / num_attention_heads ${numHeads} is not an integer`);
    }
    if (headDim % 2) r.fail('head_dim', `must be even for RoPE (got ${headDim})`);
    headDimV = headDim;
    attention = numKvHeads === numHeads ? 'mha' : numKvHeads === 1 ? 'mqa' : 'gqa';
    rotaryDim = headDim;
    // Phi-4-mini: only the first head_dim * partial_rotary_factor values of each head rotate.
    const partial = ropeParameters?.has('partial_rotary_factor')
      ? ropeParameters.pos('partial_rotary_factor')
      : r.pos('partial_rotary_factor', 1);
    if (partial !== 1) {
      if (family !== 'phi3') r.fail('partial_rotary_factor', `${partial} is only supported for phi3 (got ${family})`);
      rotaryDim = Math.floor(headDim * partial);
      if (partial > 1 || rotaryDim < 2 || rotaryDim % 2) {
        r.fail(
          'partial_rotary_factor',
          `head_dim ${headDim} x ${partial} = ${rotaryDim} rotated values; must be even, >= 2`,
        );
      }
    }
  }
  const scaling = parseRopeScaling(r, scalingReader, family, maxPositionEmbeddings, rotaryDim);
  if (scaling.type === 'longrope' && family !== 'phi3' && family !== 'minicpm3') {
    (scalingReader as Reader).fail('type', `longrope is only supported for phi3 and minicpm3 (got ${family})`);
  }

  // gemma3: sliding layers rotate with their own base (rope_local_base_freq) and no scaling.
  let localRope: RopeSpec | null = null;
  if (family === 'gemma3_text') {
    const localTheta = localParameters?.has('rope_theta')
      ? localParameters.pos('rope_theta')
      : r.pos('rope_local_base_freq', 10000);
    const localScaling = parseRopeScaling(r, localParameters, family, maxPositionEmbeddings, rotaryDim);
    localRope = { theta: localTheta, rotaryDim, interleaved, scaling: localScaling };
  } else if (r.has('rope_local_base_freq')) {
    r.fail('rope_local_base_freq', `is only read for gemma3_text (got ${family})`);
  }
  const layers: LayerSpec[] = sliding.map((s, l) => ({
    sliding: s,
    rope: noRope[l] ? 'none' : localRope && s ? 'local' : 'global',
  }));

  if (deepseek) {
    // MoE layers: DeepseekV2DecoderLayer uses experts where n_routed_experts is set and
    // layer_idx >= first_k_dense_replace and layer_idx % moe_layer_freq == 0.
    const experts = r.intOrNull('n_routed_experts', 0);
    if (experts) {
      const firstDense = r.int('first_k_dense_replace', 0, 0);
      const freq = r.int('moe_layer_freq', 1);
      const moeLayers: number[] = [];
      for (let i = firstDense; i < numLayers; i++) if (i % freq === 0) moeLayers.push(i);
      if (moeLayers.length) {
        r.fail(
          'n_routed_experts',
          `${experts} routed experts make ${moeLayers.length} of ${numLayers} layers mixture-of-experts ` +
            `(from layer ${moeLayers[0]}, first_k_dense_replace = ${firstDense}); ` +
            'MoE is not supported yet, only dense DeepSeek models',
        );
      }
    }
    if (activation !== 'silu') r.fail('hidden_act', 'deepseek MLP must be silu');
  }
  for (const moe of ['num_local_experts', 'num_experts']) {
    if (r.has(moe) && r.num(moe) > 0) r.fail(moe, 'mixture-of-experts MLPs are not supported');
  }

  if (r.has('quantization_config')) {
    const method = r.obj('quantization_config')!.str('quant_method') ?? 'unknown';
    r.fail('quantization_config', `pre-quantized checkpoints (${method}) are not supported; load f16/bf16/f32 weights`);
  }

  let softmaxScale = 1 / Math.sqrt(headDim);
  if (gemma23) {
    // Gemma2Attention / Gemma3Attention: scaling = query_pre_attn_scalar ** -0.5.
    softmaxScale = 1 / Math.sqrt(r.pos('query_pre_attn_scalar', 256));
  } else if (r.has('query_pre_attn_scalar')) {
    r.fail('query_pre_attn_scalar', `is only read for gemma2 and gemma3_text (got ${family})`);
  }
  if (deepseek && scaling.type !== 'none') {
    // DeepseekV2Attention: softmax_scale *= mscale^2 with mscale = yarn_get_mscale(factor,
    // mscale_all_dim), whenever rope_scaling has a non-zero mscale_all_dim.
    const mscaleAllDim =
      scaling.type === 'yarn' ? scaling.mscaleAllDim : (r.obj('rope_scaling')?.num('mscale_all_dim', 0) ?? 0);
    if (mscaleAllDim && 'factor' in scaling) {
      const m = yarnGetMscale(scaling.factor, mscaleAllDim);
      softmaxScale *= m * m;
    }
  }

  // Soft-caps: gemma2 defaults to 50 (scores) and 30 (logits); gemma3 to none. Elsewhere refused.
  const attnLogitSoftcap = gemma23 ? softcap(r, 'attn_logit_softcapping', family === 'gemma2' ? 50 : null) : null;
  const finalLogitSoftcap = gemma23 ? softcap(r, 'final_logit_softcapping', family === 'gemma2' ? 30 : null) : null;
  if (!gemma23) {
    for (const f of ['attn_logit_softcapping', 'final_logit_softcapping']) {
      if (r.has(f)) r.fail(f, `is only read for gemma2 and gemma3_text (got ${family})`);
    }
  }

  // MiniCPM3 muP (MiniCPM3Config defaults make each a no-op): embeddings * scale_emb; each
  // residual branch * scale_depth / sqrt(num_layers); final hidden / (hidden_size / dim_model_base).
  let embedScale = gemma ? Math.sqrt(hiddenSize) : 1;
  let residualScale = 1;
  let logitScale = 1;
  if (family === 'minicpm3') {
    embedScale = r.num('scale_emb', 1);
    residualScale = r.num('scale_depth', Math.sqrt(numLayers)) / Math.sqrt(numLayers);
    logitScale = r.pos('dim_model_base', hiddenSize) / hiddenSize;
  } else {
    for (const f of ['scale_emb', 'scale_depth', 'dim_model_base']) {
      if (r.has(f)) r.fail(f, `muP scaling is only read for minicpm3 (got ${family})`);
    }
  }

  const bos = r.json.bos_token_id;
  if (bos !== undefined && bos !== null && (!Number.isInteger(bos) || (bos as number) < 0)) {
    r.fail('bos_token_id', `must be a token id (got ${JSON.stringify(bos)})`);
  }

  return {
    family,
    hiddenSize,
    intermediateSize,
    numLayers,
    vocabSize,
    numHeads,
    numKvHeads,
    headDim,
    headDimV,
    attention,
    ...(mla ? { mla } : {}),
    rmsNormEps,
    normWeightPlusOne: gemma,
    embedScale,
    sandwichNorms: gemma23,
    residualScale,
    logitScale,
    fusedProjections: family === 'phi3',
    attnLogitSoftcap,
    finalLogitSoftcap,
    activation,
    attentionBias,
    qkNorm: family === 'qwen3' || family === 'gemma3_text',
    tieWordEmbeddings,
    maxPositionEmbeddings,
    rope: { theta, rotaryDim, interleaved, scaling },
    localRope,
    softmaxScale,
    slidingWindow,
    layers,
    bosTokenId: bos === undefined || bos === null ? null : (bos as number),
    eosTokenIds: parseEos(r),
  };
}
