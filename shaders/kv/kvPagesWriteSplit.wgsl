// kvPagesWriteSplit: kvPagesWrite.wgsl over a pool split across up to 4 buffers per K and V (see
// shaders/attention/kvPagesFloatSplit.wgsl): page p is local page p % PAGES_PER_BUFFER of buffer
// p / PAGES_PER_BUFFER, so Word4 i of the pool is Word4 i % BUF_WORDS of buffer i / BUF_WORDS.
// e.g. PAGES_PER_BUFFER 4, 2 KV heads, pages of 8, D4 4: K_BUF_WORDS 256; i 300 -> buffer 1, Word4 44.
// Bindings: 3 kPages, 22 kPages1, 23 kPages2, 24 kPages3   read_write Word4 (buffers 0..3 of K);
//           4 vPages, 25 vPages1, 26 vPages2, 27 vPages3   read_write Word4 (buffers 0..3 of V);
//           a pool of fewer buffers binds buffer 0 again in the unused slots (never written).
// Overrides: PAGES_PER_BUFFER. Word4 indices count the whole pool, so it must hold < 2^32 Word4s
//   (KvPool.create checks).
// requires: Word4, NUM_KV_HEADS, PAGE_SIZE, D4, DV4
// provides: kPages, vPages, storeK, storeV, PAGES_PER_BUFFER

@group(0) @binding(3) var<storage, read_write> kPages: array<Word4>;
@group(0) @binding(22) var<storage, read_write> kPages1: array<Word4>;
@group(0) @binding(23) var<storage, read_write> kPages2: array<Word4>;
@group(0) @binding(24) var<storage, read_write> kPages3: array<Word4>;
@group(0) @binding(4) var<storage, read_write> vPages: array<Word4>;
@group(0) @binding(25) var<storage, read_write> vPages1: array<Word4>;
@group(0) @binding(26) var<storage, read_write> vPages2: array<Word4>;
@group(0) @binding(27) var<storage, read_write> vPages3: array<Word4>;

override PAGES_PER_BUFFER: u32 = 1u;
override K_BUF_WORDS: u32 = PAGES_PER_BUFFER * NUM_KV_HEADS * PAGE_SIZE * D4; // derived
override V_BUF_WORDS: u32 = PAGES_PER_BUFFER * NUM_KV_HEADS * PAGE_SIZE * DV4; // derived

fn storeK(i: u32, w: Word4) {
  let b = i / K_BUF_WORDS;
  let j = i % K_BUF_WORDS;
  if (b == 0u) { kPages[j] = w; } else if (b == 1u) { kPages1[j] = w; } else if (b == 2u) { kPages2[j] = w; } else {
    kPages3[j] = w;
  }
}
fn storeV(i: u32, w: Word4) {
  let b = i / V_BUF_WORDS;
  let j = i % V_BUF_WORDS;
  if (b == 0u) { vPages[j] = w; } else if (b == 1u) { vPages1[j] = w; } else if (b == 2u) { vPages2[j] = w; } else {
    vPages3[j] = w;
  }
}
