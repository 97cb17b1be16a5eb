// word4 snippet, f16 packed in u32 pairs: works on every adapter (no `shader-f16` needed).
// One Word4 = 4 values = 8 bytes; values (0,1) in .x and (2,3) in .y, low half first, which is the
// same byte layout as native f16 storage (and as uploadWeights writes f16 weights), so data
// written by either path reads back in the other.
// requires: (nothing)
// provides: Word4, unpackWord4, packWord4
alias Word4 = vec2<u32>;
fn unpackWord4(w: Word4) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}
fn packWord4(x: vec4<f32>) -> Word4 {
  return vec2<u32>(pack2x16float(x.xy), pack2x16float(x.zw));
}
