/**
 * The scheduler: the one owner of the KV cache bookkeeping (a KvCacheManager over the pool's pages)
 * and the only maker of StepBatches, the plain data the model runs (src/kernels/stepBatch.ts). No GPU
 * code: it is tested in plain Node (test/engine/scheduler.test.ts).
 *
 * Two ways in, one way out:
 *   planned   (the Engine) enqueue(seq), fork(parent, child), release(seq); schedule() picks the
 *             step: running decodes first, then prefill chunks of running sequences, then waiting
 *             (new or preempted) ones, up to the token budget, maxSeqs and the free pages; then
 *             stepSucceeded(step) or stepFailed(step) once the model has run it.
 *   explicit  (StepRunner, tests) batch([{ seqId, tokenIds }]) for sequences named by id, with the
 *             cache's addSequence / fork / free used directly.
 * Both end in batch(), which refuses a step that does not fit before changing anything, then
 * appends the slots (copy-on-write pairs; full pages enter the prefix cache with their ids) and
 * builds the page table. schedule() counts pages with the same pagesNeeded that batch() checks, so
 * a planned step always fits.
 *
 * A sequence is `tokens` = prompt + generated so far; the cache holds the KV of the first
 * cache.seqLen(seqId) of them and each step feeds the next ones. So prefill, chunked prefill,
 * decode and recompute after preemption are one rule: feed what is missing; the owner samples when
 * nothing is (fedAll).
 *
 * Prefix reuse: a sequence is admitted with cache.addSequence(seqId, tokens), which maps the longest
 * chain of cached full pages (never the last token). Forks share every page (copy-on-write when one
 * writes a shared partial page). Pool exhausted: the newest running sequence newer than the one in
 * need is preempted (pages freed, back to waiting; the owner keeps its sampling state). A step the
 * model failed: its sequences' pages are dropped from the prefix cache (their K/V may be unwritten);
 * alone, the sequence is the culprit; together, each is requeued and then runs alone ("suspect")
 * until a step of its own succeeds.
 *
 * Sliding-window layers (issue 18): with `local`, a second KvCacheManager (`localCache`, its own
 * pool of pages) holds the K/V of the model's sliding layers and `cache` that of the others. Every
 * sequence lives in both with the same length; each step appends to both, and before it a
 * sequence's local pages that left the window of its next query (at its length) are released
 * (KvCacheManager.releaseOutsideWindow; they map to the group's pinned page). So a decoding
 * sequence holds at most ceil(window / pageSize) + 1 local pages. The batch carries the local
 * slots, page indices and copies (StepBatch.local); planning counts and preempts for both groups.
 * The prefix cache is off with a local group: a hit would need local K/V that was released.
 */
import { ShapeError } from '../gpu/errors';
import { buildPageTable } from '../kernels/pageTable';
import type { StepBatch } from '../kernels/stepBatch';
import { KvCacheManager } from '../kv/kvCacheManager';

export interface SchedulerOptions {
  /** Pages in the KV pool (every layer's page p belongs to the same tokens). */
  numPages: number;
  pageSize: number;
  /** Tokens one step may carry (the model's buffers). */
  maxTokens: number;
  /** Sequences one step may carry. */
  maxSeqs: number;
  /** Logit rows one step may return. */
  maxLogitRows: number;
  /** Longest sequence. */
  maxContext: number;
  /** Tokens per planned step (decodes + prefill chunks). Default maxTokens; at most maxTokens. */
  tokenBudget?: number;
  /** When set, batch() refuses token ids outside 0..vocabSize-1. */
  vocabSize?: number;
  /** Reuse cached full pages across sequences (default true; off with `local`). */
  enablePrefixCache?: boolean;
  /** A second page group for the sliding-window layers: its pool's pages (one is pinned) and the window. */
  local?: { numPages: number; window: number };
}

/** A sequence's new tokens in an explicit step. */
export interface StepSequence {
  seqId: number;
  tokenIds: readonly number[];
}

/** A sequence the scheduler plans (the Engine's samples extend it). */
export interface ScheduledSequence {
  readonly seqId: number;
  /** Arrival order: the older request first, then the lower index. The newest is preempted first. */
  readonly request: number;
  readonly index: number;
  /** Prompt + generated so far; the owner pushes each sampled token. */
  readonly tokens: number[];
  /** Prompt tokens: feeding the one token after them or later is a decode (StepInfo counts). */
  readonly promptLength: number;
  /** Set by the scheduler: waiting holds no pages, running holds pages, done has left. */
  state: 'waiting' | 'running' | 'done';
  /** Set by the scheduler: was in a failed step; runs alone until a step of its own succeeds. */
  suspect: boolean;
}

