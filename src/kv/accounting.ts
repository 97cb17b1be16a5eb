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
 */
import type { KvCacheStats } from './kvCacheManager';
import { bytesPerValue, isKvDtype, type KvDtype } from '../gpu/dtype';

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

/** Bytes of one stored value: f32 4, f16 2 (src/gpu/dtype.ts). */
export function dtypeBytes(dtype: KvDtype): number {
  if (!isKvDtype(dtype)) throw new Error(`kv accounting: unknown dtype ${String(dtype)}`);
  return bytesPerValue(dtype);
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

/** Exact K/V bytes of one token over all layers. Llama-2-7B f16: 8192 * 2 * 32 = 524288 (512 KiB). */
export function kvBytesPerToken(spec: KvSpec): number {
  return kvValuesPerTokenPerLayer(spec) * dtypeBytes(spec.dtype) * spec.numLayers;
}

/** Bytes of one page in ONE layer (K and V). Llama-2-7B f16, pageSize 16: 8192 * 2 * 16 = 262144 (256 KiB). */
export function pageBytes(spec: KvSpec, pageSize: number): number {
  requireCount(pageSize, 'pageSize');
  return kvValuesPerTokenPerLayer(spec) * dtypeBytes(spec.dtype) * pageSize;
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
