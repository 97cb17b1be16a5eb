// word4 snippet, native f16 (`shader-f16`): one Word4 = vec4<f16> = 8 bytes, converted to f32 on
// load so the arithmetic (and the error against the reference) matches the packed path.
// Must come first in a kernel: `enable f16;` precedes every declaration.
// requires: (nothing)
// provides: Word4, unpackWord4, packWord4
enable f16;
alias Word4 = vec4<f16>;
fn unpackWord4(w: Word4) -> vec4<f32> { return vec4<f32>(w); }
fn packWord4(x: vec4<f32>) -> Word4 { return vec4<f16>(x); }