/** One planned step: the model's batch and, in the same order, the sequences and tokens it feeds. */
export interface ScheduledStep<S extends ScheduledSequence = ScheduledSequence> {
  /** null when nothing can run (only if the head of the queue can never get its pages). */
  batch: StepBatch | null;
  /**
   * Row i of the step's logits belongs to items[i] (one logits row per sequence), which feeds
   * tokens[start, start + take). For a sequence admitted this step, start = the prompt tokens the
   * prefix cache gave it.
   */
  items: { seq: S; start: number; take: number }[];
  /** Sequences preempted while planning. */
  preempted: number;
  /** Tokens of prompts (and of preempted sequences being recomputed). */
  prefillTokens: number;
  /** Sequences that feed one sampled token. */
  decodeTokens: number;
}

interface PlanItem<S> {
  seq: S;
  take: number;
  /** Pages claimed in each group (cache, then localCache). */
  pages: number[];
}

/** Arrival order: older request first, then index. */
const older = (a: ScheduledSequence, b: ScheduledSequence) => a.request - b.request || a.index - b.index;

function insertSorted<S extends ScheduledSequence>(list: S[], s: S): void {
  let i = list.length;
  while (i > 0 && older(s, list[i - 1]) < 0) i--;
  list.splice(i, 0, s);
}

function remove<S>(list: S[], s: S): boolean {
  const i = list.indexOf(s);
  if (i < 0) return false;
  list.splice(i, 1);
  return true;
}

export class Scheduler<S extends ScheduledSequence = ScheduledSequence> {
  /** The KV bookkeeping. Read it freely; change it only through the scheduler (or, explicit, by id). */
  readonly cache: KvCacheManager;
  /** The sliding-window layers' pages (SchedulerOptions.local), or null when every layer uses `cache`. */
  readonly localCache: KvCacheManager | null;
  readonly opts: Readonly<Required<Omit<SchedulerOptions, 'vocabSize' | 'enablePrefixCache' | 'local'>>>;
  /** The groups, `cache` first. */
  private readonly groups: KvCacheManager[];
  private readonly vocabSize: number | undefined;
  private readonly runningSeqs: S[] = []; // arrival order; hold pages
  private readonly waitingSeqs: S[] = []; // arrival order; hold no pages

  constructor(o: SchedulerOptions) {
    for (const [name, v] of Object.entries({
      maxTokens: o.maxTokens,
      maxSeqs: o.maxSeqs,
      maxLogitRows: o.maxLogitRows,
      maxContext: o.maxContext,
    })) {
      if (!(Number.isInteger(v) && v >= 1))
        throw new ShapeError(`Scheduler: ${name} must be a positive integer, got ${v}`);
    }
    const budget = o.tokenBudget ?? o.maxTokens;
    if (!(Number.isInteger(budget) && budget >= 1))
      throw new ShapeError(`Scheduler: tokenBudget must be a positive integer, got ${budget}`);
    this.cache = new KvCacheManager({
      numPages: o.numPages,
      pageSize: o.pageSize,
      enablePrefixCache: o.local ? false : o.enablePrefixCache,
    });
    this.localCache = o.local
      ? new KvCacheManager({ numPages: o.local.numPages, pageSize: o.pageSize, window: o.local.window })
      : null;
    this.groups = this.localCache ? [this.cache, this.localCache] : [this.cache];
    this.opts = {
      numPages: o.numPages,
      pageSize: o.pageSize,
      maxTokens: o.maxTokens,
      maxSeqs: o.maxSeqs,
      maxLogitRows: o.maxLogitRows,
      maxContext: o.maxContext,
      tokenBudget: Math.min(budget, o.maxTokens),
    };
    this.vocabSize = o.vocabSize;
  }

  /** Sequences holding pages, oldest first. */
  get running(): readonly S[] {
    return this.runningSeqs;
  }

  /** Sequences waiting for admission (new or preempted), oldest first. */
  get waiting(): readonly S[] {
    return this.waitingSeqs;
  }

  // ---- planned stepping ----

  /** Queues a new sequence (it holds no pages until a step admits it). */
  enqueue(s: S): void {
    if (s.state !== 'waiting') throw new Error(`Scheduler.enqueue: sequence ${s.seqId} is ${s.state}`);
    insertSorted(this.waitingSeqs, s);
  }

