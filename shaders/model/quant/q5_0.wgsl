// q5_0 (GGUF Q5_0): blocks of 32 values, f16 d, qh (u32) and 16 code bytes. Value j's 5-bit code =
// (j < 16 ? low nibble of byte j : high nibble of byte j - 16) | (bit j of qh) << 4; x = (code - 16) * d.
// Packed row of `blocks` blocks (src/kernels/quantLayout.ts): code bytes in vec4s 0 .. blocks - 1
// (one a block), then the qh plane (block b: word b), then the d plane.
//   requires: quantWords.wgsl
//   provides: BLOCK_VALUES, qRowVec4s(blocks), qUnit(row, blocks, unit): values 16 unit .. + 15 of
//             the row starting at vec4 `row`, as 4 vec4s of f32; qVec4(row, blocks, k4): values
//             4 k4 .. + 3; qScale(row, blocks, b), qHigh(row, blocks, b): block b's d and qh
const BLOCK_VALUES = 32u;

fn qRowVec4s(blocks: u32) -> u32 {
  return blocks + (blocks + 3u) / 4u + (blocks + 7u) / 8u;
}

fn qHigh(row: u32, blocks: u32, b: u32) -> u32 {
  return w[4u * (row + blocks) + b];
}

fn qScale(row: u32, blocks: u32, b: u32) -> f32 {
  return qHalf(4u * (row + blocks + (blocks + 3u) / 4u), b);
}

// Bits 0..3 of v as 0 / 16 each: the high bit of 4 consecutive codes.
fn high4(v: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>((vec4<u32>(v) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u)) * 16);
}

// Codes - 16 of the 4 values in byte lane `word` of a code vec4 (nibbles at `shift`), first value v0.
fn q5Codes(c: u32, shift: u32, qh: u32, v0: u32) -> vec4<f32> {
  return nib4(c >> shift) + high4(qh >> v0) - vec4<f32>(16.0);
}

fn qUnit(row: u32, blocks: u32, unit: u32) -> array<vec4<f32>, 4> {
  let b = unit / 2u;
  let h = unit % 2u;
  let d = qScale(row, blocks, b);
  let qh = qHigh(row, blocks, b);
  let c = w4[row + b];
  let s = 4u * h;
  let v0 = 16u * h;
  return array<vec4<f32>, 4>(q5Codes(c.x, s, qh, v0) * d, q5Codes(c.y, s, qh, v0 + 4u) * d,
                             q5Codes(c.z, s, qh, v0 + 8u) * d, q5Codes(c.w, s, qh, v0 + 12u) * d);
}

fn qVec4(row: u32, blocks: u32, k4: u32) -> vec4<f32> {
  let b = k4 / 8u;
  let i = k4 % 8u; // values 4i .. 4i + 3 of the block
  let c = w[4u * (row + b) + i % 4u];
  return q5Codes(c, 4u * (i / 4u), qHigh(row, blocks, b), 4u * i) * qScale(row, blocks, b);
}
