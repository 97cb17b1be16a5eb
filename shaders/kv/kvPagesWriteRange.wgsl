// kvPagesWriteRange: which pages of a layer's pool the page buffers bound to a KV-writing kernel
// (kvAppend, kvAppendQuant) hold: the write side's one layout snippet, for a pool of one buffer and a
// split one alike. A pool split across buffers (KvPool.create: page p in buffer p / pagesPerBuffer)
// is written one buffer per dispatch (KvAppend.encode), each dispatch binding that buffer as
// kPages / vPages and its page range here, and skipping the slots other buffers hold. So the stores
// (kvPagesWrite.wgsl, kvPagesWriteQuant.wgsl) see one buffer, with the same word indices as the
// readers' layout (kvPagesOneBuffer / kvPagesSplit.wgsl). A pool of one buffer: one dispatch of
// first page 0 and every page.
// e.g. pagesPerBuffer 64, slot 70 * 16 + 3 (page 70): written by dispatch 1 (pages 64 .. 127) as its
// page 6; dispatches 0, 2, 3 skip it.
// Bindings: 6 pageRange uniform { firstPage, numPages }
// requires: (nothing)
// provides: PageRange, pageRange, NOT_HERE, bufferPage

struct PageRange { firstPage: u32, numPages: u32 }

@group(0) @binding(6) var<uniform> pageRange: PageRange;

const NOT_HERE: u32 = 0xffffffffu;

// Page p of the pool as a page of the bound buffers, or NOT_HERE when another dispatch writes it.
fn bufferPage(p: u32) -> u32 {
  let local = p - pageRange.firstPage; // wraps past 2^31 for p < firstPage, so one test covers both ends
  return select(NOT_HERE, local, local < pageRange.numPages);
}