  /** The child runs at once, sharing every page of the parent (copy-on-write on its first write into a shared page). */
  fork(parent: S, child: S): void {
    this.forkSequence(parent.seqId, child.seqId);
    child.state = 'running';
    insertSorted(this.runningSeqs, child);
  }

  /** The sequence leaves the queues and its pages go back to the pool (or the prefix cache). */
  release(s: S): void {
    if (s.state === 'done') return;
    remove(this.runningSeqs, s) || remove(this.waitingSeqs, s);
    this.freeSequence(s.seqId);
    s.state = 'done';
  }

  /** Every token has its KV: the step's logits row for it predicts its next token. */
  fedAll(s: S): boolean {
    return this.cache.has(s.seqId) && this.cache.seqLen(s.seqId) >= s.tokens.length;
  }

  /** Every group's view of the sequence: registered, forked, freed together (explicit callers too). */
  forkSequence(parentSeqId: number, childSeqId: number): void {
    for (const g of this.groups) g.fork(parentSeqId, childSeqId);
  }

  /** Frees the sequence in every group that holds it (no-op where none does). */
  freeSequence(seqId: number, opts: { discardCached?: boolean } = {}): void {
    for (const g of this.groups) if (g.has(seqId)) g.free(seqId, opts);
  }

  /** Pages appending numTokens to the sequence needs in each group (dead local pages already released). */
  private pagesNeeded(seqId: number, numTokens: number): number[] {
    return this.groups.map((g) => g.pagesNeeded(seqId, numTokens));
  }

  /** Local group: releases the pages the sequence's next query (at its length) no longer reads. */
  private releaseDeadLocalPages(seqId: number): void {
    const local = this.localCache;
    if (local?.has(seqId)) local.releaseOutsideWindow(seqId, local.seqLen(seqId));
  }

  /** Registers the sequence in every group (prefix lookup in `cache` only; the local group has none). */
  private addSequence(seqId: number, tokens?: readonly number[]): { cachedTokens: number } {
    const r = this.cache.addSequence(seqId, tokens);
    this.localCache?.addSequence(seqId);
    return r;
  }

  /** This step's work and its batch, with its slots already appended. */
  schedule(): ScheduledStep<S> {
    const { cache, opts, groups } = this;
    const plan: PlanItem<S>[] = [];
    let budget = opts.tokenBudget;
    const claimed = groups.map(() => 0);
    let preempted = 0;
    for (const s of this.runningSeqs) this.releaseDeadLocalPages(s.seqId);
    const fits = (pages: number[]) => pages.every((n, g) => n <= groups[g].stats().freePages - claimed[g]);
    const claim = (pages: number[], sign: number) => pages.forEach((n, g) => (claimed[g] += sign * n));
    const unplan = (s: S) => {
      const i = plan.findIndex((p) => p.seq === s);
      if (i < 0) return;
      budget += plan[i].take;
      claim(plan[i].pages, -1);
      plan.splice(i, 1);
    };
    const preempt = (s: S) => {
      unplan(s);
      this.preempt(s);
      preempted++;
    };
    /** Frees pages by preempting sequences newer than s, newest first; false if still short. */
    const makeRoom = (s: S, pages: number[]): boolean => {
      while (!fits(pages)) {
        const victim = this.runningSeqs[this.runningSeqs.length - 1];
        if (victim === s || older(victim, s) < 0) return false;
        preempt(victim);
      }
      return true;
    };

    // 0. After a failed step: one suspect sequence at a time, alone.
    const suspect = this.waitingSeqs.find((s) => s.suspect);
    if (suspect) {
      while (this.runningSeqs.length > 0) preempt(this.runningSeqs[this.runningSeqs.length - 1]);
      remove(this.waitingSeqs, suspect);
      this.addSequence(suspect.seqId, suspect.tokens);
      suspect.state = 'running';
      insertSorted(this.runningSeqs, suspect);
      const take = Math.min(suspect.tokens.length - cache.seqLen(suspect.seqId), budget);
      plan.push({ seq: suspect, take, pages: this.pagesNeeded(suspect.seqId, take) });
      return this.build(plan, preempted);
    }
    // 1. Decodes (one missing token), oldest first. A decode that cannot grow even with every
    //    newer sequence preempted is itself preempted (it is then the newest).
    for (const s of [...this.runningSeqs]) {
      if (s.state !== 'running' || plan.length >= opts.maxSeqs || budget === 0) continue;
      if (s.tokens.length - cache.seqLen(s.seqId) !== 1) continue;
      const pages = this.pagesNeeded(s.seqId, 1);
      if (!makeRoom(s, pages)) {
        preempt(s);
        continue;
      }
      plan.push({ seq: s, take: 1, pages });
      budget -= 1;
      claim(pages, 1);
    }
    // 2. Prefill chunks of running sequences; short of pages, newer ones make room, else it waits.
    for (const s of [...this.runningSeqs]) {
      if (s.state !== 'running' || plan.length >= opts.maxSeqs || budget === 0) continue;
      const missing = s.tokens.length - cache.seqLen(s.seqId);
      if (missing <= 1) continue;
      const take = Math.min(missing, budget);
      const pages = this.pagesNeeded(s.seqId, take);
      if (!makeRoom(s, pages)) continue;
      plan.push({ seq: s, take, pages });
      budget -= take;
      claim(pages, 1);
    }
    // 3. Admit waiting sequences (preempted ones are older, so they come first) while pages last.
    while (this.waitingSeqs.length > 0 && plan.length < opts.maxSeqs && budget > 0) {
      const s = this.waitingSeqs[0];
      const { cachedTokens } = this.addSequence(s.seqId, s.tokens);
      const take = Math.min(s.tokens.length - cachedTokens, budget);
      const pages = this.pagesNeeded(s.seqId, take);
      if (!fits(pages)) {
        this.freeSequence(s.seqId); // undo; wait for pages (admission never preempts)
        break;
      }
      this.waitingSeqs.shift();
      s.state = 'running';
      insertSorted(this.runningSeqs, s);
      plan.push({ seq: s, take, pages });
      budget -= take;
      claim(pages, 1);
    }
    return this.build(plan, preempted);
  }

