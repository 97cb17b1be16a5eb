/**
 * The KV-cost calculator's model presets and arithmetic: bytes per token from webattn's own
 * accounting (kvBytesPerToken, src/kv/accounting.ts), times context and sequences.
 * Preset dims are from each model's config.json on the Hugging Face hub.
 */
import { kvBytesPerToken, type AttentionVariant, type KvSpec } from '../src/index';

export interface KvPreset {
  label: string;
  variant: AttentionVariant;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  latentDim?: number;
  ropeDim?: number;
}

export const KV_PRESETS: Record<string, KvPreset> = {
  'llama-2-7b': { label: 'Llama-2-7B (MHA)', variant: 'mha', numLayers: 32, numHeads: 32, numKvHeads: 32, headDim: 128 },
  'mistral-7b': { label: 'Mistral-7B (GQA 32/8)', variant: 'gqa', numLayers: 32, numHeads: 32, numKvHeads: 8, headDim: 128 },
  'llama-3-8b': { label: 'Llama-3-8B (GQA 32/8)', variant: 'gqa', numLayers: 32, numHeads: 32, numKvHeads: 8, headDim: 128 },
  'qwen2.5-0.5b': { label: 'Qwen2.5-0.5B (GQA 14/2)', variant: 'gqa', numLayers: 24, numHeads: 14, numKvHeads: 2, headDim: 64 },
  'smollm2-360m': { label: 'SmolLM2-360M (GQA 15/5)', variant: 'gqa', numLayers: 32, numHeads: 15, numKvHeads: 5, headDim: 64 },
  'gemma-2b': { label: 'Gemma-2B (MQA)', variant: 'mqa', numLayers: 18, numHeads: 8, numKvHeads: 1, headDim: 256 },
  'deepseek-v3': { label: 'DeepSeek-V3 (MLA 512+64)', variant: 'mla', numLayers: 61, numHeads: 128, numKvHeads: 1, headDim: 128, latentDim: 512, ropeDim: 64 },
};

export interface KvCostInput {
  variant: AttentionVariant;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  latentDim: number;
  ropeDim: number;
  dtype: 'f32' | 'f16';
  contextLength: number;
  sequences: number;
}

export interface KvCost {
  bytesPerToken: number;
  bytesPerSequence: number;
  totalBytes: number;
  /** What the same model would store with one KV head per query head (MHA): the saving's yardstick. */
  mhaBytesPerToken: number;
}

/** The variant the head counts imply (MLA is chosen explicitly). */
export function impliedVariant(numHeads: number, numKvHeads: number): AttentionVariant {
  return numKvHeads === numHeads ? 'mha' : numKvHeads === 1 ? 'mqa' : 'gqa';
}

/** Throws an Error naming the bad field (from kvBytesPerToken or the checks here). */
export function kvCost(x: KvCostInput): KvCost {
  for (const f of ['numHeads', 'contextLength', 'sequences'] as const) {
    if (!Number.isInteger(x[f]) || x[f] < 1) throw new Error(`${f} must be an integer >= 1, got ${x[f]}`);
  }
  if (x.variant !== 'mla' && x.numHeads % x.numKvHeads !== 0) {
    throw new Error(`KV heads (${x.numKvHeads}) must divide the query heads (${x.numHeads})`);
  }
  const spec: KvSpec = {
    variant: x.variant,
    numLayers: x.numLayers,
    numKvHeads: x.numKvHeads,
    headDimQK: x.headDim,
    headDimV: x.headDim,
    latentDim: x.latentDim,
    ropeDim: x.ropeDim,
    dtype: x.dtype,
  };
  const bytesPerToken = kvBytesPerToken(spec);
  // For MLA, headDim is the per-head width of the MHA it replaces (DeepSeek compares with d_h = 128).
  const mhaBytesPerToken = kvBytesPerToken({ ...spec, variant: 'mha', numKvHeads: x.numHeads });
  const bytesPerSequence = bytesPerToken * x.contextLength;
  return { bytesPerToken, bytesPerSequence, totalBytes: bytesPerSequence * x.sequences, mhaBytesPerToken };
}

// ---------------------------------------------------------------- any config.json, every variant

/** The attention dims of a config.json, read leniently (any model_type; multimodal text_config too). */
export interface ConfigDims {
  name: string;
  variant: AttentionVariant;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** MLA models: their own latent row. */
  latentDim?: number;
  ropeDim?: number;
  maxContext?: number;
  /** Rough parameter count from the shapes (embeddings, attention, MLP; experts counted all). */
  parameters?: number;
}

