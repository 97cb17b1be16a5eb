/**
 * Paged KV cache bookkeeping: per-sequence block tables over a shared `PagePool`, prefix
 * caching of full pages, fork with copy-on-write. No GPU code: the caller turns the slots and
 * copies returned here into GPU work.
 *
 * Index formulas (pageSize 16 in every example):
 * - logical page of token position pos = floor(pos / pageSize): pos 37 -> logical page 2
 * - offset in page = pos % pageSize: pos 37 -> offset 5
 * - physical slot = page * pageSize + offset: blockTable[2] = 5, offset 5 -> slot 85
 * - pages for a length = ceil(len / pageSize): len 37 -> 3 pages; last page holds
 *   len - 2 * 16 = 5 tokens (FlashInfer's kv_last_page_len)
 *
 * Sliding-window group (`window` set: the pages of sliding-window layers, issue 18). A query at
 * position p reads keys in (p - window, p] only, so once a sequence's next query is at p, a leading
 * page whose tokens all lie before p - window + 1 is dead: releaseOutsideWindow() drops it and its
 * logical slot maps to the group's one pinned page (never written, never read: the window mask
 * excludes it), so block tables keep their length and the attention kernels need no change.
 * Example, window 32, pageSize 16, next query at 80: keys from 49 on are read; pages 0..1 (tokens
 * 0..31) die, page 2 (32..47) dies, page 3 (48..63) stays. No prefix cache in this group (a hit
 * would need the dropped pages' K/V).
 */
import { PagePool, ROOT_PREFIX_KEY, prefixPageKey, type PrefixKey } from './pagePool';

export interface KvCacheManagerOptions {
  /** Physical pages in the pool; page p of every layer's K/V pool belongs to the same tokens. */
  numPages: number;
  /** Tokens per page (DESIGN default 16). */
  pageSize: number;
  /** Reuse cached full pages across requests (default true; always off with `window`). */
  enablePrefixCache?: boolean;
  /** A sliding-window group: keys in (p - window, p] only; dead leading pages are released. */
  window?: number;
}

/** A whole-page GPU copy `src -> dst` (every layer, K and V) to do before this step's writes. */
export interface PageCopy {
  src: number;
  dst: number;
}

/** Slots reserved by `appendSlots`. */
export interface AppendResult {
  ok: true;
  /** (numTokens) physical slot of each new token = page * pageSize + offsetInPage. */
  slots: Int32Array;
  /** Copy-on-write copies the caller must do on the GPU before writing into `slots`. */
  copies: PageCopy[];
}

/** `appendSlots` could not get enough pages; nothing was changed. */
export interface NoRoom {
  ok: false;
  reason: string;
  /** Pages this append needed (new pages plus a copy-on-write page). */
  pagesNeeded: number;
  /** Pages allocatable at the time (free plus evictable cached). */
  pagesAvailable: number;
}

export interface KvCacheStats {
  totalPages: number;
  /** Pages with refCount > 0. */
  usedPages: number;
  /** Pages allocatable now, INCLUDING cached ones (which are evicted on demand). usedPages + freePages = totalPages. */
  freePages: number;
  /** Free pages (refCount 0) that still hold a prefix-cache entry; a subset of freePages. */
  cachedPages: number;
}

interface SequenceState {
  /** (ceil(length / pageSize)) logical page -> physical page (the pinned page below `dropped`). */
  blockTable: number[];
  /** Leading logical pages released by releaseOutsideWindow (0 without a window). */
  dropped: number;
  /** Tokens with a reserved slot. */
  length: number;
  /**
   * Token ids known from position 0 (prompt, then ids given to appendSlots); may run ahead of
   * `length` (prompt not yet appended) or stop short of it (an append without ids: the hash
   * chain ends there). Empty when prefix caching is off.
   */
  knownTokenIds: number[];
  /** Prefix key of each leading full page whose tokens are known, in order. */
  pageKeys: PrefixKey[];
}

/** Block tables of live sequences over a reference-counted page pool, with a prefix cache. */
export class KvCacheManager {
  readonly pageSize: number;
  readonly numPages: number;
  readonly enablePrefixCache: boolean;
  /** Sliding-window group: the window; null for a group that keeps every page. */
  readonly window: number | null;
  /** Sliding-window group: the page every dropped logical page maps to (held by the manager); else -1. */
  readonly pinnedPage: number;
  private readonly pool: PagePool;
  private readonly seqs = new Map<number, SequenceState>();

