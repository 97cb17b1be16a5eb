// q5_0Dot: the batch-1 GEMV step of q5_0 (matvecQuant.wgsl): one block (32 values) of 4 rows
// against token 0's X, the X vec4s loaded once for the 4 rows, d applied once per block.
//   requires: q5_0.wgsl, `x: array<vec4<f32>>` (token 0's X from index 0)
//   provides: STEP_VALUES, qDot4(rows, blocks, step): the 4 rows' (row vec4 offsets `rows`) dot
//             products over values STEP_VALUES * step .. + STEP_VALUES - 1
const STEP_VALUES = 32u;

fn dotQ5(row: u32, blocks: u32, b: u32, xs: array<vec4<f32>, 8>) -> f32 {
  let c = w4[row + b];
  let qh = qHigh(row, blocks, b);
  let s = dot(q5Codes(c.x, 0u, qh, 0u), xs[0]) + dot(q5Codes(c.y, 0u, qh, 4u), xs[1]) +
    dot(q5Codes(c.z, 0u, qh, 8u), xs[2]) + dot(q5Codes(c.w, 0u, qh, 12u), xs[3]) +
    dot(q5Codes(c.x, 4u, qh, 16u), xs[4]) + dot(q5Codes(c.y, 4u, qh, 20u), xs[5]) +
    dot(q5Codes(c.z, 4u, qh, 24u), xs[6]) + dot(q5Codes(c.w, 4u, qh, 28u), xs[7]);
  return s * qScale(row, blocks, b);
}

fn qDot4(rows: vec4<u32>, blocks: u32, step: u32) -> vec4<f32> {
  let xb = 8u * step;
  let xs = array<vec4<f32>, 8>(x[xb], x[xb + 1u], x[xb + 2u], x[xb + 3u], x[xb + 4u], x[xb + 5u], x[xb + 6u],
                               x[xb + 7u]);
  return vec4<f32>(dotQ5(rows.x, blocks, step, xs), dotQ5(rows.y, blocks, step, xs), dotQ5(rows.z, blocks, step, xs),
                   dotQ5(rows.w, blocks, step, xs));
}
