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

export type ModelFamily = 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'gemma' | 'deepseek_v2' | 'deepseek_v3';
export const SUPPORTED_MODEL_TYPES: readonly ModelFamily[] = [
  'llama', 'mistral', 'qwen2', 'qwen3', 'gemma', 'deepseek_v2', 'deepseek_v3',
];

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
  /** Gemma: sqrt(hidden_size); 1 elsewhere. */
  embedScale: number;
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
  /** Multiplier on q·k before softmax: 1/sqrt(headDim), times mscale^2 for DeepSeek YaRN. */
  softmaxScale: number;
  /** Keys in (p - w, p] only; null: full causal. */
  slidingWindow: number | null;
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
  obj(field: string): Reader | null {
    const v = this.json[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(field, `must be an object (got ${JSON.stringify(v)})`);
    return new Reader(v as Json, this.source, `${this.prefix}${field}.`);
  }
}

const isDeepseek = (f: ModelFamily) => f === 'deepseek_v2' || f === 'deepseek_v3';

function parseRopeScaling(r: Reader, family: ModelFamily, maxPos: number): RopeScaling {
  // transformers v5 writes `rope_parameters` (theta inside, rope_type 'default' = none); older
  // configs `rope_scaling` with `rope_type` or the older key `type`.
  const s = r.obj('rope_parameters') ?? r.obj('rope_scaling');
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
    default:
      return s.fail(
        s.has('rope_type') ? 'rope_type' : 'type',
        `"${type}" is not supported (supported: default, linear, llama3, yarn)`,
      );
  }
}

