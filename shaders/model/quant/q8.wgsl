// q8 (GGUF Q8_0): blocks of 32 values in 34 bytes: f16 d at byte 0, int8 codes at 2..33, x = q * d.
//   requires: quantWords.wgsl
//   provides: BLOCK_VALUES, BLOCK_BYTES, qUnit(block, u): values 16u .. 16u + 15 of the block at
//             byte `block` (u = 0, 1), dequantized to f32 as 4 vec4s
const BLOCK_VALUES = 32u;
const BLOCK_BYTES = 34u;

fn qUnit(block: u32, u: u32) -> array<vec4<f32>, 4> {
  let d = qHalf(block);
  let b = block + 2u + 16u * u;
  return array<vec4<f32>, 4>(i8x4(qWord(b)) * d, i8x4(qWord(b + 4u)) * d, i8x4(qWord(b + 8u)) * d,
                             i8x4(qWord(b + 12u)) * d);
}
