/**
 * A model stepped by hand: a KV pool of its own (made from the model's spec and bound to it) and a
 * Scheduler whose batch() turns named sequences' new tokens into StepBatches. For logits of given
 * ids (the CLI's `logits`, the tests against the reference) and for tests that fork or reuse a prefix
 * by hand through `cache`; generation goes through the Engine, which plans its steps on the same
 * Scheduler.
 */
import { KvPool } from '../kernels/kvPool';
import type { KvCacheManager } from '../kv/kvCacheManager';
import type { Transformer } from '../model/transformer';
import { Scheduler, type StepSequence } from './scheduler';

/**
 * Makes the model's KV pool and binds it: `numPages` pages, by default what maxSeqs sequences of
 * maxContext tokens need, capped by what one storage binding holds. The caller owns the pool (destroy it).
 */
export async function bindKvPool(model: Transformer, numPages?: number): Promise<KvPool> {
  const { maxSeqs, maxContext, pageSize } = model.opts;
  const pages = Math.min(numPages ?? maxSeqs * Math.ceil(maxContext / pageSize), model.maxKvPages);
  const pool = await KvPool.create(model.ctx, model.kvPoolSpec(pages));
  try {
    model.bindKv(pool);
  } catch (e) {
    pool.destroy();
    throw e;
  }
  return pool;
}

/** Unbinds the pool (if the model still reads it) and destroys it. */
export function unbindKvPool(model: Transformer, pool: KvPool): void {
  if (model.kvPool === pool) model.bindKv(null);
  pool.destroy();
}

export interface StepRunnerOptions {
  /** Pages in the pool (default: see bindKvPool). */
  numPages?: number;
  /** Reuse cached full pages across sequences (default true). */
  enablePrefixCache?: boolean;
}

export class StepRunner {
  private nextSeqId = 1 << 20; // ids of logitsForIds' sequences, away from a caller's

  private constructor(
    readonly model: Transformer,
    readonly pool: KvPool,
    readonly scheduler: Scheduler,
  ) {}

  static async create(model: Transformer, opts: StepRunnerOptions = {}): Promise<StepRunner> {
    const pool = await bindKvPool(model, opts.numPages);
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
    });
    return new StepRunner(model, pool, scheduler);
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
      for (const s of seqs) if (this.cache.has(s.seqId)) this.cache.free(s.seqId, { discardCached: true });
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
      if (this.cache.has(seqId)) this.cache.free(seqId);
    }
    return out;
  }

  /** KV bytes a sequence holds now, over all layers (whole pages). */
  kvBytes(seqId: number): number {
    if (!this.cache.has(seqId)) return 0;
    return this.cache.blockTable(seqId).length * (this.pool.totalBytes / this.pool.spec.numPages);
  }

  /** Unbinds and destroys the pool; the model stays the caller's. */
  destroy(): void {
    unbindKvPool(this.model, this.pool);
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
