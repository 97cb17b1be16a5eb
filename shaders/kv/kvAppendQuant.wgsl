// kvAppendQuant: scatter the K and V rows of new tokens into their slots in q8 or q4 KV pages,
// quantising on write (the page layout is in shaders/attention/kvPagesQ8.wgsl and kvPagesQ4.wgsl).
//   q8 (KV_BITS 8): one scale per (token, KV head) row: scale = f16(max|x| / 127),
//                   code = clamp(round(x / scale), -127, 127), 4 codes per u32 (value 4c + i in byte i).
//   q4 (KV_BITS 4): one scale per group of 32 values of a row (the last group may be shorter):
//                   scale = f16(m / -8), m the group's value of largest |x| (the first on ties), as
//                   GGUF Q4_0; code = clamp(round(x / scale), -8, 7) + 8, 8 nibbles per u32.
//   A scale of 0 (an all-zero group) gives codes 0. round() is half to even (WGSL), as the float64
//   twin (src/reference/attention.ts quantizeKvRows) does.
//   Non-finite input: a code cannot hold NaN or Inf, so a group holding one (found from the bits:
//   exponent all ones, which no compiler's finite-math assumption can fold away) stores the f16 NaN
//   scale 0x7e00 and codes 0: every value of that group reads back NaN, so attention over the key
//   gives NaN rows as f32 / f16 pages do (NaN in, NaN out; an Inf becomes NaN here, not Inf), and the
//   engine's non-finite-logits check reports it instead of the model silently reading garbage.
// slot = page * PAGE_SIZE + off; slot < 0 skips.
//
// Workgroup: 64 threads, one per (token, kvHead, scale group): it finds the group's scale, writes its
// codes, then its f16 scale. Groups per row: 1 (q8) or ceil(values / 32) (q4); a thread covers group g
// of the K row and group g of the V row, g < max(K groups, V groups).
// Grid: x * y workgroups covering numTokens * NUM_KV_HEADS * max(K_G, V_G) threads, x <= 65535.
// Two scales share a u32 word and may belong to rows written by different threads (two tokens in one
// page), so the pages are bound as atomics: a scale is written by clearing its half (atomicAnd) and
// setting it (atomicOr), which cannot lose the other half. Codes of one group fill whole words.
//
// Bindings:
//   0 newK        read        f32 [numTokens][NUM_KV_HEADS][HEAD_DIM_QK]  (as vec4)
//   1 newV        read        f32 [numTokens][NUM_KV_HEADS][HEAD_DIM_V]   (as vec4)
//   2 slotMapping read        i32 [numTokens]
//   3 kPages      read_write  u32 [pages][K_PAGE_WORDS] (codes, then scales; declared by
//   4 vPages      read_write  u32 [pages][V_PAGE_WORDS]  kvPagesWriteQuant.wgsl)
//   5 params      uniform     { numTokens }
//   6 pageRange   uniform     { firstPage, numPages }: the pages kPages / vPages hold (kvPagesWriteRange.wgsl;
//                             a split pool is written one buffer per dispatch, as kvAppend.wgsl)
// Overrides: NUM_KV_HEADS, HEAD_DIM_QK, HEAD_DIM_V (multiples of 8 for q4, of 4 for q8), PAGE_SIZE,
//   KV_BITS (8 or 4), APPEND_V (false for MLA: the latent row in kPages is both K and V).
// requires: storeWord, storeHalf, bufferPage, NOT_HERE

override NUM_KV_HEADS: u32 = 1u;
override HEAD_DIM_QK: u32 = 128u;
override HEAD_DIM_V: u32 = 128u;
override PAGE_SIZE: u32 = 16u;
override KV_BITS: u32 = 8u;
override APPEND_V: bool = true;
override D4: u32 = HEAD_DIM_QK / 4u;   // derived, never set from TS
override DV4: u32 = HEAD_DIM_V / 4u;
override KV_ROWS: u32 = NUM_KV_HEADS * PAGE_SIZE;
override Q8: bool = KV_BITS == 8u;
override K_W: u32 = select(D4 / 2u, D4, Q8);          // code words per row
override V_W: u32 = select(DV4 / 2u, DV4, Q8);
override K_G: u32 = select((D4 + 7u) / 8u, 1u, Q8);   // scales per row
override V_G: u32 = select((DV4 + 7u) / 8u, 1u, Q8);
override K_PAGE_WORDS: u32 = KV_ROWS * K_W + (KV_ROWS * K_G + 1u) / 2u;
override V_PAGE_WORDS: u32 = KV_ROWS * V_W + (KV_ROWS * V_G + 1u) / 2u;

struct Params { numTokens: u32 }

