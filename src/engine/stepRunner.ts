/**
 * A model stepped by hand: a KV pool of its own (made from the model's spec and bound to it) and a
 * Scheduler whose batch() turns named sequences' new tokens into StepBatches. For logits of given
 * ids (the CLI's `logits`, the tests against the reference) and for tests that fork or reuse a prefix
 * by hand through `cache`; generation goes through the Engine, which plans its steps on the same
 * Scheduler.
 */
import { ShapeError } from '../gpu/errors';
import { KvPool } from '../kernels/kvPool';
import type { KvCacheManager } from '../kv/kvCacheManager';
import type { Transformer } from '../model/transformer';
import { Scheduler, type StepSequence } from './scheduler';

/**
 * Makes the model's KV pool and binds it: `numPages` pages, by default what maxSeqs sequences of
 * maxContext tokens need, capped by model.maxKvPages (up to 4 storage bindings per layer: a pool past
 * one is split, KvPool.create, and bound with the split kernels, model.prepareKv). The caller owns the
 * pool (destroy it).
 */
export async function bindKvPool(model: Transformer, numPages?: number): Promise<KvPool> {
  const pages = kvPoolPages(model, numPages);
  const pool = await KvPool.create(model.ctx, model.kvPoolSpec(pages));
  try {
    await model.prepareKv(pool.spec); // a split pool's kernels (compiled once per layout)
    model.bindKv(pool);
  } catch (e) {
    pool.destroy();
    throw e;
  }
  return pool;
}

/**
 * Pages per layer of the model's pool: numPages, or by default what maxSeqs sequences of maxContext
 * tokens need, capped at model.maxKvPages. An explicit numPages past model.maxKvPages is an error
 * with the numbers (capping it would hand the caller a smaller pool than asked for).
 */
function kvPoolPages(model: Transformer, numPages?: number): number {
  if (numPages !== undefined && numPages > model.maxKvPages) {
    throw new ShapeError(
      `KV pool: numPages ${numPages} passes the ${model.maxKvPages} pages one layer's pool can hold on this ` +
        `device (a layer's K pages span at most 4 storage bindings of ` +
        `${model.ctx.limits.maxStorageBufferBindingSize} bytes, 1 where the device binds fewer than 16 storage ` +
        'buffers per stage)',
    );
  }
  const { maxSeqs, maxContext, pageSize } = model.opts;
  return Math.min(numPages ?? maxSeqs * Math.ceil(maxContext / pageSize), model.maxKvPages);
}

/** Unbinds the pool (if the model still reads it) and destroys it. */
export function unbindKvPool(model: Transformer, pool: KvPool): void {
  if (model.kvPool === pool) model.bindKv(null);
  pool.destroy();
}

/** A model's bound KV pools: every layer's, or the full layers' and the sliding-window layers'. */
export interface KvPools {
  /** The full layers' pages (every layer's when `local` is null). */
  pool: KvPool;
  /** The sliding-window layers' pages, freed as they leave the window; null for one pool. */
  local: KvPool | null;
  /** The window of the local pool's layers (0 without one). */
  window: number;
  /** KV bytes of one page over all layers of each pool. */
  bytesPerPage: number;
  localBytesPerPage: number;
  /** Unbinds (if the model still reads them) and destroys both. */
  destroy(): void;
}

/**
 * Pages the sliding-window pool needs next to `globalPages`: per sequence the window before its
 * first query, a step's tokens, one page they straddle and a copy-on-write page; never more than
 * every page (globalPages); plus the pinned page. e.g. window 512, maxTokens 256, pages of 16, 16
 * sequences: 16 * (ceil(767 / 16) + 2) + 1 = 801 pages (vs 4096 for 4096 tokens each).
 */
export function localPagesFor(model: Transformer, globalPages: number): number {
  const { maxSeqs, maxTokens, pageSize } = model.opts;
  const window = model.spec.slidingWindow ?? 0;
  return Math.min(globalPages, maxSeqs * (Math.ceil((window - 1 + maxTokens) / pageSize) + 2)) + 1;
}

/**
 * Makes and binds the model's KV pools: with sliding-window layers (and `split`, default true) two
 * pools, the full layers' of `numPages` pages (default as bindKvPool) and the sliding layers' of
 * localPagesFor(numPages), whose pages the scheduler frees as they leave the window
 * (SchedulerOptions.local); otherwise one pool of every layer.
 */
export async function bindKvPools(model: Transformer, numPages?: number, { split = true } = {}): Promise<KvPools> {
  const window = model.spec.slidingWindow ?? 0;
  const perPage = (p: KvPool) => p.totalBytes / p.spec.numPages;
  if (!split || model.slidingLayers === 0) {
    const pool = await bindKvPool(model, numPages);
    const destroy = () => unbindKvPool(model, pool);
    return { pool, local: null, window: 0, bytesPerPage: perPage(pool), localBytesPerPage: 0, destroy };
  }
  const pages = kvPoolPages(model, numPages);
  const localPages = Math.min(localPagesFor(model, pages), model.maxKvPages);
  const pool = await KvPool.create(model.ctx, model.kvPoolSpec(pages, 'global'));
  let local: KvPool | null = null;
  try {
    local = await KvPool.create(model.ctx, model.kvPoolSpec(localPages, 'local'));
    await model.prepareKv(pool.spec);
    await model.prepareKv(local.spec);
    model.bindKv(pool, local);
  } catch (e) {
    pool.destroy();
    local?.destroy();
    throw e;
  }
  const destroy = () => {
    if (model.kvPool === pool) model.bindKv(null);
    pool.destroy();
    local.destroy();
  };
  const localBytesPerPage = perPage(local);
  return { pool, local, window, bytesPerPage: pool.spec.numLayers ? perPage(pool) : 0, localBytesPerPage, destroy };
}

