/**
 * One forward step as plain data: what the scheduler (src/engine/scheduler.ts) builds from its KV
 * bookkeeping and the model (src/model/transformer.ts) uploads and runs. Types only. It lives with
 * the kernels, beside the page table it carries, so the model can take it without knowing who made it.
 *
 * T tokens over n sequences, each sequence's new tokens contiguous and in page-table order. Worked
 * example, pageSize 4: sequence A has 5 tokens cached in pages [7, 2] and feeds 1 token (a decode);
 * sequence B is new and feeds 3 tokens into page [4]:
 *   tokenIds  [a5, b0, b1, b2]     positions [5, 0, 1, 2]
 *   slots     [2*4+1, 16, 17, 18]  (page * pageSize + offset: position 5 is page 1 -> 2, offset 1)
 *   pageTable qoIndptr [0, 1, 4], kvIndptr [0, 2, 3], kvPageIndices [7, 2, 4], kvLastPageLen [2, 3]
 *   logitRows [0, 3]               (the last row of each sequence; or 0..T-1 for every row)
 * With a sliding-window page group (gemma2/3's local layers), `local` carries that group's slots,
 * page indices and copies over the same page-table shape.
 */
import type { PageTableMetadata } from './pageTable';

export interface StepBatch {
  /** u32 [T]: the new tokens of every sequence, concatenated in page-table order. */
  tokenIds: Uint32Array;
  /** u32 [T]: each token's position in its sequence (RoPE). */
  positions: Uint32Array;
  /** i32 [T]: the KV slot each token's K/V row is written to = page * pageSize + offset in page. */
  slots: Int32Array;
  /** CSR page table of the step's sequences, including this step's tokens (kvLens) and rows (qLens). */
  pageTable: PageTableMetadata;
  /** u32 [2 * numCopies]: copy-on-write (src page, dst page) pairs, copied in every layer before any write. */
  copies: Uint32Array;
  /** u32 [R]: token rows whose logits the step returns; row r of the result follows token logitRows[r]. */
  logitRows: Uint32Array;
  /**
   * The sliding-window layers' own page group (a second pool), when the scheduler keeps one: the
   * same tokens, lengths and page-table shape, in that group's pages. Leading pages that left the
   * window map to the group's pinned page (never written; the window mask keeps it unread).
   * Absent: every layer uses slots / pageTable / copies above.
   */
  local?: StepBatchGroup;
}

/** One page group's part of a step: where its layers write and read. */
export interface StepBatchGroup {
  /** i32 [T]: each token's slot in this group's pool. */
  slots: Int32Array;
  /** u32 [pageTable.kvIndptr[numSeqs]]: the page table's page indices in this group's pool. */
  kvPageIndices: Uint32Array;
  /** u32 [2 * numCopies]: copy-on-write (src page, dst page) pairs in this group's pool. */
  copies: Uint32Array;
}
