// matvec: decode GEMV with an optional bias, Y [M, N] = X [M, K] · Wᵀ (+ bias [N]) for a few
// tokens (M = 1..MAX_TOKENS). Same operands and storage snippet as matmul.wgsl (W [N, K] in HF
// layout, f32 or f16 packed in u32 pairs: Word4s of 4 K values (src/kernels/matmul.ts always takes
// the packed snippet for f16 weights, see weightKernelSource); X and Y f32).
//
// Memory-bound: every W byte is read once per step and serves all M tokens. A strip is ROWS = 4
// consecutive W rows; STRIP_LANES lanes walk its K together (lane t of the strip reads Word4 k4 = t,
// t + STRIP_LANES, ... of each of the 4 rows: consecutive lanes read consecutive words, coalesced),
// and for each k4 load every token's X word once and do 4 dot products with it. Two layouts, by
// STRIP_LANES (src/kernels/matvec.ts matvecLanes):
//   workgroup strips (STRIP_LANES = WG, GPUs): the workgroup's NUM_SG subgroups share one strip;
//     each lane's partial vec4 (one component per row) per token is summed by lanesAdd (subgroupAdd
//     with the subgroup lane snippet, the identity with the plain one), then through NUM_SG entries
//     of workgroup memory by a tree (none and no barrier when NUM_SG = 1).
//   subgroup strips (STRIP_LANES = SG_SIZE, software adapters): each subgroup owns a strip of its
//     own (WG / SG_SIZE strips a workgroup), summed by subgroupAdd alone: no workgroup memory, no
//     barrier, and WG / SG_SIZE times fewer workgroups, which is what a CPU driver pays for
//     (SwiftShader runs each workgroup as a coroutine: kjv-gqa's 29 GEMVs of a decode step were
//     1728 workgroups of 4 lanes, now 112 of 64). Lanes lid / SG_SIZE form one subgroup (1-D workgroups).
// Lane 0 of a strip writes each token's 4 outputs.
// M = 1 (batch-1 decode) takes its own loop with one register accumulator: SwiftShader does not
// unroll the token loop, and acc[m] with a runtime m is a memory access there (2.5x the time).
// Rows past N (last strip when N % 4 != 0, strips past the last) read row N - 1 again and are not
// written.
//
// Ladder (W [2048, 8192] f16, 1 token; ms, and GB/s of W against the copy kernel's in the same run;
// 2 loaded cores, noisy):
//   v1  WG 64, all 8 tokens' partials in 8 KiB of workgroup memory (Dawn zero-fills it per
//       workgroup), 6-barrier tree: lavapipe 21-29 ms, 0.50-0.76 of copy; SwiftShader 400-480 ms,
//       0.05-0.08 of copy.
//   v2  subgroupAdd, WG = one subgroup on software adapters (lavapipe 8, SwiftShader 4):
//       lavapipe 8.5-10 ms, 1.2-1.3x copy; with the M = 1 loop SwiftShader 72-96 ms, 0.34-0.36 of
//       copy. WG 64 = 8 subgroups + one barrier: lavapipe 21 ms (the barrier is a coroutine switch
//       on CPU drivers), hence one subgroup per workgroup there. Wider loads (vec4<u32>, 8 f16)
//       were not taken: lavapipe loads a vector as one gather per u32 either way, and GPUs
//       coalesce 8-byte lanes into full lines. The plain tree (no subgroups) runs as fast on
//       lavapipe at WG 8 but compiles slowly there (barriers inside the token loop: tens of
//       seconds a pipeline on a loaded machine), so the software adapters take the subgroup path.
//   v3  (this) subgroup strips on software adapters, WG 64. kjv-gqa's 29 GEMVs of a decode step
//       (scripts/gemvShapes.ts, f16, median process CPU time, formats alternating, 2 cores at load
//       14-17): SwiftShader 25-28 ms against v2's 36-37; lavapipe 3.3 ms either way. W [2048, 8192]
//       and [8192, 2048] f16 on lavapipe: 35 / 45 ms CPU, v2 37 / 44 (same within noise). On
//       SwiftShader what is left follows the u32 loads (a per-lane gather each there, going by its
//       source), not the bytes: f16 measured about as fast as f32 at the model's shapes. A
//       2x-unrolled M = 1 loop measured the same within noise and was not kept.
//
// Workgroup: WG lanes = NUM_SG subgroups of SG_SIZE (plain: SG_SIZE 1, NUM_SG = WG; a power of
// two), STRIPS = WG / STRIP_LANES strips. Workgroup memory: 16 * NUM_SG bytes (read only with
// workgroup strips and NUM_SG > 1; 1 KiB plain at WG 64).
// Grid: (x, y) with x * y >= ceil(ceil(N / 4) / STRIPS) workgroups, x <=
// maxComputeWorkgroupsPerDimension; strip = (wid.y * x + wid.x) * STRIPS + lid / STRIP_LANES.
// e.g. workgroup strips: N 4096 -> 1024 strips -> (1024, 1); N 257 -> 65 strips (row 256 alone).
// Subgroup strips of 4 lanes, WG 64 (16 strips): N 2048 -> 512 strips -> (32, 1); N 32 -> 8 strips
// -> (1, 1), lanes 32..63 on strips past N.
//
// Bindings:
//   0 x       read        vec4<f32> [M][K / 4]
//   1 w       read        Word4 [N][K / 4]
//   2 bias    read        Word4 [ceil(N / 4)] (same storage as w; read only when hasBias)
//   3 y       read_write  f32 [M][N]
//   4 params  uniform     { M, N, K, hasBias } (1..MAX_TOKENS; N: the whole weight's rows, y's row stride)
//   5 shard   uniform     { firstRow, rows }: w holds W rows firstRow .. firstRow + rows - 1, written to
//                         y columns firstRow + n (N above then reads shard.rows: rows of this w)
// Overrides: WG, SG_SIZE (the adapter's fixed subgroup size; 1 with the plain lane snippet), NUM_SG = WG / SG_SIZE,
//   STRIP_LANES (WG: workgroup strips; SG_SIZE: subgroup strips, only with subgroups).
// requires: Word4, unpackWord4 (shaders/common/word4*.wgsl), LaneIds, subgroupLane, lanesAdd
//   (shaders/attention/mlaDecodeSubgroups.wgsl or mlaDecodeLanes.wgsl)

