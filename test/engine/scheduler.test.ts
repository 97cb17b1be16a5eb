/**
 * The scheduler in plain Node (no model): admission under the token budget and the free pages,
 * chunked prefill, preemption (pages freed, the recompute feeds the same tokens at the same
 * positions), prefix reuse, forks with their copy-on-write pairs in the batch, release of
 * everything, a failed step discarding its cached pages and running its sequences alone, explicit
 * batches refused without a change, and the pool's invariants (validate) over a random workload.
 */
import { describe, expect, it } from 'vitest';
import type { StepBatch } from '../../src/kernels/stepBatch';
import { Scheduler, type ScheduledSequence, type SchedulerOptions } from '../../src/engine/scheduler';
import { rng } from '../../src/reference/random';

const base: SchedulerOptions = {
  numPages: 64,
  pageSize: 4,
  maxTokens: 32,
  maxSeqs: 8,
  maxLogitRows: 8,
  maxContext: 64,
};

let nextId = 1;
/** A new sequence; each is a request of its own unless `request` is given (then index too). */
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

/** The batch's rows as (sequence, position, token, slot), and a check that it is self-consistent. */
function rows(s: Scheduler, batch: StepBatch, seqIds: number[]) {
  const pt = batch.pageTable;
  const { pageSize } = s.opts;
  const out: { seqId: number; pos: number; token: number; slot: number }[] = [];
  seqIds.forEach((seqId, i) => {
    const table = s.cache.blockTable(seqId);
    expect(pt.kvLens[i]).toBe(s.cache.seqLen(seqId));
    expect(Array.from(pt.kvPageIndices.subarray(pt.kvIndptr[i], pt.kvIndptr[i + 1]))).toEqual(table);
    for (let t = pt.qoIndptr[i]; t < pt.qoIndptr[i + 1]; t++) {
      const pos = batch.positions[t];
      // slot = page * pageSize + offset: the token's page is its sequence's logical page pos / pageSize
      expect(batch.slots[t]).toBe(table[Math.floor(pos / pageSize)] * pageSize + (pos % pageSize));
      out.push({ seqId, pos, token: batch.tokenIds[t], slot: batch.slots[t] });
    }
  });
  expect(new Set(out.map((r) => r.slot)).size).toBe(out.length); // no two tokens write one slot
  return out;
}

