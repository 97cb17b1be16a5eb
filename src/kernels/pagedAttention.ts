/**
 * What every paged attention kernel shares: the attention shape it is specialised for, the buffers
 * of a layer's KV pool and of a step's page table, and the uniform params block.
 */
import { ShapeError } from '../gpu/errors';
import { isKvDtype, type KvDtype } from '../gpu/dtype';

export interface AttentionSpec {
  numKvHeads: number;
  /** Query heads per KV head: 1 = MHA, numHeads = MQA, in between = GQA. */
  groupSize: number;
  headDimQK: number;
  headDimV: number;
  pageSize: number;
  kvDtype: KvDtype;
  /**
   * MLA: the cache holds one latent row per token, [c_kv (headDimV) | k_pe], read as K (all of it)
   * and as V (its first headDimV values); vPages is the K buffer. Needs numKvHeads 1.
   */
  vAliasesK?: boolean;
  /**
   * Score soft-capping (Gemma-2's `attn_logit_softcapping`): every scaled score s becomes
   * tanh(s / softcap) * softcap before the softmax, and lse is over the capped scores. 0 or absent: off.
   * A pipeline constant (SOFTCAP in pagedKv.wgsl), so a model sets it once per spec.
   */
  softcap?: number;
  /**
   * A layer's pool split across several buffers per K and V (KvPool.create sets it when one buffer
   * would pass a storage binding): page p is local page p % pagesPerBuffer of buffer
   * p / pagesPerBuffer. The kernels then compose the split page snippets (6 more bindings, at most
   * KV_SPLIT_MAX_BUFFERS buffers). Absent: one buffer, today's pipelines.
   */
  pagesPerBuffer?: number;
}

/** The most buffers a split pool has per layer for K (and for V): the split snippets' bindings. */
export const KV_SPLIT_MAX_BUFFERS = 4;

/**
 * One layer's KV pages: f32 / f16: Word4 [numPages][numKvHeads][pageSize][headDim / 4] each; q8 / q4:
 * u32 pages of codes then f16 scales (shaders/attention/kvPagesQ8.wgsl, kvPagesQ4.wgsl).
 */
export interface PagedKvBuffers {
  /** K pages, buffer 0 of a split pool. */
  kPages: GPUBuffer;
  /** V pages, buffer 0 of a split pool. */
  vPages: GPUBuffer;
  /**
   * A split pool (AttentionSpec.pagesPerBuffer): K buffers 1..3 and V buffers 1..3, always 3 each;
   * the slots past the pool's last buffer hold buffer 0 again (bound, never read or written).
   */
  kMore?: readonly GPUBuffer[];
  vMore?: readonly GPUBuffer[];
}

/**
 * The extra bindings of the split page layout (shaders/attention/kvPagesSplit.wgsl). kvAppend writes
 * a split pool one buffer per dispatch, so it has none.
 */
export const SPLIT_READ_BINDINGS = { kPages1: 16, kPages2: 17, kPages3: 18, vPages1: 19, vPages2: 20, vPages3: 21 };

export type SplitBufferName = keyof typeof SPLIT_READ_BINDINGS;

/** Is the spec's pool split across buffers (the kernels' split variant)? */
export function isSplit(s: AttentionSpec): boolean {
  return s.pagesPerBuffer !== undefined;
}

/** The split bindings of a kernel over spec's pool: none for a pool of one buffer. */
export function splitBindings(s: AttentionSpec): Partial<Record<SplitBufferName, number>> {
  return isSplit(s) ? SPLIT_READ_BINDINGS : {};
}

/**
 * Buffers 1..3 of a layer's pages, by binding name, for a kernel specialised for `spec`: none for a
 * pool of one buffer. Throws when the pages and the spec disagree (a split pool given to a kernel
 * made for one buffer, or the other way).
 */
