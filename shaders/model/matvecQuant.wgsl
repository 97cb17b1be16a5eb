// matvecQuant: decode GEMV over a block-quantized weight, Y [M, N] = X [M, K] · Wᵀ (+ bias [N]),
// for a few tokens (M = 1..MAX_TOKENS). W [N, K] (Hugging Face layout) holds GGUF blocks byte for
// byte, row after row (K / BLOCK_VALUES blocks of BLOCK_BYTES per row); composed with one format
// snippet (shaders/model/quant/*.wgsl: qUnit dequantizes 16 values) after quantWords.wgsl.
// Values are dequantized in registers and accumulated in f32; no `shader-f16` needed.
//
// Same work split as matvec.wgsl: a workgroup owns a strip of 4 consecutive rows and its WG lanes
// walk the rows together, consecutive lanes on consecutive bytes of a row.
//   M = 1 (batch-1 decode; uniform branch): a lane step takes two 16-value units, i.e. a whole
//     32-value block of q8 / q4 / q5_0 (K-quants: units 2j and 2j + 1 of a 256-value block), loads
//     the 32 X values once for the 4 rows and accumulates in one register.
//     Q8_0 and Q4_0 blocks are read as whole words (dotBlockWords: 9 / 5 loads per 32 values, where
//     qUnit's unaligned 4-byte reads cost 18); the other formats go through qUnit.
//   M > 1: a lane step takes one unit, dequantizes it for the 4 rows once and dots it with every
//     token's 16 X values.
// Partial vec4s (one component per row) are reduced per token by reduceLanes (as matvec.wgsl:
// subgroupAdd, then a tree over NUM_SG entries when the workgroup holds several subgroups); lane 0
// writes each token's 4 outputs. Rows past N (last strip when N % 4 != 0) read row N - 1 again and
// are not written.
// e.g. q8, K 96: 3 blocks of 34 bytes per row (102 bytes), 6 units; row 5 starts at byte 510 and
// its unit 3 is block 1 (byte 544), values 16..31; row 1 starts at byte 102 = 2 mod 4, so its
// blocks' scales are the high halves of words 25, 33, 42 (dotBlockWords' `odd` path).
//
// Ladder (W [2048, 8192], 1 token, ms against the same run's f16 matvec; 2 loaded cores, noisy):
//   v1  qUnit per unit, WG 64, a WG-entry tree per token: lavapipe f16 21 ms, q8 48, q4 47;
//       SwiftShader f16 471 ms, q8 191, q4 206.
//   v2  (this) subgroupAdd with one subgroup per workgroup on software adapters (matvecLanes), the
//       M = 1 loop over blocks, whole-word Q8_0 / Q4_0: lavapipe (interleaved, 21-25 rounds;
//       median) f16 11-13 ms, q8 21-26 ms (1.8-2.4x f16), q4 12-12.5 ms (0.9-1.1x f16);
//       SwiftShader f16 228 ms, q8 214, q4 149. With the two units through qUnit instead of
//       dotBlockWords, q8 was 3.5x f16 on lavapipe; the cost follows the loads (giving q8 the
//       loads of q4 made it 3x faster), not the arithmetic.
//
// Workgroup: WG lanes = NUM_SG subgroups of SG_SIZE (plain: SG_SIZE 1, NUM_SG = WG; a power of
// two). Workgroup memory: 16 * NUM_SG bytes (unused when NUM_SG = 1; 1 KiB plain at WG 64).
// Grid: (x, y) with x * y >= ceil(N / 4) strips, x <= maxComputeWorkgroupsPerDimension; strip =
// wid.y * x + wid.x.
//
// Bindings:
//   0 x       read        vec4<f32> [M][K / 4]
//   1 w       read        u32 [N * K / BLOCK_VALUES * BLOCK_BYTES / 4 + 1] (GGUF blocks, + a pad word)
//   2 bias    read        u32 [ceil(N / 2)] (f16 pairs; read only when hasBias)
//   3 y       read_write  f32 [M][N]
//   4 params  uniform     { M, N, K, hasBias } (K a multiple of BLOCK_VALUES; N: the whole weight's rows)
//   5 shard   uniform     { firstRow, rows }: w holds W rows firstRow .. firstRow + rows - 1, written to
//                         y columns firstRow + n (as matvec.wgsl)
// Overrides: WG, SG_SIZE, NUM_SG (as matvec.wgsl: src/kernels/matvec.ts matvecLanes).
// requires: LaneIds, subgroupLane, lanesAdd (shaders/attention/mlaDecodeSubgroups.wgsl or mlaDecodeLanes.wgsl)