  constructor(options: KvCacheManagerOptions) {
    const { numPages, pageSize } = options;
    if (!Number.isInteger(pageSize) || pageSize < 1) {
      throw new Error(`KvCacheManager: pageSize must be a positive integer, got ${pageSize}`);
    }
    const window = options.window;
    if (window !== undefined && !(Number.isInteger(window) && window >= 1)) {
      throw new Error(`KvCacheManager: window must be a positive integer, got ${window}`);
    }
    if (window !== undefined && numPages < 2) {
      throw new Error(`KvCacheManager: a sliding-window group needs >= 2 pages (one is pinned), got ${numPages}`);
    }
    this.pool = new PagePool(numPages);
    this.numPages = numPages;
    this.pageSize = pageSize;
    this.window = window ?? null;
    this.enablePrefixCache = window === undefined && (options.enablePrefixCache ?? true);
    this.pinnedPage = window === undefined ? -1 : this.pool.allocate(1)![0];
  }

  /**
   * Registers a sequence. With prefix caching on and `promptTokenIds` given, takes the longest
   * chain of cached full pages matching the prompt, but never the whole prompt: at least one
   * token is left to compute so the step has logits. Example, pageSize 16, all pages cached:
   * prompt 40 -> 2 pages hit, cachedTokens 32; prompt 32 -> 1 page hit, cachedTokens 16.
   * The sequence's length starts at `cachedTokens`; append the rest with `appendSlots`
   * (the prompt's ids are remembered, so passing them again there is optional).
   */
  addSequence(seqId: number, promptTokenIds?: readonly number[]): { cachedTokens: number } {
    if (this.seqs.has(seqId)) throw new Error(`KvCacheManager.addSequence: sequence ${seqId} already exists`);
    const state: SequenceState = { blockTable: [], dropped: 0, length: 0, knownTokenIds: [], pageKeys: [] };
    if (this.enablePrefixCache && promptTokenIds !== undefined) {
      state.knownTokenIds = promptTokenIds.slice();
      // Leave >= 1 token to compute: prompt 33 -> floor(32/16) = 2 pages at most; prompt 32 -> 1.
      const maxHitPages = Math.max(0, Math.floor((promptTokenIds.length - 1) / this.pageSize));
      let parentKey = ROOT_PREFIX_KEY;
      for (let logical = 0; logical < maxHitPages; logical++) {
        const pageTokens = promptTokenIds.slice(logical * this.pageSize, (logical + 1) * this.pageSize);
        const key = prefixPageKey(parentKey, pageTokens);
        const page = this.pool.findCached(key, parentKey, pageTokens);
        if (page === undefined) break;
        this.pool.retain(page);
        state.blockTable.push(page);
        state.pageKeys.push(key);
        parentKey = key;
      }
      state.length = state.blockTable.length * this.pageSize;
    }
    this.seqs.set(seqId, state);
    return { cachedTokens: state.length };
  }

  /**
   * Reserves slots for `numTokens` new tokens at the end of the sequence. If the last page is
   * partial and shared (after `fork`), it is first copied to a fresh page (a `copies` entry)
   * so only this sequence's table changes. Returns NoRoom and changes nothing when the pool
   * cannot supply the pages; running out never throws.
   *
   * With token ids (given here or remembered from the prompt), pages that become full are
   * registered in the prefix cache as soon as their slots are reserved; the caller writes all of
   * a step's new K/V before any attention of that step reads it (the usual per-layer order).
   */
  appendSlots(seqId: number, numTokens: number, tokenIds?: readonly number[]): AppendResult | NoRoom {
    const state = this.state(seqId, 'appendSlots');
    if (tokenIds !== undefined && tokenIds.length !== numTokens) {
      throw new Error(`KvCacheManager.appendSlots: ${tokenIds.length} token ids for ${numTokens} tokens`);
    }
    const { newPages, copyOnWrite } = this.pagesFor(state, numTokens);
    const pagesNeeded = newPages + (copyOnWrite ? 1 : 0);
    const fresh = this.pool.allocate(pagesNeeded);
    if (fresh === null) {
      const pagesAvailable = this.pool.numAllocatable;
      return {
        ok: false,
        reason:
          `sequence ${seqId} needs ${pagesNeeded} free page(s) for ${numTokens} token(s) ` +
          `(${newPages} new${copyOnWrite ? ' + 1 copy-on-write' : ''}), ${pagesAvailable} available`,
        pagesNeeded,
        pagesAvailable,
      };
    }

    const copies: PageCopy[] = [];
    if (copyOnWrite) {
      const lastLogical = state.blockTable.length - 1;
      const shared = state.blockTable[lastLogical];
      const copy = fresh.pop()!;
      copies.push({ src: shared, dst: copy });
      state.blockTable[lastLogical] = copy;
      this.pool.release(shared); // refCount was >= 2, stays >= 1
    }
    state.blockTable.push(...fresh);

    const start = state.length;
    const slots = new Int32Array(numTokens);
    for (let i = 0; i < numTokens; i++) {
      const pos = start + i;
      // pos 37, pageSize 16: logical page 2, offset 5; blockTable[2] = 5 -> slot 5*16 + 5 = 85.
      slots[i] = state.blockTable[Math.floor(pos / this.pageSize)] * this.pageSize + (pos % this.pageSize);
    }
    state.length = start + numTokens;

    if (this.enablePrefixCache) {
      if (tokenIds !== undefined) this.rememberTokenIds(state, start, tokenIds);
      this.registerFullPages(state);
    }
    return { ok: true, slots, copies };
  }