export function splitBuffers(s: AttentionSpec, pages: PagedKvBuffers): Record<string, GPUBuffer> {
  if (isSplit(s) !== !!pages.kMore) {
    throw new ShapeError(
      isSplit(s)
        ? 'paged KV: this kernel was made for a split pool (pagesPerBuffer), but the pages are one buffer'
        : 'paged KV: the pages are a split pool; make the kernel with the pool spec (KvPool.spec, pagesPerBuffer)',
    );
  }
  if (!pages.kMore) return {};
  const k = pages.kMore;
  const v = pages.vMore ?? k;
  return { kPages1: k[0], kPages2: k[1], kPages3: k[2], vPages1: v[0], vPages2: v[1], vPages3: v[2] };
}

/** A step's page table (src/kernels/pageTable.ts) and params uniform, shared by all layers. */
export interface StepBuffers {
  qoIndptr: GPUBuffer;
  kvIndptr: GPUBuffer;
  kvPageIndices: GPUBuffer;
  kvLastPageLen: GPUBuffer;
  /** Uniform, 16 bytes: see attentionParams(). */
  params: GPUBuffer;
}

export interface AttentionOptions {
  scale: number;
  causal: boolean;
  /** > 0: a query at position p sees keys in (p - window, p]. */
  window: number;
}

/** The pagedKv.wgsl `Params` block: numSeqs u32, scale f32, causal u32, window u32. */
export function attentionParams(numSeqs: number, o: AttentionOptions): ArrayBuffer {
  const buf = new ArrayBuffer(16);
  const view = new DataView(buf);
  view.setUint32(0, numSeqs, true);
  view.setFloat32(4, o.scale, true);
  view.setUint32(8, o.causal ? 1 : 0, true);
  view.setUint32(12, o.window, true);
  return buf;
}

export function checkSpec(s: AttentionSpec): void {
  const bad = (what: string) => {
    throw new ShapeError(`attention spec: ${what}`);
  };
  for (const k of ['numKvHeads', 'groupSize', 'headDimQK', 'headDimV', 'pageSize'] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 1) bad(`${k} must be a positive integer (got ${s[k]})`);
  }
  if (s.headDimQK % 4 || s.headDimV % 4) bad(`head dims must be multiples of 4 (got ${s.headDimQK}, ${s.headDimV})`);
  if (!isKvDtype(s.kvDtype)) bad(`kvDtype must be f32, f16, q8 or q4 (got ${s.kvDtype})`);
  // q4 packs 8 codes per u32 word, so a row must be whole words (groups of 32 may end short).
  if (s.kvDtype === 'q4' && (s.headDimQK % 8 || s.headDimV % 8)) {
    bad(`q4 KV needs head dims that are multiples of 8 (got ${s.headDimQK}, ${s.headDimV})`);
  }
  if (s.softcap !== undefined && !(Number.isFinite(s.softcap) && s.softcap >= 0)) {
    bad(`softcap must be a finite number >= 0, 0 = off (got ${s.softcap})`);
  }
  if (s.pagesPerBuffer !== undefined && !(Number.isInteger(s.pagesPerBuffer) && s.pagesPerBuffer >= 1)) {
    bad(`pagesPerBuffer must be a positive integer (got ${s.pagesPerBuffer})`);
  }
  if (s.vAliasesK && (s.numKvHeads !== 1 || s.headDimV > s.headDimQK)) {
    bad(
      `MLA (V aliases K) needs numKvHeads 1 and headDimV <= headDimQK ` +
        `(got ${s.numKvHeads}, ${s.headDimV} > ${s.headDimQK})`,
    );
  }
}

/** The constants every kernel composed with pagedKv.wgsl takes. */
export function pagedConstants(s: AttentionSpec): Record<string, number> {
  return {
    NUM_KV_HEADS: s.numKvHeads,
    GROUP_SIZE: s.groupSize,
    HEAD_DIM_QK: s.headDimQK,
    HEAD_DIM_V: s.headDimV,
    PAGE_SIZE: s.pageSize,
    ...(s.vAliasesK ? { V_ROW4: s.headDimQK / 4 } : {}),
    ...(s.softcap ? { SOFTCAP: s.softcap } : {}),
    ...(isSplit(s) ? { PAGES_PER_BUFFER: s.pagesPerBuffer! } : {}),
  };
}

