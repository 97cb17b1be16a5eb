// matvecQuant: decode GEMV over a block-quantized weight, Y [M, N] = X [M, K] · Wᵀ (+ bias [N]),
// for a few tokens (M = 1..MAX_TOKENS). W [N, K] (Hugging Face layout) holds GGUF blocks repacked
// by row into 16-byte-aligned planes (src/kernels/quantLayout.ts; bytes unchanged), read through
// quantWords.wgsl, one format snippet (shaders/model/quant/<dtype>.wgsl: qRowVec4s, qVec4) and its
// batch-1 step (quant/<dtype>Dot.wgsl: qDot4). Values are dequantized in registers and
// accumulated in f32; no `shader-f16` needed.
//
// Same work split as matvec.wgsl: a workgroup owns a strip of 4 consecutive rows and its WG lanes
// walk the rows together, consecutive lanes on consecutive vec4s of the code planes (coalesced).
//   M = 1 (batch-1 decode; uniform branch): a lane step is qDot4 over STEP_VALUES values of the 4
//     rows, one code vec4 each (q8: 16 values, half a block; q4 / q5_0: a block of 32; q4_K: one
//     sub-block's 16 nibbles; q6_K: one ql vec4, 32 values), each X vec4 loaded once for the 4
//     rows, each scale applied once per step.
//   M > 1: matvec.wgsl's loop with qVec4 for unpackWord4: a lane step dequantizes 4 values of each
//     of the 4 rows (one code word and its scale) and dots them with every token's X vec4; few
//     registers live, so the token loop does not spill (16 dequantized values a row did: 4x f16).
// Partial vec4s (one component per row) are reduced per token by reduceLanes (as matvec.wgsl:
// subgroupAdd, then a tree over NUM_SG entries when the workgroup holds several subgroups); lane 0
// writes each token's 4 outputs. Rows past N (last strip when N % 4 != 0) read row N - 1 again and
// are not written.
// e.g. q8, K 96: 3 blocks, 7 vec4s a row (6 of codes, 1 of d); row 5 starts at vec4 35, its block
// 1's codes are vec4s 37, 38 and its d the high half of word 4 * (35 + 6) = 164.
//
// Ladder (W [2048, 8192], 1 token, ms against the same run's f16 matvec; 2 loaded cores, noisy):
//   v1  qUnit per unit, WG 64, a WG-entry tree per token: lavapipe f16 21 ms, q8 48, q4 47;
//       SwiftShader f16 471 ms, q8 191, q4 206.
//   v2  subgroupAdd with one subgroup per workgroup on software adapters (matvecLanes), the
//       M = 1 loop over blocks, whole-word Q8_0 / Q4_0 from the GGUF bytes: lavapipe f16 11-13 ms,
//       q8 21-26 ms (1.8-2.4x f16), q4 12-12.5 ms (0.9-1.1x f16); SwiftShader f16 228 ms, q8 214,
//       q4 149. Another run: f16 18.6, q8 51.1, q4 20.7, q4_K 59.6, q6_K 232; 8 tokens q4 4.2x f16.
//   v3  (this) the packed planes (quantLayout.ts: aligned vec4 codes, a scale in one u32 word),
//       qDot4 per format with consecutive lanes on consecutive code vec4s, qVec4 for M > 1.
//       lavapipe, one process, v2 and v3 interleaved round by round with f16 (load average 20-40
//       from other jobs, so the minimum over 11-15 rounds is quoted; medians drift 2x): q8 v2 17.9
//       ms, v3 7.6-8.3 against f16 7.9-9.7 (0.8-1.05x f16); q4 v2 7.9, v3 8.5 (~1.0x); q4_K v2
//       28-50, v3 27-39 against f16 10-28; q6_K v2 385 (median 451), v3 53-67 (median 72-92 against
//       f16 48); 8 tokens, medians: q4 v2 473 -> v3 287 ms, q8 555 -> 337, q4_K 603 -> 423, q6_K 742
//       -> 324 against f16 219. What mattered on lavapipe was the lane stride of the code loads: a
//       q8 step of a whole block (lanes 32 bytes apart) ran at 2x a step of half a block (16 bytes
//       apart, as here), same loads and arithmetic; GPUs want the same (each load instruction of a
//       warp covers contiguous 16-byte pieces).
//       Tried for M > 1: 8 values (two qVec4s) a lane step: SwiftShader 8 tokens q4 1351 -> 1287 ms,
//       q8 1443 -> 1144 (f16 1269), but lavapipe q4 89 -> 142, q8 96 -> 155, q6_K 121 -> 240 (f16
//       94): not taken (4 values, as matvec.wgsl's Word4).
//   Left: q4_K / q6_K still 3-4x f16 by the minimum on lavapipe (the 6-bit scale decode and the
//       nibble / 2-bit unpacking per value; a load-time expansion of the Q4_K scales to bytes would
//       take 4 more bytes a block).

