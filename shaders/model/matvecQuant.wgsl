// matvecQuant: decode GEMV over a block-quantized weight, Y [M, N] = X [M, K] · Wᵀ (+ bias [N]),
// for a few tokens (M = 1..MAX_TOKENS). W [N, K] (Hugging Face layout) holds GGUF blocks byte for
// byte, row after row (K / BLOCK_VALUES blocks of BLOCK_BYTES per row); composed with one format
// snippet (shaders/model/quant/*.wgsl: qUnit dequantizes 16 values) after quantWords.wgsl.
// Values are dequantized in registers and accumulated in f32; no `shader-f16` needed.
//
// Same work split as matvec.wgsl: a workgroup owns a strip of 4 consecutive rows; its WG lanes walk
// the 16-value units of the rows together (lane t takes units t, t + WG, ...: consecutive lanes read
// consecutive bytes of a row), dequantize the unit of each of the 4 rows once and dot it with every
// token's 16 X values. Partial vec4s (one component per row) are reduced over the lanes by a tree
// in workgroup memory, one token after another; lane 0 writes each token's 4 outputs. Rows past N
// (last strip when N % 4 != 0) read row N - 1 again and are not written.
// e.g. q8, K 96: 3 blocks of 34 bytes per row (102 bytes), 6 units; row 5 starts at byte 510 and
// its unit 3 is block 1 (byte 544), values 16..31.
//
// Workgroup: WG lanes (a power of two). Workgroup memory: 16 * WG bytes (1 KiB at WG 64).
// Grid: (x, y) with x * y >= ceil(N / 4) strips, x <= maxComputeWorkgroupsPerDimension; strip =
// wid.y * x + wid.x.
//
// Bindings:
//   0 x       read        vec4<f32> [M][K / 4]
//   1 w       read        u32 [N * K / BLOCK_VALUES * BLOCK_BYTES / 4 + 1] (GGUF blocks, + a pad word)
//   2 bias    read        u32 [ceil(N / 2)] (f16 pairs; read only when hasBias)
//   3 y       read_write  f32 [M][N]
//   4 params  uniform     { M, N, K, hasBias } (K a multiple of BLOCK_VALUES)
// Overrides: WG.

override WG: u32 = 64u;
const MAX_TOKENS = 8u;

struct Params { M: u32, N: u32, K: u32, hasBias: u32 }

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> bias: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

var<workgroup> red: array<vec4<f32>, WG>; // [lane] one token's partial sums of the 4 rows

fn dot16(a: array<vec4<f32>, 4>, m: u32, unit: u32, K4: u32) -> f32 {
  let xb = m * K4 + 4u * unit;
  return dot(a[0], x[xb]) + dot(a[1], x[xb + 1u]) + dot(a[2], x[xb + 2u]) + dot(a[3], x[xb + 3u]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let M = min(params.M, MAX_TOKENS);
  let N = params.N;
  let K4 = params.K / 4u;
  let units = params.K / 16u;
  let unitsPerBlock = BLOCK_VALUES / 16u;
  let rowBytes = params.K / BLOCK_VALUES * BLOCK_BYTES;
  let strip = wid.y * nwg.x + wid.x;
  let n0 = strip * 4u;
  if (n0 >= N) { return; } // whole workgroup: uniform
  // Row bases; a row past N repeats row N - 1 (read, never written).
  let r0 = n0 * rowBytes;
  let r1 = min(n0 + 1u, N - 1u) * rowBytes;
  let r2 = min(n0 + 2u, N - 1u) * rowBytes;
  let r3 = min(n0 + 3u, N - 1u) * rowBytes;
  var acc: array<vec4<f32>, MAX_TOKENS>; // acc[m][r]: token m, row n0 + r
  for (var m = 0u; m < MAX_TOKENS; m++) { acc[m] = vec4<f32>(0.0); } // explicit (see splitKvDecode)
  for (var unit = lid; unit < units; unit += WG) {
    let block = (unit / unitsPerBlock) * BLOCK_BYTES;
    let u = unit % unitsPerBlock;
    let a = qUnit(r0 + block, u);
    let b = qUnit(r1 + block, u);
    let c = qUnit(r2 + block, u);
    let d = qUnit(r3 + block, u);
    for (var m = 0u; m < M; m++) {
      acc[m] += vec4<f32>(dot16(a, m, unit, K4), dot16(b, m, unit, K4), dot16(c, m, unit, K4), dot16(d, m, unit, K4));
    }
  }
  // One token at a time through a WG-entry tree (1 KiB of workgroup memory rather than
  // MAX_TOKENS * WG entries: SwiftShader's time grew with the workgroup memory, which Dawn zero-fills).
  for (var m = 0u; m < M; m++) {
    red[lid] = acc[m];
    // Tree over lanes: after the step with stride s, lane t < s holds lanes t, t + s, t + 2s, ...
    for (var s = WG / 2u; s > 0u; s /= 2u) {
      workgroupBarrier();
      if (lid < s) { red[lid] += red[lid + s]; }
    }
    workgroupBarrier();
    if (lid == 0u) {
      let sum = red[0];
      for (var r = 0u; r < 4u; r++) {
        let n = n0 + r;
        if (n < N) {
          var v = sum[r];
          if (params.hasBias != 0u) { v += unpack2x16float(bias[n / 2u])[n % 2u]; }
          y[m * N + n] = v;
        }
      }
    }
    workgroupBarrier(); // red is rewritten for the next token
  }
}
