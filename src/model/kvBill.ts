/**
 * The KV bill of a ModelSpec for one sequence of `context` tokens, as the cache holds it today
 * (every layer keeps every token) and as it would with sliding-window layers freeing the pages
 * that left their window (issue 18 part 2; the scheduler does not free them yet). A sliding layer
 * needs its last `window` tokens, which can straddle one more page than ceil(window / pageSize):
 *   pages(sliding layer) = min(ceil(context / pageSize), ceil(window / pageSize) + 1)
 * Worked example (gemma-3-1b-it, f16, pages of 16, 32768 tokens): 26 layers of 1 KV head x (256 +
 * 256) values = 1 KiB per token per layer; every layer: 26 x 32768 tokens = 832 MiB; windowed: 4
 * global layers x 2048 pages + 22 sliding layers x (32 + 1) pages = 8918 pages of 16 KiB = 139.3 MiB,
 * 0.168 of it (about one sixth).
 */
import { kvBytesPerToken, type KvDtype } from '../kv/accounting';
import type { ModelSpec } from './config';

export interface KvBill {
  /** Bytes with every layer holding every page of the sequence. */
  allPages: number;
  /** Bytes with sliding layers holding only the pages their window still reaches. */
  windowed: number;
  slidingLayers: number;
}

/** K/V bytes of one token in one layer of this spec. */
export function kvBytesPerTokenPerLayer(spec: ModelSpec, dtype: KvDtype): number {
  const perToken = kvBytesPerToken({
    variant: spec.attention,
    numLayers: spec.numLayers,
    numKvHeads: spec.numKvHeads,
    headDimQK: spec.headDim,
    headDimV: spec.headDimV,
    latentDim: spec.mla?.kvLoraRank,
    ropeDim: spec.mla?.qkRopeHeadDim,
    dtype,
  });
  return perToken / spec.numLayers;
}

export function kvBill(spec: ModelSpec, context: number, pageSize: number, dtype: KvDtype): KvBill {
  if (!(Number.isInteger(context) && context >= 1))
    throw new RangeError(`kvBill: context must be >= 1, got ${context}`);
  if (!(Number.isInteger(pageSize) && pageSize >= 1))
    throw new RangeError(`kvBill: pageSize must be >= 1, got ${pageSize}`);
  const pageBytes = kvBytesPerTokenPerLayer(spec, dtype) * pageSize;
  const pages = Math.ceil(context / pageSize);
  const window = spec.slidingWindow;
  const slidingLayers = window === null ? 0 : spec.layers.filter((l) => l.sliding).length;
  const slidingPages = window === null ? pages : Math.min(pages, Math.ceil(window / pageSize) + 1);
  const globalLayers = spec.numLayers - slidingLayers;
  return {
    allPages: spec.numLayers * pages * pageBytes,
    windowed: (globalLayers * pages + slidingLayers * slidingPages) * pageBytes,
    slidingLayers,
  };
}
