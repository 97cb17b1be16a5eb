// matmulQuant: prefill GEMM over a block-quantized weight, Y [M, N] = X [M, K] · Wᵀ (+ bias [N]).
// W [N, K] holds GGUF blocks repacked by row into 16-byte-aligned planes (src/kernels/quantLayout.ts,
// as matvecQuant.wgsl); composed with quantWords.wgsl and one format snippet (qUnit dequantizes 16
// values). Accumulates in f32.
//
// Same tiling as matmul.wgsl: LANES_X x LANES_Y lanes, one TILE_M x TILE_N output tile, each lane
// 4 x 4 outputs (rows ly + i * LANES_Y, columns lx + j * LANES_X); K walked in TILE_K4 vec4s per
// step, X and W tiles staged in workgroup memory as f32 (rows padded to TILE_K4 + 1 vec4s). The W
// tile is staged by 16-value units: element e = (row e / (TILE_K4 / 4), unit e % (TILE_K4 / 4))
// dequantizes one unit into 4 vec4s, so each weight byte is decoded once per workgroup.
// TILE_K4 must be a multiple of 4, and K a multiple of BLOCK_VALUES (>= 32), so units are whole.
// Workgroup memory: 16 * (TILE_M + TILE_N) * (TILE_K4 + 1) bytes.
// Grid: (ceil(N / TILE_N), ceil(M / TILE_M)); e.g. M 33, N 257, 32 x 32 tiles -> (9, 2).
// Edges: rows >= M and columns >= N stage zeros and are not written.
//
// Bindings:
//   0 x       read        vec4<f32> [M][K / 4]
//   1 w4      read        vec4<u32> [N][qRowVec4s(K / BLOCK_VALUES)] (the packed rows)
//   6 w       read        u32, the same buffer as w4 (scales are read one word at a time)
//   2 bias    read        u32 [ceil(N / 2)] (f16 pairs; read only when hasBias)
//   3 y       read_write  f32 [M][N]
//   4 params  uniform     { M, N, K, hasBias } (N: the whole weight's rows, y's row stride)
//   5 shard   uniform     { firstRow, rows }: w holds W rows firstRow .. firstRow + rows - 1 (as matmul.wgsl)
// Overrides: LANES_X, LANES_Y, TILE_K4.
// Measured (lavapipe, M 64, N = K = 1024, one process, interleaved with the f16 matmul.wgsl, load
// average ~40 from other jobs: medians of 7): f16 552 ms; q8 648 (GGUF bytes) -> 507 (packed rows),
// q4 575 -> 533, q4_K 626 -> 591, q6_K 636 -> 583: every format within the noise of f16.

override LANES_X: u32 = 8u;
override LANES_Y: u32 = 8u;
override TILE_K4: u32 = 8u;
const RM = 4u;
const RN = 4u;
override TILE_M: u32 = LANES_Y * RM;
override TILE_N: u32 = LANES_X * RN;
override STRIDE: u32 = TILE_K4 + 1u;       // padded row of a staged tile, in vec4s
override TILE_U: u32 = TILE_K4 / 4u;       // 16-value units per staged row

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

var<workgroup> xs: array<vec4<f32>, TILE_M * STRIDE>; // [row][k4] of the X tile
var<workgroup> ws: array<vec4<f32>, TILE_N * STRIDE>; // [column][k4] of the W tile

@compute @workgroup_size(LANES_X, LANES_Y)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let M = params.M;
  _ = &w4; // both views stay in the layout whichever the format reads (q4_K: only w4)
  _ = &w;
  let N = shard.rows; // rows of this w; y's row stride is params.N
  let K4 = params.K / 4u;
  let units = params.K / 16u;
  let blocks = params.K / BLOCK_VALUES;
  let rowVec4s = qRowVec4s(blocks);
  let lanes = LANES_X * LANES_Y;
  let m0 = wid.y * TILE_M;
  let n0 = wid.x * TILE_N;
  var acc: array<vec4<f32>, RM>; // acc[i][j]: row ly + i * LANES_Y, column lx + j * LANES_X
  for (var i = 0u; i < RM; i++) { acc[i] = vec4<f32>(0.0); } // explicit (see splitKvDecode)

  for (var kt = 0u; kt < K4; kt += TILE_K4) {
    for (var e = lid; e < TILE_M * TILE_K4; e += lanes) {
      let r = e / TILE_K4;
      let c = e % TILE_K4;
      var v = vec4<f32>(0.0);
      if (m0 + r < M && kt + c < K4) { v = x[(m0 + r) * K4 + kt + c]; }
      xs[r * STRIDE + c] = v;
    }
    for (var e = lid; e < TILE_N * TILE_U; e += lanes) {
      let r = e / TILE_U;
      let cu = e % TILE_U;
      let unit = kt / 4u + cu;
      var q = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
      if (n0 + r < N && unit < units) {
        q = qUnit((n0 + r) * rowVec4s, blocks, unit);
      }
      let s = r * STRIDE + 4u * cu;
      ws[s] = q[0];
      ws[s + 1u] = q[1];
      ws[s + 2u] = q[2];
      ws[s + 3u] = q[3];
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
        if (params.hasBias != 0u) { v += unpack2x16float(bias[yc / 2u])[yc % 2u]; }
        y[row * params.N + yc] = v;
      }
    }
  }
}
