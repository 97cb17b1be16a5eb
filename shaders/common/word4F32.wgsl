// word4 snippet, f32: one Word4 holds 4 consecutive f32 values (16 bytes) of a row: 4 dims of a
// K or V row in a KV page, or 4 consecutive K values of a weight row. Prepended to every kernel
// that reads stored rows through Word4, so one kernel source serves f32, packed-f16 and native-f16.
// requires: (nothing)
// provides: Word4, unpackWord4, packWord4
alias Word4 = vec4<f32>;
fn unpackWord4(w: Word4) -> vec4<f32> { return w; }
fn packWord4(x: vec4<f32>) -> Word4 { return x; }
