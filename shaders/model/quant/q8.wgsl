// q8 (GGUF Q8_0): blocks of 32 values, f16 d and 32 int8 codes; x = q * d. Packed row of `blocks`
// blocks (src/kernels/quantLayout.ts): codes in vec4s 0 .. 2 blocks - 1 (block b: vec4s 2b, 2b + 1,
// values 16 at a time), then the d plane (block b: f16 number b), padded to a vec4.
//   requires: quantWords.wgsl
//   provides: BLOCK_VALUES, qRowVec4s(blocks), qUnit(row, blocks, unit): values 16 unit .. + 15 of
//             the row starting at vec4 `row`, as 4 vec4s of f32; qVec4(row, blocks, k4): values
//             4 k4 .. + 3; qScale(row, blocks, b): block b's d
const BLOCK_VALUES = 32u;

fn qRowVec4s(blocks: u32) -> u32 {
  return 2u * blocks + (blocks + 7u) / 8u;
}

fn qScale(row: u32, blocks: u32, b: u32) -> f32 {
  return qHalf(4u * (row + 2u * blocks), b);
}

fn qUnit(row: u32, blocks: u32, unit: u32) -> array<vec4<f32>, 4> {
  let d = qScale(row, blocks, unit / 2u);
  let c = w4[row + unit];
  return array<vec4<f32>, 4>(i8x4(c.x) * d, i8x4(c.y) * d, i8x4(c.z) * d, i8x4(c.w) * d);
}

fn qVec4(row: u32, blocks: u32, k4: u32) -> vec4<f32> {
  return i8x4(w[4u * row + k4]) * qScale(row, blocks, k4 / 8u);
}
