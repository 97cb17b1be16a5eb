// matmul: prefill GEMM with an optional bias, Y [M, N] = X [M, K] · Wᵀ (+ bias [N]).
// X holds f32 activations (one row per token); W [N, K] is a weight in Hugging Face layout
// (out_features x in_features) stored f32 or f16 packed in u32 pairs (composed with a word4
// snippet, like the KV pages: a Word4 holds 4 consecutive K values of one W row, unpackWord4 -> f32).
// Both operands are K-contiguous, so both tiles are staged along K as vec4s.
//
// Workgroup: LANES_X x LANES_Y lanes, one TILE_M x TILE_N output tile (TILE_M = LANES_Y * RM,
// TILE_N = LANES_X * RN, RM = RN = 4). Register blocking: lane (lx, ly) owns the 4 x 4 outputs of
// rows ly + i * LANES_Y and columns lx + j * LANES_X (interleaved, so a row of lanes writes
// consecutive columns). Per vec4 of K it loads 4 X words and 4 W words from workgroup memory and
// does 16 dot products: each word serves 4 outputs (2x faster than one output per lane on llvmpipe).
// K is walked in TILE_K4 vec4s per step: stage X [TILE_M][TILE_K4] and W [TILE_N][TILE_K4] (rows
// padded to TILE_K4 + 1 vec4s against bank conflicts), barrier, accumulate, barrier.
// Workgroup memory: 16 * (TILE_M + TILE_N) * (TILE_K4 + 1) bytes; e.g. 32 x 32 tiles, TILE_K4 8:
//   16 * 64 * 9 = 9216 bytes.
// Grid: (ceil(N / TILE_N), ceil(M / TILE_M)); e.g. M 33, N 257, 32 x 32 tiles -> (9, 2).
// Edges: rows >= M and columns >= N stage zeros and are not written; K % 4 == 0 is required, a
// last partial K step only runs its valid vec4s.
//
// Bindings:
//   0 x       read        vec4<f32> [M][K / 4]
//   1 w       read        Word4 [N][K / 4]
//   2 bias    read        Word4 [ceil(N / 4)] (same storage as w; read only when hasBias)
//   3 y       read_write  f32 [M][N]
//   4 params  uniform     { M, N, K, hasBias } (N: the whole weight's rows, y's row stride)
//   5 shard   uniform     { firstRow, rows }: w holds W rows firstRow .. firstRow + rows - 1, written to
//                         y columns firstRow + col (N below is shard.rows; grid x covers the shard)
// Overrides: LANES_X, LANES_Y, TILE_K4.
// requires: Word4, unpackWord4 (shaders/common/word4*.wgsl)

override LANES_X: u32 = 8u;
override LANES_Y: u32 = 8u;
override TILE_K4: u32 = 8u;
const RM = 4u;
const RN = 4u;
override TILE_M: u32 = LANES_Y * RM;
override TILE_N: u32 = LANES_X * RN;
override STRIDE: u32 = TILE_K4 + 1u;       // padded row of a staged tile, in vec4s

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

var<workgroup> xs: array<vec4<f32>, TILE_M * STRIDE>; // [row][k4] of the X tile
var<workgroup> ws: array<vec4<f32>, TILE_N * STRIDE>; // [column][k4] of the W tile

@compute @workgroup_size(LANES_X, LANES_Y)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let M = params.M;
  let N = shard.rows; // rows of this w; y's row stride is params.N
  let K4 = params.K / 4u;
  let hasBias = params.hasBias != 0u;
  let lanes = LANES_X * LANES_Y;
  let m0 = wid.y * TILE_M;
  let n0 = wid.x * TILE_N;
  var acc: array<vec4<f32>, RM>; // acc[i][j]: row ly + i * LANES_Y, column lx + j * LANES_X
  for (var i = 0u; i < RM; i++) { acc[i] = vec4<f32>(0.0); } // explicit (see splitKvDecode)

  for (var kt = 0u; kt < K4; kt += TILE_K4) {
    // Stage: element e of a tile is (row e / TILE_K4, k4 e % TILE_K4): consecutive lanes read
    // consecutive vec4s of a row (coalesced).
    for (var e = lid; e < TILE_M * TILE_K4; e += lanes) {
      let r = e / TILE_K4;
      let c = e % TILE_K4;
      var v = vec4<f32>(0.0);
      if (m0 + r < M && kt + c < K4) { v = x[(m0 + r) * K4 + kt + c]; }
      xs[r * STRIDE + c] = v;
    }
    for (var e = lid; e < TILE_N * TILE_K4; e += lanes) {
      let r = e / TILE_K4;
      let c = e % TILE_K4;
      var v = vec4<f32>(0.0);
      if (n0 + r < N && kt + c < K4) { v = unpackWord4(w[(n0 + r) * K4 + kt + c]); }
      ws[r * STRIDE + c] = v;
    }
    workgroupBarrier();
    let kc = min(TILE_K4, K4 - kt);
    for (var c = 0u; c < kc; c++) {
      let b0 = ws[l.x * STRIDE + c];
      let b1 = ws[(l.x + LANES_X) * STRIDE + c];
      let b2 = ws[(l.x + 2u * LANES_X) * STRIDE + c];
      let b3 = ws[(l.x + 3u * LANES_X) * STRIDE + c];
      for (var i = 0u; i < RM; i++) {
        let a = xs[(l.y + i * LANES_Y) * STRIDE + c];
        acc[i] += vec4<f32>(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < RM; i++) {
    let row = m0 + l.y + i * LANES_Y;
    if (row >= M) { continue; }
    for (var j = 0u; j < RN; j++) {
      let col = n0 + l.x + j * LANES_X;
      if (col < N) {
        var v = acc[i][j];
        let yc = shard.firstRow + col;
        if (hasBias) { v += unpackWord4(bias[yc / 4u])[yc % 4u]; }
        y[row * params.N + yc] = v;
      }
    }
  }
}
