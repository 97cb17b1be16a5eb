/**
 * Random operation sequences against KvCacheManager, checked after every step against an
 * independent model: a simulated KV memory (one token id per physical slot) that the test
 * writes through the returned slots and copies, the expected token content of every live
 * sequence, and the full token prefix ("chain") each cached page stands for.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KvCacheManager, type AppendResult, type NoRoom } from '../../src/kv/kvCacheManager';

type Op =
  | { kind: 'add'; family: number; prefixLen: number; tail: number[] }
  | { kind: 'append'; pick: number; tokens: number[]; passIds: boolean; deviate: boolean }
  | { kind: 'prefill'; pick: number; passIds: boolean } // append the rest of the prompt in one go
  | { kind: 'fork'; pick: number }
  | { kind: 'free'; pick: number }
  | { kind: 'fill'; pick: number } // take exactly every allocatable page: runs the pool dry
  | { kind: 'overflow'; pick: number }; // ask for more than the pool has: must be NoRoom

interface Scenario {
  numPages: number;
  pageSize: number;
  prefixCache: boolean;
  families: number[][]; // shared prompt prefixes
  ops: Op[];
}

const token = fc.integer({ min: 0, max: 2 }); // tiny alphabet: prompts share prefixes often
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('add' as const),
      family: fc.nat(2),
      prefixLen: fc.nat(24),
      tail: fc.array(token, { maxLength: 6 }),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      pick: fc.nat(),
      tokens: fc.array(token, { maxLength: 10, size: 'max' }),
      passIds: fc.boolean(),
      deviate: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('prefill' as const), pick: fc.nat(), passIds: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('fork' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fill' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('overflow' as const), pick: fc.nat() }) },
);
const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  numPages: fc.integer({ min: 1, max: 32 }),
  pageSize: fc.integer({ min: 1, max: 5 }),
  prefixCache: fc.boolean(),
  families: fc.array(fc.array(token, { minLength: 4, maxLength: 24, size: 'max' }), { minLength: 3, maxLength: 3 }),
  ops: fc.array(opArb, { minLength: 1, maxLength: 40, size: 'max' }),
});

interface ModelSeq {
  tokens: number[]; // content of positions 0..len-1
  prompt: number[]; // written first, position by position, by later appends
}

/** Deep equality by JSON for the hot loop (vitest's expect costs ~0.1 ms a call). */
function same(actual: unknown, expected: unknown, what: string): void {
  const got = JSON.stringify(actual);
  const want = JSON.stringify(expected);
  if (got !== want) throw new Error(`${what}: got ${got}, expected ${want}`);
}

function ensure(condition: boolean, what: string): void {
  if (!condition) throw new Error(what);
}

const sorted = (values: readonly number[]): number[] => [...values].sort((a, b) => a - b);

class Harness {
  readonly kv: KvCacheManager;
  readonly memory: Int32Array; // (numPages * pageSize) token id per physical slot, -1 unwritten
  readonly seqs = new Map<number, ModelSeq>();
  /** Full token prefix each cached page stands for, keyed by physical page. */
  readonly chainOfPage = new Map<number, string>();
  /** Free cached pages in expected eviction order (least recently freed first). */
  lruOrder: number[] = [];
  private nextSeqId = 100;

  constructor(readonly s: Scenario) {
    this.kv = new KvCacheManager({ numPages: s.numPages, pageSize: s.pageSize, enablePrefixCache: s.prefixCache });
    this.memory = new Int32Array(s.numPages * s.pageSize).fill(-1);
  }

