/**
 * KV-cache memory accounting: exact bytes per token, per page and for the whole pool.
 *
 * Values stored per token per layer:
 * - MHA / GQA / MQA: numKvHeads * (headDimQK + headDimV)   (K row + V row per KV head)
 * - MLA: latentDim + ropeDim, shared by all heads; V is the first latentDim values of the same
 *   row, so nothing is stored twice.
 *
 * Worked examples (f16 = 2 bytes):
 * - Llama-2-7B, MHA, 32 layers x 32 heads x (128 + 128): 8192 values x 2 B x 32 = 524288 B = 512 KiB/token
 * - Mistral-7B, GQA, 32 layers x 8 KV heads x (128 + 128): 2048 x 2 x 32 = 131072 B = 128 KiB/token
 * - Gemma-2B, MQA, 18 layers x 1 KV head x (256 + 256): 512 x 2 x 18 = 18432 B = 18 KiB/token
 * - DeepSeek-V3, MLA, 61 layers x (512 + 64): 576 x 2 x 61 = 70272 B ~ 68.6 KiB/token
 *
 * q8 / q4 (quantised per token and KV head, src/gpu/dtype.ts kvRowBytes): a row of d values takes
 * d + 2 bytes (q8: one f16 scale) or d / 2 + 2 * ceil(d / 32) (q4: a scale per 32 values):
 * - Llama-2-7B q8: 32 x 32 x 2 x (128 + 2) = 266240 B = 260 KiB/token (0.51x f16);
 *   q4: 32 x 32 x 2 x (64 + 8) = 147456 B = 144 KiB/token (0.28x f16)
 * - DeepSeek-V3 q8: (576 + 2) x 61 = 35258 B; q4: (288 + 36) x 61 = 19764 B
 */
import type { KvCacheStats } from './kvCacheManager';
import { bytesPerValue, isKvDtype, kvPageBytes, kvRowBytes, type KvDtype } from '../gpu/dtype';

export type AttentionVariant = 'mha' | 'gqa' | 'mqa' | 'mla';
export type { KvDtype } from '../gpu/dtype';

/** What decides the size of one token's K/V. For MLA, numKvHeads and head dims are not used. */
export interface KvSpec {
  variant: AttentionVariant;
  numLayers: number;
  numKvHeads: number;
  headDimQK: number;
  headDimV: number;
  /** MLA only: compressed KV width d_c (DeepSeek: 512). */
  latentDim?: number;
  /** MLA only: decoupled RoPE key width d_rope (DeepSeek: 64). */
  ropeDim?: number;
  dtype: KvDtype;
}

/**
 * Bytes of one stored value: f32 4, f16 2 (src/gpu/dtype.ts). q8 / q4 rows carry scales, so they have
 * no per-value size: use kvBytesPerToken / pageBytes.
 */
export function dtypeBytes(dtype: KvDtype): number {
  if (!isKvDtype(dtype)) throw new Error(`kv accounting: unknown dtype ${String(dtype)}`);
  if (dtype === 'q8' || dtype === 'q4') {
    throw new Error(`kv accounting: ${dtype} has no per-value size (scales per row); use kvBytesPerToken`);
  }
  return bytesPerValue(dtype);
}

/** The stored rows of one token in one layer: [count, values per row] pairs (K rows, V rows; MLA one latent row). */
function rowsPerTokenPerLayer(spec: KvSpec): [number, number][] {
  kvValuesPerTokenPerLayer(spec); // validates the spec
  if (spec.variant === 'mla') return [[1, spec.latentDim! + spec.ropeDim!]];
  return [
    [spec.numKvHeads, spec.headDimQK],
    [spec.numKvHeads, spec.headDimV],
  ];
}

function checkDtype(dtype: KvDtype): void {
  if (!isKvDtype(dtype)) throw new Error(`kv accounting: unknown dtype ${String(dtype)}`);
}

/** Values (not bytes) one token stores in one layer. Llama-2-7B: 32 * (128 + 128) = 8192. */
export function kvValuesPerTokenPerLayer(spec: KvSpec): number {
  requireCount(spec.numLayers, 'numLayers');
  if (spec.variant === 'mla') {
    if (spec.latentDim === undefined || spec.ropeDim === undefined) {
      throw new Error('kv accounting: MLA needs latentDim and ropeDim');
    }
    requireCount(spec.latentDim, 'latentDim');
    requireCount(spec.ropeDim, 'ropeDim', 0);
    return spec.latentDim + spec.ropeDim; // DeepSeek: 512 + 64 = 576
  }
  if (spec.variant !== 'mha' && spec.variant !== 'gqa' && spec.variant !== 'mqa') {
    throw new Error(`kv accounting: unknown attention variant ${String(spec.variant)}`);
  }
  requireCount(spec.numKvHeads, 'numKvHeads');
  requireCount(spec.headDimQK, 'headDimQK');
  requireCount(spec.headDimV, 'headDimV');
  if (spec.variant === 'mqa' && spec.numKvHeads !== 1) {
    throw new Error(`kv accounting: MQA has exactly 1 KV head, got ${spec.numKvHeads}`);
  }
  return spec.numKvHeads * (spec.headDimQK + spec.headDimV);
}

