// KV storage snippet, f16 packed in u32 pairs: works on every adapter (no `shader-f16` needed).
// One KVWord = 4 dims = 8 bytes; dims (0,1) in .x and (2,3) in .y, low half first, which is the
// same byte layout as native f16 storage, so pages written by either path read back in the other.
alias KVWord = vec2<u32>;
fn unpackKV(w: KVWord) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}
fn packKV(x: vec4<f32>) -> KVWord {
  return vec2<u32>(pack2x16float(x.xy), pack2x16float(x.zw));
}
