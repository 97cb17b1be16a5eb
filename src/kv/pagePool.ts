/**
 * Physical KV pages and who holds them: pure bookkeeping, no GPU code.
 *
 * Every page 0..numPages-1 is in exactly one of three states:
 *
 * | state          | refCount | cache entry | lives in                          |
 * |----------------|----------|-------------|-----------------------------------|
 * | in use         | > 0      | maybe       | one or more block tables          |
 * | free, uncached | 0        | no          | `freeUncached` (FIFO)             |
 * | free, cached   | 0        | yes         | `cachedLru` (oldest first)        |
 *
 * Allocation takes free uncached pages first and evicts the least recently freed cached page
 * only when none are left; eviction drops that page's prefix-cache entry. A prefix-cache hit
 * revives a cached page by unlinking it from the middle of the LRU list in O(1)
 * (the same shape as vLLM's `FreeKVCacheBlockQueue`).
 */

/** Prefix-cache key of a full page: a 64-bit hash as 16 hex digits, chained through parents. */
export type PrefixKey = string;

/** Parent key of a sequence's first page. */
export const ROOT_PREFIX_KEY: PrefixKey = '';

/** What a cached page holds: its key, its parent's key and its own token ids (checked on hit). */
export interface PrefixCacheEntry {
  readonly key: PrefixKey;
  readonly parentKey: PrefixKey;
  readonly tokenIds: Int32Array; // (pageSize)
}

/**
 * Key of a full page: hash(parent page key, the page's token ids), so equal keys mean equal
 * token prefixes from position 0. Two murmur3-style 32-bit lanes with different seeds make a
 * 64-bit key; a hit also compares the page's own token ids, so a stray collision is caught.
 * Example: page 0 of [1,2,3,4] with pageSize 4 is prefixPageKey('', [1,2,3,4]); page 1 of
 * [1,2,3,4,5,6,7,8] is prefixPageKey(thatKey, [5,6,7,8]).
 */
export function prefixPageKey(parentKey: PrefixKey, pageTokenIds: ArrayLike<number>): PrefixKey {
  let lane1 = 0x9747b28c;
  let lane2 = 0x5bd1e995;
  const mixWord = (word: number): void => {
    lane1 = murmurStep(lane1, word, 0xcc9e2d51, 0x1b873593);
    lane2 = murmurStep(lane2, word, 0x85ebca6b, 0xc2b2ae35);
  };
  for (let i = 0; i < parentKey.length; i++) mixWord(parentKey.charCodeAt(i));
  mixWord(0x7fffffff); // separator between the parent key and the tokens
  mixWord(pageTokenIds.length);
  for (let i = 0; i < pageTokenIds.length; i++) mixWord(pageTokenIds[i] | 0);
  return hex32(finalMix(lane1)) + hex32(finalMix(lane2 ^ 0x2545f491));
}