/**
 * Exact K/V bytes of one token over all layers, scales included. Llama-2-7B f16: 8192 * 2 * 32 =
 * 524288 (512 KiB); q8: 266240 (260 KiB).
 */
export function kvBytesPerToken(spec: KvSpec): number {
  checkDtype(spec.dtype);
  const rows = rowsPerTokenPerLayer(spec);
  return rows.reduce((sum, [n, d]) => sum + n * kvRowBytes(spec.dtype, d), 0) * spec.numLayers;
}

/**
 * Bytes of one page in ONE layer (K and V), exactly what the GPU pool allocates (a page's q8 / q4
 * scales padded to a whole u32 word). Llama-2-7B f16, pageSize 16: 8192 * 2 * 16 = 262144 (256 KiB).
 */
export function pageBytes(spec: KvSpec, pageSize: number): number {
  requireCount(pageSize, 'pageSize');
  checkDtype(spec.dtype);
  return rowsPerTokenPerLayer(spec).reduce((sum, [n, d]) => sum + kvPageBytes(spec.dtype, n * pageSize, d), 0);
}

/**
 * Fewest values a q4 KV scale group may hold. q4 keeps one f16 scale per 32 values of a row (GGUF
 * Q4_0's block), the last group holding the rest (d mod 32). Measured (scripts/kvQuality.ts, README),
 * groups of 16 stay within 1.4% perplexity of f16 KV (the shipped kjv models, d 16; kjv-mla's latent
 * row of 48 = 32 + 16), groups of 8 do not: stories260K (d 8) +84% perplexity, top-1 71% against f32
 * KV. The keys are what suffers (K q8 + V q4 gave -0.04% there), and no 4-bit scheme tried on the
 * float64 twin held d 8 within 5% (Q4_1 scale + min +41%, IQ4_NL +50%, Hadamard-rotated Q4_0 +46%).
 * llama.cpp is stricter: its q4_0 / q8_0 caches need head dims that are multiples of 32 ("K cache
 * type q4_0 with block size 32 does not divide n_embd_head_k=8"); webattn's q8 has one scale per
 * row, so it takes any head dim.
 */
export const KV_Q4_MIN_GROUP = 16;

/**
 * Why a model's KV cannot be stored as spec.dtype, or null when it can. q4 needs every stored row (the
 * K and V head dims; MLA: the latent row d_c + d_rope) to be whole u32 words of codes (a multiple of
 * 8 values) whose scale groups hold at least KV_Q4_MIN_GROUP values: d 8 and d 40 (32 + 8) are refused,
 * d 16, 24, 48 (32 + 16), 64, 128, 576 are not. Transformer.load (so the engine and the CLI) and the
 * demo's KV menu refuse with this text.
 */
export function kvDtypeProblem(spec: KvSpec): string | null {
  checkDtype(spec.dtype);
  if (spec.dtype !== 'q4') return null;
  const latent = (spec.latentDim ?? 0) + (spec.ropeDim ?? 0);
  const rows: [number, string][] =
    spec.variant === 'mla'
      ? [[latent, `latent row of ${latent} (${spec.latentDim} + ${spec.ropeDim})`]]
      : [
          [spec.headDimQK, `head dim ${spec.headDimQK}`],
          [spec.headDimV, `V head dim ${spec.headDimV}`],
        ];
  for (const [d, what] of rows) {
    if (d % 8)
      return `q4 KV needs head dims that are multiples of 8 (8 codes per u32 word); this model's ${what} is not`;
    const last = d % 32;
    if (last !== 0 && last < KV_Q4_MIN_GROUP) {
      return (
        `q4 KV keeps one f16 scale per 32 values of a row, and a last group of fewer than ${KV_Q4_MIN_GROUP} ` +
        `values loses too much (d 8: +84% perplexity); this model's ${what} leaves a last group of ${last}. ` +
        'Use q8 or f16 KV'
      );
    }
  }
  return null;
}

/** Pool memory in bytes; a page index covers that page in every layer. */
export interface KvMemory {
  /** One page over all layers: pageBytes * numLayers. Llama-2-7B f16, pageSize 16: 8 MiB. */
  bytesPerPage: number;
  totalBytes: number;
  usedBytes: number;
  /** Allocatable now, cached pages included (like KvCacheStats.freePages). */
  freeBytes: number;
  /** Held by free pages that still hold a prefix-cache entry; part of freeBytes. */
  cachedBytes: number;
}

/** Converts page counts into bytes. Example: 100 used Llama-2-7B f16 pages of 16 tokens = 800 MiB. */
export function describeMemory(stats: KvCacheStats, spec: KvSpec, pageSize: number): KvMemory {
  const bytesPerPage = pageBytes(spec, pageSize) * spec.numLayers;
  return {
    bytesPerPage,
    totalBytes: stats.totalPages * bytesPerPage,
    usedBytes: stats.usedPages * bytesPerPage,
    freeBytes: stats.freePages * bytesPerPage,
    cachedBytes: stats.cachedPages * bytesPerPage,
  };
}

function requireCount(value: number, name: string, min = 1): void {
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`kv accounting: ${name} must be an integer >= ${min}, got ${value}`);
  }
}