  /** The step ran: its suspects are cleared. */
  stepSucceeded(step: ScheduledStep<S>): void {
    for (const { seq } of step.items) seq.suspect = false;
  }

  /**
   * The model failed the step. Its full pages may sit in the prefix cache with their K/V unwritten:
   * they are dropped (with the sequences' pages) before anything can match them. A sequence that ran
   * alone is returned, the culprit (still in `running`: the owner fails it, then releases it);
   * otherwise every one still running is requeued as a suspect and null is returned.
   */
  stepFailed(step: ScheduledStep<S>): S | null {
    for (const { seq } of step.items) this.freeSequence(seq.seqId, { discardCached: true });
    if (step.items.length === 1) return step.items[0].seq;
    for (const { seq } of step.items) {
      if (seq.state !== 'running') continue;
      this.preempt(seq);
      seq.suspect = true;
    }
    return null;
  }

  /** Back to waiting without pages. */
  private preempt(s: S): void {
    remove(this.runningSeqs, s);
    this.freeSequence(s.seqId);
    s.state = 'waiting';
    insertSorted(this.waitingSeqs, s);
  }

  private build(plan: PlanItem<S>[], preempted: number): ScheduledStep<S> {
    const step: ScheduledStep<S> = { batch: null, items: [], preempted, prefillTokens: 0, decodeTokens: 0 };
    if (plan.length === 0) return step;
    const seqs: StepSequence[] = [];
    for (const { seq, take } of plan) {
      const start = this.cache.seqLen(seq.seqId);
      seqs.push({ seqId: seq.seqId, tokenIds: seq.tokens.slice(start, start + take) });
      step.items.push({ seq, start, take });
      const isDecode = take === 1 && seq.tokens.length > seq.promptLength && start === seq.tokens.length - 1;
      if (isDecode) step.decodeTokens++;
      else step.prefillTokens += take;
    }
    step.batch = this.batch(seqs);
    return step;
  }

  // ---- the batch (both ways in) ----

