// q4 (GGUF Q4_0): blocks of 32 values, f16 d and 16 code bytes; value j < 16 is the low nibble of
// byte j, value 16 + j its high nibble; x = (q - 8) * d. Packed row of `blocks` blocks
// (src/kernels/quantLayout.ts): codes in vec4s 0 .. blocks - 1 (one a block), then the d plane.
//   requires: quantWords.wgsl
//   provides: BLOCK_VALUES, qRowVec4s(blocks), qUnit(row, blocks, unit): values 16 unit .. + 15 of
//             the row starting at vec4 `row` (unit 2b: block b's low nibbles, 2b + 1: its high
//             nibbles), as 4 vec4s of f32; qVec4(row, blocks, k4): values 4 k4 .. + 3;
//             qScale(row, blocks, b): block b's d
const BLOCK_VALUES = 32u;

fn qRowVec4s(blocks: u32) -> u32 {
  return blocks + (blocks + 7u) / 8u;
}

fn qScale(row: u32, blocks: u32, b: u32) -> f32 {
  return qHalf(4u * (row + blocks), b);
}

fn qUnit(row: u32, blocks: u32, unit: u32) -> array<vec4<f32>, 4> {
  let b = unit / 2u;
  let d = qScale(row, blocks, b);
  let c = w4[row + b] >> vec4<u32>(4u * (unit % 2u));
  let o = vec4<f32>(8.0);
  return array<vec4<f32>, 4>((nib4(c.x) - o) * d, (nib4(c.y) - o) * d, (nib4(c.z) - o) * d, (nib4(c.w) - o) * d);
}

// e.g. k4 13: block 1, values 20..23 = the high nibbles of its code word 1.
fn qVec4(row: u32, blocks: u32, k4: u32) -> vec4<f32> {
  let b = k4 / 8u;
  let i = k4 % 8u;
  return (nib4(w[4u * (row + b) + i % 4u] >> (4u * (i / 4u))) - vec4<f32>(8.0)) * qScale(row, blocks, b);
}
