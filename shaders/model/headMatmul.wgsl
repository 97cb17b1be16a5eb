// headMatmul: a small matmul per (token, head) against that head's block of rows of one weight,
// for MLA's absorbed form (kv_b_proj holds, per head h, rows [k_nope (N) | v (V)] of width C):
//   TRANSPOSED false:  y[t, h, j] = sum_{i < IN} W[h * W_HEAD_ROWS + W_ROW0 + j][i] * x[t, h, i]
//                      (j < OUT; IN = W_COLS)
//   TRANSPOSED true:   y[t, h, j] = sum_{i < IN} W[h * W_HEAD_ROWS + W_ROW0 + i][j] * x[t, h, i]
//                      (j < OUT = W_COLS)
// then y[t, h, OUT + c] = x[t, h, IN + c] for c < COPY: the values after the inputs, unchanged.
// MLA uses it twice per layer (C = kv_lora_rank, N = qk_nope, R = qk_rope, V = v_head_dim):
//   absorbed query  q_lat = W_UK[h]^T q_nope, then q_pe:  TRANSPOSED, W_ROW0 0, IN N, OUT C, COPY R,
//                   x = q [T][H][N + R] -> y = [q_lat | q_pe] [T][H][C + R] (the kernel query)
//   head outputs    o[h] = W_UV[h] o_lat[h]:  W_ROW0 N, IN C, OUT V, COPY 0, x [T][H][C] -> y [T][H][V]
// W is row-major [rows][W_COLS] in Word4s of 4 values (word4 snippet: f32, or f16 packed in u32
// pairs as uploadWeights stores them), read one value at a time: the weight is small (H (N + V) C)
// and both products are a sliver of a layer's work.
//
// Workgroup: 64 lanes, one output value each; consecutive lanes take consecutive j, so in the
// transposed product they read consecutive W values of one row.
// Grid: (x, y) with x * y * 64 >= numTokens * HEADS * (OUT + COPY); lane = (wid.y * x + wid.x) * 64 + lid.
//
// Bindings:
//   0 x       read        f32 [numTokens][HEADS][X_STRIDE]  (X_STRIDE >= IN + COPY)
//   1 w       read        Word4 [rows * W_COLS / 4]
//   2 y       read_write  f32 [numTokens][HEADS][OUT + COPY]
//   3 params  uniform     { numTokens }
// Overrides: HEADS, IN, OUT, COPY, X_STRIDE, W_COLS, W_HEAD_ROWS, W_ROW0, TRANSPOSED.
// requires: Word4, unpackWord4 (shaders/common/word4*.wgsl)

override HEADS: u32 = 1u;
override IN: u32 = 4u;
override OUT: u32 = 4u;
override COPY: u32 = 0u;
override X_STRIDE: u32 = 4u;
override W_COLS: u32 = 4u;
override W_HEAD_ROWS: u32 = 4u;
override W_ROW0: u32 = 0u;
override TRANSPOSED: bool = false;

struct Params { numTokens: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<Word4>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

fn weightAt(e: u32) -> f32 {
  return unpackWord4(w[e >> 2u])[e & 3u];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let yStride = OUT + COPY;
  let index = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (index >= params.numTokens * HEADS * yStride) { return; }
  let j = index % yStride;
  let th = index / yStride; // token * HEADS + head
  let h = th % HEADS;
  let xBase = th * X_STRIDE;
  if (j >= OUT) {
    y[index] = x[xBase + IN + (j - OUT)];
    return;
  }
  let row0 = h * W_HEAD_ROWS + W_ROW0;
  var acc = 0.0;
  if (TRANSPOSED) {
    for (var i = 0u; i < IN; i++) { acc += weightAt((row0 + i) * W_COLS + j) * x[xBase + i]; }
  } else {
    let wBase = (row0 + j) * W_COLS;
    for (var i = 0u; i < IN; i++) { acc += weightAt(wBase + i) * x[xBase + i]; }
  }
  y[index] = acc;
}
