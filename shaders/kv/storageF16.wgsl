// KV storage snippet, native f16 (`shader-f16`): one KVWord = vec4<f16> = 8 bytes, converted to
// f32 on load so the arithmetic (and the error against the reference) matches the packed path.
enable f16;
alias KVWord = vec4<f16>;
fn unpackKV(w: KVWord) -> vec4<f32> { return vec4<f32>(w); }
fn packKV(x: vec4<f32>) -> KVWord { return vec4<f16>(x); }