export interface StepRunnerOptions {
  /** Pages in the pool (default: see bindKvPool). */
  numPages?: number;
  /** Reuse cached full pages across sequences (default true; off with a sliding-window pool). */
  enablePrefixCache?: boolean;
  /** Give sliding-window layers a pool of their own whose dead pages are freed (default true). */
  splitSlidingPool?: boolean;
}

export class StepRunner {
  private nextSeqId = 1 << 20; // ids of logitsForIds' sequences, away from a caller's

  private constructor(
    readonly model: Transformer,
    readonly pools: KvPools,
    readonly scheduler: Scheduler,
  ) {}

  static async create(model: Transformer, opts: StepRunnerOptions = {}): Promise<StepRunner> {
    const pools = await bindKvPools(model, opts.numPages, { split: opts.splitSlidingPool });
    const { pool, local } = pools;
    const o = model.opts;
    const scheduler = new Scheduler({
      numPages: pool.spec.numPages,
      pageSize: o.pageSize,
      maxTokens: o.maxTokens,
      maxSeqs: o.maxSeqs,
      maxLogitRows: o.maxLogitRows,
      maxContext: o.maxContext,
      vocabSize: model.spec.vocabSize,
      enablePrefixCache: opts.enablePrefixCache,
      local: local ? { numPages: local.spec.numPages, window: pools.window } : undefined,
    });
    return new StepRunner(model, pools, scheduler);
  }

  /** The full layers' pool (every layer's without a sliding-window pool). */
  get pool(): KvPool {
    return this.pools.pool;
  }

  /** The scheduler's KV bookkeeping: addSequence(id, prompt) for prefix reuse, fork, free, stats. */
  get cache(): KvCacheManager {
    return this.scheduler.cache;
  }

  /**
   * One step: the logits after the LAST new token of each sequence, [seqs.length][vocab] (allRows:
   * after every new token, [T][vocab]). Unknown seqIds are registered; a step that does not fit is
   * refused before anything changes (Scheduler.batch). If the model fails the step, its sequences
   * are freed, their prefix-cache pages discarded (their K/V may be unwritten), and the error thrown.
   */
  async step(seqs: readonly StepSequence[], opts: { allRows?: boolean } = {}): Promise<Float32Array> {
    const batch = this.scheduler.batch(seqs, opts);
    try {
      return await this.model.forward(batch);
    } catch (e) {
      for (const s of seqs) this.scheduler.freeSequence(s.seqId, { discardCached: true });
      throw e;
    }
  }

  /**
   * Logits for exactly these ids of one new sequence, [ids.length][vocab], row t = the prediction
   * after token t, fed `chunk` tokens per step (1 = decode, ids.length = prefill). The sequence is
   * freed afterwards.
   */
  async logitsForIds(ids: readonly number[], chunk: number): Promise<Float32Array> {
    if (!(Number.isInteger(chunk) && chunk >= 1))
      throw new RangeError(`logitsForIds: chunk must be a positive integer, got ${chunk}`);
    const seqId = this.nextSeqId++;
    const V = this.model.spec.vocabSize;
    const out = new Float32Array(ids.length * V);
    try {
      for (let start = 0; start < ids.length; start += chunk) {
        const rows = await this.step([{ seqId, tokenIds: ids.slice(start, start + chunk) }], { allRows: true });
        out.set(rows, start * V);
      }
    } finally {
      this.scheduler.freeSequence(seqId);
    }
    return out;
  }

  /** KV bytes a sequence holds now, over all layers (whole pages; the sliding pool's live pages). */
  kvBytes(seqId: number): number {
    if (!this.cache.has(seqId)) return 0;
    const local = this.scheduler.localCache;
    const localBytes = local ? local.livePages(seqId) * this.pools.localBytesPerPage : 0;
    return this.cache.blockTable(seqId).length * this.pools.bytesPerPage + localBytes;
  }

  /** Unbinds and destroys the pools; the model stays the caller's. */
  destroy(): void {
    this.pools.destroy();
  }
}

/**
 * Logits for exactly these ids, fed `chunk` tokens per step, every row: StepRunner.logitsForIds over
 * a pool of its own (by default just the pages ids.length tokens need), destroyed afterwards.
 */
export async function logitsForIds(
  model: Transformer,
  ids: readonly number[],
  chunk: number,
  opts: StepRunnerOptions = {},
): Promise<Float32Array> {
  const numPages = opts.numPages ?? Math.ceil(ids.length / model.opts.pageSize);
  const runner = await StepRunner.create(model, { ...opts, numPages });
  try {
    return await runner.logitsForIds(ids, chunk);
  } finally {
    runner.destroy();
  }
}