/**
 * Most query tokens per sequence a step may have and still go to the split-KV decode kernel instead
 * of flashPrefill: speculative verification (2-8 drafted tokens) and the tails of chunked prefill.
 * Up to here a step is short in queries and long in keys, which is the decode kernel's shape: it
 * splits the keys across workgroups (enough of them for a large GPU), where flashPrefill gives
 * each query tile one workgroup and so launches only a few. Its rows are tokens x heads of one KV head,
 * so each K/V page is still read once per row tile (tokens x G rows, BLOCK_M at a time).
 */
export const DECODE_MAX_QUERY_TOKENS = 16;

/**
 * Which kernel a step's attention goes to: true = the split-KV decode kernel (+ mergePartials), when
 * every sequence has 1..maxQueryTokens query tokens (DECODE_MAX_QUERY_TOKENS for splitKvDecode, 1 for
 * mlaDecode); false = flashPrefill. A caller with fixed buffers also asks the kernel (takes()) whether
 * the plan fits them. e.g. qLens [1, 1, 3] -> decode; [1, 17] -> prefill; [] -> prefill.
 */
export function decodeTakes(qLens: readonly number[], maxQueryTokens: number): boolean {
  return qLens.length > 0 && qLens.every((n) => n >= 1 && n <= maxQueryTokens);
}

/** Words per work item: seq, rowStart, kvStart, kvEnd, slot (shaders/common/workItem.wgsl WorkItem). */
export const WORK_ITEM_U32 = 5;

/** A step's work list, one item per workgroup x: what plan() of flashPrefill and the decode kernels returns. */
export interface WorkPlan {
  /** WorkItem [numWorkItems]: (seq, rowStart, kvStart, kvEnd, slot); upload it to the bound work buffer. */
  work: Uint32Array;
  numWorkItems: number;
}

/** Bind arguments of a work-list attention kernel, before its two outputs. */
export interface WorkListArgs {
  /** f32 [numQ][numKvHeads * groupSize][headDimQK], rows in sequence order (qoIndptr). */
  q: GPUBuffer;
  /** The layer's K and V pages (MLA: vPages is kPages). */
  pages: PagedKvBuffers;
  step: StepBuffers;
  /** u32 [numWorkItems][WORK_ITEM_U32], from plan(). */
  work: GPUBuffer;
}

/**
 * Bindings 0..8 of a work-list kernel (pagedKv.wgsl and workItem.wgsl); the kernel adds its two
 * outputs at 9 and 10 (out + lse, or partialO + partialML).
 */
export const WORK_LIST_BINDINGS = {
  q: 0,
  kPages: 1,
  vPages: 2,
  qoIndptr: 3,
  kvIndptr: 4,
  kvPageIndices: 5,
  kvLastPageLen: 6,
  work: 7,
  params: 8,
} as const;

/** The bindings of a work-list kernel over spec's pool, before its two outputs (split pools: 6 more). */
export function workListBindings(s: AttentionSpec): Record<string, number> {
  return { ...WORK_LIST_BINDINGS, ...splitBindings(s) };
}

/** The named buffers of workListBindings(spec) from the bind arguments. */
export function workListBuffers(s: AttentionSpec, b: WorkListArgs): Record<string, GPUBuffer> {
  const { q, pages, step, work } = b;
  return {
    ...splitBuffers(s, pages),
    q,
    kPages: pages.kPages,
    vPages: pages.vPages,
    qoIndptr: step.qoIndptr,
    kvIndptr: step.kvIndptr,
    kvPageIndices: step.kvPageIndices,
    kvLastPageLen: step.kvLastPageLen,
    work,
    params: step.params,
  };
}

/** Work items a work buffer holds, the capacity encode checks against. */
export function workItemsHeld(work: GPUBuffer): number {
  return Math.floor(work.size / (4 * WORK_ITEM_U32));
}
