/** Paged KV cache bookkeeping (no GPU code): page pool, block tables, prefix cache, accounting. */
export { PagePool, prefixPageKey, ROOT_PREFIX_KEY } from './pagePool';
export type { PrefixKey, PrefixCacheEntry } from './pagePool';
export { KvCacheManager } from './kvCacheManager';
export type { KvCacheManagerOptions, AppendResult, NoRoom, PageCopy, KvCacheStats } from './kvCacheManager';
export { kvBytesPerToken, kvValuesPerTokenPerLayer, pageBytes, describeMemory, dtypeBytes } from './accounting';
export type { AttentionVariant, KvDtype, KvSpec, KvMemory } from './accounting';
