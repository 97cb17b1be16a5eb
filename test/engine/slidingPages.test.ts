/**
 * The scheduler's sliding-window page group in plain Node (issue 18 part 2): a sequence's local
 * pages that left its next query's window are released (mapped to the pinned page), so a long
 * generation holds ceil(window / pageSize) + 1 local pages per sequence; every query of a step
 * still finds the keys of its window in live local pages (a prefill chunk's first query too);
 * freed pages are reused; forks share and copy-on-write; preemption and release free both groups;
 * both managers' validate() stay exact.
 */
import { describe, expect, it } from 'vitest';
import type { StepBatch } from '../../src/kernels/stepBatch';
import { Scheduler, type ScheduledSequence, type SchedulerOptions } from '../../src/engine/scheduler';
import { rng } from '../../src/reference/random';
import { Engine } from '../../src/engine/engine';
import type { KvSnapshot } from '../../src/engine/types';
import { KvCacheManager } from '../../src/kv/kvCacheManager';
import { kvBill, slidingPagesHeld } from '../../src/model/kvBill';
import { parseConfig } from '../../src/model/config';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { tokenizerConfig, tokenizerJson } from '../helpers/tinyTokenizer';
import { FakeModel, type FakeOptions } from './fakeModel';
import { readFileSync } from 'node:fs';

const WINDOW = 10;
const PAGE = 4;
const HELD = Math.ceil(WINDOW / PAGE) + 1; // 4
const base: SchedulerOptions = {
  numPages: 64,
  pageSize: PAGE,
  maxTokens: 32,
  maxSeqs: 8,
  maxLogitRows: 8,
  maxContext: 128,
  local: { numPages: 40, window: WINDOW },
};

let nextId = 1;
function seq(tokens: number[], request?: number, index = 0): ScheduledSequence {
  const id = nextId++;
  return {
    seqId: id,
    request: request ?? id,
    index,
    tokens: tokens.slice(),
    promptLength: tokens.length,
    state: 'waiting',
    suspect: false,
  };
}
const ids = (n: number, from = 1) => Array.from({ length: n }, (_, i) => from + i);

/**
 * The batch's local group against the local cache: same page-table shape, slots in the local block
 * table, every key a row's query reads ((p - window, p]) in a live page, no two rows writing one slot.
 */
function checkLocal(s: Scheduler, batch: StepBatch, seqIds: number[]): void {
  const local = s.localCache!;
  const g = batch.local!;
  const pt = batch.pageTable;
  expect(g.slots.length).toBe(batch.slots.length);
  expect(g.kvPageIndices.length).toBe(pt.kvPageIndices.length);
  seqIds.forEach((seqId, i) => {
    const table = local.blockTable(seqId);
    expect(local.seqLen(seqId)).toBe(s.cache.seqLen(seqId));
    expect(Array.from(g.kvPageIndices.subarray(pt.kvIndptr[i], pt.kvIndptr[i + 1]))).toEqual(table);
    for (let t = pt.qoIndptr[i]; t < pt.qoIndptr[i + 1]; t++) {
      const p = batch.positions[t];
      expect(g.slots[t]).toBe(table[Math.floor(p / PAGE)] * PAGE + (p % PAGE));
      for (let key = Math.max(0, p - WINDOW + 1); key <= p; key++) {
        expect(table[Math.floor(key / PAGE)]).not.toBe(local.pinnedPage);
      }
    }
  });
  expect(new Set(g.slots).size).toBe(g.slots.length);
  s.cache.validate();
  local.validate();
}

/** Runs steps until nothing is left to feed for `steps` decodes; calls `after` after each step. */
function run(s: Scheduler, seqs: ScheduledSequence[], decodes: number, after: (step: number) => void): void {
  const target = new Map(seqs.map((q) => [q.seqId, q.tokens.length + decodes]));
  for (let step = 0; step < 1000; step++) {
    const st = s.schedule();
    if (!st.batch) break;
    checkLocal(
      s,
      st.batch,
      st.items.map((it) => it.seq.seqId),
    );
    s.stepSucceeded(st);
    for (const { seq: q } of st.items) {
      if (s.fedAll(q) && q.tokens.length < target.get(q.seqId)!) q.tokens.push(1000 + q.tokens.length);
    }
    after(step);
    if (seqs.every((q) => s.fedAll(q) && q.tokens.length >= target.get(q.seqId)!)) return;
  }
  throw new Error('did not finish');
}

