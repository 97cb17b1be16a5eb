// q6_K (GGUF Q6_K): super-blocks of 256 values in 210 bytes: ql (128 bytes of low nibbles) at 0,
// qh (64 bytes of 2-bit high parts) at 128, 16 int8 scales at 192, f16 d at 208. Per 128 values n
// (0, 1) and quarter i (0..3), value 128n + 32i + l (l < 32) has
//   low 4 bits: byte 64n + 32 (i % 2) + l of ql, low nibble for i < 2, high nibble for i >= 2,
//   high 2 bits: bits 2i, 2i + 1 of byte 32n + l of qh,
//   scale: sc[8n + l / 16 + 2i];  x = d * scale * (code - 32).
// Packed row of `blocks` blocks (src/kernels/quantLayout.ts): ql | qh of block b in vec4s 12b ..
// 12b + 11 (ql 0..7, qh 8..11), then the scale plane (block b: vec4 12 blocks + b), then the d
// plane (block b: f16 number b from vec4 13 blocks).
//   requires: quantWords.wgsl
//   provides: BLOCK_VALUES, qRowVec4s(blocks), qUnit(row, blocks, unit): values 16 unit .. + 15 of
//             the row starting at vec4 `row`, as 4 vec4s of f32; qVec4(row, blocks, k4): values
//             4 k4 .. + 3; q6Raw / q6Codes, q6Scale(row, blocks, b, k) (d * sc[k] of block b)
const BLOCK_VALUES = 256u;

fn qRowVec4s(blocks: u32) -> u32 {
  return 13u * blocks + (blocks + 7u) / 8u;
}

// 4 codes (0..63) from a ql word (nibbles at lowShift) and a qh word (2-bit parts at highShift).
fn q6Raw(low: u32, high: u32, lowShift: u32, highShift: u32) -> vec4<f32> {
  return u8x4(((low >> lowShift) & 0x0f0f0f0fu) | (((high >> highShift) & 0x03030303u) << 4u));
}

// The same codes - 32.
fn q6Codes(low: u32, high: u32, lowShift: u32, highShift: u32) -> vec4<f32> {
  return q6Raw(low, high, lowShift, highShift) - vec4<f32>(32.0);
}

fn q6Scale(row: u32, blocks: u32, b: u32, k: u32) -> f32 {
  let word = w[4u * (row + 12u * blocks + b) + k / 4u];
  let sc = bitcast<i32>(word << (24u - 8u * (k % 4u))) >> 24u;
  return qHalf(4u * (row + 13u * blocks), b) * f32(sc);
}

fn qUnit(row: u32, blocks: u32, unit: u32) -> array<vec4<f32>, 4> {
  let b = unit / 16u;
  let u = unit % 16u;
  let n = u / 8u;
  let i = (u / 2u) % 4u;
  let m = u % 2u; // values l 16m .. 16m + 15
  let scale = q6Scale(row, blocks, b, 8u * n + m + 2u * i);
  let base = row + 12u * b;
  let ql = w4[base + 4u * n + 2u * (i % 2u) + m];
  let qh = w4[base + 8u + 2u * n + m];
  let ls = 4u * (i / 2u);
  let hs = 2u * i;
  return array<vec4<f32>, 4>(q6Codes(ql.x, qh.x, ls, hs) * scale, q6Codes(ql.y, qh.y, ls, hs) * scale,
                             q6Codes(ql.z, qh.z, ls, hs) * scale, q6Codes(ql.w, qh.w, ls, hs) * scale);
}

fn qVec4(row: u32, blocks: u32, k4: u32) -> vec4<f32> {
  let b = k4 / 64u;
  let r = 4u * (k4 % 64u); // value in the block
  let n = r / 128u;
  let i = (r % 128u) / 32u;
  let l = r % 32u;
  let base = 4u * (row + 12u * b); // words
  let ql = w[base + (64u * n + 32u * (i % 2u) + l) / 4u];
  let qh = w[base + (128u + 32u * n + l) / 4u];
  return q6Codes(ql, qh, 4u * (i / 2u), 2u * i) * q6Scale(row, blocks, b, 8u * n + l / 16u + 2u * i);
}
