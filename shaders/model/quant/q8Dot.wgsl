// q8Dot: the batch-1 GEMV step of q8 (matvecQuant.wgsl): one code vec4 (16 values, half a block)
// of 4 rows against token 0's X, each X vec4 loaded once for the 4 rows. Consecutive lanes take
// consecutive code vec4s (a lane per whole block would put 32 bytes between lanes' loads).
//   requires: q8.wgsl, `x: array<vec4<f32>>` (token 0's X from index 0)
//   provides: STEP_VALUES, qDot4(rows, blocks, step): the 4 rows' (row vec4 offsets `rows`) dot
//             products over values STEP_VALUES * step .. + STEP_VALUES - 1
const STEP_VALUES = 16u;

fn dotI8(c: vec4<u32>, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>) -> f32 {
  return dot(i8x4(c.x), x0) + dot(i8x4(c.y), x1) + dot(i8x4(c.z), x2) + dot(i8x4(c.w), x3);
}

fn qDot4(rows: vec4<u32>, blocks: u32, step: u32) -> vec4<f32> {
  let xb = 4u * step;
  let x0 = x[xb];
  let x1 = x[xb + 1u];
  let x2 = x[xb + 2u];
  let x3 = x[xb + 3u];
  let b = step / 2u;
  return vec4<f32>(dotI8(w4[rows.x + step], x0, x1, x2, x3) * qScale(rows.x, blocks, b),
                   dotI8(w4[rows.y + step], x0, x1, x2, x3) * qScale(rows.y, blocks, b),
                   dotI8(w4[rows.z + step], x0, x1, x2, x3) * qScale(rows.z, blocks, b),
                   dotI8(w4[rows.w + step], x0, x1, x2, x3) * qScale(rows.w, blocks, b));
}