  /** Pages `appendSlots(seqId, numTokens)` would need now, copy-on-write included. */
  pagesNeeded(seqId: number, numTokens: number): number {
    const { newPages, copyOnWrite } = this.pagesFor(this.state(seqId, 'pagesNeeded'), numTokens);
    return newPages + (copyOnWrite ? 1 : 0);
  }

  /** Whether `appendSlots(seqId, numTokens)` would succeed now. */
  canAppend(seqId: number, numTokens: number): boolean {
    return this.pagesNeeded(seqId, numTokens) <= this.pool.numAllocatable;
  }

  /** The child shares every parent page (refCount++) and has the same length and known ids. */
  fork(parentSeqId: number, childSeqId: number): void {
    const parent = this.state(parentSeqId, 'fork');
    if (this.seqs.has(childSeqId)) throw new Error(`KvCacheManager.fork: sequence ${childSeqId} already exists`);
    for (let logical = parent.dropped; logical < parent.blockTable.length; logical++) {
      this.pool.retain(parent.blockTable[logical]);
    }
    this.seqs.set(childSeqId, {
      blockTable: parent.blockTable.slice(),
      dropped: parent.dropped,
      length: parent.length,
      knownTokenIds: parent.knownTokenIds.slice(),
      pageKeys: parent.pageKeys.slice(),
    });
  }

  /**
   * Drops the sequence's references. Pages reaching refCount 0 go to the free queue, or to the
   * cached LRU if they hold a prefix-cache entry; the tail is released first, so a prompt's
   * last pages are evicted before its first ones.
   *
   * `discardCached`: for a sequence whose last step failed on the GPU. Its pages were registered
   * in the prefix cache when their slots were reserved, but their K/V may never have been written,
   * so pages that no other sequence holds leave the cache too (pages still held by others were
   * written by an earlier, successful step: a shared partial page is copied before a write).
   */
  free(seqId: number, { discardCached = false } = {}): void {
    const state = this.state(seqId, 'free');
    for (let logical = state.blockTable.length - 1; logical >= state.dropped; logical--) {
      this.pool.release(state.blockTable[logical], { forgetCached: discardCached });
    }
    this.seqs.delete(seqId);
  }

  /**
   * Sliding-window group: the sequence's next query is at `queryPos` (its length, before the
   * step's tokens are appended), so pages whose tokens all lie before queryPos - window + 1 are
   * released (a page shared by a fork stays with the others). A partial last page never qualifies.
   * Returns the pages released by this sequence. Without a window: nothing, 0.
   */
  releaseOutsideWindow(seqId: number, queryPos: number): number {
    const state = this.state(seqId, 'releaseOutsideWindow');
    if (this.window === null) return 0;
    const firstNeeded = queryPos - this.window + 1; // keys from here on are read
    let released = 0;
    // Logical page i holds tokens i*size .. (i+1)*size - 1: dead once (i+1)*size <= firstNeeded.
    while (state.dropped < state.blockTable.length && (state.dropped + 1) * this.pageSize <= firstNeeded) {
      this.pool.release(state.blockTable[state.dropped]);
      state.blockTable[state.dropped] = this.pinnedPage;
      state.dropped++;
      released++;
    }
    return released;
  }

  /** Pages the sequence holds (its block table less the dropped leading pages). */
  livePages(seqId: number): number {
    const state = this.state(seqId, 'livePages');
    return state.blockTable.length - state.dropped;
  }
  /** A copy of the sequence's block table (logical page -> physical page). */
  blockTable(seqId: number): readonly number[] {
    return this.state(seqId, 'blockTable').blockTable.slice();
  }

  /** Tokens with a reserved slot. */
  seqLen(seqId: number): number {
    return this.state(seqId, 'seqLen').length;
  }

  /** Tokens in the last page (FlashInfer kv_last_page_len): len 37, pageSize 16 -> 5; len 32 -> 16; len 0 -> 0. */
  lastPageLen(seqId: number): number {
    const { length } = this.state(seqId, 'lastPageLen');
    return length === 0 ? 0 : length - (Math.ceil(length / this.pageSize) - 1) * this.pageSize;
  }

  has(seqId: number): boolean {
    return this.seqs.has(seqId);
  }

  /** Live sequence ids in the order they were added. */
  sequences(): number[] {
    return [...this.seqs.keys()];
  }