  run(op: Op): void {
    const live = [...this.seqs.keys()];
    const pick = (n: number): number | undefined => (live.length === 0 ? undefined : live[n % live.length]);
    switch (op.kind) {
      case 'add':
        this.add([...this.s.families[op.family].slice(0, op.prefixLen), ...op.tail]);
        return;
      case 'append': {
        const seqId = pick(op.pick);
        if (seqId !== undefined) this.append(seqId, op.tokens, op.passIds, op.deviate);
        return;
      }
      case 'prefill': {
        const seqId = pick(op.pick);
        if (seqId === undefined) return;
        const model = this.seqs.get(seqId)!;
        const rest = model.prompt.slice(model.tokens.length);
        if (rest.length > 0) this.append(seqId, rest, op.passIds, false);
        return;
      }
      case 'fork': {
        const parent = pick(op.pick);
        if (parent === undefined) return;
        const child = this.nextSeqId++;
        this.kv.fork(parent, child);
        const model = this.seqs.get(parent)!;
        this.seqs.set(child, { tokens: model.tokens.slice(), prompt: model.prompt.slice() });
        return;
      }
      case 'free': {
        const seqId = pick(op.pick);
        if (seqId === undefined) return;
        const table = this.kv.blockTable(seqId);
        this.kv.free(seqId);
        this.seqs.delete(seqId);
        // Tail pages are released first, so they are evicted before the prompt's head.
        for (const page of table.slice().reverse()) {
          if (this.kv.pageRefCount(page) === 0 && this.kv.isPageCached(page)) this.lruOrder.push(page);
        }
        return;
      }
      case 'fill': {
        const seqId = pick(op.pick);
        if (seqId === undefined) return;
        const { tableLength, len, copyOnWrite } = this.expectedNeeds(seqId, 1);
        const slack = tableLength * this.s.pageSize - len;
        const n = slack + Math.max(0, this.kv.stats().freePages - (copyOnWrite ? 1 : 0)) * this.s.pageSize;
        this.append(
          seqId,
          Array.from({ length: n }, (_, i) => (len + i) % 3),
          true,
          false,
        );
        return;
      }
      case 'overflow': {
        const seqId = pick(op.pick);
        if (seqId === undefined) return;
        const n = (this.s.numPages + 1) * this.s.pageSize;
        const result = this.append(seqId, new Array<number>(n).fill(1), false, false);
        ensure(!result.ok, `overflow of ${n} tokens must be NoRoom`);
        return;
      }
    }
  }

  private add(prompt: number[]): void {
    const seqId = this.nextSeqId++;
    const { pageSize } = this.s;
    // Expected hit: the longest run of cached pages standing for prompt[0 .. (l+1)*pageSize),
    // leaving at least one prompt token to compute.
    const expectedPages: number[] = [];
    if (this.s.prefixCache) {
      const maxHitPages = Math.max(0, Math.floor((prompt.length - 1) / pageSize));
      const pageByChain = new Map([...this.chainOfPage].map(([page, chain]) => [chain, page] as const));
      for (let l = 0; l < maxHitPages; l++) {
        const page = pageByChain.get(prompt.slice(0, (l + 1) * pageSize).join(','));
        if (page === undefined) break;
        expectedPages.push(page);
      }
    }
    const { cachedTokens } = this.kv.addSequence(seqId, prompt);
    same(cachedTokens, expectedPages.length * pageSize, `cachedTokens for prompt [${prompt}]`);
    same(this.kv.blockTable(seqId), expectedPages, 'block table after a prefix hit');
    this.seqs.set(seqId, { tokens: prompt.slice(0, cachedTokens), prompt });
    this.lruOrder = this.lruOrder.filter((page) => !expectedPages.includes(page)); // revived
  }

  /** Pages an append of n tokens needs, computed from the public state only. */
  private expectedNeeds(
    seqId: number,
    n: number,
  ): { tableLength: number; len: number; newPages: number; copyOnWrite: boolean } {
    const table = this.kv.blockTable(seqId);
    const len = this.kv.seqLen(seqId);
    const newPages = Math.ceil((len + n) / this.s.pageSize) - table.length;
    const copyOnWrite = n > 0 && len % this.s.pageSize !== 0 && this.kv.pageRefCount(table[table.length - 1]) > 1;
    return { tableLength: table.length, len, newPages, copyOnWrite };
  }

