import { describe, expect, it } from 'vitest';
import { KvCacheManager, type AppendResult, type NoRoom } from '../../src/kv/kvCacheManager';

function expectOk(result: AppendResult | NoRoom): AppendResult {
  if (!result.ok) throw new Error(`expected ok, got NoRoom: ${result.reason}`);
  return result;
}

function expectNoRoom(result: AppendResult | NoRoom): NoRoom {
  if (result.ok) throw new Error('expected NoRoom, got ok');
  return result;
}

const range = (start: number, end: number): number[] => Array.from({ length: end - start }, (_, i) => start + i);

describe('KvCacheManager basics', () => {
  it('validates options and sequence ids', () => {
    expect(() => new KvCacheManager({ numPages: 0, pageSize: 4 })).toThrow(/numPages/);
    expect(() => new KvCacheManager({ numPages: 4, pageSize: 0 })).toThrow(/pageSize/);
    const kv = new KvCacheManager({ numPages: 4, pageSize: 4 });
    kv.addSequence(1);
    expect(() => kv.addSequence(1)).toThrow(/sequence 1 already exists/);
    expect(() => kv.appendSlots(2, 1)).toThrow(/unknown sequence 2/);
    expect(() => kv.free(2)).toThrow(/unknown sequence 2/);
    expect(() => kv.blockTable(2)).toThrow(/unknown sequence 2/);
    expect(() => kv.fork(2, 3)).toThrow(/unknown sequence 2/);
    expect(() => kv.fork(1, 1)).toThrow(/already exists/);
    expect(() => kv.appendSlots(1, 2, [5])).toThrow(/1 token ids for 2 tokens/);
    expect(() => kv.appendSlots(1, -1)).toThrow(/non-negative integer/);
    expect(kv.has(1)).toBe(true);
    expect(kv.has(2)).toBe(false);
    expect(kv.sequences()).toEqual([1]);
  });

  it('maps token positions to slots page*pageSize+offset', () => {
    const kv = new KvCacheManager({ numPages: 8, pageSize: 4 });
    kv.addSequence(7);
    kv.addSequence(8);
    expect(Array.from(expectOk(kv.appendSlots(8, 1)).slots)).toEqual([0]); // seq 8 takes page 0
    const first = expectOk(kv.appendSlots(7, 6)); // pages 1, 2
    expect(kv.blockTable(7)).toEqual([1, 2]);
    // pos 5: logical page 1 -> physical 2, offset 1 -> slot 2*4 + 1 = 9
    expect(Array.from(first.slots)).toEqual([4, 5, 6, 7, 8, 9]);
    expect(first.copies).toEqual([]);
    expect(kv.seqLen(7)).toBe(6);
    expect(kv.lastPageLen(7)).toBe(2);
    const second = expectOk(kv.appendSlots(7, 3)); // fills page 2, opens page 3
    expect(Array.from(second.slots)).toEqual([10, 11, 12]);
    expect(kv.blockTable(7)).toEqual([1, 2, 3]);
    expect(kv.lastPageLen(7)).toBe(1);
    expect(expectOk(kv.appendSlots(7, 0)).slots.length).toBe(0);
    expect(kv.stats()).toEqual({ totalPages: 8, usedPages: 4, freePages: 4, cachedPages: 0 });
    kv.validate();
  });

  it('returns NoRoom without changing anything when pages run out', () => {
    const kv = new KvCacheManager({ numPages: 2, pageSize: 4 });
    kv.addSequence(1);
    expectOk(kv.appendSlots(1, 3));
    const before = { table: kv.blockTable(1), len: kv.seqLen(1), stats: kv.stats() };
    expect(kv.canAppend(1, 5)).toBe(true);
    expect(kv.canAppend(1, 6)).toBe(false);
    expect(kv.pagesNeeded(1, 6)).toBe(2);
    const noRoom = expectNoRoom(kv.appendSlots(1, 6)); // 3 + 6 = 9 tokens -> 3 pages, has 1
    expect(noRoom.pagesNeeded).toBe(2);
    expect(noRoom.pagesAvailable).toBe(1);
    expect(noRoom.reason).toMatch(/needs 2 free page/);
    expect({ table: kv.blockTable(1), len: kv.seqLen(1), stats: kv.stats() }).toEqual(before);
    expectOk(kv.appendSlots(1, 5));
    expect(kv.stats().freePages).toBe(0);
    kv.validate();
  });

  it('free returns every page to the pool', () => {
    const kv = new KvCacheManager({ numPages: 4, pageSize: 2, enablePrefixCache: false });
    kv.addSequence(1, [1, 2, 3]);
    expectOk(kv.appendSlots(1, 7));
    kv.free(1);
    expect(kv.has(1)).toBe(false);
    expect(kv.stats()).toEqual({ totalPages: 4, usedPages: 0, freePages: 4, cachedPages: 0 });
    kv.validate();
  });
});

