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