  /**
   * Appends each sequence's new tokens to its KV pages and returns the step's batch: logits of the
   * LAST new token of each sequence (allRows: of every new token, row t = the prediction after
   * token t). Unknown seqIds are registered (without a prompt: no prefix lookup). A step that does
   * not fit (tokens, sequences, logit rows, context, pages, token ids) is refused with a
   * ShapeError before anything changes (but dead local pages, which nothing can read, are released).
   */
  batch(seqs: readonly StepSequence[], { allRows = false } = {}): StepBatch {
    const { cache, opts, localCache: local } = this;
    const T = seqs.reduce((n, s) => n + s.tokenIds.length, 0);
    if (seqs.length === 0 || seqs.length > opts.maxSeqs)
      throw new ShapeError(`step: ${seqs.length} sequences; set up for 1..${opts.maxSeqs}`);
    if (T > opts.maxTokens)
      throw new ShapeError(`step: ${T} tokens in one step; set up for at most ${opts.maxTokens} (use chunked prefill)`);
    const R = allRows ? T : seqs.length;
    if (R > opts.maxLogitRows)
      throw new ShapeError(`step: ${R} logit rows; set up for at most ${opts.maxLogitRows} (maxLogitRows)`);
    if (new Set(seqs.map((s) => s.seqId)).size !== seqs.length)
      throw new ShapeError('step: a sequence appears twice in one step');
    const pagesNeeded = this.groups.map(() => 0);
    for (const s of seqs) {
      if (s.tokenIds.length === 0) throw new ShapeError(`step: sequence ${s.seqId} has no new tokens`);
      if (local && cache.has(s.seqId) !== local.has(s.seqId))
        throw new Error(
          `Scheduler.batch: sequence ${s.seqId} is in one page group only (use forkSequence / freeSequence)`,
        );
      this.releaseDeadLocalPages(s.seqId);
      const len = (cache.has(s.seqId) ? cache.seqLen(s.seqId) : 0) + s.tokenIds.length;
      if (len > opts.maxContext)
        throw new ShapeError(
          `step: sequence ${s.seqId} would reach ${len} tokens, past the context of ${opts.maxContext}`,
        );
      if (this.vocabSize !== undefined) {
        const V = this.vocabSize;
        for (const id of s.tokenIds)
          if (!(Number.isInteger(id) && id >= 0 && id < V))
            throw new ShapeError(`step: token id ${id} is outside the vocabulary (0..${V - 1})`);
      }
      // The same count schedule() claims: new pages plus a copy-on-write page.
      const needs = cache.has(s.seqId)
        ? this.pagesNeeded(s.seqId, s.tokenIds.length)
        : this.groups.map(() => Math.ceil(s.tokenIds.length / opts.pageSize));
      needs.forEach((n, g) => (pagesNeeded[g] += n));
    }
    this.groups.forEach((g, i) => {
      const free = g.stats().freePages;
      const which = i === 0 ? '' : ' sliding-window';
      if (pagesNeeded[i] > free)
        throw new ShapeError(
          `step: the step needs ${pagesNeeded[i]}${which} KV pages, ${free} are free (pool of ${g.numPages})`,
        );
    });

    const tokenIds = new Uint32Array(T);
    const positions = new Uint32Array(T);
    const slots = new Int32Array(T);
    const logitRows = allRows ? Uint32Array.from({ length: T }, (_, t) => t) : new Uint32Array(seqs.length);
    const copies: number[] = []; // (src, dst) page pairs: at most one per sequence
    const localSlots = local ? new Int32Array(T) : null;
    const localCopies: number[] = [];
    let row = 0;
    seqs.forEach((s, i) => {
      if (!cache.has(s.seqId)) this.addSequence(s.seqId);
      const start = cache.seqLen(s.seqId);
      // With the ids, pages that become full enter the prefix cache: the model writes the step's
      // K/V before any later step can read them (a failed step discards them: stepFailed).
      const r = cache.appendSlots(s.seqId, s.tokenIds.length, s.tokenIds);
      if (!r.ok) throw new Error(`Scheduler.batch: sequence ${s.seqId}: ${r.reason}`); // counted above: cannot happen
      for (const c of r.copies) copies.push(c.src, c.dst);
      if (local) {
        const rl = local.appendSlots(s.seqId, s.tokenIds.length);
        if (!rl.ok) throw new Error(`Scheduler.batch: sequence ${s.seqId}: ${rl.reason}`); // counted above
        for (const c of rl.copies) localCopies.push(c.src, c.dst);
        localSlots!.set(rl.slots, row);
      }
      tokenIds.set(s.tokenIds, row);
      slots.set(r.slots, row);
      for (let j = 0; j < s.tokenIds.length; j++) positions[row + j] = start + j;
      row += s.tokenIds.length;
      if (!allRows) logitRows[i] = row - 1;
    });
    const table = (g: KvCacheManager) =>
      buildPageTable(
        seqs.map((s) => ({ blockTable: g.blockTable(s.seqId), kvLen: g.seqLen(s.seqId), qLen: s.tokenIds.length })),
        opts.pageSize,
      );
    const pageTable = table(cache);
    const batch: StepBatch = { tokenIds, positions, slots, pageTable, copies: Uint32Array.from(copies), logitRows };
    // Same lengths in both groups, so the local page table differs only in its page indices.
    if (local)
      batch.local = {
        slots: localSlots!,
        kvPageIndices: table(local).kvPageIndices,
        copies: Uint32Array.from(localCopies),
      };
    return batch;
  }
}