override WG: u32 = 64u;
override SG_SIZE: u32 = 1u;
override NUM_SG: u32 = 64u;
const MAX_TOKENS = 8u;

struct Params { M: u32, N: u32, K: u32, hasBias: u32 }
// Rows [firstRow, firstRow + rows) of the whole W live in this dispatch's w (a weight split by rows
// across buffers, src/model/weights.ts: one dispatch per shard); an unsplit W is one shard (0, N).
struct Shard { firstRow: u32, rows: u32 }

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> bias: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<uniform> shard: Shard;

var<workgroup> red: array<vec4<f32>, NUM_SG>; // [subgroup] one token's partial sums of the 4 rows

// Token m's dot products of one 16-value unit with the 4 rows' dequantized units (X read once).
fn dot4Rows(a: array<vec4<f32>, 4>, b: array<vec4<f32>, 4>, c: array<vec4<f32>, 4>, d: array<vec4<f32>, 4>,
            m: u32, unit: u32, K4: u32) -> vec4<f32> {
  let xb = m * K4 + 4u * unit;
  let x0 = x[xb];
  let x1 = x[xb + 1u];
  let x2 = x[xb + 2u];
  let x3 = x[xb + 3u];
  return vec4<f32>(dot(a[0], x0) + dot(a[1], x1) + dot(a[2], x2) + dot(a[3], x3),
                   dot(b[0], x0) + dot(b[1], x1) + dot(b[2], x2) + dot(b[3], x3),
                   dot(c[0], x0) + dot(c[1], x1) + dot(c[2], x2) + dot(c[3], x3),
                   dot(d[0], x0) + dot(d[1], x1) + dot(d[2], x2) + dot(d[3], x3));
}

// One row's dot product with token 0 over units u, u + 1 of the block at byte `block` (values
// 16u .. 16u + 31 of the block), xs = those 32 X values. The two units' qUnit calls read the same
// (q4: scale and code words) or neighbouring (q8) words, which a compiler may load once.
fn dotUnitPair(block: u32, u: u32, xs: array<vec4<f32>, 8>) -> f32 {
  let a = qUnit(block, u);
  let b = qUnit(block, u + 1u);
  return dot(a[0], xs[0]) + dot(a[1], xs[1]) + dot(a[2], xs[2]) + dot(a[3], xs[3]) + dot(b[0], xs[4]) +
    dot(b[1], xs[5]) + dot(b[2], xs[6]) + dot(b[3], xs[7]);
}