function murmurStep(hash: number, word: number, c1: number, c2: number): number {
  let k = Math.imul(word, c1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, c2);
  let h = hash ^ k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finalMix(hash: number): number {
  let h = hash ^ (hash >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function hex32(value: number): string {
  return value.toString(16).padStart(8, '0');
}

/** Intrusive doubly linked list of page indices: O(1) pushBack, popFront and remove. */
class PageList {
  private readonly prev: Int32Array; // (numPages) previous page in the list, -1 at the head
  private readonly next: Int32Array; // (numPages) next page in the list, -1 at the tail
  private readonly member: Uint8Array; // (numPages) 1 if the page is in this list
  private head = -1;
  private tail = -1;
  size = 0;

  constructor(numPages: number) {
    this.prev = new Int32Array(numPages).fill(-1);
    this.next = new Int32Array(numPages).fill(-1);
    this.member = new Uint8Array(numPages);
  }

  has(page: number): boolean {
    return this.member[page] === 1;
  }

  pushBack(page: number): void {
    this.prev[page] = this.tail;
    this.next[page] = -1;
    if (this.tail >= 0) this.next[this.tail] = page;
    else this.head = page;
    this.tail = page;
    this.member[page] = 1;
    this.size++;
  }

  /** Removes and returns the oldest page, or -1 when empty. */
  popFront(): number {
    const page = this.head;
    if (page >= 0) this.remove(page);
    return page;
  }

  remove(page: number): void {
    const before = this.prev[page];
    const after = this.next[page];
    if (before >= 0) this.next[before] = after;
    else this.head = after;
    if (after >= 0) this.prev[after] = before;
    else this.tail = before;
    this.prev[page] = -1;
    this.next[page] = -1;
    this.member[page] = 0;
    this.size--;
  }

  /** Pages from head (oldest) to tail. */
  *[Symbol.iterator](): IterableIterator<number> {
    for (let page = this.head; page >= 0; page = this.next[page]) yield page;
  }
}

/** Reference-counted physical pages with a free queue and an LRU list of cached free pages. */
export class PagePool {
  readonly numPages: number;
  private readonly refCounts: Int32Array; // (numPages)
  private readonly freeUncached: PageList;
  private readonly cachedLru: PageList; // head = least recently freed = evicted first
  private readonly cacheEntries: (PrefixCacheEntry | undefined)[]; // (numPages)
  private readonly pageByKey = new Map<PrefixKey, number>();

  constructor(numPages: number) {
    if (!Number.isInteger(numPages) || numPages < 1) {
      throw new Error(`PagePool: numPages must be a positive integer, got ${numPages}`);
    }
    this.numPages = numPages;
    this.refCounts = new Int32Array(numPages);
    this.freeUncached = new PageList(numPages);
    this.cachedLru = new PageList(numPages);
    this.cacheEntries = new Array<PrefixCacheEntry | undefined>(numPages).fill(undefined);
    for (let page = 0; page < numPages; page++) this.freeUncached.pushBack(page);
  }

  /** Pages that `allocate` can hand out now: free uncached plus cached (evictable) pages. */
  get numAllocatable(): number {
    return this.freeUncached.size + this.cachedLru.size;
  }

  /** Free pages that still hold a prefix-cache entry (refCount 0). */
  get numCachedFree(): number {
    return this.cachedLru.size;
  }

  /** Pages with refCount > 0. */
  get numInUse(): number {
    return this.numPages - this.numAllocatable;
  }

  refCount(page: number): number {
    this.checkPage(page);
    return this.refCounts[page];
  }

  /** The prefix-cache key the page holds, in use or free, or undefined. */
  cacheKeyOf(page: number): PrefixKey | undefined {
    this.checkPage(page);
    return this.cacheEntries[page]?.key;
  }

  /**
   * Takes `count` pages (refCount becomes 1), uncached first, then evicting cached pages from
   * the LRU head. Returns null and changes nothing when fewer than `count` are allocatable.
   */
  allocate(count: number): number[] | null {
    if (count > this.numAllocatable) return null;
    const pages: number[] = [];
    for (let i = 0; i < count; i++) {
      let page = this.freeUncached.popFront();
      if (page < 0) {
        page = this.cachedLru.popFront();
        this.dropCacheEntry(page);
      }
      this.refCounts[page] = 1;
      pages.push(page);
    }
    return pages;
  }

  /** refCount++; a cached free page is revived (unlinked from the LRU, entry kept). */
  retain(page: number): void {
    this.checkPage(page);
    if (this.refCounts[page] === 0) {
      if (!this.cachedLru.has(page)) {
        throw new Error(`PagePool.retain: page ${page} is free and uncached; allocate it instead`);
      }
      this.cachedLru.remove(page);
    }
    this.refCounts[page]++;
  }

  /** refCount--; at 0 the page goes to the cached LRU tail if it holds an entry, else the free queue. */
  release(page: number, { forgetCached = false } = {}): void {
    this.checkPage(page);
    if (this.refCounts[page] === 0) {
      throw new Error(`PagePool.release: page ${page} is already free`);
    }
    if (--this.refCounts[page] > 0) return;
    if (forgetCached) this.dropCacheEntry(page);
    if (this.cacheEntries[page] !== undefined) this.cachedLru.pushBack(page);
    else this.freeUncached.pushBack(page);
  }

  /**
   * The page cached under `key` whose entry also matches `parentKey` and `tokenIds`, in use or
   * free; undefined on a miss. Does not change its refCount (call `retain`).
   */
  findCached(key: PrefixKey, parentKey: PrefixKey, tokenIds: ArrayLike<number>): number | undefined {
    const page = this.pageByKey.get(key);
    if (page === undefined) return undefined;
    const entry = this.cacheEntries[page]!;
    if (entry.parentKey !== parentKey || entry.tokenIds.length !== tokenIds.length) return undefined;
    for (let i = 0; i < tokenIds.length; i++) {
      if (entry.tokenIds[i] !== tokenIds[i]) return undefined;
    }
    return page;
  }

  /**
   * Records that in-use `page` holds the full page `tokenIds` under `key`. Returns false (and
   * records nothing) when the key is already cached on another page or the page already holds
   * an entry: the first page registered for a prefix stays the one that is found.
   */
  registerCached(page: number, key: PrefixKey, parentKey: PrefixKey, tokenIds: ArrayLike<number>): boolean {
    this.checkPage(page);
    if (this.refCounts[page] === 0) {
      throw new Error(`PagePool.registerCached: page ${page} is free; only pages in use can be cached`);
    }
    if (this.cacheEntries[page] !== undefined || this.pageByKey.has(key)) return false;
    this.cacheEntries[page] = { key, parentKey, tokenIds: Int32Array.from(tokenIds) };
    this.pageByKey.set(key, page);
    return true;
  }

  /**
   * Throws if the internal state is inconsistent: every page in exactly one state, list sizes
   * matching, key map and per-page entries a bijection. O(numPages); meant for tests.
   */
  validate(): void {
    let inUse = 0;
    for (let page = 0; page < this.numPages; page++) {
      const refCount = this.refCounts[page];
      const inFree = this.freeUncached.has(page);
      const inCached = this.cachedLru.has(page);
      const entry = this.cacheEntries[page];
      if (refCount < 0) throw new Error(`page ${page}: negative refCount ${refCount}`);
      if (refCount > 0) {
        inUse++;
        if (inFree || inCached) throw new Error(`page ${page}: in use (refCount ${refCount}) but on a free list`);
      } else if (inFree === inCached) {
        throw new Error(`page ${page}: free but on ${inFree ? 'both free lists' : 'no free list'}`);
      } else if (inCached !== (entry !== undefined)) {
        throw new Error(
          `page ${page}: on the ${inCached ? 'cached' : 'uncached'} list with${entry ? '' : 'out'} a cache entry`,
        );
      }
      if (entry !== undefined && this.pageByKey.get(entry.key) !== page) {
        throw new Error(`page ${page}: cache entry ${entry.key} is not mapped back to it`);
      }
    }
    for (const [key, page] of this.pageByKey) {
      if (this.cacheEntries[page]?.key !== key) throw new Error(`key ${key}: maps to page ${page} without that entry`);
    }
    const counted = (list: PageList): number => {
      let n = 0;
      for (const _ of list) n++;
      return n;
    };
    if (counted(this.freeUncached) !== this.freeUncached.size || counted(this.cachedLru) !== this.cachedLru.size) {
      throw new Error('free list sizes do not match their links');
    }
    if (inUse + this.freeUncached.size + this.cachedLru.size !== this.numPages) {
      throw new Error(`pages lost: ${inUse} in use + ${this.numAllocatable} free != ${this.numPages}`);
    }
  }

  private dropCacheEntry(page: number): void {
    const entry = this.cacheEntries[page];
    if (entry === undefined) return;
    this.pageByKey.delete(entry.key);
    this.cacheEntries[page] = undefined;
  }

  private checkPage(page: number): void {
    if (!Number.isInteger(page) || page < 0 || page >= this.numPages) {
      throw new Error(`PagePool: page ${page} out of range 0..${this.numPages - 1}`);
    }
  }
}