export function dimsFromConfig(json: unknown, name = 'config.json'): ConfigDims {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${name}: not a JSON object`);
  let c = json as Record<string, unknown>;
  if (c.text_config && typeof c.text_config === 'object') c = { ...c, ...(c.text_config as Record<string, unknown>) };
  const num = (keys: string[], required: boolean): number | undefined => {
    for (const k of keys) if (typeof c[k] === 'number' && Number.isFinite(c[k])) return c[k] as number;
    if (required) throw new Error(`${name}: no ${keys.join(' / ')}`);
    return undefined;
  };
  const numLayers = num(['num_hidden_layers', 'n_layer', 'num_layers', 'n_layers'], true)!;
  const numHeads = num(['num_attention_heads', 'n_head', 'num_heads', 'n_heads'], true)!;
  const hidden = num(['hidden_size', 'n_embd', 'd_model', 'dim'], false);
  const numKvHeads = num(['num_key_value_heads', 'num_kv_heads', 'n_kv_heads', 'multi_query_group_num'], false) ?? (c.multi_query === true ? 1 : numHeads);
  const headDim = num(['head_dim', 'kv_channels'], false) ?? (hidden ? hidden / numHeads : undefined);
  const latentDim = num(['kv_lora_rank'], false);
  const ropeDim = num(['qk_rope_head_dim'], false);
  const mla = latentDim !== undefined && latentDim > 0;
  const qkHead = mla ? (num(['qk_nope_head_dim'], false) ?? 128) + (ropeDim ?? 64) : headDim;
  if (!qkHead || !Number.isInteger(qkHead)) throw new Error(`${name}: cannot tell the head dim (no head_dim, and hidden_size / heads is not whole)`);
  const vocab = num(['vocab_size'], false);
  const inter = num(['intermediate_size', 'ffn_dim', 'n_inner'], false) ?? (hidden ? 4 * hidden : undefined);
  const experts = num(['n_routed_experts', 'num_local_experts', 'num_experts'], false) ?? 1;
  const moeInter = num(['moe_intermediate_size'], false) ?? inter;
  let parameters: number | undefined;
  if (hidden && vocab && inter) {
    const attn = mla ? hidden * numHeads * qkHead * 2 + hidden * (latentDim! + (ropeDim ?? 0)) + latentDim! * numHeads * qkHead * 2 : hidden * qkHead * (2 * numHeads + 2 * numKvHeads);
    const mlp = experts > 1 ? 3 * hidden * moeInter! * experts : 3 * hidden * inter;
    parameters = vocab * hidden * (c.tie_word_embeddings === true ? 1 : 2) + numLayers * (attn + mlp);
  }
  return {
    name: typeof c._name_or_path === 'string' && c._name_or_path ? c._name_or_path : typeof c.model_type === 'string' ? c.model_type : name,
    variant: mla ? 'mla' : impliedVariant(numHeads, numKvHeads),
    numLayers,
    numHeads,
    numKvHeads: mla ? 1 : numKvHeads,
    headDim: qkHead,
    latentDim: mla ? latentDim : undefined,
    ropeDim: mla ? ropeDim ?? 0 : undefined,
    maxContext: num(['max_position_embeddings', 'n_positions', 'max_sequence_length'], false),
    parameters,
  };
}

export interface VariantBill {
  variant: AttentionVariant;
  /** The model as its config says (the others are its siblings with the same layers and heads). */
  actual: boolean;
  /** "2 × 8 KV heads × 128" */
  shape: string;
  bytesPerToken: number;
  cacheBytes: number;
}

/**
 * The KV bill of a model and of its siblings: MHA (a KV head per query head), GQA (the config's
 * groups, or 8 KV heads when the model has none), MQA (one), MLA (the config's latent row, or
 * DeepSeek's 512 + 64).
 */
export function variantBills(d: ConfigDims, dtype: 'f16' | 'f32', contextLength: number, sequences: number): VariantBill[] {
  const gqaHeads = d.variant === 'gqa' ? d.numKvHeads : [8, 4, 2].find((k) => k < d.numHeads && d.numHeads % k === 0) ?? 1;
  const rows: { variant: AttentionVariant; kvHeads: number }[] = [
    { variant: 'mha', kvHeads: d.numHeads },
    { variant: 'gqa', kvHeads: gqaHeads },
    { variant: 'mqa', kvHeads: 1 },
    { variant: 'mla', kvHeads: 1 },
  ];
  const headDim = d.variant === 'mla' ? 128 : d.headDim; // an MLA model's MHA sibling: DeepSeek compares with d_h = 128
  return rows.map(({ variant, kvHeads }) => {
    const latentDim = d.latentDim ?? 512;
    const ropeDim = d.ropeDim ?? 64;
    const bytesPerToken = kvBytesPerToken({ variant, numLayers: d.numLayers, numKvHeads: kvHeads, headDimQK: headDim, headDimV: headDim, latentDim, ropeDim, dtype });
    return {
      variant,
      actual: variant === d.variant,
      shape: variant === 'mla' ? `${latentDim} + ${ropeDim} latent` : `2 × ${kvHeads} KV head${kvHeads === 1 ? '' : 's'} × ${headDim}`,
      bytesPerToken,
      cacheBytes: bytesPerToken * contextLength * sequences,
    };
  });
}
