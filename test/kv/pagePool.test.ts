import { describe, expect, it } from 'vitest';
import { PagePool, ROOT_PREFIX_KEY, prefixPageKey } from '../../src/kv/pagePool';

/** Allocates one page and registers it under the key of `tokens` (a root page). */
function allocateCached(pool: PagePool, tokens: number[]): { page: number; key: string } {
  const [page] = pool.allocate(1)!;
  const key = prefixPageKey(ROOT_PREFIX_KEY, tokens);
  expect(pool.registerCached(page, key, ROOT_PREFIX_KEY, tokens)).toBe(true);
  return { page, key };
}

describe('prefixPageKey', () => {
  it('is deterministic, 16 hex digits, and depends on parent, order and length', () => {
    const a = prefixPageKey(ROOT_PREFIX_KEY, [1, 2, 3, 4]);
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(prefixPageKey(ROOT_PREFIX_KEY, [1, 2, 3, 4])).toBe(a);
    expect(prefixPageKey(ROOT_PREFIX_KEY, [1, 2, 4, 3])).not.toBe(a);
    expect(prefixPageKey(ROOT_PREFIX_KEY, [1, 2, 3])).not.toBe(a);
    expect(prefixPageKey(ROOT_PREFIX_KEY, [1, 2, 3, 4, 0])).not.toBe(a);
    expect(prefixPageKey(a, [1, 2, 3, 4])).not.toBe(a);
    expect(prefixPageKey(prefixPageKey(ROOT_PREFIX_KEY, [9]), [1, 2, 3, 4])).not.toBe(prefixPageKey(a, [1, 2, 3, 4]));
  });

  it('has no collisions over many small pages', () => {
    const seen = new Set<string>();
    for (let x = 0; x < 64; x++)
      for (let y = 0; y < 64; y++) for (let z = 0; z < 8; z++) seen.add(prefixPageKey(ROOT_PREFIX_KEY, [x, y, z]));
    expect(seen.size).toBe(64 * 64 * 8);
  });
});

describe('PagePool', () => {
  it('rejects bad sizes and page indices', () => {
    expect(() => new PagePool(0)).toThrow(/positive integer/);
    expect(() => new PagePool(2.5)).toThrow(/positive integer/);
    const pool = new PagePool(4);
    expect(() => pool.refCount(4)).toThrow(/out of range/);
    expect(() => pool.release(0)).toThrow(/already free/);
    expect(() => pool.retain(0)).toThrow(/free and uncached/);
  });

  it('allocates in order, atomically, and returns null when short', () => {
    const pool = new PagePool(4);
    expect(pool.allocate(3)).toEqual([0, 1, 2]);
    expect(pool.numInUse).toBe(3);
    expect(pool.allocate(2)).toBeNull();
    expect(pool.numAllocatable).toBe(1);
    expect(pool.allocate(1)).toEqual([3]);
    expect(pool.allocate(1)).toBeNull();
    pool.validate();
  });

  it('counts references and frees at zero into the FIFO free queue', () => {
    const pool = new PagePool(3);
    const [a, b, c] = pool.allocate(3)!;
    pool.retain(a);
    expect(pool.refCount(a)).toBe(2);
    pool.release(a);
    expect(pool.numAllocatable).toBe(0);
    pool.release(c);
    pool.release(a);
    pool.release(b);
    expect(pool.refCount(a)).toBe(0);
    // FIFO: freed c, a, b come back in that order.
    expect(pool.allocate(3)).toEqual([c, a, b]);
    pool.validate();
  });

  it('puts freed cached pages on the LRU and prefers uncached pages when allocating', () => {
    const pool = new PagePool(4);
    const cached = allocateCached(pool, [7, 7]);
    const [plain] = pool.allocate(1)!;
    pool.release(cached.page);
    pool.release(plain);
    expect(pool.numCachedFree).toBe(1);
    expect(pool.numAllocatable).toBe(4);
    // 3 uncached pages exist (two never used, one freed) and go first.
    const taken = pool.allocate(3)!;
    expect(taken).not.toContain(cached.page);
    expect(pool.cacheKeyOf(cached.page)).toBe(cached.key);
    // Only the cached page is left: taking it evicts its entry.
    expect(pool.allocate(1)).toEqual([cached.page]);
    expect(pool.cacheKeyOf(cached.page)).toBeUndefined();
    expect(pool.findCached(cached.key, ROOT_PREFIX_KEY, [7, 7])).toBeUndefined();
    expect(pool.numCachedFree).toBe(0);
    pool.validate();
  });

  it('evicts the least recently freed cached page first and revives hits in O(1) from the middle', () => {
    const pool = new PagePool(3);
    const first = allocateCached(pool, [1]);
    const second = allocateCached(pool, [2]);
    const third = allocateCached(pool, [3]);
    pool.release(first.page);
    pool.release(second.page);
    pool.release(third.page);
    expect(pool.numCachedFree).toBe(3);
    // Hit on the middle one: revived, entry kept, no longer evictable.
    expect(pool.findCached(second.key, ROOT_PREFIX_KEY, [2])).toBe(second.page);
    pool.retain(second.page);
    expect(pool.refCount(second.page)).toBe(1);
    expect(pool.numCachedFree).toBe(2);
    pool.validate();
    expect(pool.allocate(1)).toEqual([first.page]);
    expect(pool.allocate(1)).toEqual([third.page]);
    expect(pool.allocate(1)).toBeNull();
    expect(pool.cacheKeyOf(second.page)).toBe(second.key);
    // Released again, the revived page returns to the LRU with its entry.
    pool.release(second.page);
    expect(pool.numCachedFree).toBe(1);
    pool.validate();
  });

  it('keeps the first page registered for a key and checks token ids on lookup', () => {
    const pool = new PagePool(3);
    const original = allocateCached(pool, [5, 6]);
    const [duplicate] = pool.allocate(1)!;
    expect(pool.registerCached(duplicate, original.key, ROOT_PREFIX_KEY, [5, 6])).toBe(false);
    expect(pool.registerCached(original.page, 'ffffffffffffffff', ROOT_PREFIX_KEY, [5, 6])).toBe(false);
    expect(pool.findCached(original.key, ROOT_PREFIX_KEY, [5, 6])).toBe(original.page);
    // Same key but different tokens or parent: treated as a miss (collision guard).
    expect(pool.findCached(original.key, ROOT_PREFIX_KEY, [5, 7])).toBeUndefined();
    expect(pool.findCached(original.key, 'aaaaaaaaaaaaaaaa', [5, 6])).toBeUndefined();
    expect(() => {
      pool.release(duplicate);
      pool.registerCached(duplicate, 'k', ROOT_PREFIX_KEY, [1]);
    }).toThrow(/only pages in use/);
    pool.validate();
  });
});