describe('KvCacheManager prefix cache', () => {
  const prompt = range(100, 110); // 10 tokens, pageSize 4: pages [100..103] [104..107] + partial

  it('reuses the longest chain of cached full pages', () => {
    const kv = new KvCacheManager({ numPages: 16, pageSize: 4 });
    expect(kv.addSequence(1, prompt)).toEqual({ cachedTokens: 0 });
    expectOk(kv.appendSlots(1, prompt.length)); // ids remembered from addSequence
    const [p0, p1] = kv.blockTable(1);
    expect(kv.isPageCached(p0) && kv.isPageCached(p1)).toBe(true);
    expect(kv.isPageCached(kv.blockTable(1)[2])).toBe(false); // partial page never cached

    expect(kv.addSequence(2, [...prompt, 1, 2, 3])).toEqual({ cachedTokens: 8 });
    expect(kv.blockTable(2)).toEqual([p0, p1]);
    expect(kv.seqLen(2)).toBe(8);
    expect(kv.pageRefCount(p0)).toBe(2);

    // Second page differs: only the first page is reused.
    const divergent = [...prompt.slice(0, 4), 0, 0, 0, 0, 9];
    expect(kv.addSequence(3, divergent)).toEqual({ cachedTokens: 4 });
    expect(kv.blockTable(3)).toEqual([p0]);
    // First token differs: nothing is reused.
    expect(kv.addSequence(4, [0, ...prompt.slice(1)])).toEqual({ cachedTokens: 0 });
    kv.validate();
  });

  it('never reuses the whole prompt: at least one token is left to compute', () => {
    const kv = new KvCacheManager({ numPages: 16, pageSize: 4 });
    kv.addSequence(1, prompt);
    expectOk(kv.appendSlots(1, 10));
    expect(kv.addSequence(2, prompt.slice(0, 8))).toEqual({ cachedTokens: 4 }); // 8 cached -> drop one page
    expect(kv.addSequence(3, prompt.slice(0, 9))).toEqual({ cachedTokens: 8 });
    expect(kv.addSequence(4, prompt.slice(0, 4))).toEqual({ cachedTokens: 0 });
    expect(kv.addSequence(5, [])).toEqual({ cachedTokens: 0 });
    // Seq 2 recomputes page 1 into a fresh page; the original stays the cached one.
    const original = kv.blockTable(1)[1];
    expectOk(kv.appendSlots(2, 4));
    expect(kv.blockTable(2)[1]).not.toBe(original);
    expect(kv.isPageCached(kv.blockTable(2)[1])).toBe(false);
    kv.validate();
  });

  it('registers pages from ids given to appendSlots, not from appends without ids', () => {
    const kv = new KvCacheManager({ numPages: 16, pageSize: 4 });
    kv.addSequence(1);
    expectOk(kv.appendSlots(1, 4)); // no ids: page 0 unknown, and the chain ends here
    expectOk(kv.appendSlots(1, 4, [1, 2, 3, 4]));
    expect(kv.blockTable(1).some((page) => kv.isPageCached(page))).toBe(false);

    kv.addSequence(2);
    expectOk(kv.appendSlots(2, 3, [1, 2, 3]));
    expect(kv.isPageCached(kv.blockTable(2)[0])).toBe(false);
    expectOk(kv.appendSlots(2, 1, [4])); // decode-style: one token at a time fills page 0
    expect(kv.isPageCached(kv.blockTable(2)[0])).toBe(true);
    expectOk(kv.appendSlots(2, 5, [5, 6, 7, 8, 9]));
    expect(kv.addSequence(3, range(1, 11))).toEqual({ cachedTokens: 8 });
    kv.validate();
  });

  it('ids given to appendSlots win over the remembered prompt', () => {
    const kv = new KvCacheManager({ numPages: 16, pageSize: 2 });
    kv.addSequence(1, [1, 2, 3, 4, 5]);
    expectOk(kv.appendSlots(1, 4, [1, 2, 9, 9]));
    expect(kv.addSequence(2, [1, 2, 3, 4, 5])).toEqual({ cachedTokens: 2 });
    expect(kv.addSequence(3, [1, 2, 9, 9, 5])).toEqual({ cachedTokens: 4 });
  });

  it('keeps the remembered prompt across chunks whose ids match it, drops it after ids that differ', () => {
    const kv = new KvCacheManager({ numPages: 16, pageSize: 2 });
    kv.addSequence(1, [1, 2, 3, 4, 5, 6]);
    expectOk(kv.appendSlots(1, 2, [1, 2])); // chunked prefill: first chunk with ids
    expectOk(kv.appendSlots(1, 4)); // rest without ids: still known from the prompt
    expect(kv.addSequence(2, [1, 2, 3, 4, 5, 6, 7])).toEqual({ cachedTokens: 6 });

    kv.addSequence(3, [7, 7, 7, 7]);
    expectOk(kv.appendSlots(3, 1, [8])); // differs: the remembered 7, 7, 7 no longer follow
    expectOk(kv.appendSlots(3, 3));
    expect(kv.blockTable(3).some((page) => kv.isPageCached(page))).toBe(false);
    kv.validate();
  });

  it('keeps freed cached pages on an LRU, reuses them, and evicts only when the pool runs dry', () => {
    const kv = new KvCacheManager({ numPages: 4, pageSize: 4 });
    kv.addSequence(1, prompt);
    expectOk(kv.appendSlots(1, 10));
    const [p0, p1] = kv.blockTable(1);
    kv.free(1);
    expect(kv.stats()).toEqual({ totalPages: 4, usedPages: 0, freePages: 4, cachedPages: 2 });

    // A cache hit revives both pages.
    expect(kv.addSequence(2, prompt)).toEqual({ cachedTokens: 8 });
    expect(kv.blockTable(2)).toEqual([p0, p1]);
    expect(kv.stats()).toEqual({ totalPages: 4, usedPages: 2, freePages: 2, cachedPages: 0 });
    kv.free(2);

    // Two uncached pages are taken before any cached one.
    kv.addSequence(3);
    expectOk(kv.appendSlots(3, 8));
    expect(kv.blockTable(3)).not.toContain(p0);
    expect(kv.blockTable(3)).not.toContain(p1);
    expect(kv.stats().cachedPages).toBe(2);
    // Pool dry of uncached pages: the tail page of the freed prompt (p1) is evicted first.
    expectOk(kv.appendSlots(3, 1));
    expect(kv.blockTable(3)[2]).toBe(p1);
    expect(kv.isPageCached(p1)).toBe(false);
    expect(kv.stats()).toEqual({ totalPages: 4, usedPages: 3, freePages: 1, cachedPages: 1 });
    expect(kv.addSequence(4, prompt)).toEqual({ cachedTokens: 4 });
    expect(kv.blockTable(4)).toEqual([p0]);
    kv.validate();
  });

  it('free with discardCached drops the entries of pages no one else holds (a failed step)', () => {
    const kv = new KvCacheManager({ numPages: 16, pageSize: 4 });
    kv.addSequence(1, prompt);
    expectOk(kv.appendSlots(1, 5)); // page 0 full (written by a successful step)
    kv.fork(1, 2); // the child holds page 0 and the partial page 1
    expectOk(kv.appendSlots(1, 5)); // the failed step: page 1 copied, filled and registered
    const [p0, p1] = kv.blockTable(1);
    expect(kv.isPageCached(p0) && kv.isPageCached(p1)).toBe(true);
    kv.free(1, { discardCached: true });
    expect(kv.isPageCached(p0)).toBe(true); // still held by sequence 2: its K/V was written
    expect(kv.isPageCached(p1)).toBe(false); // only sequence 1 held it: its K/V may be missing
    kv.free(2);
    expect(kv.addSequence(3, prompt)).toEqual({ cachedTokens: 4 });
    kv.free(3);
    kv.validate();
    expect(kv.stats()).toMatchObject({ usedPages: 0, freePages: 16, cachedPages: 1 });
  });

  it('does nothing with token ids when prefix caching is off', () => {
    const kv = new KvCacheManager({ numPages: 8, pageSize: 4, enablePrefixCache: false });
    kv.addSequence(1, prompt);
    expectOk(kv.appendSlots(1, 10, prompt));
    expect(kv.blockTable(1).some((page) => kv.isPageCached(page))).toBe(false);
    expect(kv.addSequence(2, prompt)).toEqual({ cachedTokens: 0 });
    kv.free(1);
    expect(kv.stats().cachedPages).toBe(0);
  });
});