// Q8_0 / Q4_0 blocks read as whole words: a block at an even byte b spans words b / 4 ..
// b / 4 + 8 (q8, 34 bytes) or + 4 (q4, 18 bytes); its f16 scale is the low half of the first word
// when b % 4 == 0, else the high half, and its code bytes 4j .. 4j + 3 are then the top half of
// word j | the bottom half of word j + 1, else word j + 1. 9 (q8) / 5 (q4) loads per 32 values
// where two qUnit calls make 18.
// One row's dot product with token 0 over the whole block at byte `block`, xs = its 32 X values.
fn dotBlockWords(block: u32, xs: array<vec4<f32>, 8>) -> f32 {
  let i = block >> 2u;
  let odd = (block & 2u) != 0u;
  let w0 = w[i];
  let d = unpack2x16float(select(w0, w0 >> 16u, odd)).x;
  let w1 = w[i + 1u];
  let w2 = w[i + 2u];
  let w3 = w[i + 3u];
  let w4 = w[i + 4u];
  let c0 = codeWord(w0, w1, odd);
  let c1 = codeWord(w1, w2, odd);
  let c2 = codeWord(w2, w3, odd);
  let c3 = codeWord(w3, w4, odd);
  if (BLOCK_BYTES == 18u) { // q4: low nibbles are values 4j .., high nibbles 16 + 4j ..
    let lo = dot(q4x4(c0), xs[0]) + dot(q4x4(c1), xs[1]) + dot(q4x4(c2), xs[2]) + dot(q4x4(c3), xs[3]);
    let hi = dot(q4x4(c0 >> 4u), xs[4]) + dot(q4x4(c1 >> 4u), xs[5]) + dot(q4x4(c2 >> 4u), xs[6]) +
      dot(q4x4(c3 >> 4u), xs[7]);
    return (lo + hi) * d;
  }
  // q8: 8 code words
  let w5 = w[i + 5u];
  let w6 = w[i + 6u];
  let w7 = w[i + 7u];
  let w8 = w[i + 8u];
  let s = dot(i8x4(c0), xs[0]) + dot(i8x4(c1), xs[1]) + dot(i8x4(c2), xs[2]) + dot(i8x4(c3), xs[3]) +
    dot(i8x4(codeWord(w4, w5, odd)), xs[4]) + dot(i8x4(codeWord(w5, w6, odd)), xs[5]) +
    dot(i8x4(codeWord(w6, w7, odd)), xs[6]) + dot(i8x4(codeWord(w7, w8, odd)), xs[7]);
  return s * d;
}

// Code bytes 4j .. 4j + 3 of a block from its words j, j + 1 (see dotBlockWords).
fn codeWord(lo: u32, hi: u32, odd: bool) -> u32 {
  return select((lo >> 16u) | (hi << 16u), hi, odd);
}

// The low nibbles of a word's 4 bytes as Q4_0 values q - 8. Converted from i32, not u32: CPUs
// without AVX-512 have no unsigned vector conversion (LLVM expands u32 -> f32 to several ops).
fn q4x4(c: u32) -> vec4<f32> {
  let q = vec4<u32>(c, c >> 8u, c >> 16u, c >> 24u) & vec4<u32>(0xfu);
  return vec4<f32>(bitcast<vec4<i32>>(q) - vec4<i32>(8));
}

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
  let M = min(params.M, MAX_TOKENS);
  let N = shard.rows; // rows of this w; y's row stride is params.N
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
  if (M == 1u) { // uniform. Batch-1 decode: a register accumulator, two units per lane step
    var acc0 = vec4<f32>(0.0);
    for (var pair = lid; pair < units / 2u; pair += WG) { // units is even (K a multiple of 32)
      let unit = 2u * pair;
      let block = (unit / unitsPerBlock) * BLOCK_BYTES;
      let u = unit % unitsPerBlock;
      let xb = 4u * unit;
      let xs = array<vec4<f32>, 8>(x[xb], x[xb + 1u], x[xb + 2u], x[xb + 3u], x[xb + 4u], x[xb + 5u], x[xb + 6u],
                                   x[xb + 7u]);
      if (BLOCK_VALUES == 32u && (BLOCK_BYTES == 34u || BLOCK_BYTES == 18u)) {
        acc0 += vec4<f32>(dotBlockWords(r0 + block, xs), dotBlockWords(r1 + block, xs),
                          dotBlockWords(r2 + block, xs), dotBlockWords(r3 + block, xs));
      } else {
        acc0 += vec4<f32>(dotUnitPair(r0 + block, u, xs), dotUnitPair(r1 + block, u, xs),
                          dotUnitPair(r2 + block, u, xs), dotUnitPair(r3 + block, u, xs));
      }
    }
    acc[0] = acc0;
  } else {
    for (var unit = lid; unit < units; unit += WG) {
      let block = (unit / unitsPerBlock) * BLOCK_BYTES;
      let u = unit % unitsPerBlock;
      let a = qUnit(r0 + block, u);
      let b = qUnit(r1 + block, u);
      let c = qUnit(r2 + block, u);
      let d = qUnit(r3 + block, u);
      for (var m = 0u; m < MAX_TOKENS; m++) {
        if (m < M) { acc[m] += dot4Rows(a, b, c, d, m, unit, K4); }
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
