// kvAppend: scatter the K and V rows of new tokens into their slots in the paged KV cache.
//
// Page layout (one layer): pages[page][kvHead][tokenInPage][dim], in Word4s of 4 dims.
//   word index = ((page * NUM_KV_HEADS + h) * PAGE_SIZE + off) * D4 + c
//   e.g. page 5, h 1, off 3, c 2 with NUM_KV_HEADS 8, PAGE_SIZE 16, D4 32:
//   ((5*8 + 1)*16 + 3)*32 + 2 = 21090
// slot = page * PAGE_SIZE + off (e.g. page 5, off 3, PAGE_SIZE 16 -> slot 83); slot < 0 skips.
//
// Workgroup: 64 threads, one per (token, kvHead, vec4 column); columns run to max(D4, DV4).
// Grid: x * y workgroups covering numTokens * NUM_KV_HEADS * max(D4, DV4) threads, x <= 65535.
//
// Bindings:
//   0 newK        read        f32 [numTokens][NUM_KV_HEADS][HEAD_DIM_QK]  (as vec4)
//   1 newV        read        f32 [numTokens][NUM_KV_HEADS][HEAD_DIM_V]   (as vec4)
//   2 slotMapping read        i32 [numTokens]
//   3 kPages      read_write  Word4 [pages][NUM_KV_HEADS][PAGE_SIZE][D4]    (declared by kvPagesWrite.wgsl)
//   4 vPages      read_write  Word4 [pages][NUM_KV_HEADS][PAGE_SIZE][DV4]
//   5 params      uniform     { numTokens }
//   6 pageRange   uniform     { firstPage, numPages }: the pages kPages / vPages hold (kvPagesWriteRange.wgsl)
// A pool split across buffers is written one buffer per dispatch: page, in the index above, is the
// slot's page in the bound buffer (bufferPage); slots of pages another buffer holds are skipped.
// Overrides: NUM_KV_HEADS, HEAD_DIM_QK, HEAD_DIM_V (multiples of 4), PAGE_SIZE, APPEND_V (false
//   for MLA: the latent row in kPages is both K and V; newV and vPages are then placeholders).
// requires: Word4, packWord4 (shaders/common/word4*.wgsl), storeK, storeV, bufferPage, NOT_HERE

override NUM_KV_HEADS: u32 = 1u;
override HEAD_DIM_QK: u32 = 128u;
override HEAD_DIM_V: u32 = 128u;
override PAGE_SIZE: u32 = 16u;
override APPEND_V: bool = true;
override D4: u32 = HEAD_DIM_QK / 4u;   // derived, never set from TS
override DV4: u32 = HEAD_DIM_V / 4u;

struct Params { numTokens: u32 }

@group(0) @binding(0) var<storage, read> newK: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> newV: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> slotMapping: array<i32>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let cols = select(D4, max(D4, DV4), APPEND_V);
  let i = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (i >= params.numTokens * NUM_KV_HEADS * cols) { return; }
  let c = i % cols;
  let h = (i / cols) % NUM_KV_HEADS;
  let t = i / (cols * NUM_KV_HEADS);
  let slot = slotMapping[t];
  if (slot < 0) { return; }
  let page = bufferPage(u32(slot) / PAGE_SIZE);
  if (page == NOT_HERE) { return; } // another dispatch's buffer holds it
  let off = u32(slot) % PAGE_SIZE;
  let row = (page * NUM_KV_HEADS + h) * PAGE_SIZE + off;
  if (c < D4) { storeK(row * D4 + c, packWord4(newK[(t * NUM_KV_HEADS + h) * D4 + c])); }
  if (APPEND_V && c < DV4) { storeV(row * DV4 + c, packWord4(newV[(t * NUM_KV_HEADS + h) * DV4 + c])); }
}
