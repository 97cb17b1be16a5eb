// pagedKv: overrides, uniform params, bindings and index helpers shared by every attention kernel
// that reads the paged KV cache (flashPrefill, splitKvDecode, the naive three-pass baseline).
// Not a kernel on its own: kernels are composed as word4 snippet + a KV row reader (kvPagesFloat /
// kvPagesQ8 / kvPagesQ4.wgsl: kRow, kVec, ...) + a KV page layout (kvPagesOneBuffer / kvPagesSplit.wgsl:
// bindings 1 and 2, and 16..21 for a split pool) + this + their file.
//
// Page table (FlashInfer's CSR layout, built once per step by src/kernels/pageTable.ts):
//   sequence i owns pages kvPageIndices[kvIndptr[i] .. kvIndptr[i+1]], in logical order;
//   kvLen_i = (numPages_i - 1) * PAGE_SIZE + kvLastPageLen[i]   (every listed page non-empty);
//   its queries are rows qoIndptr[i] .. qoIndptr[i+1] of q, the LAST qLen_i positions of the sequence.
// Page layout: [page][NUM_KV_HEADS][PAGE_SIZE][row], a row being D4 Word4s for K, V_ROW4 for V (f32 / f16;
// the quantised snippets add each page's scales after its codes).
//
// Bindings (group 0; a kernel that calls none of the helpers that use one leaves it out):
//   0 q             read     f32 [numQ][NUM_KV_HEADS * GROUP_SIZE][HEAD_DIM_QK] (as vec4)
//   1 kPages        read     K pages (declared by the KV page snippet)
//   2 vPages        read     V pages (declared by the KV page snippet)
//   3 qoIndptr      read     u32 [numSeqs + 1]
//   4 kvIndptr      read     u32 [numSeqs + 1]
//   5 kvPageIndices read     u32 [total pages]
//   6 kvLastPageLen read     u32 [numSeqs]
//   8 params        uniform  Params
//   16..21          read     K / V buffers 1..3 of a pool split across buffers (kvPagesSplit.wgsl only)
// Overrides: NUM_KV_HEADS, GROUP_SIZE (query heads per KV head), HEAD_DIM_QK, HEAD_DIM_V
//   (multiples of 4), PAGE_SIZE, V_ROW4 (MLA only), SOFTCAP (score soft-capping, 0 = off).
// NaN and Inf propagate (NaN in gives NaN out, as the float64 twin): a masked score is exactly NEG
// and is recognised by its bits, never by a float comparison (lavapipe evaluates `NaN != NEG` as
// false, and `s > NEG / 2` is false for NaN everywhere).
// requires: (nothing)
// provides: NUM_KV_HEADS, GROUP_SIZE, HEAD_DIM_QK, HEAD_DIM_V, PAGE_SIZE, D4, DV4, V_ROW4, NEG, Params,
//   q, qoIndptr, kvIndptr, kvPageIndices, kvLastPageLen, params, SeqView, seqView, rowPos,
//   kvPage, kvRowBase, keyVisible, SOFTCAP, capScore

override NUM_KV_HEADS: u32 = 1u;
override GROUP_SIZE: u32 = 1u;
override HEAD_DIM_QK: u32 = 128u;
override HEAD_DIM_V: u32 = 128u;
override PAGE_SIZE: u32 = 16u;
override D4: u32 = HEAD_DIM_QK / 4u;   // derived: vec4 words per K row
override DV4: u32 = HEAD_DIM_V / 4u;   // derived: vec4 words per V row
// Words between consecutive V rows in vPages: DV4, or D4 for MLA, where V is the first HEAD_DIM_V
// values of the latent K row and vPages is bound to the K buffer (nothing is stored twice).
override V_ROW4: u32 = DV4;
const NEG = -1.0e30;                   // masked score; finite so no inf arithmetic is needed
// Gemma-2 style soft-capping of the scaled scores, tanh(s / SOFTCAP) * SOFTCAP, before the softmax
// (attn_logit_softcapping, e.g. 50); 0 = off (the branch folds away at pipeline creation).
override SOFTCAP: f32 = 0.0;

struct Params {
  numSeqs: u32,
  scale: f32,    // softmax scale, folded into Q (flash) or applied to q.k (naive)
  causal: u32,   // 1: query at position p sees keys <= p
  window: u32,   // > 0: query at position p sees keys in (p - window, p]
}

@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> qoIndptr: array<u32>;
@group(0) @binding(4) var<storage, read> kvIndptr: array<u32>;
@group(0) @binding(5) var<storage, read> kvPageIndices: array<u32>;
@group(0) @binding(6) var<storage, read> kvLastPageLen: array<u32>;
@group(0) @binding(8) var<uniform> params: Params;

// Everything a tile needs to know about its sequence.
struct SeqView { qStart: u32, qLen: u32, pageStart: u32, kvLen: u32, rows: u32 }

fn seqView(seq: u32) -> SeqView {
  let qStart = qoIndptr[seq];
  let qLen = qoIndptr[seq + 1u] - qStart;
  let pageStart = kvIndptr[seq];
  let numPages = kvIndptr[seq + 1u] - pageStart;
  let kvLen = (numPages - 1u) * PAGE_SIZE + kvLastPageLen[seq];
  return SeqView(qStart, qLen, pageStart, kvLen, qLen * GROUP_SIZE);
}

// Position of a row's query token: queries are the last qLen positions of the sequence.
// e.g. kvLen 100, qLen 4 (chunked prefill), row 9 with G 4 -> token 2 -> position 98.
fn rowPos(s: SeqView, row: u32) -> u32 { return s.kvLen - s.qLen + row / GROUP_SIZE; }

// Physical page of key `key` of the sequence, through the page table.
fn kvPage(s: SeqView, key: u32) -> u32 { return kvPageIndices[s.pageStart + key / PAGE_SIZE]; }

// Index of the first Word4 of key `key`'s row for kvHead h (f32 / f16 pages, rows of width4 Word4s).
// e.g. page 5, h 1, key 35 (offset 3 in pages of 16), 8 KV heads, D4 32: ((5*8 + 1)*16 + 3)*32 = 21088.
fn kvRowBase(s: SeqView, key: u32, h: u32, width4: u32) -> u32 {
  return ((kvPage(s, key) * NUM_KV_HEADS + h) * PAGE_SIZE + key % PAGE_SIZE) * width4;
}

fn keyVisible(s: SeqView, row: u32, key: u32) -> bool {
  let p = rowPos(s, row);
  if (params.causal != 0u && key > p) { return false; }
  if (params.window > 0u && key + params.window <= p) { return false; }
  return true;
}

// A scaled score after soft-capping. tanh is evaluated only for |x| <= 15 (tanh(15) is 1 in f32),
// because some drivers compute it as (e^2x - 1) / (e^2x + 1), which is inf / inf = NaN for large x;
// the comparison is false for NaN, so a NaN score stays NaN.
fn capScore(s: f32) -> f32 {
  if (SOFTCAP <= 0.0) { return s; }
  let x = s / SOFTCAP;
  return select(tanh(x), sign(x), abs(x) > 15.0) * SOFTCAP;
}