  /** Number of block tables holding `page` (its refCount). */
  pageRefCount(page: number): number {
    return this.pool.refCount(page);
  }

  /** Whether `page` holds a prefix-cache entry (in use or free). */
  isPageCached(page: number): boolean {
    return this.pool.cacheKeyOf(page) !== undefined;
  }

  /** See `KvCacheStats`: freePages counts cached pages too; usedPages + freePages = totalPages. */
  stats(): KvCacheStats {
    return {
      totalPages: this.numPages,
      usedPages: this.pool.numInUse,
      freePages: this.pool.numAllocatable,
      cachedPages: this.pool.numCachedFree,
    };
  }

  /** Throws if refCounts disagree with the block tables or the pool is inconsistent. For tests. */
  validate(): void {
    this.pool.validate();
    const holders = new Int32Array(this.numPages);
    for (const [seqId, state] of this.seqs) {
      if (state.blockTable.length !== Math.ceil(state.length / this.pageSize)) {
        throw new Error(`sequence ${seqId}: ${state.blockTable.length} pages for length ${state.length}`);
      }
      if (state.dropped > 0 && this.window === null)
        throw new Error(`sequence ${seqId}: dropped pages without a window`);
      for (let logical = 0; logical < state.blockTable.length; logical++) {
        const page = state.blockTable[logical];
        if (logical < state.dropped) {
          if (page !== this.pinnedPage) throw new Error(`sequence ${seqId}: dropped page ${logical} maps to ${page}`);
        } else {
          if (page === this.pinnedPage) throw new Error(`sequence ${seqId}: live page ${logical} is the pinned page`);
          holders[page]++;
        }
      }
    }
    if (this.pinnedPage >= 0) holders[this.pinnedPage]++; // the manager's own hold
    for (let page = 0; page < this.numPages; page++) {
      if (holders[page] !== this.pool.refCount(page)) {
        throw new Error(
          `page ${page}: refCount ${this.pool.refCount(page)} but held by ${holders[page]} block table(s)`,
        );
      }
    }
  }

  /** New pages for numTokens more tokens, and whether the shared partial last page must be copied first. */
  private pagesFor(state: SequenceState, numTokens: number): { newPages: number; copyOnWrite: boolean } {
    if (!Number.isInteger(numTokens) || numTokens < 0) {
      throw new Error(`KvCacheManager: numTokens must be a non-negative integer, got ${numTokens}`);
    }
    if (numTokens === 0) return { newPages: 0, copyOnWrite: false };
    // len 37 + 20 tokens, pageSize 16: ceil(57/16) = 4 pages, table has 3 -> 1 new page.
    const newPages = Math.ceil((state.length + numTokens) / this.pageSize) - state.blockTable.length;
    const lastPartial = state.length % this.pageSize !== 0;
    const copyOnWrite = lastPartial && this.pool.refCount(state.blockTable[state.blockTable.length - 1]) > 1;
    return { newPages, copyOnWrite };
  }

  /**
   * Records ids given for positions start.. . They win over remembered prompt ids; if one
   * differs, the rest of the remembered prompt is dropped (it no longer follows). After a gap
   * (an earlier append without ids past the known ids) nothing more can be known.
   * Example: known [1,2,3,4], start 2, ids [3] -> [1,2,3,4]; ids [9] -> [1,2,9].
   */
  private rememberTokenIds(state: SequenceState, start: number, tokenIds: readonly number[]): void {
    const known = state.knownTokenIds;
    if (known.length < start) return;
    let diverged = false;
    for (let i = 0; i < tokenIds.length; i++) {
      const pos = start + i;
      if (pos === known.length) known.push(tokenIds[i]);
      else if (known[pos] !== tokenIds[i]) {
        known[pos] = tokenIds[i];
        diverged = true;
      }
    }
    if (diverged) known.length = start + tokenIds.length;
  }

  /** Keys and caches every page that is now full and whose token ids are all known. */
  private registerFullPages(state: SequenceState): void {
    const size = this.pageSize;
    const hashable = Math.min(state.length, state.knownTokenIds.length);
    for (let logical = state.pageKeys.length; (logical + 1) * size <= hashable; logical++) {
      const parentKey = logical === 0 ? ROOT_PREFIX_KEY : state.pageKeys[logical - 1];
      const pageTokens = state.knownTokenIds.slice(logical * size, (logical + 1) * size);
      const key = prefixPageKey(parentKey, pageTokens);
      this.pool.registerCached(state.blockTable[logical], key, parentKey, pageTokens);
      state.pageKeys.push(key);
    }
  }

  private state(seqId: number, method: string): SequenceState {
    const state = this.seqs.get(seqId);
    if (state === undefined) throw new Error(`KvCacheManager.${method}: unknown sequence ${seqId}`);
    return state;
  }
}
