// kvPagesWriteQuantSplit: kvPagesWriteQuant.wgsl over a pool split across up to 4 buffers per K and V
// (see shaders/attention/kvPagesFloatSplit.wgsl): pages are whole blocks of K_PAGE_WORDS / V_PAGE_WORDS,
// so word i of the pool is word i % BUF_WORDS of buffer i / BUF_WORDS (BUF_WORDS = PAGES_PER_BUFFER
// pages' words). e.g. PAGES_PER_BUFFER 4, K_PAGE_WORDS 100: word 450 -> buffer 1, word 50.
// Bindings: 3 kPages, 22 kPages1, 23 kPages2, 24 kPages3   read_write atomic<u32> (buffers 0..3 of K);
//           4 vPages, 25 vPages1, 26 vPages2, 27 vPages3   read_write atomic<u32> (buffers 0..3 of V);
//           a pool of fewer buffers binds buffer 0 again in the unused slots (never written).
// Overrides: PAGES_PER_BUFFER. Word indices count the whole pool, so it must hold < 2^32 words
//   (KvPool.create checks).
// requires: K_PAGE_WORDS, V_PAGE_WORDS
// provides: kPages, vPages, storeWord, storeHalf, PAGES_PER_BUFFER

@group(0) @binding(3) var<storage, read_write> kPages: array<atomic<u32>>;
@group(0) @binding(22) var<storage, read_write> kPages1: array<atomic<u32>>;
@group(0) @binding(23) var<storage, read_write> kPages2: array<atomic<u32>>;
@group(0) @binding(24) var<storage, read_write> kPages3: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> vPages: array<atomic<u32>>;
@group(0) @binding(25) var<storage, read_write> vPages1: array<atomic<u32>>;
@group(0) @binding(26) var<storage, read_write> vPages2: array<atomic<u32>>;
@group(0) @binding(27) var<storage, read_write> vPages3: array<atomic<u32>>;

override PAGES_PER_BUFFER: u32 = 1u;

// Word j of buffer b of K (isV false) or V: clear the bits of `keep`'s complement, then set `bits`
// (storeWord: keep 0, set w; storeHalf: keep the other half).
fn kMerge(b: u32, j: u32, keep: u32, bits: u32) {
  if (b == 0u) { atomicAnd(&kPages[j], keep); atomicOr(&kPages[j], bits); }
  else if (b == 1u) { atomicAnd(&kPages1[j], keep); atomicOr(&kPages1[j], bits); }
  else if (b == 2u) { atomicAnd(&kPages2[j], keep); atomicOr(&kPages2[j], bits); }
  else { atomicAnd(&kPages3[j], keep); atomicOr(&kPages3[j], bits); }
}
fn vMerge(b: u32, j: u32, keep: u32, bits: u32) {
  if (b == 0u) { atomicAnd(&vPages[j], keep); atomicOr(&vPages[j], bits); }
  else if (b == 1u) { atomicAnd(&vPages1[j], keep); atomicOr(&vPages1[j], bits); }
  else if (b == 2u) { atomicAnd(&vPages2[j], keep); atomicOr(&vPages2[j], bits); }
  else { atomicAnd(&vPages3[j], keep); atomicOr(&vPages3[j], bits); }
}

fn mergeWord(isV: bool, i: u32, keep: u32, bits: u32) {
  let words = PAGES_PER_BUFFER * select(K_PAGE_WORDS, V_PAGE_WORDS, isV);
  if (isV) { vMerge(i / words, i % words, keep, bits); } else { kMerge(i / words, i % words, keep, bits); }
}

// A code word is written by one thread only, so and-then-or is a plain store of w.
fn storeWord(isV: bool, i: u32, w: u32) { mergeWord(isV, i, 0u, w); }

fn storeHalf(isV: bool, i: u32, n: u32, h: u32) {
  let shift = 16u * (n & 1u);
  mergeWord(isV, i, ~(0xffffu << shift), h << shift);
}