describe('scheduler: sliding-window pages', () => {
  it('a long generation holds ceil(window / pageSize) + 1 local pages per sequence; full layers keep all', () => {
    const s = new Scheduler(base);
    const a = seq(ids(7));
    const b = seq(ids(13, 50));
    s.enqueue(a);
    s.enqueue(b);
    let maxHeld = 0;
    run(s, [a, b], 80, () => {
      for (const q of [a, b]) {
        const held = s.localCache!.livePages(q.seqId);
        expect(held).toBeLessThanOrEqual(HELD);
        maxHeld = Math.max(maxHeld, held);
        expect(s.cache.livePages(q.seqId)).toBe(Math.ceil(s.cache.seqLen(q.seqId) / PAGE));
      }
    });
    expect(maxHeld).toBe(HELD);
    expect(s.cache.seqLen(b.seqId)).toBe(13 + 80); // run() feeds the last sample too
    // 2 sequences x 4 pages + the pinned one: the rest of the local pool is free.
    expect(s.localCache!.stats().usedPages).toBeLessThanOrEqual(2 * HELD + 1);
    s.release(a);
    s.release(b);
    expect(s.cache.stats().usedPages).toBe(0);
    expect(s.localCache!.stats().usedPages).toBe(1); // the pinned page
    s.localCache!.validate();
  });

  it("a prefill chunk's first query still reads the window before it (chunks of 6, window 10)", () => {
    const s = new Scheduler({ ...base, tokenBudget: 6 });
    const a = seq(ids(40));
    s.enqueue(a);
    run(s, [a], 3, () =>
      expect(s.localCache!.livePages(a.seqId)).toBeLessThanOrEqual(Math.ceil((WINDOW - 1 + 6) / PAGE) + 1),
    );
  });

  it('freed local pages are reused: a local pool far smaller than the generations runs without preemption', () => {
    const s = new Scheduler({ ...base, local: { numPages: 1 + 3 * (HELD + 1), window: WINDOW } });
    const seqs = [seq(ids(5)), seq(ids(9, 20)), seq(ids(3, 40))];
    for (const q of seqs) s.enqueue(q);
    const used = new Set<number>();
    let allocations = 0;
    const last = new Map<number, readonly number[]>();
    run(s, seqs, 60, () => {
      for (const q of seqs) {
        const table = s.localCache!.blockTable(q.seqId);
        const before: readonly number[] = last.get(q.seqId) ?? [];
        for (let i = 0; i < table.length; i++)
          if (table[i] !== before[i] && table[i] !== s.localCache!.pinnedPage) allocations++;
        for (const p of table) used.add(p);
        last.set(q.seqId, table);
      }
    });
    expect(used.size).toBeLessThanOrEqual(s.localCache!.numPages);
    expect(allocations).toBeGreaterThan(2 * s.localCache!.numPages); // each page served many tokens' windows
    for (const q of seqs) expect(s.cache.seqLen(q.seqId)).toBe(q.tokens.length);
  });

  it('forks share local pages, copy-on-write the partial one; dead shared pages free when all forks leave', () => {
    const s = new Scheduler(base);
    const parent = seq(ids(10), 1, 0);
    s.enqueue(parent);
    let st = s.schedule();
    checkLocal(s, st.batch!, [parent.seqId]);
    s.stepSucceeded(st);
    parent.tokens.push(500);
    const child = seq(parent.tokens, 1, 1);
    s.fork(parent, child);
    const local = s.localCache!;
    for (const p of local.blockTable(child.seqId)) if (p !== local.pinnedPage) expect(local.pageRefCount(p)).toBe(2);
    child.tokens[child.tokens.length - 1] = 600; // the child samples another token
    st = s.schedule();
    checkLocal(
      s,
      st.batch!,
      st.items.map((it) => it.seq.seqId),
    );
    // 10 tokens: page 2 holds 2 of them, shared: both write there, one copies it (in each group).
    expect(st.batch!.copies.length).toBe(2);
    expect(st.batch!.local!.copies.length).toBe(2);
    s.stepSucceeded(st);
    parent.tokens.push(501);
    child.tokens.push(601);
    run(s, [parent, child], 40, () => {
      for (const q of [parent, child]) expect(local.livePages(q.seqId)).toBeLessThanOrEqual(HELD);
    });
    // Pages written before the fork and now outside both windows went back to the pool.
    expect(local.stats().usedPages).toBeLessThanOrEqual(2 * HELD + 1);
    s.release(parent);
    s.release(child);
    expect(local.stats().usedPages).toBe(1);
    local.validate();
  });

  it('short of local pages, the newest sequence is preempted; its recompute refills both groups', () => {
    // Room for two sequences' windows and a little, not three.
    const s = new Scheduler({ ...base, maxTokens: 8, local: { numPages: 2 + 2 * HELD, window: WINDOW } });
    const seqs = [seq(ids(8)), seq(ids(8, 30)), seq(ids(8, 60))];
    for (const q of seqs) s.enqueue(q);
    let preempted = 0;
    for (let step = 0; step < 400 && !seqs.every((q) => q.state === 'done'); step++) {
      const st = s.schedule();
      if (!st.batch) throw new Error('stuck');
      preempted += st.preempted;
      checkLocal(
        s,
        st.batch,
        st.items.map((it) => it.seq.seqId),
      );
      s.stepSucceeded(st);
      for (const { seq: q } of st.items) {
        if (!s.fedAll(q)) continue;
        if (q.tokens.length < 40) q.tokens.push(7);
        else s.release(q); // finished, as the engine does
      }
      for (const q of s.waiting) expect(s.localCache!.has(q.seqId) || s.cache.has(q.seqId)).toBe(false);
    }
    expect(preempted).toBeGreaterThan(0);
    expect(seqs.every((q) => q.state === 'done')).toBe(true);
    expect(s.localCache!.stats().usedPages).toBe(1);
    expect(s.cache.stats().usedPages).toBe(0);
  });

  it('explicit batches: a sequence forked in one group only is refused; the prefix cache is off', () => {
    const s = new Scheduler(base);
    s.batch([{ seqId: 1, tokenIds: ids(9) }]);
    s.cache.fork(1, 2); // not through forkSequence
    expect(() => s.batch([{ seqId: 2, tokenIds: [3] }])).toThrow(/one page group only/);
    s.cache.free(2);
    s.forkSequence(1, 3);
    checkLocal(s, s.batch([{ seqId: 3, tokenIds: [4] }]), [3]);
    expect(s.cache.addSequence(9, ids(9)).cachedTokens).toBe(0);
  });

  it('keeps both groups consistent over a random workload (fork, release, preempt)', () => {
    const r = rng(18);
    const s = new Scheduler({ ...base, numPages: 48, local: { numPages: 24, window: WINDOW }, tokenBudget: 12 });
    const live: ScheduledSequence[] = [];
    for (let step = 0; step < 300; step++) {
      const u = r();
      if (u < 0.15 && live.length < 6) {
        const q = seq(ids(1 + Math.floor(r() * 20), Math.floor(r() * 100)));
        live.push(q);
        s.enqueue(q);
      } else if (u < 0.22 && live.length > 0) {
        const q = live.splice(Math.floor(r() * live.length), 1)[0];
        s.release(q);
      } else if (u < 0.28) {
        const parent = live.find((q) => q.state === 'running' && s.fedAll(q));
        if (parent && live.length < 6) {
          const child = seq(parent.tokens, parent.request, 100 + step);
          s.fork(parent, child);
          live.push(child);
        }
      }
      const st = s.schedule();
      if (st.batch)
        checkLocal(
          s,
          st.batch,
          st.items.map((it) => it.seq.seqId),
        );
      s.stepSucceeded(st);
      for (const { seq: q } of st.items) if (s.fedAll(q) && q.tokens.length < 100) q.tokens.push(Math.floor(r() * 50));
      for (const q of live)
        if (s.localCache!.has(q.seqId)) expect(s.localCache!.livePages(q.seqId)).toBeLessThanOrEqual(HELD + 2);
    }
    for (const q of live) s.release(q);
    expect(s.localCache!.stats().usedPages).toBe(1);
    s.cache.validate();
    s.localCache!.validate();
  });

  it("the manager's rule: the doc example, and gemma-3-1b's bill at 32768 tokens (32 pages per sliding layer)", () => {
    const m = new KvCacheManager({ numPages: 16, pageSize: 16, window: 32 });
    m.addSequence(1);
    m.appendSlots(1, 80);
    expect(m.releaseOutsideWindow(1, 80)).toBe(3); // keys from 49 on: pages 0..2 die, page 3 (48..63) stays
    expect(m.livePages(1)).toBe(2);
    expect(m.blockTable(1).slice(0, 3)).toEqual([m.pinnedPage, m.pinnedPage, m.pinnedPage]);
    m.validate();
    m.free(1);
    expect(m.stats().usedPages).toBe(1);
    m.validate();
    expect(slidingPagesHeld(32768, 512, 16)).toBe(32);
    expect(slidingPagesHeld(32768 + 5, 512, 16)).toBe(33);
    expect(slidingPagesHeld(300, 512, 16)).toBe(19);
    const gemma = parseConfig(JSON.parse(readFileSync('../shared/realworld/gemma-3-1b-it/config.json', 'utf8')));
    const bill = kvBill(gemma, 32768, 16, 'f16');
    expect(bill.scheduled).toBe((4 * 2048 + 22 * 32) * 16 * 1024); // 139.0 MiB of 832 MiB
    expect(bill.scheduled).toBeLessThanOrEqual(bill.windowed);
  });

  it('the engine: generations with forks hold their window in the local pool; outputs as with one pool', async () => {
    const tokenizer = loadTokenizer(tokenizerJson, tokenizerConfig);
    const fo: FakeOptions = {
      vocabSize: tokenizer.vocabSize,
      pageSize: PAGE,
      numPages: 256,
      maxTokens: 16,
      maxSeqs: 8,
      maxContext: 128,
    };
    const outputs: number[][][] = [];
    for (const withLocal of [false, true]) {
      const local = withLocal ? { numPages: 1 + 8 * (HELD + 2), window: WINDOW, bytesPerPage: 512 } : undefined;
      const engine = new Engine(new FakeModel(fo), tokenizer, { numPages: 256, bytesPerPage: 1024, local });
      const snaps: KvSnapshot[] = [];
      engine.onStep = () => snaps.push(engine.kvSnapshot());
      const run = async (prompt: number[], n: number) => {
        const out: number[][] = [];
        for await (const c of engine.generate(prompt, { maxTokens: 50, n, ignoreEos: true, temperature: 0 }))
          if (c.tokenId >= 0) (out[c.index] ??= []).push(c.tokenId);
        return out;
      };
      outputs.push((await Promise.all([run(ids(7, 3), 1), run(ids(20, 5), 2), run(ids(3, 9), 3)])).flat());
      if (withLocal) {
        const maxChunk = Math.ceil((WINDOW - 1 + fo.maxTokens) / PAGE) + 1;
        let decodeMax = 0;
        for (const snap of snaps) {
          expect(snap.local!.window).toBe(WINDOW);
          for (const r of snap.local!.requests) {
            expect(r.pages).toBeLessThanOrEqual(maxChunk);
            if (r.tokens > 30) decodeMax = Math.max(decodeMax, r.pages); // past every prompt: decoding
            if (r.tokens > 30) expect(r.pages).toBeLessThanOrEqual(HELD);
          }
        }
        expect(decodeMax).toBe(HELD);
        expect(engine.scheduler.localCache!.stats().usedPages).toBe(1);
        engine.scheduler.localCache!.validate();
      } else expect(snaps[0].local).toBeUndefined();
      expect(engine.scheduler.cache.stats().usedPages).toBe(0);
      engine.scheduler.cache.validate();
      await engine.dispose?.();
    }
    expect(outputs[1]).toEqual(outputs[0]);
  });
});
