/**
 * The KV-cost calculator's model presets and arithmetic: bytes per token from webattn's own
 * accounting (kvBytesPerToken, src/kv/accounting.ts) at every KV dtype it stores, times context and
 * sequences, less what sliding-window layers free (kvBill); the weights at every load format
 * (weightBytesByFormat); a pasted or fetched config.json is read by the runtime's own parser
 * (parseConfig, src/model/config.ts).
 * Preset dims are from each model's config.json on the Hugging Face hub.
 */
import { KV_DTYPES } from '../src/gpu/dtype';
import { type AttentionVariant, type KvDtype, type KvSpec, kvBytesPerToken } from '../src/kv/accounting';
import { type ModelSpec, parseConfig } from '../src/model/config';
import { expectedTensors } from '../src/model/expectedTensors';
import { kvBill } from '../src/model/kvBill';
import { LOAD_DTYPES, weightBytesByFormat } from '../src/model/weightFormats';
import type { LoadDtype } from '../src/model/weights';

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
  'llama-2-7b': {
    label: 'Llama-2-7B (MHA)',
    variant: 'mha',
    numLayers: 32,
    numHeads: 32,
    numKvHeads: 32,
    headDim: 128,
  },
  'mistral-7b': {
    label: 'Mistral-7B (GQA 32/8)',
    variant: 'gqa',
    numLayers: 32,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 128,
  },
  'llama-3-8b': {
    label: 'Llama-3-8B (GQA 32/8)',
    variant: 'gqa',
    numLayers: 32,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 128,
  },
  'qwen2.5-0.5b': {
    label: 'Qwen2.5-0.5B (GQA 14/2)',
    variant: 'gqa',
    numLayers: 24,
    numHeads: 14,
    numKvHeads: 2,
    headDim: 64,
  },
  'smollm2-360m': {
    label: 'SmolLM2-360M (GQA 15/5)',
    variant: 'gqa',
    numLayers: 32,
    numHeads: 15,
    numKvHeads: 5,
    headDim: 64,
  },
  'gemma-2b': { label: 'Gemma-2B (MQA)', variant: 'mqa', numLayers: 18, numHeads: 8, numKvHeads: 1, headDim: 256 },
  'deepseek-v3': {
    label: 'DeepSeek-V3 (MLA 512+64)',
    variant: 'mla',
    numLayers: 61,
    numHeads: 128,
    numKvHeads: 1,
    headDim: 128,
    latentDim: 512,
    ropeDim: 64,
  },
};

export interface KvCostInput {
  variant: AttentionVariant;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  latentDim: number;
  ropeDim: number;
  dtype: KvDtype;
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

/** The attention dims of a config.json, as the runtime reads it (parseConfig), for the bill. */
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
  /** Parameters: the sum over the checkpoint's tensors (expectedTensors), as `webattn info` counts. */
  parameters?: number;
  /** The runtime's parse of the config (absent for the presets, which give dims only). */
  spec?: ModelSpec;
}

/** The KV accounting's view of a parsed model: what one token stores (src/kv/accounting.ts). */
export function kvSpecOf(spec: ModelSpec, dtype: KvDtype): KvSpec {
  const { numLayers, numKvHeads, headDim: headDimQK, headDimV } = spec;
  if (spec.attention !== 'mla' || !spec.mla) {
    return { variant: spec.attention, numLayers, numKvHeads, headDimQK, headDimV, dtype };
  }
  const { kvLoraRank: latentDim, qkRopeHeadDim: ropeDim } = spec.mla;
  return { variant: 'mla', numLayers, numKvHeads, headDimQK, headDimV, latentDim, ropeDim, dtype };
}

/**
 * Reads a config.json with the runtime's own parser, so the page bills exactly the models webattn
 * runs and shows the runtime's error (a ModelConfigError naming the field) for any other. A
 * multimodal config is billed by its language model (`text_config`), which is what holds the KV cache.
 */