  private append(seqId: number, randomTokens: number[], passIds: boolean, deviate: boolean): AppendResult | NoRoom {
    const model = this.seqs.get(seqId)!;
    const n = randomTokens.length;
    const start = model.tokens.length;
    // Content of the new positions: the rest of the prompt first, unless ids that deviate are passed.
    const content = randomTokens.map((random, i) =>
      start + i < model.prompt.length && !(passIds && deviate) ? model.prompt[start + i] : random,
    );
    const { pageSize } = this.s;
    const needs = this.expectedNeeds(seqId, n);
    const pagesNeeded = needs.newPages + (needs.copyOnWrite ? 1 : 0);
    const { freePages: freeBefore, cachedPages: cachedBefore } = this.kv.stats();
    const oldTable = this.kv.blockTable(seqId);
    const before = this.snapshot();

    const result = this.kv.appendSlots(seqId, n, passIds ? content : undefined);
    if (!result.ok) {
      ensure(pagesNeeded > freeBefore, `NoRoom with ${pagesNeeded} needed and ${freeBefore} free (cached pages count)`);
      same(result.pagesNeeded, pagesNeeded, 'NoRoom.pagesNeeded');
      same(result.pagesAvailable, freeBefore, 'NoRoom.pagesAvailable');
      same(this.snapshot(), before, 'state after NoRoom'); // atomic: nothing changed
      return result;
    }
    ensure(pagesNeeded <= freeBefore, `ok with ${pagesNeeded} needed but ${freeBefore} free`);

    const table = this.kv.blockTable(seqId);
    same(table.length, oldTable.length + needs.newPages, 'table length after append');
    const holdersBefore = before.pages;
    const fresh = table.filter((page, l) => page !== oldTable[l]);
    same(fresh.length, pagesNeeded, 'pages taken by append');
    for (const page of fresh) {
      same(holdersBefore[page][0], 0, `refCount before taking page ${page}`); // only free pages are taken
      this.chainOfPage.delete(page); // evicted, if it was cached
    }
    // Uncached free pages go first; then cached ones, least recently freed first.
    const evictions = Math.max(0, pagesNeeded - (freeBefore - cachedBefore));
    const evicted = fresh.filter((page) => holdersBefore[page][1]);
    same(sorted(evicted), sorted(this.lruOrder.slice(0, evictions)), 'evicted pages');
    this.lruOrder = this.lruOrder.slice(evictions);
    if (needs.copyOnWrite) {
      const last = oldTable.length - 1;
      same(result.copies, [{ src: oldTable[last], dst: table[last] }], 'copy-on-write copies');
    } else {
      same(result.copies, [], 'copies without a shared partial page');
    }
    for (const { src, dst } of result.copies) {
      this.memory.copyWithin(dst * pageSize, src * pageSize, (src + 1) * pageSize);
    }

    same(result.slots.length, n, 'slot count');
    same(new Set(result.slots).size, n, 'distinct slots');
    for (let i = 0; i < n; i++) {
      const pos = start + i;
      const page = table[Math.floor(pos / pageSize)];
      // pos 6, pageSize 4, table[1] = 9 -> slot 9*4 + 2 = 38
      if (result.slots[i] !== page * pageSize + (pos % pageSize))
        throw new Error(`slot ${result.slots[i]} for pos ${pos}`);
      // Written pages are owned exclusively, so no other live sequence can see the write.
      if (this.kv.pageRefCount(page) !== 1) throw new Error(`slot ${result.slots[i]} is in shared page ${page}`);
      this.memory[result.slots[i]] = content[i];
    }
    model.tokens.push(...content);
    // Ids that differ from the remembered prompt make the manager drop the rest of it.
    const diverged =
      passIds && content.some((id, i) => start + i < model.prompt.length && id !== model.prompt[start + i]);
    if (diverged) model.prompt = model.tokens.slice();
    return result;
  }

  private snapshot(): { seqs: [number, number, readonly number[]][]; stats: unknown; pages: [number, boolean][] } {
    return {
      seqs: this.kv.sequences().map((id) => [id, this.kv.seqLen(id), this.kv.blockTable(id)]),
      stats: this.kv.stats(),
      pages: Array.from({ length: this.s.numPages }, (_, page) => [
        this.kv.pageRefCount(page),
        this.kv.isPageCached(page),
      ]),
    };
  }

