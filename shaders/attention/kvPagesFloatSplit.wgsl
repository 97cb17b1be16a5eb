// kvPagesFloatSplit: kvPagesFloat.wgsl over a layer's pool split across up to 4 buffers per K and V
// (KvPool.create splits a pool that passes one storage binding). Composed instead of kvPagesFloat
// only for a split pool, so a pool that fits one binding keeps its pipelines and bindings.
// WGSL cannot index an array of bindings, so a row's loads pick their buffer by branch (kLoad / vLoad).
// Page p lives in buffer p / PAGES_PER_BUFFER as its local page p % PAGES_PER_BUFFER, each buffer laid
// out as kvPagesFloat's (Word4 [PAGES_PER_BUFFER][NUM_KV_HEADS][PAGE_SIZE][width4]).
// e.g. PAGES_PER_BUFFER 64, page 70: buffer 1, local page 6.
// Bindings: 1 kPages, 16 kPages1, 17 kPages2, 18 kPages3   read Word4 (buffers 0..3 of K);
//           2 vPages, 19 vPages1, 20 vPages2, 21 vPages3   read Word4 (buffers 0..3 of V);
//           a pool of fewer buffers binds buffer 0 again in the unused slots (never read).
// Overrides: PAGES_PER_BUFFER (pages in each buffer but maybe the last).
// requires: Word4, unpackWord4, SeqView, kvPage, NUM_KV_HEADS, PAGE_SIZE, D4, V_ROW4
// provides: kPages, vPages, KvRow, kRow, vRow, kWord, vWord, kVec, vVec, PAGES_PER_BUFFER

@group(0) @binding(1) var<storage, read> kPages: array<Word4>;
@group(0) @binding(16) var<storage, read> kPages1: array<Word4>;
@group(0) @binding(17) var<storage, read> kPages2: array<Word4>;
@group(0) @binding(18) var<storage, read> kPages3: array<Word4>;
@group(0) @binding(2) var<storage, read> vPages: array<Word4>;
@group(0) @binding(19) var<storage, read> vPages1: array<Word4>;
@group(0) @binding(20) var<storage, read> vPages2: array<Word4>;
@group(0) @binding(21) var<storage, read> vPages3: array<Word4>;

override PAGES_PER_BUFFER: u32 = 1u;

struct KvRow {
  buf: u32,  // which of the 4 buffers holds the row
  word: u32, // index of the row's first Word4 in that buffer
}

fn splitRow(s: SeqView, key: u32, h: u32, width4: u32) -> KvRow {
  let p = kvPage(s, key);
  let local = p % PAGES_PER_BUFFER;
  return KvRow(p / PAGES_PER_BUFFER, ((local * NUM_KV_HEADS + h) * PAGE_SIZE + key % PAGE_SIZE) * width4);
}

fn kLoad(b: u32, i: u32) -> Word4 {
  if (b == 0u) { return kPages[i]; }
  if (b == 1u) { return kPages1[i]; }
  if (b == 2u) { return kPages2[i]; }
  return kPages3[i];
}
fn vLoad(b: u32, i: u32) -> Word4 {
  if (b == 0u) { return vPages[i]; }
  if (b == 1u) { return vPages1[i]; }
  if (b == 2u) { return vPages2[i]; }
  return vPages3[i];
}

fn kRow(s: SeqView, key: u32, h: u32) -> KvRow { return splitRow(s, key, h, D4); }
fn vRow(s: SeqView, key: u32, h: u32) -> KvRow { return splitRow(s, key, h, V_ROW4); }
fn kWord(r: KvRow, c: u32) -> Word4 { return kLoad(r.buf, r.word + c); }
fn vWord(r: KvRow, c: u32) -> Word4 { return vLoad(r.buf, r.word + c); }
fn kVec(r: KvRow, c: u32) -> vec4<f32> { return unpackWord4(kLoad(r.buf, r.word + c)); }
fn vVec(r: KvRow, c: u32) -> vec4<f32> { return unpackWord4(vLoad(r.buf, r.word + c)); }
