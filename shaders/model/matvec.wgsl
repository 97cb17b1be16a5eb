// matvec: decode GEMV with an optional bias, Y [M, N] = X [M, K] · Wᵀ (+ bias [N]) for a few
// tokens (M = 1..MAX_TOKENS). Same operands and storage snippet as matmul.wgsl (W [N, K] in HF
// layout, f32 or f16 packed in u32 pairs: Word4s of 4 K values (src/kernels/matmul.ts always takes
// the packed snippet for f16 weights, see weightKernelSource); X and Y f32).
//
// Memory-bound: every W byte is read once per step and serves all M tokens. A workgroup owns a
// strip of ROWS = 4 consecutive W rows; its WG lanes walk K together (lane t reads vec4 k4 = t,
// t + WG, ... of each of the 4 rows: consecutive lanes read consecutive words, coalesced), and for
// each k4 load every token's X word once and do 4 dot products with it. Each lane ends with a
// partial vec4 (one component per row) per token, reduced over the WG lanes by a tree in
// workgroup memory; lanes 0..M-1 then write token m's 4 outputs.
// Rows past N (last strip when N % 4 != 0) read row N - 1 again and are not written.
//
// Workgroup: WG lanes (a power of two >= MAX_TOKENS, 64). Workgroup memory: 16 * MAX_TOKENS * WG bytes (8 KiB).
// Grid: (x, y) with x * y >= ceil(N / 4) strips, x <= maxComputeWorkgroupsPerDimension; strip =
// wid.y * x + wid.x. e.g. N 4096 -> 1024 strips -> (1024, 1); N 257 -> 65 strips (row 256 alone).
//
// Bindings:
//   0 x       read        vec4<f32> [M][K / 4]
//   1 w       read        Word4 [N][K / 4]
//   2 bias    read        Word4 [ceil(N / 4)] (same storage as w; read only when hasBias)
//   3 y       read_write  f32 [M][N]
//   4 params  uniform     { M, N, K, hasBias } (1..MAX_TOKENS)
// Overrides: WG.
// requires: Word4, unpackWord4 (shaders/common/word4*.wgsl)

override WG: u32 = 64u;
const MAX_TOKENS = 8u;

// hasBias: 0 or 1. Shapes are runtime values so one pipeline serves every weight of a model
// (lavapipe JIT-compiles each pipeline at first use, seconds each).
struct Params { M: u32, N: u32, K: u32, hasBias: u32 }

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<Word4>;
@group(0) @binding(2) var<storage, read> bias: array<Word4>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

var<workgroup> red: array<vec4<f32>, MAX_TOKENS * WG>; // [token][lane] partial sums of the 4 rows

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let M = min(params.M, MAX_TOKENS);
  let N = params.N;
  let K4 = params.K / 4u;
  let hasBias = params.hasBias != 0u;
  let strip = wid.y * nwg.x + wid.x;
  let n0 = strip * 4u;
  if (n0 >= N) { return; } // whole workgroup: uniform
  // Row bases; a row past N repeats row N - 1 (read, never written).
  let w0 = n0 * K4;
  let w1 = min(n0 + 1u, N - 1u) * K4;
  let w2 = min(n0 + 2u, N - 1u) * K4;
  let w3 = min(n0 + 3u, N - 1u) * K4;

  var acc: array<vec4<f32>, MAX_TOKENS>; // acc[m][r]: token m, row n0 + r
  for (var m = 0u; m < MAX_TOKENS; m++) { acc[m] = vec4<f32>(0.0); } // explicit (see splitKvDecode)
  for (var k4 = lid; k4 < K4; k4 += WG) {
    let a = unpackWord4(w[w0 + k4]);
    let b = unpackWord4(w[w1 + k4]);
    let c = unpackWord4(w[w2 + k4]);
    let d = unpackWord4(w[w3 + k4]);
    for (var m = 0u; m < MAX_TOKENS; m++) {
      if (m < M) {
        let xv = x[m * K4 + k4];
        acc[m] += vec4<f32>(dot(xv, a), dot(xv, b), dot(xv, c), dot(xv, d));
      }
    }
  }
  for (var m = 0u; m < MAX_TOKENS; m++) {
    if (m < M) { red[m * WG + lid] = acc[m]; }
  }
  // Tree over lanes: after the step with stride s, lane t < s holds lanes t, t + s, t + 2s, ...
  for (var s = WG / 2u; s > 0u; s /= 2u) {
    workgroupBarrier();
    if (lid < s) {
      for (var m = 0u; m < M; m++) { red[m * WG + lid] += red[m * WG + lid + s]; }
    }
  }
  workgroupBarrier();
  if (lid < M) {
    let sum = red[lid * WG];
    for (var r = 0u; r < 4u; r++) {
      let n = n0 + r;
      if (n < N) {
        var v = sum[r];
        if (hasBias) { v += unpackWord4(bias[n / 4u])[n % 4u]; }
        y[lid * N + n] = v;
      }
    }
  }
}
