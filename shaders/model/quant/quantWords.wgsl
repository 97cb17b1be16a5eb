// quantWords: reads GGUF block bytes from the weight buffer, which holds the file's blocks byte for
// byte (row-major, rows of K / BLOCK_VALUES blocks). Every field of every GGUF block sits at an even
// byte, so a 4-byte group is either one word or the top half of word i and the bottom half of
// word i + 1.
//   requires: `w: array<u32>` (the weight binding, declared by the kernel; its buffer padded with
//             one extra word so the second load of the last group stays inside)
//   provides: qWord(byte) (4 bytes from an even byte offset), qByte(byte), qHalf(byte) (an f16 at
//             an even offset, as f32), u8x4 / i8x4 (the 4 bytes of a word as f32, unsigned / signed)
// e.g. a Q8_0 block of row 0 at byte 34: its scale is the top half of word 8, its first 4 codes
// bytes 36..39 = word 9; the next block's (byte 68) codes 70..73 = top of word 17 | bottom of 18.

fn qWord(byte: u32) -> u32 {
  let i = byte >> 2u;
  let lo = w[i];
  let hi = w[i + 1u];
  return select(lo, (lo >> 16u) | (hi << 16u), (byte & 2u) != 0u);
}

fn qByte(byte: u32) -> u32 {
  return (w[byte >> 2u] >> (8u * (byte & 3u))) & 0xffu;
}

fn qHalf(byte: u32) -> f32 {
  return unpack2x16float(w[byte >> 2u])[(byte >> 1u) & 1u];
}

fn u8x4(v: u32) -> vec4<f32> {
  return vec4<f32>(vec4<u32>(v, v >> 8u, v >> 16u, v >> 24u) & vec4<u32>(0xffu));
}

fn i8x4(v: u32) -> vec4<f32> {
  // Shift each byte to the top, then an arithmetic shift back down sign-extends it.
  let s = vec4<i32>(bitcast<i32>(v << 24u), bitcast<i32>(v << 16u), bitcast<i32>(v << 8u), bitcast<i32>(v));
  return vec4<f32>(s >> vec4<u32>(24u));
}
