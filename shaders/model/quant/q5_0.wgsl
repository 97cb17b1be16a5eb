// q5_0 (GGUF Q5_0): blocks of 32 values in 22 bytes: f16 d at byte 0, qh (u32) at 2..5, 16 code
// bytes at 6..21. Value j's 5-bit code = (j < 16 ? low nibble of byte j : high nibble of byte
// j - 16) | (bit j of qh) << 4; x = (code - 16) * d.
//   requires: quantWords.wgsl
//   provides: BLOCK_VALUES, BLOCK_BYTES, qUnit(block, u): values 16u .. 16u + 15 of the block at
//             byte `block`, as 4 vec4s of f32
const BLOCK_VALUES = 32u;
const BLOCK_BYTES = 22u;

// Codes of values v .. v + 3 from their code word (nibbles at `shift`) and qh.
fn q5Codes(v: u32, shift: u32, qh: u32, first: u32) -> vec4<f32> {
  let high = (vec4<u32>(qh) >> (vec4<u32>(first) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u);
  return u8x4((v >> shift) & 0x0f0f0f0fu) + vec4<f32>(high * 16u) - vec4<f32>(16.0);
}

fn qUnit(block: u32, u: u32) -> array<vec4<f32>, 4> {
  let d = qHalf(block);
  let qh = qWord(block + 2u);
  let s = 4u * u;
  let v0 = 16u * u;
  return array<vec4<f32>, 4>(q5Codes(qWord(block + 6u), s, qh, v0) * d, q5Codes(qWord(block + 10u), s, qh, v0 + 4u) * d,
                             q5Codes(qWord(block + 14u), s, qh, v0 + 8u) * d,
                             q5Codes(qWord(block + 18u), s, qh, v0 + 12u) * d);
}
