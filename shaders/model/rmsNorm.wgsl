// rmsNorm: y = x / sqrt(mean(x²) + EPS) * w   (gemma: * (1 + w)), over the first DIM values of
// rows of STRIDE values, optionally fused with the residual add before it (vLLM's fused_add_rms_norm):
//   FUSED:    residual += x   (written back: the residual stream)
//             y = norm(residual)
//   IN_PLACE: y is x itself (binding 0 is written; binding 3 is a placeholder).
//   STRIDE > DIM (MLA's latent norm, neither FUSED nor IN_PLACE): values DIM .. STRIDE - 1 of a row
//             are copied from x to y unchanged. kv_a_proj_with_mqa's output row [c_kv (DIM) | k_pe]
//             becomes the cache row [kv_a_layernorm(c_kv) | k_pe] (RoPE then rotates k_pe in y).
//
// One workgroup per row. Each of the WG lanes walks the row with stride WG (lane l owns elements
// l, l + WG, ...), sums its squares, and the WG partial sums are reduced by a tree in workgroup
// memory. A lane then writes exactly the elements it read, so in-place and fused writes never race
// with another lane's reads.
// Weights are u32 words: f32 bits (WEIGHT_F16 false) or two f16 values per word, low half first
// (WEIGHT_F16 true; element i is half i & 1 of word i >> 1), read with unpack2x16float, so no
// `shader-f16` is needed.
//
// Workgroup: WG lanes (a power of two, 64). Workgroup memory: 4 * WG bytes.
// Grid: (x, y) with x * y >= rows, x <= maxComputeWorkgroupsPerDimension; row = wid.y * x + wid.x,
//   rows past params.rows return. e.g. rows 40 -> (40, 1); rows 70000 with a 65535 limit -> (35000, 2).
//
// Bindings:
//   0 x         read_write  f32 [rows][STRIDE]  (written only when IN_PLACE)
//   1 residual  read_write  f32 [rows][STRIDE]  (FUSED only, else a placeholder)
//   2 weight    read        u32 [DIM] f32 bits, or [ceil(DIM / 2)] f16 pairs
//   3 y         read_write  f32 [rows][STRIDE]  (unused when IN_PLACE)
//   4 params    uniform     { rows }
// Overrides: DIM, STRIDE (>= DIM; default DIM), EPS, WEIGHT_F16, PLUS_ONE (gemma's 1 + w), FUSED,
//   IN_PLACE, WG.

override DIM: u32 = 64u;
override STRIDE: u32 = DIM;
override EPS: f32 = 1e-6;
override WEIGHT_F16: bool = false;
override PLUS_ONE: bool = false;
override FUSED: bool = false;
override IN_PLACE: bool = false;
override WG: u32 = 64u;

struct Params { rows: u32 }

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> residual: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

var<workgroup> red: array<f32, WG>;

fn weightAt(i: u32) -> f32 {
  var w: f32;
  if (WEIGHT_F16) {
    w = unpack2x16float(weight[i >> 1u])[i & 1u];
  } else {
    w = bitcast<f32>(weight[i]);
  }
  return select(w, 1.0 + w, PLUS_ONE);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= params.rows) { return; } // whole workgroup: uniform
  let base = row * STRIDE;

  var ss = 0.0;
  for (var i = lid; i < DIM; i += WG) {
    var v = x[base + i];
    if (FUSED) {
      v += residual[base + i];
      residual[base + i] = v;
    }
    ss += v * v;
  }
  red[lid] = ss;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(red[0] / f32(DIM) + EPS);

  for (var i = lid; i < DIM; i += WG) {
    var v: f32;
    if (FUSED) { v = residual[base + i]; } else { v = x[base + i]; }
    let o = v * inv * weightAt(i);
    if (IN_PLACE) { x[base + i] = o; } else { y[base + i] = o; }
  }
  // The tail past DIM (latent norm only: STRIDE == DIM skips the loop).
  for (var i = DIM + lid; i < STRIDE; i += WG) { y[base + i] = x[base + i]; }
}