override WG: u32 = 64u;
override SG_SIZE: u32 = 1u;
override NUM_SG: u32 = 64u;
override STRIP_LANES: u32 = 64u;
override STRIPS: u32 = WG / STRIP_LANES;
const MAX_TOKENS = 8u;

// hasBias: 0 or 1. Shapes are runtime values so one pipeline serves every weight of a model
// (lavapipe JIT-compiles each pipeline at first use, seconds each).
struct Params { M: u32, N: u32, K: u32, hasBias: u32 }
// Rows [firstRow, firstRow + rows) of the whole W live in this dispatch's w (a weight split by rows
// across buffers, src/model/weights.ts: one dispatch per shard); an unsplit W is one shard (0, N).
struct Shard { firstRow: u32, rows: u32 }

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<Word4>;
@group(0) @binding(2) var<storage, read> bias: array<Word4>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<uniform> shard: Shard;

var<workgroup> red: array<vec4<f32>, NUM_SG>; // [subgroup] one token's partial sums of the 4 rows

// The sum of v over a strip's lanes, valid in its lane 0. Uniform control flow (barriers).
fn reduceLanes(v: vec4<f32>, ids: LaneIds) -> vec4<f32> {
  let s = vec4<f32>(lanesAdd(v.x), lanesAdd(v.y), lanesAdd(v.z), lanesAdd(v.w));
  if (STRIP_LANES == SG_SIZE) { return s; } // a strip is one subgroup: done, no workgroup memory
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
  let lane = ids.lid % STRIP_LANES; // within the strip
  let M = min(params.M, MAX_TOKENS);
  let N = shard.rows; // rows of this w; y's row stride is params.N
  let K4 = params.K / 4u;
  let hasBias = params.hasBias != 0u;
  let strip = (wid.y * nwg.x + wid.x) * STRIPS + ids.lid / STRIP_LANES;
  let n0 = strip * 4u;
  // Row bases; a row past N repeats row N - 1 (read, never written). No early return for strips
  // past N: with subgroup strips it would not be uniform, and reduceLanes holds barriers.
  let w0 = min(n0, N - 1u) * K4;
  let w1 = min(n0 + 1u, N - 1u) * K4;
  let w2 = min(n0 + 2u, N - 1u) * K4;
  let w3 = min(n0 + 3u, N - 1u) * K4;

  var acc: array<vec4<f32>, MAX_TOKENS>; // acc[m][r]: token m, row n0 + r
  for (var m = 0u; m < MAX_TOKENS; m++) { acc[m] = vec4<f32>(0.0); } // explicit (see splitKvDecode)
  if (M == 1u) { // uniform: one register accumulator (see the header)
    var acc0 = vec4<f32>(0.0);
    for (var k4 = lane; k4 < K4; k4 += STRIP_LANES) {
      let xv = x[k4];
      acc0 += vec4<f32>(dot(xv, unpackWord4(w[w0 + k4])), dot(xv, unpackWord4(w[w1 + k4])),
                        dot(xv, unpackWord4(w[w2 + k4])), dot(xv, unpackWord4(w[w3 + k4])));
    }
    acc[0] = acc0;
  } else {
    for (var k4 = lane; k4 < K4; k4 += STRIP_LANES) {
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
  }
  for (var m = 0u; m < M; m++) {
    let sum = reduceLanes(acc[m], ids);
    if (lane == 0u) {
      for (var r = 0u; r < 4u; r++) {
        let n = n0 + r;
        if (n < N) {
          var v = sum[r];
          let col = shard.firstRow + n;
          if (hasBias) { v += unpackWord4(bias[col / 4u])[col % 4u]; }
          y[m * params.N + col] = v;
        }
      }
    }
  }
}
