// kvPagesFloat: the row readers of KV pages of f32 or f16 values, read through the word4 snippet
// (Word4 = 4 values as stored: vec4<f32>, vec4<f16> or two packed f16 pairs). The functions every
// paged attention kernel calls, so one kernel source serves f32, f16, q8 and q4 pages
// (kvPagesQ8.wgsl, kvPagesQ4.wgsl give the same functions over quantised pages). Composed with a
// page layout snippet (kvPagesOneBuffer.wgsl, or kvPagesSplit.wgsl for a pool split across buffers)
// that declares the bindings and says which buffer holds a page.
// Page layout (each buffer, K or V): Word4 [pages][NUM_KV_HEADS][PAGE_SIZE][width4], width4 = D4 for
// K, V_ROW4 for V (MLA: V is the first DV4 Word4s of the latent K row and vPages is the K buffer).
// Row (h, key) of a page at index page of its buffer starts at Word4
// ((page * NUM_KV_HEADS + h) * PAGE_SIZE + key % PAGE_SIZE) * width4; e.g. page 5, h 1, key 35 (offset
// 3 in pages of 16), 8 KV heads, D4 32: ((5*8 + 1)*16 + 3)*32 = 21088.
// Functions: kRow / vRow(s, key, h) -> KvRow, a handle on key `key`'s row for KV head h;
//   kWord / vWord(row, c) -> Word4: Word4 c of the row as a tile stores it (here: as stored);
//   kVec / vVec(row, c) -> vec4<f32>: values 4c .. 4c + 3 of the row.
// requires: Word4, unpackWord4, SeqView, kvPage, KvPageAt, kvPageAt, kLoad, vLoad, NUM_KV_HEADS,
//   PAGE_SIZE, D4, V_ROW4
// provides: KvWord, KvRow, kRow, vRow, kWord, vWord, kVec, vVec

alias KvWord = Word4;

struct KvRow {
  buf: u32,  // which buffer holds the row (kvPageAt)
  word: u32, // index of the row's first Word4 in that buffer
}

fn floatRow(s: SeqView, key: u32, h: u32, width4: u32) -> KvRow {
  let at = kvPageAt(kvPage(s, key));
  return KvRow(at.buf, ((at.page * NUM_KV_HEADS + h) * PAGE_SIZE + key % PAGE_SIZE) * width4);
}

fn kRow(s: SeqView, key: u32, h: u32) -> KvRow { return floatRow(s, key, h, D4); }
fn vRow(s: SeqView, key: u32, h: u32) -> KvRow { return floatRow(s, key, h, V_ROW4); }
fn kWord(r: KvRow, c: u32) -> Word4 { return kLoad(r.buf, r.word + c); }
fn vWord(r: KvRow, c: u32) -> Word4 { return vLoad(r.buf, r.word + c); }
fn kVec(r: KvRow, c: u32) -> vec4<f32> { return unpackWord4(kLoad(r.buf, r.word + c)); }
fn vVec(r: KvRow, c: u32) -> vec4<f32> { return unpackWord4(vLoad(r.buf, r.word + c)); }