// Workgroup: WG lanes = NUM_SG subgroups of SG_SIZE (plain: SG_SIZE 1, NUM_SG = WG; a power of
// two). Workgroup memory: 16 * NUM_SG bytes (unused when NUM_SG = 1; 1 KiB plain at WG 64).
// Grid: (x, y) with x * y >= ceil(N / 4) strips, x <= maxComputeWorkgroupsPerDimension; strip =
// wid.y * x + wid.x.
//
// Bindings:
//   0 x       read        vec4<f32> [M][K / 4]
//   1 w4      read        vec4<u32> [N][qRowVec4s(K / BLOCK_VALUES)] (the packed rows)
//   6 w       read        u32, the same buffer as w4 (scales are read one word at a time)
//   2 bias    read        u32 [ceil(N / 2)] (f16 pairs; read only when hasBias)
//   3 y       read_write  f32 [M][N]
//   4 params  uniform     { M, N, K, hasBias } (K a multiple of BLOCK_VALUES; N: the whole weight's rows)
//   5 shard   uniform     { firstRow, rows }: w holds W rows firstRow .. firstRow + rows - 1, written to
//                         y columns firstRow + n (as matvec.wgsl)
// Overrides: WG, SG_SIZE, NUM_SG (as matvec.wgsl: src/kernels/matvec.ts matvecLanes).
// requires: LaneIds, subgroupLane, lanesAdd (shaders/attention/mlaDecodeSubgroups.wgsl or
//   mlaDecodeLanes.wgsl), quantWords.wgsl, quant/<dtype>.wgsl, quant/<dtype>Dot.wgsl

override WG: u32 = 64u;
override SG_SIZE: u32 = 1u;
override NUM_SG: u32 = 64u;
const MAX_TOKENS = 8u;

struct Params { M: u32, N: u32, K: u32, hasBias: u32 }
// Rows [firstRow, firstRow + rows) of the whole W live in this dispatch's w (a weight split by rows
// across buffers, src/model/weights.ts: one dispatch per shard); an unsplit W is one shard (0, N).
struct Shard { firstRow: u32, rows: u32 }

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w4: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> bias: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<uniform> shard: Shard;

var<workgroup> red: array<vec4<f32>, NUM_SG>; // [subgroup] one token's partial sums of the 4 rows

// The sum of v over the workgroup's lanes, valid in lane 0 (as matvec.wgsl). Uniform control flow.
fn reduceLanes(v: vec4<f32>, ids: LaneIds) -> vec4<f32> {
  let s = vec4<f32>(lanesAdd(v.x), lanesAdd(v.y), lanesAdd(v.z), lanesAdd(v.w));
  if (NUM_SG == 1u) { return s; } // one subgroup: done, no workgroup memory
  workgroupBarrier(); // red is free (the previous token's lane 0 has read it)
  if (subgroupLane(ids) == 0u) { red[ids.lid / SG_SIZE] = s; }
  // Tree over subgroups: after the step with stride t, entry g < t holds g, g + t, g + 2t, ...
  for (var t = NUM_SG / 2u; t > 0u; t /= 2u) {
    workgroupBarrier();
    if (ids.lid < t) { red[ids.lid] += red[ids.lid + t]; }
  }
  workgroupBarrier();
  return red[0];
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        ids: LaneIds) {
  let lid = ids.lid;
  _ = &w4; // both views stay in the layout whichever the format reads (q4_K: only w4)
  _ = &w;
  let M = min(params.M, MAX_TOKENS);
  let N = shard.rows; // rows of this w; y's row stride is params.N
  let K4 = params.K / 4u;
  let blocks = params.K / BLOCK_VALUES;
  let rowVec4s = qRowVec4s(blocks);
  let strip = wid.y * nwg.x + wid.x;
  let n0 = strip * 4u;
  if (n0 >= N) { return; } // whole workgroup: uniform
  // Row bases (vec4s); a row past N repeats row N - 1 (read, never written).
  let rows = vec4<u32>(n0, min(n0 + 1u, N - 1u), min(n0 + 2u, N - 1u), min(n0 + 3u, N - 1u)) * rowVec4s;
  var acc: array<vec4<f32>, MAX_TOKENS>; // acc[m][r]: token m, row n0 + r
  for (var m = 0u; m < MAX_TOKENS; m++) { acc[m] = vec4<f32>(0.0); } // explicit (see splitKvDecode)
  if (M == 1u) { // uniform. Batch-1 decode: a register accumulator, one qDot4 per lane step
    var acc0 = vec4<f32>(0.0);
    for (var step = lid; step < params.K / STEP_VALUES; step += WG) { acc0 += qDot4(rows, blocks, step); }
    acc[0] = acc0;
  } else {
    for (var k4 = lid; k4 < K4; k4 += WG) {
      let a = qVec4(rows.x, blocks, k4);
      let b = qVec4(rows.y, blocks, k4);
      let c = qVec4(rows.z, blocks, k4);
      let d = qVec4(rows.w, blocks, k4);
      for (var m = 0u; m < MAX_TOKENS; m++) {
        if (m < M) {
          let xv = x[m * K4 + k4];
          acc[m] += vec4<f32>(dot(xv, a), dot(xv, b), dot(xv, c), dot(xv, d));
        }
      }
    }
  }
  for (var m = 0u; m < M; m++) {
    let sum = reduceLanes(acc[m], ids);
    if (lid == 0u) {
      for (var r = 0u; r < 4u; r++) {
        let n = n0 + r;
        if (n < N) {
          var v = sum[r];
          let col = shard.firstRow + n;
          if (params.hasBias != 0u) { v += unpack2x16float(bias[col / 2u])[col % 2u]; }
          y[m * params.N + col] = v;
        }
      }
    }
  }
}
