// kvPagesFloat: KV pages of f32 or f16 values, read through the word4 snippet (Word4 = 4 values as
// stored: vec4<f32>, vec4<f16> or two packed f16 pairs). The row readers every paged attention kernel
// calls, so one kernel source serves f32, f16, q8 and q4 pages (kvPagesQ8.wgsl, kvPagesQ4.wgsl give
// the same functions over quantised pages).
// Page layout (one buffer, K or V): Word4 [numPages][NUM_KV_HEADS][PAGE_SIZE][width4], width4 = D4 for
// K, V_ROW4 for V (MLA: V is the first DV4 Word4s of the latent K row and vPages is the K buffer).
// Bindings: 1 kPages read Word4 [numPages][NUM_KV_HEADS][PAGE_SIZE][D4],
//           2 vPages read Word4 [numPages][NUM_KV_HEADS][PAGE_SIZE][V_ROW4].
// Functions: kRow / vRow(s, key, h) -> KvRow, a handle on key `key`'s row for KV head h;
//   kWord / vWord(row, c) -> Word4: Word4 c of the row as a tile stores it (here: as stored);
//   kVec / vVec(row, c) -> vec4<f32>: values 4c .. 4c + 3 of the row.
// requires: Word4, unpackWord4, SeqView, kvRowBase, D4, V_ROW4
// provides: kPages, vPages, KvRow, kRow, vRow, kWord, vWord, kVec, vVec

@group(0) @binding(1) var<storage, read> kPages: array<Word4>;
@group(0) @binding(2) var<storage, read> vPages: array<Word4>;

alias KvRow = u32; // index of the row's first Word4

fn kRow(s: SeqView, key: u32, h: u32) -> KvRow { return kvRowBase(s, key, h, D4); }
fn vRow(s: SeqView, key: u32, h: u32) -> KvRow { return kvRowBase(s, key, h, V_ROW4); }
fn kWord(r: KvRow, c: u32) -> Word4 { return kPages[r + c]; }
fn vWord(r: KvRow, c: u32) -> Word4 { return vPages[r + c]; }
fn kVec(r: KvRow, c: u32) -> vec4<f32> { return unpackWord4(kPages[r + c]); }
fn vVec(r: KvRow, c: u32) -> vec4<f32> { return unpackWord4(vPages[r + c]); }
