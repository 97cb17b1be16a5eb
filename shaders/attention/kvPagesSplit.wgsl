// kvPagesSplit: where a KV page lives when a layer's pool is split across up to 4 buffers per K and V
// (KvPool.create splits a pool that passes one storage binding). The other KV page layout snippet
// (kvPagesOneBuffer.wgsl gives the same functions for one buffer), composed instead of it only for a
// split pool, so a pool that fits one binding keeps its pipelines and bindings. The row readers
// (kvPagesFloat / kvPagesQ8 / kvPagesQ4.wgsl) are the same for both.
// Page p lives in buffer p / PAGES_PER_BUFFER as its local page p % PAGES_PER_BUFFER, each buffer
// laid out as one buffer of PAGES_PER_BUFFER pages. e.g. PAGES_PER_BUFFER 64, page 70: buffer 1,
// local page 6. WGSL cannot index an array of bindings, so a load picks its buffer by branch.
// Bindings: 1 kPages, 16 kPages1, 17 kPages2, 18 kPages3   read KvWord (buffers 0..3 of K);
//           2 vPages, 19 vPages1, 20 vPages2, 21 vPages3   read KvWord (buffers 0..3 of V);
//           a pool of fewer buffers binds buffer 0 again in the unused slots (never read).
// Overrides: PAGES_PER_BUFFER (pages in each buffer but maybe the last).
// requires: KvWord
// provides: kPages, vPages, KvPageAt, kvPageAt, kLoad, vLoad, PAGES_PER_BUFFER

@group(0) @binding(1) var<storage, read> kPages: array<KvWord>;
@group(0) @binding(16) var<storage, read> kPages1: array<KvWord>;
@group(0) @binding(17) var<storage, read> kPages2: array<KvWord>;
@group(0) @binding(18) var<storage, read> kPages3: array<KvWord>;
@group(0) @binding(2) var<storage, read> vPages: array<KvWord>;
@group(0) @binding(19) var<storage, read> vPages1: array<KvWord>;
@group(0) @binding(20) var<storage, read> vPages2: array<KvWord>;
@group(0) @binding(21) var<storage, read> vPages3: array<KvWord>;

override PAGES_PER_BUFFER: u32 = 1u;

struct KvPageAt {
  buf: u32,  // which of the 4 buffers holds the page
  page: u32, // its index in that buffer
}

fn kvPageAt(p: u32) -> KvPageAt { return KvPageAt(p / PAGES_PER_BUFFER, p % PAGES_PER_BUFFER); }

// KvWord i of buffer b of K / V.
fn kLoad(b: u32, i: u32) -> KvWord {
  if (b == 0u) { return kPages[i]; }
  if (b == 1u) { return kPages1[i]; }
  if (b == 2u) { return kPages2[i]; }
  return kPages3[i];
}
fn vLoad(b: u32, i: u32) -> KvWord {
  if (b == 0u) { return vPages[i]; }
  if (b == 1u) { return vPages1[i]; }
  if (b == 2u) { return vPages2[i]; }
  return vPages3[i];
}
