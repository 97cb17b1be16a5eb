// q4_K (GGUF Q4_K): super-blocks of 256 values in 144 bytes: f16 d at 0, f16 dmin at 2, 12 bytes
// of 6-bit (scale, min) pairs for 8 sub-blocks of 32 at 4..15, 128 code bytes at 16..143. Per 64
// values c (0..3): value 64c + l (l < 32) is the low nibble of byte 32c + l (sub-block 2c), value
// 64c + 32 + l its high nibble (sub-block 2c + 1); x = d * scale * q - dmin * min.
// 144 is a multiple of 4, so every block starts on a word: plain word loads.
//   requires: quantWords.wgsl
//   provides: BLOCK_VALUES, BLOCK_BYTES, qUnit(block, u): values 16u .. 16u + 15 (u = 0..15) of the
//             block at byte `block`, as 4 vec4s of f32
const BLOCK_VALUES = 256u;
const BLOCK_BYTES = 144u;

// ggml's get_scale_min_k4: (scale, min) of sub-block j from the scale bytes at byte `s`.
fn q4kScaleMin(s: u32, j: u32) -> vec2<f32> {
  if (j < 4u) {
    return vec2<f32>(f32(qByte(s + j) & 63u), f32(qByte(s + j + 4u) & 63u));
  }
  let lo = qByte(s + j + 4u);
  let scale = (lo & 0xfu) | ((qByte(s + j - 4u) >> 6u) << 4u);
  let mn = (lo >> 4u) | ((qByte(s + j) >> 6u) << 4u);
  return vec2<f32>(f32(scale), f32(mn));
}

fn qUnit(block: u32, u: u32) -> array<vec4<f32>, 4> {
  let dm = unpack2x16float(w[block >> 2u]); // (d, dmin)
  let c = u / 4u;
  let hi = (u / 2u) % 2u; // 0: low nibbles (sub-block 2c), 1: high nibbles (2c + 1)
  let sm = q4kScaleMin(block + 4u, 2u * c + hi);
  let scale = dm.x * sm.x;
  let offset = vec4<f32>(dm.y * sm.y);
  let q = (block + 16u + 32u * c + 16u * (u % 2u)) >> 2u; // first code word
  let s = 4u * hi;
  return array<vec4<f32>, 4>(u8x4((w[q] >> s) & 0x0f0f0f0fu) * scale - offset,
                             u8x4((w[q + 1u] >> s) & 0x0f0f0f0fu) * scale - offset,
                             u8x4((w[q + 2u] >> s) & 0x0f0f0f0fu) * scale - offset,
                             u8x4((w[q + 3u] >> s) & 0x0f0f0f0fu) * scale - offset);
}
