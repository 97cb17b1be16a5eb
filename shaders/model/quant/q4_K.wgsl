// q4_K (GGUF Q4_K): super-blocks of 256 values in 144 bytes: f16 d at 0, f16 dmin at 2, 12 bytes
// of 6-bit (scale, min) pairs for 8 sub-blocks of 32 at 4..15, 128 code bytes at 16..143. Per 64
// values c (0..3): value 64c + l (l < 32) is the low nibble of byte 32c + l (sub-block 2c), value
// 64c + 32 + l its high nibble (sub-block 2c + 1); x = d * scale * q - dmin * min.
// Packed (src/kernels/quantLayout.ts): the blocks as they are, 144 bytes being 9 vec4s: block b of
// a row is vec4s 9b (the header: d | dmin, then the 12 scale bytes) and 9b + 1 .. 9b + 8 (codes).
//   requires: quantWords.wgsl
//   provides: BLOCK_VALUES, qRowVec4s(blocks), qUnit(row, blocks, unit): values 16 unit .. + 15 of
//             the row starting at vec4 `row`, as 4 vec4s of f32; qVec4(row, blocks, k4): values
//             4 k4 .. + 3; q4kScaleMin(header, j): sub-block j's (d * scale, dmin * min)
const BLOCK_VALUES = 256u;

fn qRowVec4s(blocks: u32) -> u32 {
  return 9u * blocks;
}

// ggml's get_scale_min_k4 on the header vec4 h (scale bytes 0..3 in h.y, 4..7 in h.z, 8..11 in
// h.w), times d and dmin: sub-block j < 4 has (byte j & 63, byte j + 4 & 63); j >= 4 has
// (byte j + 4 & 15 | (byte j - 4 >> 6) << 4, byte j + 4 >> 4 | (byte j >> 6) << 4).
fn q4kScaleMin(h: vec4<u32>, j: u32) -> vec2<f32> {
  let sh = 8u * (j % 4u);
  let by = (h.y >> sh) & 0xffu;
  let bz = (h.z >> sh) & 0xffu;
  let bw = (h.w >> sh) & 0xffu;
  let low = vec2<u32>(by & 63u, bz & 63u);
  let high = vec2<u32>((bw & 15u) | ((by >> 6u) << 4u), (bw >> 4u) | ((bz >> 6u) << 4u));
  return unpack2x16float(h.x) * vec2<f32>(bitcast<vec2<i32>>(select(high, low, j < 4u)));
}

fn qUnit(row: u32, blocks: u32, unit: u32) -> array<vec4<f32>, 4> {
  let base = row + 9u * (unit / 16u);
  let u = unit % 16u;
  let c = u / 4u; // 64-value chunk
  let hi = (u / 2u) % 2u; // 0: low nibbles (sub-block 2c), 1: high nibbles (2c + 1)
  let sm = q4kScaleMin(w4[base], 2u * c + hi);
  let q = w4[base + 1u + 2u * c + u % 2u] >> vec4<u32>(4u * hi);
  let m = vec4<f32>(sm.y);
  return array<vec4<f32>, 4>(nib4(q.x) * sm.x - m, nib4(q.y) * sm.x - m, nib4(q.z) * sm.x - m, nib4(q.w) * sm.x - m);
}

fn qVec4(row: u32, blocks: u32, k4: u32) -> vec4<f32> {
  let base = row + 9u * (k4 / 64u);
  let r = k4 % 64u; // vec4 of values in the block
  let c = r / 16u;
  let hi = (r / 8u) % 2u;
  let sm = q4kScaleMin(w4[base], 2u * c + hi);
  let q = w[4u * (base + 1u + 2u * c) + r % 8u] >> (4u * hi);
  return nib4(q) * sm.x - vec4<f32>(sm.y);
}
