// kvPagesQ8: KV pages of int8 codes with one f16 scale per (token, KV head) row, dequantised in
// registers: value = code * scale. Written by kvAppendQuant.wgsl (scale = f16(max|x| / 127),
// code = round(x / scale)). Composed with the f32 word4 snippet: kWord / vWord hand tiles the
// dequantised f32 values, so the kernels' arithmetic is f32 on every adapter (no `shader-f16` needed;
// the f16 scale is read with unpack2x16float). Composed with a page layout snippet
// (kvPagesOneBuffer.wgsl, or kvPagesSplit.wgsl for a pool split across buffers) that declares the
// bindings and says which buffer holds a page; the layout below is each buffer's, page p being the
// page's index in its buffer.
//
// Page layout (each buffer, K or V; u32 words; ROWS = NUM_KV_HEADS * PAGE_SIZE, W = values per row / 4):
//   page p starts at word p * PAGE_WORDS, PAGE_WORDS = ROWS * W + ceil(ROWS / 2)
//   codes   u32 [NUM_KV_HEADS][PAGE_SIZE][W]  value 4c + i of a row in byte i of its word c (int8)
//   scales  f16 [NUM_KV_HEADS][PAGE_SIZE]     two per u32 word, row 2j in the low half of word j
//                                             (padding half, if ROWS is odd, never read)
// Row (h, off) of page p = row r = h * PAGE_SIZE + off: codes at p * PAGE_WORDS + r * W, its scale in
// word p * PAGE_WORDS + ROWS * W + r / 2, half r % 2. A page is one contiguous block, so copyPages
// (copy-on-write) and prefix sharing move it whole, scales included.
// Worked example: 8 KV heads, pages of 16, d 128: ROWS 128, W 32, PAGE_WORDS 4096 + 64 = 4160
// (16640 bytes, f16: 32768); key offset 3 of KV head 1 in page 5: row 19, codes from word
// 5 * 4160 + 19 * 32 = 21408, scale in word 5 * 4160 + 4096 + 9 = 24905, high half.
// V rows are V_ROW4 Word4s wide (MLA: V is the first DV4 words of the latent K row, same scale).
// requires: Word4, packWord4, SeqView, kvPage, KvPageAt, kvPageAt, kLoad, vLoad, NUM_KV_HEADS,
//   PAGE_SIZE, D4, V_ROW4
// provides: KvWord, KvRow, kRow, vRow, kWord, vWord, kVec, vVec

alias KvWord = u32;

override KV_ROWS: u32 = NUM_KV_HEADS * PAGE_SIZE;                   // derived
override K_PAGE_WORDS: u32 = KV_ROWS * D4 + (KV_ROWS + 1u) / 2u;      // derived
override V_PAGE_WORDS: u32 = KV_ROWS * V_ROW4 + (KV_ROWS + 1u) / 2u;  // derived

struct KvRow {
  buf: u32,   // which buffer holds the row (kvPageAt)
  word: u32,  // the row's first code word in that buffer
  scale: f32, // its scale
}

fn q8Scale(w: u32, row: u32) -> f32 {
  let pair = unpack2x16float(w);
  return select(pair.x, pair.y, (row & 1u) == 1u);
}

// Four int8 codes of one word, sign-extended: shift each byte to the top, then arithmetic shift down.
fn q8Codes(w: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}

fn kRow(s: SeqView, key: u32, h: u32) -> KvRow {
  let at = kvPageAt(kvPage(s, key));
  let base = at.page * K_PAGE_WORDS;
  let r = h * PAGE_SIZE + key % PAGE_SIZE;
  return KvRow(at.buf, base + r * D4, q8Scale(kLoad(at.buf, base + KV_ROWS * D4 + r / 2u), r));
}
fn vRow(s: SeqView, key: u32, h: u32) -> KvRow {
  let at = kvPageAt(kvPage(s, key));
  let base = at.page * V_PAGE_WORDS;
  let r = h * PAGE_SIZE + key % PAGE_SIZE;
  return KvRow(at.buf, base + r * V_ROW4, q8Scale(vLoad(at.buf, base + KV_ROWS * V_ROW4 + r / 2u), r));
}
fn kVec(r: KvRow, c: u32) -> vec4<f32> { return q8Codes(kLoad(r.buf, r.word + c)) * r.scale; }
fn vVec(r: KvRow, c: u32) -> vec4<f32> { return q8Codes(vLoad(r.buf, r.word + c)) * r.scale; }
fn kWord(r: KvRow, c: u32) -> Word4 { return packWord4(kVec(r, c)); }
fn vWord(r: KvRow, c: u32) -> Word4 { return packWord4(vVec(r, c)); }