describe('KvCacheManager fork and copy-on-write', () => {
  it('shares pages and copies a shared partial last page for whichever sequence writes', () => {
    const kv = new KvCacheManager({ numPages: 8, pageSize: 4 });
    kv.addSequence(1);
    expectOk(kv.appendSlots(1, 6)); // pages [0, 1], page 1 holds 2 tokens
    kv.fork(1, 2);
    expect(kv.blockTable(2)).toEqual([0, 1]);
    expect(kv.seqLen(2)).toBe(6);
    expect(kv.pageRefCount(0)).toBe(2);
    expect(kv.pageRefCount(1)).toBe(2);
    expect(kv.pagesNeeded(2, 1)).toBe(1);

    const child = expectOk(kv.appendSlots(2, 1));
    expect(child.copies).toEqual([{ src: 1, dst: 2 }]);
    expect(kv.blockTable(2)).toEqual([0, 2]);
    expect(Array.from(child.slots)).toEqual([2 * 4 + 2]); // pos 6 -> page 2, offset 2 -> slot 10
    expect(kv.pageRefCount(1)).toBe(1);

    const parent = expectOk(kv.appendSlots(1, 1)); // page 1 is now its own: write in place
    expect(parent.copies).toEqual([]);
    expect(Array.from(parent.slots)).toEqual([1 * 4 + 2]);
    expect(kv.blockTable(1)).toEqual([0, 1]);
    kv.validate();

    kv.free(1);
    expect(kv.pageRefCount(0)).toBe(1);
    expect(kv.pageRefCount(1)).toBe(0);
    kv.free(2);
    expect(kv.stats().usedPages).toBe(0);
    kv.validate();
  });

  it('needs no copy when the shared last page is full', () => {
    const kv = new KvCacheManager({ numPages: 8, pageSize: 4 });
    kv.addSequence(1);
    expectOk(kv.appendSlots(1, 8));
    kv.fork(1, 2);
    const result = expectOk(kv.appendSlots(2, 1));
    expect(result.copies).toEqual([]);
    expect(kv.blockTable(2)).toEqual([0, 1, 2]);
    expect(Array.from(result.slots)).toEqual([8]);
  });

  it('counts the copy-on-write page in NoRoom and changes nothing', () => {
    const kv = new KvCacheManager({ numPages: 2, pageSize: 4 });
    kv.addSequence(1);
    expectOk(kv.appendSlots(1, 5));
    kv.fork(1, 2);
    const noRoom = expectNoRoom(kv.appendSlots(2, 4)); // 5 + 4 = 9 -> 3 pages: 1 new + 1 copy
    expect(noRoom).toMatchObject({ pagesNeeded: 2, pagesAvailable: 0 });
    expect(noRoom.reason).toMatch(/copy-on-write/);
    expect(kv.blockTable(2)).toEqual([0, 1]);
    expect(kv.pageRefCount(1)).toBe(2);
    kv.free(1);
    const ok = expectOk(kv.appendSlots(2, 3)); // now exclusive: no copy needed
    expect(ok.copies).toEqual([]);
    kv.validate();
  });

  it('lets a forked child keep sharing cached prompt pages', () => {
    const kv = new KvCacheManager({ numPages: 8, pageSize: 2 });
    kv.addSequence(1, [1, 2, 3, 4, 5]);
    expectOk(kv.appendSlots(1, 5));
    kv.fork(1, 2);
    expectOk(kv.appendSlots(1, 1, [6]));
    expectOk(kv.appendSlots(2, 1, [7]));
    expect(kv.addSequence(3, [1, 2, 3, 4, 5, 6, 0])).toEqual({ cachedTokens: 6 });
    expect(kv.addSequence(4, [1, 2, 3, 4, 5, 7, 0])).toEqual({ cachedTokens: 6 });
    expect(kv.blockTable(3)[2]).toBe(kv.blockTable(1)[2]);
    expect(kv.blockTable(4)[2]).toBe(kv.blockTable(2)[2]);
    kv.validate();
  });
});