export function dimsFromConfig(json: unknown, name = 'config.json'): ConfigDims {
  const outer = json && typeof json === 'object' && !Array.isArray(json) ? (json as Record<string, unknown>) : {};
  const inner = outer.text_config;
  const isObject = inner !== null && typeof inner === 'object' && !Array.isArray(inner);
  const spec = isObject ? parseConfig(inner, `${name}: text_config`) : parseConfig(json, name);
  let parameters = 0;
  for (const shape of expectedTensors(spec).values()) parameters += shape.reduce((a, b) => a * b, 1);
  const label = [outer._name_or_path, outer.model_type].find((v) => typeof v === 'string' && v !== '');
  return {
    name: (label as string | undefined) ?? name,
    variant: spec.attention,
    numLayers: spec.numLayers,
    numHeads: spec.numHeads,
    numKvHeads: spec.numKvHeads,
    headDim: spec.headDim,
    latentDim: spec.mla?.kvLoraRank,
    ropeDim: spec.mla?.qkRopeHeadDim,
    maxContext: spec.maxPositionEmbeddings,
    parameters,
    spec,
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
  /** What one token of this row stores (bytesPerTokenByDtype prices it at the other KV dtypes). */
  kvSpec: KvSpec;
}

/**
 * The KV bill of a model and of its siblings: MHA (a KV head per query head), GQA (the config's
 * groups, or 8 KV heads when the model has none), MQA (one), MLA (the config's latent row, or
 * DeepSeek's 512 + 64). The model's own row comes from its parsed spec where there is one.
 */
export function variantBills(d: ConfigDims, dtype: KvDtype, contextLength: number, sequences: number): VariantBill[] {
  const gqaHeads =
    d.variant === 'gqa' ? d.numKvHeads : ([8, 4, 2].find((k) => k < d.numHeads && d.numHeads % k === 0) ?? 1);
  const rows: { variant: AttentionVariant; kvHeads: number }[] = [
    { variant: 'mha', kvHeads: d.numHeads },
    { variant: 'gqa', kvHeads: gqaHeads },
    { variant: 'mqa', kvHeads: 1 },
    { variant: 'mla', kvHeads: 1 },
  ];
  // An MLA model's MHA sibling: DeepSeek compares with d_h = 128.
  const headDim = d.variant === 'mla' ? 128 : d.headDim;
  const latentDim = d.latentDim ?? 512;
  const ropeDim = d.ropeDim ?? 64;
  return rows.map(({ variant, kvHeads }) => {
    const actual = variant === d.variant;
    const sibling: KvSpec = {
      variant,
      numLayers: d.numLayers,
      numKvHeads: kvHeads,
      headDimQK: headDim,
      headDimV: headDim,
      latentDim,
      ropeDim,
      dtype,
    };
    const kvSpec = actual && d.spec ? kvSpecOf(d.spec, dtype) : sibling;
    const bytesPerToken = kvBytesPerToken(kvSpec);
    const heads = `${kvHeads} KV head${kvHeads === 1 ? '' : 's'}`;
    return {
      variant,
      actual,
      shape: variant === 'mla' ? `${latentDim} + ${ropeDim} latent` : `2 × ${heads} × ${headDim}`,
      bytesPerToken,
      cacheBytes: bytesPerToken * contextLength * sequences,
      kvSpec,
    };
  });
}

// ---------------------------------------------------------------- KV dtypes, windows, weights

/** The KV dtypes the bill prices, one column each: every dtype the runtime stores (KV_DTYPES), in its order. */
export function billKvDtypes(): KvDtype[] {
  return [...KV_DTYPES];
}

/** KV bytes of one token over all layers at each KV dtype; null where the accounting cannot price one. */
export function bytesPerTokenByDtype(spec: KvSpec): Partial<Record<KvDtype, number>> {
  const out: Partial<Record<KvDtype, number>> = {};
  for (const dtype of billKvDtypes()) {
    try {
      out[dtype] = kvBytesPerToken({ ...spec, dtype });
    } catch {
      // a dtype the accounting does not price yet: its column shows a dash
    }
  }
  return out;
}

export interface WindowSaving {
  /** Bytes the scheduler holds with sliding-window pages freed, over bytes with every page kept. */
  ratio: number;
  window: number;
  slidingLayers: number;
  numLayers: number;
  /** One sequence at the context, f16 (kvBill: pages of 16). */
  allPagesBytes: number;
  scheduledBytes: number;
  slidingPagesHeld: number;
  fullPagesHeld: number;
}

/**
 * What a model's sliding-window layers save at `contextLength` (kvBill: the scheduler's own rule,
 * pages of 16), or null when no layer slides. The ratio is one of page counts, so it holds for
 * every KV dtype and for the model's MHA / GQA / MQA / MLA siblings (same layers, same windows).
 * e.g. gemma-3-1b-it at 32768 tokens: 22 of 26 layers slide over 512 tokens; 832 MiB -> 139 MiB (0.167).
 */
export function windowSaving(spec: ModelSpec | undefined, contextLength: number): WindowSaving | null {
  if (!spec || spec.slidingWindow === null) return null;
  const bill = kvBill(spec, contextLength, 16, 'f16');
  if (bill.slidingLayers === 0) return null;
  return {
    ratio: bill.scheduled / bill.allPages,
    window: spec.slidingWindow,
    slidingLayers: bill.slidingLayers,
    numLayers: spec.numLayers,
    allPagesBytes: bill.allPages,
    scheduledBytes: bill.scheduled,
    slidingPagesHeld: bill.slidingPagesHeld,
    fullPagesHeld: bill.fullPagesHeld,
  };
}

export interface WeightColumn {
  dtype: LoadDtype;
  bytes: number;
  /** true: estimated from a parameter count (a preset), not from the tensors' shapes. */
  approx: boolean;
}

/**
 * The weights' GPU bytes at every load format (f32, f16, q8, q4): from the parsed config's tensors
 * (weightBytesByFormat, the runtime's own rule), or for a preset estimated from its parameter
 * count (q8: 34 bytes per 32 values, q4: 18, i.e. every tensor quantized).
 */
export function weightColumns(d: ConfigDims): WeightColumn[] {
  if (d.spec) return weightBytesByFormat(d.spec).map((f) => ({ dtype: f.dtype, bytes: f.bytes, approx: false }));
  if (!d.parameters) return [];
  const perValue: Record<LoadDtype, number> = { f32: 4, f16: 2, q8: 34 / 32, q4: 18 / 32 };
  return LOAD_DTYPES.map((dtype) => ({ dtype, bytes: Math.round(d.parameters! * perValue[dtype]), approx: true }));
}
