// kvPagesQ4: KV pages of 4-bit codes with one f16 scale per group of 32 values of a (token, KV head)
// row, dequantised in registers: value = (nibble - 8) * scale. Written by kvAppendQuant.wgsl (as GGUF
// Q4_0: scale = f16(m / -8), m the group's value of largest |x|, code = clamp(round(x / scale), -8, 7)).
// Composed with the f32 word4 snippet, like kvPagesQ8.wgsl (no `shader-f16` needed), and with a page
// layout snippet (kvPagesOneBuffer.wgsl, or kvPagesSplit.wgsl for a pool split across buffers); the
// layout below is each buffer's, page p being the page's index in its buffer.
//
// Page layout (each buffer, K or V; u32 words; ROWS = NUM_KV_HEADS * PAGE_SIZE; a row of n values,
// n a multiple of 8, has W = n / 8 code words and G = ceil(n / 32) scales):
//   page p starts at word p * PAGE_WORDS, PAGE_WORDS = ROWS * W + ceil(ROWS * G / 2)
//   codes   u32 [NUM_KV_HEADS][PAGE_SIZE][W]  value 8c + i of a row in bits 4i .. 4i + 3 of word c
//   scales  f16 [NUM_KV_HEADS][PAGE_SIZE][G]  two per u32 word, scale 2j in the low half of word j;
//                                             scale g of row r is number r * G + g (values 32g .. 32g + 31)
// Worked example: 8 KV heads, pages of 16, d 128: ROWS 128, W 16, G 4, PAGE_WORDS 2048 + 256 = 2304
// (9216 bytes, f16: 32768); values 40..43 (Word4 c = 10) of key offset 3, KV head 1 (row 19) of page
// 5: code word 5 * 2304 + 19 * 16 + 5 = 11829, high 16 bits; scale number 19 * 4 + 1 = 77, in word
// 5 * 2304 + 2048 + 38 = 13606, high half.
// V rows are V_ROW4 Word4s wide (MLA: V is the first DV4 words of the latent K row, same scales).
// requires: Word4, packWord4, SeqView, kvPage, KvPageAt, kvPageAt, kLoad, vLoad, NUM_KV_HEADS,
//   PAGE_SIZE, D4, V_ROW4
// provides: KvWord, KvRow, kRow, vRow, kWord, vWord, kVec, vVec

alias KvWord = u32;

override KV_ROWS: u32 = NUM_KV_HEADS * PAGE_SIZE;   // derived
override K_W: u32 = D4 / 2u;                        // derived: code words per K row
override V_W: u32 = V_ROW4 / 2u;
override K_G: u32 = (D4 + 7u) / 8u;                 // derived: scales per K row
override V_G: u32 = (V_ROW4 + 7u) / 8u;
override K_PAGE_WORDS: u32 = KV_ROWS * K_W + (KV_ROWS * K_G + 1u) / 2u;
override V_PAGE_WORDS: u32 = KV_ROWS * V_W + (KV_ROWS * V_G + 1u) / 2u;

struct KvRow {
  buf: u32,   // which buffer holds the row (kvPageAt)
  word: u32,  // the row's first code word in that buffer
  scale: u32, // number of its first scale, counted in f16 halves from that buffer's start
}

fn q4Half(w: u32, n: u32) -> f32 {
  let pair = unpack2x16float(w);
  return select(pair.x, pair.y, (n & 1u) == 1u);
}

// Values 4c .. 4c + 3 of a code word (c even: low 16 bits, odd: high).
fn q4Codes(w: u32, c: u32) -> vec4<f32> {
  let bits = (vec4<u32>(w >> (16u * (c & 1u))) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u);
  return vec4<f32>(vec4<i32>(bits) - vec4<i32>(8));
}

fn kRow(s: SeqView, key: u32, h: u32) -> KvRow {
  let at = kvPageAt(kvPage(s, key));
  let base = at.page * K_PAGE_WORDS;
  let r = h * PAGE_SIZE + key % PAGE_SIZE;
  return KvRow(at.buf, base + r * K_W, 2u * (base + KV_ROWS * K_W) + r * K_G);
}
fn vRow(s: SeqView, key: u32, h: u32) -> KvRow {
  let at = kvPageAt(kvPage(s, key));
  let base = at.page * V_PAGE_WORDS;
  let r = h * PAGE_SIZE + key % PAGE_SIZE;
  return KvRow(at.buf, base + r * V_W, 2u * (base + KV_ROWS * V_W) + r * V_G);
}
fn kVec(r: KvRow, c: u32) -> vec4<f32> {
  let n = r.scale + c / 8u;
  return q4Codes(kLoad(r.buf, r.word + c / 2u), c) * q4Half(kLoad(r.buf, n / 2u), n);
}
fn vVec(r: KvRow, c: u32) -> vec4<f32> {
  let n = r.scale + c / 8u;
  return q4Codes(vLoad(r.buf, r.word + c / 2u), c) * q4Half(vLoad(r.buf, n / 2u), n);
}
fn kWord(r: KvRow, c: u32) -> Word4 { return packWord4(kVec(r, c)); }
fn vWord(r: KvRow, c: u32) -> Word4 { return packWord4(vVec(r, c)); }
