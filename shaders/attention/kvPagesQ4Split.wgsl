// kvPagesQ4Split: kvPagesQ4.wgsl over a layer's pool split across up to 4 buffers per K and V (see
// kvPagesFloatSplit.wgsl for the split: page p is local page p % PAGES_PER_BUFFER of buffer
// p / PAGES_PER_BUFFER; each buffer is laid out as kvPagesQ4.wgsl's).
// Bindings: 1 kPages, 16 kPages1, 17 kPages2, 18 kPages3   read u32 (buffers 0..3 of K);
//           2 vPages, 19 vPages1, 20 vPages2, 21 vPages3   read u32 (buffers 0..3 of V).
// Overrides: PAGES_PER_BUFFER.
// requires: Word4, packWord4, SeqView, kvPage, NUM_KV_HEADS, PAGE_SIZE, D4, V_ROW4
// provides: kPages, vPages, KvRow, kRow, vRow, kWord, vWord, kVec, vVec, PAGES_PER_BUFFER

@group(0) @binding(1) var<storage, read> kPages: array<u32>;
@group(0) @binding(16) var<storage, read> kPages1: array<u32>;
@group(0) @binding(17) var<storage, read> kPages2: array<u32>;
@group(0) @binding(18) var<storage, read> kPages3: array<u32>;
@group(0) @binding(2) var<storage, read> vPages: array<u32>;
@group(0) @binding(19) var<storage, read> vPages1: array<u32>;
@group(0) @binding(20) var<storage, read> vPages2: array<u32>;
@group(0) @binding(21) var<storage, read> vPages3: array<u32>;

override PAGES_PER_BUFFER: u32 = 1u;
override KV_ROWS: u32 = NUM_KV_HEADS * PAGE_SIZE;   // derived
override K_W: u32 = D4 / 2u;                        // derived: code words per K row
override V_W: u32 = V_ROW4 / 2u;
override K_G: u32 = (D4 + 7u) / 8u;                 // derived: scales per K row
override V_G: u32 = (V_ROW4 + 7u) / 8u;
override K_PAGE_WORDS: u32 = KV_ROWS * K_W + (KV_ROWS * K_G + 1u) / 2u;
override V_PAGE_WORDS: u32 = KV_ROWS * V_W + (KV_ROWS * V_G + 1u) / 2u;

struct KvRow {
  buf: u32,   // which of the 4 buffers holds the row
  word: u32,  // the row's first code word in that buffer
  scale: u32, // number of its first scale, counted in f16 halves from that buffer's start
}

fn kLoad(b: u32, i: u32) -> u32 {
  if (b == 0u) { return kPages[i]; }
  if (b == 1u) { return kPages1[i]; }
  if (b == 2u) { return kPages2[i]; }
  return kPages3[i];
}
fn vLoad(b: u32, i: u32) -> u32 {
  if (b == 0u) { return vPages[i]; }
  if (b == 1u) { return vPages1[i]; }
  if (b == 2u) { return vPages2[i]; }
  return vPages3[i];
}

fn q4Half(w: u32, n: u32) -> f32 {
  let pair = unpack2x16float(w);
  return select(pair.x, pair.y, (n & 1u) == 1u);
}

fn q4Codes(w: u32, c: u32) -> vec4<f32> {
  let bits = (vec4<u32>(w >> (16u * (c & 1u))) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u);
  return vec4<f32>(vec4<i32>(bits) - vec4<i32>(8));
}

fn kRow(s: SeqView, key: u32, h: u32) -> KvRow {
  let p = kvPage(s, key);
  let base = (p % PAGES_PER_BUFFER) * K_PAGE_WORDS;
  let r = h * PAGE_SIZE + key % PAGE_SIZE;
  return KvRow(p / PAGES_PER_BUFFER, base + r * K_W, 2u * (base + KV_ROWS * K_W) + r * K_G);
}
fn vRow(s: SeqView, key: u32, h: u32) -> KvRow {
  let p = kvPage(s, key);
  let base = (p % PAGES_PER_BUFFER) * V_PAGE_WORDS;
  let r = h * PAGE_SIZE + key % PAGE_SIZE;
  return KvRow(p / PAGES_PER_BUFFER, base + r * V_W, 2u * (base + KV_ROWS * V_W) + r * V_G);
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
