/**
 * The KV bill of a ModelSpec for one sequence of `context` tokens with every layer keeping every
 * token, and with sliding-window layers freeing the pages that left their window, as the scheduler
 * does with a sliding-window page group (issue 18 part 2; Engine.forModel and StepRunner make one).
 * A sliding layer needs its last `window` tokens, which can straddle one more page than
 * ceil(window / pageSize), so at most:
 *   pages(sliding layer) = min(ceil(context / pageSize), ceil(window / pageSize) + 1)
 * `scheduled` is what the scheduler's rule (KvCacheManager.releaseOutsideWindow) holds once the
 * sequence has decoded its context-th token: run on the manager itself, in chunks then one decode.
 * Worked example (gemma-3-1b-it, f16, pages of 16, 32768 tokens): 26 layers of 1 KV head x (256 +
 * 256) values = 1 KiB per token per layer; every layer: 26 x 32768 tokens = 832 MiB; windowed: 4
 * global layers x 2048 pages + 22 sliding layers x (32 + 1) pages = 8918 pages of 16 KiB = 139.3 MiB,
 * 0.168 of it (about one sixth). Any KV dtype: q8 / q4 (scales included) cut that to ~0.51x / ~0.28x.
 */
import { kvBytesPerToken, pageBytes as kvPageBytes, type KvDtype, type KvSpec } from '../kv/accounting';
import { KvCacheManager } from '../kv/kvCacheManager';
import type { ModelSpec } from './config';

export interface KvBill {
  /** Bytes with every layer holding every page of the sequence. */
  allPages: number;
  /** Bytes with sliding layers holding only the pages their window can reach (the bound above). */
  windowed: number;
  /** Bytes the scheduler's rule holds after decoding the context-th token (<= windowed). */
  scheduled: number;
  /** Pages one sliding layer holds then (the scheduler's rule), and one full layer. */
  slidingPagesHeld: number;
  fullPagesHeld: number;
  slidingLayers: number;
}

/**
 * Local pages a sequence holds after the scheduler's steps up to `context` tokens: prefill chunks of
 * `chunk` tokens, then the last token as a decode, each step first releasing what its first query no
 * longer reads. e.g. window 512, pages of 16, 32768 tokens: the decode at 32767 reads from 32256 =
 * page 2016 on, so pages 2016..2047 = 32 pages are held.
 */
export function slidingPagesHeld(context: number, window: number, pageSize: number, chunk = 256): number {
  const cache = new KvCacheManager({ numPages: Math.ceil(context / pageSize) + 2, pageSize, window });
  cache.addSequence(0);
  for (let len = 0; len < context; ) {
    const take = len < context - 1 ? Math.min(chunk, context - 1 - len) : 1;
    cache.releaseOutsideWindow(0, len);
    if (!cache.appendSlots(0, take).ok) throw new Error('slidingPagesHeld: pool too small'); // sized above
    len += take;
  }
  return cache.livePages(0);
}

/** The accounting view of a ModelSpec's KV (src/kv/accounting.ts). */
export function kvSpecOf(spec: ModelSpec, dtype: KvDtype): KvSpec {
  return {
    variant: spec.attention,
    numLayers: spec.numLayers,
    numKvHeads: spec.numKvHeads,
    headDimQK: spec.headDim,
    headDimV: spec.headDimV,
    latentDim: spec.mla?.kvLoraRank,
    ropeDim: spec.mla?.qkRopeHeadDim,
    dtype,
  };
}

/** K/V bytes of one token in one layer of this spec, q8 / q4 scales included. */
export function kvBytesPerTokenPerLayer(spec: ModelSpec, dtype: KvDtype): number {
  return kvBytesPerToken(kvSpecOf(spec, dtype)) / spec.numLayers;
}

export function kvBill(spec: ModelSpec, context: number, pageSize: number, dtype: KvDtype): KvBill {
  if (!(Number.isInteger(context) && context >= 1))
    throw new RangeError(`kvBill: context must be >= 1, got ${context}`);
  if (!(Number.isInteger(pageSize) && pageSize >= 1))
    throw new RangeError(`kvBill: pageSize must be >= 1, got ${pageSize}`);
  // One layer's page as the GPU pool allocates it (equal to bytes per token x pageSize for f32 / f16;
  // q8 / q4 pad a page's scales to a whole u32 word).
  const pageBytes = kvPageBytes(kvSpecOf(spec, dtype), pageSize);
  const pages = Math.ceil(context / pageSize);
  const window = spec.slidingWindow;
  const slidingLayers = window === null ? 0 : spec.layers.filter((l) => l.sliding).length;
  const slidingPages = window === null ? pages : Math.min(pages, Math.ceil(window / pageSize) + 1);
  const globalLayers = spec.numLayers - slidingLayers;
  const held = window === null ? pages : slidingPagesHeld(context, window, pageSize);
  return {
    allPages: spec.numLayers * pages * pageBytes,
    windowed: (globalLayers * pages + slidingLayers * slidingPages) * pageBytes,
    scheduled: (globalLayers * pages + slidingLayers * held) * pageBytes,
    slidingPagesHeld: held,
    fullPagesHeld: pages,
    slidingLayers,
  };
}
