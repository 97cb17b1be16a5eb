// q4 (GGUF Q4_0): blocks of 32 values in 18 bytes: f16 d at byte 0, 16 code bytes at 2..17; value
// j < 16 is the low nibble of byte j, value 16 + j its high nibble; x = (q - 8) * d.
//   requires: quantWords.wgsl
//   provides: BLOCK_VALUES, BLOCK_BYTES, qUnit(block, u): values 16u .. 16u + 15 (u = 0: low
//             nibbles, 1: high nibbles) of the block at byte `block`, as 4 vec4s of f32
const BLOCK_VALUES = 32u;
const BLOCK_BYTES = 18u;

fn q4Codes(v: u32, shift: u32) -> vec4<f32> {
  return u8x4((v >> shift) & 0x0f0f0f0fu) - vec4<f32>(8.0);
}

fn qUnit(block: u32, u: u32) -> array<vec4<f32>, 4> {
  let d = qHalf(block);
  let s = 4u * u;
  return array<vec4<f32>, 4>(q4Codes(qWord(block + 2u), s) * d, q4Codes(qWord(block + 6u), s) * d,
                             q4Codes(qWord(block + 10u), s) * d, q4Codes(qWord(block + 14u), s) * d);
}
