// KV storage snippet, f32: one KVWord holds 4 consecutive dims of a K or V row.
// Prepended to every kernel that reads or writes KV pages; the kernel only sees KVWord, unpackKV
// and packKV, so one kernel source serves f32, packed-f16 and native-f16 pages.
alias KVWord = vec4<f32>;
fn unpackKV(w: KVWord) -> vec4<f32> { return w; }
fn packKV(x: vec4<f32>) -> KVWord { return x; }
