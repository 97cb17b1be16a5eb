/**
 * Per-step page-table metadata in FlashInfer's CSR layout, built once per step on the host and read
 * by every attention kernel of every layer. Pure bookkeeping: no GPU code.
 *
 * For sequences i = 0..n-1:
 *   qoIndptr[i] .. qoIndptr[i+1]       its query rows (the last qLen_i positions of the sequence)
 *   kvIndptr[i] .. kvIndptr[i+1]       its pages in kvPageIndices, in logical order
 *   kvLastPageLen[i]                   tokens in its last page, 1..pageSize
 *   kvLen_i = (numPages_i - 1) * pageSize + kvLastPageLen[i]
 * Worked example, pageSize 16: a sequence of 40 tokens with block table [7, 2, 9, 4] lists pages
 * [7, 2, 9] (ceil(40/16) = 3; page 4 is reserved but empty) and kvLastPageLen = 40 - 2*16 = 8.
 */
export interface PageTableSequence {
  /** Logical page -> physical page; may hold more pages than kvLen needs. */
  blockTable: readonly number[];
  /** Tokens in the cache for this sequence, including this step's new ones (>= 1). */
  kvLen: number;
  /** Query tokens this step (0 <= qLen <= kvLen). */
  qLen: number;
}

export interface PageTableMetadata {
  numSeqs: number;
  pageSize: number;
  qoIndptr: Uint32Array; // [numSeqs + 1]
  kvIndptr: Uint32Array; // [numSeqs + 1]
  kvPageIndices: Uint32Array; // [kvIndptr[numSeqs]]
  kvLastPageLen: Uint32Array; // [numSeqs]
  qLens: number[];
  kvLens: number[];
}

export function buildPageTable(seqs: readonly PageTableSequence[], pageSize: number): PageTableMetadata {
  const n = seqs.length;
  const qoIndptr = new Uint32Array(n + 1);
  const kvIndptr = new Uint32Array(n + 1);
  const kvLastPageLen = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const { kvLen, qLen, blockTable } = seqs[i];
    if (!(kvLen >= 1) || !(qLen >= 0) || qLen > kvLen) {
      throw new RangeError(`sequence ${i}: need 1 <= kvLen and 0 <= qLen <= kvLen (kvLen ${kvLen}, qLen ${qLen})`);
    }
    const pages = Math.ceil(kvLen / pageSize);
    if (blockTable.length < pages) {
      throw new RangeError(`sequence ${i}: ${kvLen} tokens need ${pages} pages, block table has ${blockTable.length}`);
    }
    qoIndptr[i + 1] = qoIndptr[i] + qLen;
    kvIndptr[i + 1] = kvIndptr[i] + pages;
    kvLastPageLen[i] = kvLen - (pages - 1) * pageSize;
  }
  const kvPageIndices = new Uint32Array(kvIndptr[n]);
  for (let i = 0; i < n; i++) {
    kvPageIndices.set(seqs[i].blockTable.slice(0, kvIndptr[i + 1] - kvIndptr[i]), kvIndptr[i]);
  }
  return {
    numSeqs: n,
    pageSize,
    qoIndptr,
    kvIndptr,
    kvPageIndices,
    kvLastPageLen,
    qLens: seqs.map((s) => s.qLen),
    kvLens: seqs.map((s) => s.kvLen),
  };
}