function parseActivation(r: Reader, family: ModelFamily): 'silu' | 'gelu_tanh' {
  if (family === 'gemma') {
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
 * Parses a config.json object (already JSON.parse'd) into a ModelSpec.
 * `source` names the file in error messages (e.g. 'models/smollm/config.json').
 */
export function parseConfig(json: unknown, source = 'config.json'): ModelSpec {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    const got = Array.isArray(json) ? 'an array' : json === null ? 'null' : typeof json;
    throw new ModelConfigError(`${source}: must be a JSON object (got ${got})`);
  }
  const r = new Reader(json as Json, source);
  const modelType = r.str('model_type');
  if (modelType === undefined) r.fail('model_type', `is required (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType!)) {
    r.fail('model_type', `"${modelType}" is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
  }
  const family = modelType as ModelFamily;
  const deepseek = isDeepseek(family);

  const hiddenSize = r.int('hidden_size');
  const intermediateSize = r.int('intermediate_size');
  const numLayers = r.int('num_hidden_layers');
  // The deepest real checkpoints have ~128 layers (Llama-3.1-405B: 126); 1e8 would build a tensor
  // map for 19 s before failing on "Map maximum size exceeded".
  if (numLayers > MAX_LAYERS) r.fail('num_hidden_layers', `must be in 1..${MAX_LAYERS} (got ${numLayers})`);
  const vocabSize = r.int('vocab_size');
  const numHeads = r.int('num_attention_heads');
  const maxPositionEmbeddings = r.int('max_position_embeddings', family === 'gemma' ? 8192 : 2048);
  const rmsNormEps = r.pos('rms_norm_eps', 1e-6);
  const activation = parseActivation(r, family);
  const tieWordEmbeddings = r.bool('tie_word_embeddings', family === 'gemma');
  if (r.bool('mlp_bias', false)) r.fail('mlp_bias', 'MLP biases are not supported');

  // Biases: qwen2 always has q/k/v biases; elsewhere `attention_bias` would add them to o_proj
  // (and DeepSeek's low-rank projections) too, which no checkpoint we target uses.
  const attentionBias = family === 'qwen2';
  if (family !== 'qwen2' && r.bool('attention_bias', false)) {
    r.fail('attention_bias', `true is not supported for ${family}`);
  }

  // Sliding window: mistral's applies to every layer; qwen2/qwen3 only with use_sliding_window,
  // and then per layer (max_window_layers), which a single window cannot express.
  let slidingWindow: number | null = null;
  if (family === 'mistral') slidingWindow = r.intOrNull('sliding_window');
  if ((family === 'qwen2' || family === 'qwen3') && r.bool('use_sliding_window', false)) {
    r.fail('use_sliding_window', 'per-layer sliding windows (max_window_layers) are not supported');
  }

  const ropeParameters = r.obj('rope_parameters');
  const theta = ropeParameters?.has('rope_theta') ? ropeParameters.pos('rope_theta') : r.pos('rope_theta', 10000);
  const scaling = parseRopeScaling(r, family, maxPositionEmbeddings);

  let numKvHeads: number;
  let headDim: number;
  let headDimV: number;
  let attention: ModelSpec['attention'];
  let mla: MlaSpec | undefined;
  let rotaryDim: number;
  let interleaved = false;

  if (deepseek && r.has('kv_lora_rank')) {
    mla = {
      qLoraRank: r.intOrNull('q_lora_rank'),
      kvLoraRank: r.int('kv_lora_rank'),
      qkNopeHeadDim: r.int('qk_nope_head_dim'),
      qkRopeHeadDim: r.int('qk_rope_head_dim'),
      vHeadDim: r.int('v_head_dim'),
    };
    if (mla.qkRopeHeadDim % 2) r.fail('qk_rope_head_dim', `must be even (got ${mla.qkRopeHeadDim})`);
    attention = 'mla';
    numKvHeads = 1;
    headDim = mla.qkNopeHeadDim + mla.qkRopeHeadDim;
    headDimV = mla.vHeadDim;
    rotaryDim = mla.qkRopeHeadDim;
    // DeepSeek rotates (2i, 2i+1) pairs of the rope part; HF's deepseek_v3 port has a switch.
    interleaved = r.bool('rope_interleave', true);
  } else {
    if (deepseek) r.fail('kv_lora_rank', 'is required for deepseek (MLA)');
    numKvHeads = r.int('num_key_value_heads', numHeads);
    if (numKvHeads > numHeads || numHeads % numKvHeads) {
      r.fail('num_key_value_heads', `${numKvHeads} must divide num_attention_heads ${numHeads}`);
    }
    headDim = r.has('head_dim') ? r.int('head_dim') : hiddenSize / numHeads;
    if (!Number.isInteger(headDim)) {
      r.fail('head_dim', `absent, and hidden_size ${hiddenSize} / num_attention_heads ${numHeads} is not an integer`);
    }
    if (headDim % 2) r.fail('head_dim', `must be even for RoPE (got ${headDim})`);
    headDimV = headDim;
    attention = numKvHeads === numHeads ? 'mha' : numKvHeads === 1 ? 'mqa' : 'gqa';
    rotaryDim = headDim;
  }

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

  let softmaxScale = 1 / Math.sqrt(headDim);
  if (deepseek && scaling.type !== 'none') {
    // DeepseekV2Attention: softmax_scale *= mscale^2 with mscale = yarn_get_mscale(factor,
    // mscale_all_dim), whenever rope_scaling has a non-zero mscale_all_dim.
    const mscaleAllDim =
      scaling.type === 'yarn' ? scaling.mscaleAllDim : (r.obj('rope_scaling')?.num('mscale_all_dim', 0) ?? 0);
    if (mscaleAllDim) {
      const m = yarnGetMscale(scaling.factor, mscaleAllDim);
      softmaxScale *= m * m;
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
    normWeightPlusOne: family === 'gemma',
    embedScale: family === 'gemma' ? Math.sqrt(hiddenSize) : 1,
    activation,
    attentionBias,
    qkNorm: family === 'qwen3',
    tieWordEmbeddings,
    maxPositionEmbeddings,
    rope: { theta, rotaryDim, interleaved, scaling },
    softmaxScale,
    slidingWindow,
    bosTokenId: bos === undefined || bos === null ? null : (bos as number),
    eosTokenIds: parseEos(r),
  };
}
