// quantWords: reads a block-quantized weight in its packed layout (src/kernels/quantLayout.ts: GGUF
// blocks repacked row by row into planes of 16-byte-aligned vec4s, every byte unchanged) through two
// views of the one weight buffer: w4 (vec4<u32>) for the code planes, so a lane's 16 code bytes
// are one load and consecutive lanes read consecutive vec4s, and w (u32) for a scale, one word.
//   requires: `w4: array<vec4<u32>>` and `w: array<u32>`, two bindings of the weight buffer
//             (declared by the kernel)
//   provides: qHalf(word, i) (f16 number i counted from word `word`, as f32), u8x4 / i8x4 (the 4
//             bytes of a word as f32, unsigned / signed), nib4 (the low nibbles of a word's 4 bytes)
// e.g. q8, K 96 (3 blocks, 7 vec4s a row): row 2 starts at vec4 14; its block 1's codes are vec4s
//   16, 17 and its d is qHalf(4 * (14 + 6), 1): the high half of word 80.

fn qHalf(word: u32, i: u32) -> f32 {
  return unpack2x16float(w[word + i / 2u])[i & 1u];
}

fn u8x4(v: u32) -> vec4<f32> {
  // Converted from i32, not u32: CPUs without AVX-512 have no unsigned vector conversion.
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(v, v >> 8u, v >> 16u, v >> 24u) & vec4<u32>(0xffu)));
}

fn i8x4(v: u32) -> vec4<f32> {
  // Shift each byte to the top, then an arithmetic shift back down sign-extends it.
  let s = vec4<i32>(bitcast<i32>(v << 24u), bitcast<i32>(v << 16u), bitcast<i32>(v << 8u), bitcast<i32>(v));
  return vec4<f32>(s >> vec4<u32>(24u));
}

fn nib4(v: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(v, v >> 8u, v >> 16u, v >> 24u) & vec4<u32>(0xfu)));
}