  /** Every invariant, from public state and the model. */
  check(): void {
    const { numPages, pageSize } = this.s;
    this.kv.validate();
    same(sorted(this.kv.sequences()), sorted([...this.seqs.keys()]), 'live sequences');

    const holders = new Int32Array(numPages);
    for (const [seqId, model] of this.seqs) {
      const table = this.kv.blockTable(seqId);
      const len = this.kv.seqLen(seqId);
      same(len, model.tokens.length, `seqLen(${seqId})`);
      same(table.length, Math.ceil(len / pageSize), `pages of sequence ${seqId}`);
      same(new Set(table).size, table.length, `distinct pages of ${seqId}`); // a sequence never holds a page twice
      for (const page of table) holders[page]++;
      for (let pos = 0; pos < len; pos++) {
        const slot = table[Math.floor(pos / pageSize)] * pageSize + (pos % pageSize);
        if (this.memory[slot] !== model.tokens[pos]) {
          throw new Error(
            `sequence ${seqId} pos ${pos}: slot ${slot} holds ${this.memory[slot]}, expected ${model.tokens[pos]}`,
          );
        }
      }
      table.forEach((page, l) => {
        if (!this.kv.isPageCached(page)) return;
        ensure((l + 1) * pageSize <= len, `partial page ${page} is cached`);
        const chain = model.tokens.slice(0, (l + 1) * pageSize).join(',');
        const known = this.chainOfPage.get(page);
        if (known !== undefined && known !== chain) {
          throw new Error(`cached page ${page} stands for [${known}] but sequence ${seqId} holds it with [${chain}]`);
        }
        this.chainOfPage.set(page, chain);
      });
    }

    let used = 0;
    let cachedFree = 0;
    for (let page = 0; page < numPages; page++) {
      const refCount = this.kv.pageRefCount(page);
      if (refCount !== holders[page])
        throw new Error(`page ${page}: refCount ${refCount}, held by ${holders[page]} tables`);
      if (holders[page] > 0) used++;
      const cached = this.kv.isPageCached(page);
      if (!cached) this.chainOfPage.delete(page);
      else if (holders[page] === 0) cachedFree++;
      if (cached && !this.chainOfPage.has(page))
        throw new Error(`page ${page} became cached while no sequence held it`);
    }
    const cachedFreePages = Array.from({ length: numPages }, (_, page) => page).filter(
      (page) => holders[page] === 0 && this.kv.isPageCached(page),
    );
    same(sorted(this.lruOrder), cachedFreePages, 'free cached pages');
    const chains = [...this.chainOfPage.values()];
    same(new Set(chains).size, chains.length, 'one cached page per prefix');
    same(
      this.kv.stats(),
      { totalPages: numPages, usedPages: used, freePages: numPages - used, cachedPages: cachedFree },
      'stats',
    );
    if (!this.s.prefixCache) same(chains.length, 0, 'cached pages with prefix caching off');
  }

  /** Frees everything, then proves every page is allocatable again. */
  drain(): void {
    const { numPages, pageSize } = this.s;
    while (this.seqs.size > 0) this.run({ kind: 'free', pick: 0 });
    this.check();
    const stats = this.kv.stats();
    expect([stats.usedPages, stats.freePages]).toEqual([0, numPages]);
    const probe = this.nextSeqId++;
    this.kv.addSequence(probe);
    const all = this.kv.appendSlots(probe, numPages * pageSize);
    expect(all.ok).toBe(true);
    expect(new Set(this.kv.blockTable(probe)).size).toBe(numPages);
    expect(this.kv.stats()).toEqual({ totalPages: numPages, usedPages: numPages, freePages: 0, cachedPages: 0 });
    expect(this.kv.appendSlots(probe, 1).ok).toBe(false);
    this.kv.free(probe);
    expect(this.kv.stats()).toMatchObject({ usedPages: 0, freePages: numPages });
    this.kv.validate();
  }
}

describe('KvCacheManager properties', () => {
  it('keeps every invariant over thousands of random operation sequences', () => {
    fc.assert(
      fc.property(scenarioArb, (scenario) => {
        const harness = new Harness(scenario);
        harness.check();
        for (const op of scenario.ops) {
          harness.run(op);
          harness.check();
        }
        harness.drain();
      }),
      { numRuns: 4000 },
    );
  });
});