describe('scheduler', () => {
  it('admits under the token budget and the free pages; the batch has ids, positions, slots, pages, last rows', () => {
    const s = new Scheduler({ ...base, tokenBudget: 10 });
    const [a, b, c] = [seq(ids(6, 10)), seq(ids(3, 20)), seq(ids(5, 30))];
    for (const q of [a, b, c]) s.enqueue(q);
    const step = s.schedule();
    expect(step.items.map((i) => [i.seq, i.start, i.take])).toEqual([
      [a, 0, 6],
      [b, 0, 3],
      [c, 0, 1],
    ]); // c gets the last token of budget
    const batch = step.batch!;
    expect(Array.from(batch.tokenIds)).toEqual([...ids(6, 10), ...ids(3, 20), 30]);
    expect(Array.from(batch.positions)).toEqual([0, 1, 2, 3, 4, 5, 0, 1, 2, 0]);
    expect(Array.from(batch.pageTable.qoIndptr)).toEqual([0, 6, 9, 10]);
    expect(Array.from(batch.logitRows)).toEqual([5, 8, 9]);
    expect(batch.copies.length).toBe(0);
    expect(step.prefillTokens).toBe(10);
    rows(s, batch, [a.seqId, b.seqId, c.seqId]);
    expect([a, b, c].map((q) => s.fedAll(q))).toEqual([true, true, false]);

    // Pages: a pool of 3 pages admits one 8-token prompt (2 pages), the second waits holding nothing.
    const small = new Scheduler({ ...base, numPages: 3 });
    const [x, y] = [seq(ids(8)), seq(ids(8, 50))];
    small.enqueue(x);
    small.enqueue(y);
    const st = small.schedule();
    expect(st.items.map((i) => i.seq)).toEqual([x]);
    expect(y.state).toBe('waiting');
    expect(small.cache.has(y.seqId)).toBe(false);
    small.cache.validate();
  });

  it('chunked prefill feeds budget tokens per step, positions continuing; then one decode token', () => {
    const s = new Scheduler({ ...base, tokenBudget: 4 });
    const a = seq(ids(10, 100));
    s.enqueue(a);
    const fed: number[][] = [];
    for (const want of [4, 4, 2]) {
      const step = s.schedule();
      expect(step.items.map((i) => i.take)).toEqual([want]);
      expect(step.prefillTokens).toBe(want);
      fed.push(Array.from(step.batch!.positions));
      rows(s, step.batch!, [a.seqId]);
      expect(s.fedAll(a)).toBe(want === 2);
      s.stepSucceeded(step);
    }
    expect(fed).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
    a.tokens.push(7);
    const decode = s.schedule();
    expect(decode.decodeTokens).toBe(1);
    expect(decode.prefillTokens).toBe(0);
    expect(Array.from(decode.batch!.positions)).toEqual([10]);
    expect(Array.from(decode.batch!.tokenIds)).toEqual([7]);
  });

  it("preemption frees the newest sequence's pages; its recompute feeds the same tokens at the same positions", () => {
    const run = () => {
      const s = new Scheduler({ ...base, numPages: 4, enablePrefixCache: false });
      const [a, b] = [seq(ids(7, 1)), seq(ids(7, 40))];
      s.enqueue(a);
      s.enqueue(b);
      const batches: StepBatch[] = [];
      const fedB: { pos: number; token: number }[] = [];
      let preemptedAt = -1;
      for (let k = 0; k < 60 && (a.state !== 'done' || b.state !== 'done'); k++) {
        const step = s.schedule();
        if (step.preempted > 0) {
          preemptedAt = k;
          expect(b.state).toBe('waiting'); // the newest goes
          expect(s.cache.has(b.seqId)).toBe(false);
          expect(s.cache.stats().usedPages).toBe(s.cache.blockTable(a.seqId).length);
        }
        batches.push(step.batch!);
        const r = rows(
          s,
          step.batch!,
          step.items.map((i) => i.seq.seqId),
        );
        for (const row of r) if (row.seqId === b.seqId) fedB.push({ pos: row.pos, token: row.token });
        s.stepSucceeded(step);
        for (const { seq: q } of step.items) {
          if (!s.fedAll(q)) continue;
          if (q.tokens.length >= 14) s.release(q);
          else q.tokens.push(200 + q.tokens.length);
        }
        s.cache.validate();
      }
      return { batches, fedB, preemptedAt, a, b, s };
    };
    const first = run();
    expect(first.preemptedAt).toBeGreaterThan(0);
    // Every row fed for b, before and after its preemption, is b's token at that position.
    for (const { pos, token } of first.fedB) expect(token).toBe(first.b.tokens[pos]);
    expect(first.fedB.filter((r) => r.pos === 0).length).toBe(2); // fed once, recomputed once
    expect(first.b.tokens.length).toBe(14);
    expect(first.s.cache.stats().usedPages).toBe(0);
    // The same work again gives the same batches.
    const second = run();
    expect(second.batches.length).toBe(first.batches.length);
    second.batches.forEach((batch, k) => {
      expect(Array.from(batch.tokenIds)).toEqual(Array.from(first.batches[k].tokenIds));
      expect(Array.from(batch.positions)).toEqual(Array.from(first.batches[k].positions));
    });
  });

  it('prefix reuse: a sequence sharing full pages starts after them and reads the same physical pages', () => {
    const s = new Scheduler(base);
    const prompt = ids(10, 60);
    const a = seq(prompt);
    s.enqueue(a);
    s.stepSucceeded(s.schedule());
    const aPages = s.cache.blockTable(a.seqId);
    // A live sharer: 2 full pages (8 tokens) are shared, the rest is computed.
    const b = seq([...prompt, 1, 2, 3]);
    s.enqueue(b);
    const step = s.schedule();
    expect(step.items.map((i) => [i.seq, i.start, i.take])).toEqual([[b, 8, 5]]);
    expect(Array.from(step.batch!.positions)).toEqual([8, 9, 10, 11, 12]);
    expect(Array.from(step.batch!.tokenIds)).toEqual([...prompt.slice(8), 1, 2, 3]);
    expect(s.cache.blockTable(b.seqId).slice(0, 2)).toEqual(aPages.slice(0, 2));
    expect(s.cache.pageRefCount(aPages[0])).toBe(2);
    // After both leave, the pages wait in the prefix cache for the next one.
    s.release(a);
    s.release(b);
    expect(s.cache.stats().usedPages).toBe(0);
    const c = seq([...prompt.slice(0, 9), 99]);
    s.enqueue(c);
    expect(s.schedule().items[0].start).toBe(8);
    s.cache.validate();
  });

  const forkTitle =
    "fork: children share the parent's pages; writing into the shared partial page puts copy pairs in the batch";
  it(forkTitle, () => {
    const s = new Scheduler(base);
    const parent = seq(ids(6, 70), 5, 0); // pageSize 4: the second page holds 2 tokens
    s.enqueue(parent);
    s.stepSucceeded(s.schedule());
    const shared = s.cache.blockTable(parent.seqId)[1];
    const children = [1, 2].map((i) => seq(ids(6, 70), 5, i));
    for (const c of children) s.fork(parent, c);
    expect(children.map((c) => c.state)).toEqual(['running', 'running']);
    expect(s.cache.pageRefCount(shared)).toBe(3);
    [parent, ...children].forEach((q, i) => q.tokens.push(300 + i));
    const step = s.schedule();
    expect(step.items.map((i) => i.seq)).toEqual([parent, ...children]);
    expect(step.decodeTokens).toBe(3);
    const pairs = Array.from(step.batch!.copies);
    // The first two writers copy the shared page (refCount 3, then 2); the last keeps it.
    expect(pairs.length).toBe(4);
    expect([pairs[0], pairs[2]]).toEqual([shared, shared]);
    expect(new Set([pairs[1], pairs[3], shared]).size).toBe(3);
    expect(s.cache.blockTable(parent.seqId)[1]).toBe(pairs[1]);
    expect(s.cache.blockTable(children[0].seqId)[1]).toBe(pairs[3]);
    expect(s.cache.blockTable(children[1].seqId)[1]).toBe(shared);
    rows(
      s,
      step.batch!,
      step.items.map((i) => i.seq.seqId),
    );
    // The full page stays shared.
    expect(s.cache.blockTable(children[0].seqId)[0]).toBe(s.cache.blockTable(parent.seqId)[0]);
    s.cache.validate();
  });

  it('release frees everything, running, waiting or forked, and twice is harmless', () => {
    const s = new Scheduler({ ...base, numPages: 6, tokenBudget: 8 });
    const qs = [seq(ids(9)), seq(ids(5, 30)), seq(ids(12, 50))];
    for (const q of qs) s.enqueue(q);
    s.schedule();
    const child = seq(ids(9), qs[0].request, 1);
    s.fork(qs[0], child);
    expect(s.cache.stats().usedPages).toBeGreaterThan(0);
    expect(s.waiting.length).toBeGreaterThan(0);
    for (const q of [...qs, child, ...qs]) s.release(q);
    expect(s.running.length + s.waiting.length).toBe(0);
    expect(s.cache.stats().usedPages).toBe(0);
    expect([...qs, child].every((q) => q.state === 'done')).toBe(true);
    s.cache.validate();
  });

  it('a failed step discards its cached pages; together, its sequences rerun one at a time alone', () => {
    const s = new Scheduler(base);
    const prompt = ids(9, 80);
    const a = seq(prompt);
    s.enqueue(a);
    const failed = s.schedule();
    expect(s.stepFailed(failed)).toBe(a); // alone: the culprit
    expect(s.cache.has(a.seqId)).toBe(false);
    s.release(a);
    // Its two full pages were registered when their slots were reserved; they must not be matched.
    const again = seq(prompt);
    s.enqueue(again);
    const ok = s.schedule();
    expect(ok.items[0].start).toBe(0);
    s.stepSucceeded(ok);
    s.release(again);
    const third = seq(prompt);
    s.enqueue(third);
    expect(s.schedule().items[0].start).toBe(8); // a step that ran leaves its pages to reuse
    s.release(third);

    const [x, y] = [seq(ids(5, 1)), seq(ids(6, 20))];
    s.enqueue(x);
    s.enqueue(y);
    const both = s.schedule();
    expect(both.items.length).toBe(2);
    expect(s.stepFailed(both)).toBeNull();
    expect([x.state, y.state, x.suspect, y.suspect]).toEqual(['waiting', 'waiting', true, true]);
    const alone1 = s.schedule();
    expect(alone1.items.map((i) => [i.seq, i.start])).toEqual([[x, 0]]);
    s.stepSucceeded(alone1);
    expect(x.suspect).toBe(false);
    const alone2 = s.schedule(); // y alone: x steps aside
    expect(alone2.items.map((i) => i.seq)).toEqual([y]);
    expect(alone2.preempted).toBe(1);
    s.stepSucceeded(alone2);
    x.tokens.push(1);
    y.tokens.push(2);
    const together = s.schedule();
    expect(together.items.map((i) => i.seq).sort((p, q) => p.seqId - q.seqId)).toEqual([x, y]);
    s.cache.validate();
  });

  it('an explicit batch that does not fit is refused before anything changes', () => {
    const s = new Scheduler({ ...base, maxTokens: 16, maxContext: 16, numPages: 6, vocabSize: 100 });
    s.batch([
      { seqId: 1, tokenIds: ids(6) },
      { seqId: 2, tokenIds: ids(3) },
    ]);
    const before = s.cache.stats();
    expect(() => s.batch([{ seqId: 3, tokenIds: ids(17) }])).toThrow(/17 tokens in one step/);
    expect(() => s.batch([{ seqId: 1, tokenIds: ids(11) }])).toThrow(/past the context of 16/);
    expect(() => s.batch([{ seqId: 3, tokenIds: ids(13) }])).toThrow(/needs 4 KV pages, 3 are free/);
    expect(() => s.batch([{ seqId: 3, tokenIds: [100] }])).toThrow(/outside the vocabulary/);
    expect(() =>
      s.batch([
        { seqId: 4, tokenIds: [1] },
        { seqId: 4, tokenIds: [2] },
      ]),
    ).toThrow(/appears twice/);
    expect(() => s.batch([{ seqId: 5, tokenIds: ids(9) }], { allRows: true })).toThrow(/9 logit rows/);
    expect(s.cache.stats()).toEqual(before);
    expect(s.cache.has(3) || s.cache.has(4) || s.cache.has(5)).toBe(false);
    const all = s.batch([{ seqId: 1, tokenIds: [5, 6] }], { allRows: true });
    expect(Array.from(all.logitRows)).toEqual([0, 1]);
    expect(Array.from(all.positions)).toEqual([6, 7]);
  });

  it('keeps the pool consistent over a random workload (validate after every step)', () => {
    const r = rng(7);
    const s = new Scheduler({ ...base, numPages: 20, tokenBudget: 12, maxSeqs: 4, maxLogitRows: 4 });
    const live: ScheduledSequence[] = [];
    let preempted = 0;
    for (let k = 0; k < 600; k++) {
      if (r() < 0.3) {
        const q = seq(Array.from({ length: 1 + Math.floor(r() * 20) }, () => Math.floor(r() * 8)));
        s.enqueue(q);
        live.push(q);
      }
      const step = s.schedule();
      preempted += step.preempted;
      if (step.batch) {
        const T = step.batch.tokenIds.length;
        expect(T).toBeLessThanOrEqual(12);
        expect(step.items.length).toBeLessThanOrEqual(4);
        const got = rows(
          s,
          step.batch,
          step.items.map((i) => i.seq.seqId),
        );
        for (const row of got) expect(row.token).toBe(live.find((q) => q.seqId === row.seqId)!.tokens[row.pos]);
        if (r() < 0.05) {
          const culprit = s.stepFailed(step);
          if (culprit) s.release(culprit); // the owner fails it
        } else {
          s.stepSucceeded(step);
          for (const { seq: q } of step.items) {
            if (q.state !== 'running' || !s.fedAll(q)) continue;
            const roll = r();
            if (q.tokens.length >= 40 || roll < 0.1) s.release(q);
            else if (roll < 0.2 && q.index === 0) {
              const child = seq(q.tokens, q.request, 1 + Math.floor(r() * 1000));
              s.fork(q, child);
              live.push(child);
              child.tokens.push(Math.floor(r() * 8));
              q.tokens.push(Math.floor(r() * 8));
            } else q.tokens.push(Math.floor(r() * 8));
          }
        }
      }
      for (const q of s.running) expect(s.cache.has(q.seqId)).toBe(true);
      for (const q of s.waiting) expect(s.cache.has(q.seqId)).toBe(false);
      s.cache.validate();
    }
    expect(preempted).toBeGreaterThan(0);
    for (const q of live) s.release(q);
    expect(s.cache.stats().usedPages).toBe(0);
    s.cache.validate();
  });
});