@group(0) @binding(0) var<storage, read> newK: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> newV: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> slotMapping: array<i32>;
@group(0) @binding(5) var<uniform> params: Params;

fn loadNew(isV: bool, i: u32) -> vec4<f32> {
  if (isV) { return newV[i]; }
  return newK[i];
}

// The f16 value of `h` (an f16 bit pattern), decoded with integer ops: lavapipe folded
// unpack2x16float(pack2x16float(x)) back to x, so codes were rounded against the unrounded scale
// (off by one code in ~5% of q8 values). Inf / NaN patterns are never decoded (non-finite groups
// take scale 0 for their codes).
fn halfBitsToF32(h: u32) -> f32 {
  let e = (h >> 10u) & 31u;
  let m = h & 1023u;
  let mag = select(f32(m) * exp2(-24.0), f32(1024u + m) * exp2(f32(e) - 25.0), e != 0u);
  return select(mag, -mag, (h & 0x8000u) != 0u);
}

// Group g of the row (t, h) of K (isV false) or V into row `row` of page `page`.
fn appendGroup(isV: bool, t: u32, h: u32, g: u32, page: u32, row: u32) {
  let width4 = select(D4, DV4, isV);
  let rowWords = select(K_W, V_W, isV);
  let groups = select(K_G, V_G, isV);
  let pageWords = select(K_PAGE_WORDS, V_PAGE_WORDS, isV);
  let c0 = select(g * 8u, 0u, Q8);                  // the group's Word4s [c0, c1)
  let c1 = select(min(c0 + 8u, width4), width4, Q8);
  let src = (t * NUM_KV_HEADS + h) * width4;
  var amax = 0.0;
  var m = 0.0; // the value of largest |x|, the first on ties
  var finite = true;
  for (var c = c0; c < c1; c++) {
    let x = loadNew(isV, src + c);
    finite = finite && all((bitcast<vec4<u32>>(x) & vec4<u32>(0x7f800000u)) != vec4<u32>(0x7f800000u));
    for (var i = 0u; i < 4u; i++) {
      if (abs(x[i]) > amax) { amax = abs(x[i]); m = x[i]; }
    }
  }
  let fitBits = pack2x16float(vec2<f32>(select(m / -8.0, amax / 127.0, Q8), 0.0)) & 0xffffu;
  let scaleBits = select(0x7e00u, fitBits, finite); // f16 NaN: the group reads back NaN
  let scale = select(0.0, halfBitsToF32(scaleBits), finite); // 0: codes 0
  let lo = select(-8.0, -127.0, Q8);
  let hi = select(7.0, 127.0, Q8);
  let base = page * pageWords;
  if (Q8) {
    for (var c = c0; c < c1; c++) {
      let x = loadNew(isV, src + c);
      let q = vec4<i32>(select(vec4<f32>(0.0), clamp(round(x / scale), vec4<f32>(lo), vec4<f32>(hi)), scale != 0.0));
      let b = vec4<u32>(bitcast<vec4<u32>>(q) & vec4<u32>(0xffu)) << vec4<u32>(0u, 8u, 16u, 24u);
      storeWord(isV, base + row * rowWords + c, b.x | b.y | b.z | b.w);
    }
  } else {
    for (var c = c0; c < c1; c += 2u) {
      var w = 0u;
      for (var k = 0u; k < 2u; k++) {
        let x = loadNew(isV, src + c + k);
        let q = select(vec4<f32>(0.0), clamp(round(x / scale), vec4<f32>(lo), vec4<f32>(hi)), scale != 0.0);
        let n = vec4<u32>(vec4<i32>(q) + vec4<i32>(8)) << (vec4<u32>(0u, 4u, 8u, 12u) + vec4<u32>(16u * k));
        w |= n.x | n.y | n.z | n.w;
      }
      storeWord(isV, base + row * rowWords + c / 2u, w);
    }
  }
  let n = row * groups + g;
  storeHalf(isV, base + KV_ROWS * rowWords + n / 2u, n, scaleBits);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let cols = select(K_G, max(K_G, V_G), APPEND_V);
  let i = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (i >= params.numTokens * NUM_KV_HEADS * cols) { return; }
  let g = i % cols;
  let h = (i / cols) % NUM_KV_HEADS;
  let t = i / (cols * NUM_KV_HEADS);
  let slot = slotMapping[t];
  if (slot < 0) { return; }
  let page = bufferPage(u32(slot) / PAGE_SIZE);
  if (page == NOT_HERE) { return; } // another dispatch's buffer holds it
  let row = h * PAGE_SIZE + u32(slot) % PAGE_SIZE;
  if (g < K_G) { appendGroup(false, t, h, g, page, row); }
  if (APPEND_V && g < V_G) { appendGroup(true, t, h, g, page, row); }
}
