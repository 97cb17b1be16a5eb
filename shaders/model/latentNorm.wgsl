// latentNorm: MLA's cache row from kv_a_proj_with_mqa's output [c_kv (DIM) | k_pe (STRIDE - DIM)]:
//   y[r, i] = x[r, i] / sqrt(mean_{i < DIM}(x[r, i]²) + EPS) * w[i]   for i < DIM   (kv_a_layernorm)
//   y[r, i] = x[r, i]                                                    for DIM <= i < STRIDE
// (RoPE then rotates k_pe in y in place; kvAppend copies y's rows into the pages.)
// One workgroup per row: WG lanes walk the row with stride WG, sum their squares, and a tree in
// workgroup memory reduces the WG partial sums (as rmsNorm.wgsl).
// Weights are u32 words: f32 bits (WEIGHT_F16 false) or two f16 values per word, low half first.
//
// Workgroup: WG lanes (a power of two, 64). Workgroup memory: 4 * WG bytes.
// Grid: (x, y) with x * y >= rows; row = wid.y * x + wid.x, rows past params.rows return.
//
// Bindings:
//   0 x       read        f32 [rows][STRIDE]
//   1 weight  read        u32 [DIM] f32 bits, or [ceil(DIM / 2)] f16 pairs
//   2 y       read_write  f32 [rows][STRIDE]
//   3 params  uniform     { rows }
// Overrides: DIM, STRIDE (>= DIM), EPS, WEIGHT_F16, WG.

override DIM: u32 = 512u;
override STRIDE: u32 = 576u;
override EPS: f32 = 1e-6;
override WEIGHT_F16: bool = false;
override WG: u32 = 64u;

struct Params { rows: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

var<workgroup> red: array<f32, WG>;

fn weightAt(i: u32) -> f32 {
  if (WEIGHT_F16) { return unpack2x16float(weight[i >> 1u])[i & 1u]; }
  return bitcast<f32>(weight[i]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= params.rows) { return; } // whole workgroup: uniform
  let base = row * STRIDE;
  var ss = 0.0;
  for (var i = lid; i < DIM; i += WG) {
    let v = x[base + i];
    ss += v * v;
  }
  red[lid] = ss;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(red[0] / f32(DIM) + EPS);
  for (var i = lid; i < STRIDE; i += WG) {
    var v = x[base + i];
    if (i < DIM) { v *= inv * weightAt(i); }
    y[base + i] = v;
  }
}
