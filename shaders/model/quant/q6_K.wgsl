// q6_K (GGUF Q6_K): super-blocks of 256 values in 210 bytes: ql (128 bytes of low nibbles) at 0,
// qh (64 bytes of 2-bit high parts) at 128, 16 int8 scales at 192, f16 d at 208. Per 128 values n
// (0, 1) and quarter i (0..3), value 128n + 32i + l (l < 32) has
//   low 4 bits: byte 64n + 32 (i % 2) + l of ql, low nibble for i < 2, high nibble for i >= 2,
//   high 2 bits: bits 2i, 2i + 1 of byte 32n + l of qh,
//   scale: sc[8n + l / 16 + 2i];  x = d * scale * (code - 32).
//   requires: quantWords.wgsl
//   provides: BLOCK_VALUES, BLOCK_BYTES, qUnit(block, u): values 16u .. 16u + 15 (u = 0..15) of the
//             block at byte `block`, as 4 vec4s of f32
const BLOCK_VALUES = 256u;
const BLOCK_BYTES = 210u;

fn q6Codes(low: u32, high: u32, lowShift: u32, highShift: u32) -> vec4<f32> {
  let code = ((low >> lowShift) & 0x0f0f0f0fu) | (((high >> highShift) & 0x03030303u) << 4u);
  return u8x4(code) - vec4<f32>(32.0);
}

fn qUnit(block: u32, u: u32) -> array<vec4<f32>, 4> {
  let n = u / 8u;
  let i = (u / 2u) % 4u;
  let l0 = 16u * (u % 2u);
  let scale = qHalf(block + 208u) * f32((bitcast<i32>(qByte(block + 192u + 8u * n + u % 2u + 2u * i) << 24u)) >> 24u);
  let ql = block + 64u * n + 32u * (i % 2u) + l0;
  let qh = block + 128u + 32u * n + l0;
  let ls = 4u * (i / 2u);
  let hs = 2u * i;
  return array<vec4<f32>, 4>(q6Codes(qWord(ql), qWord(qh), ls, hs) * scale,
                             q6Codes(qWord(ql + 4u), qWord(qh + 4u), ls, hs) * scale,
                             q6Codes(qWord(ql + 8u), qWord(qh + 8u), ls, hs) * scale,
                             q6Codes(qWord(ql + 12u), qWord(qh + 12u), ls, hs) * scale);
}
