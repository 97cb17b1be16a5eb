// q4Dot: the batch-1 GEMV step of q4 (matvecQuant.wgsl): one block (32 values, one code vec4) of 4
// rows against token 0's X, each X vec4 loaded once for the 4 rows. The code offset 8 is taken out
// of the dot product once per block: sum (q - 8) x = sum q x - 8 sum x.
//   requires: q4.wgsl, `x: array<vec4<f32>>` (token 0's X from index 0)
//   provides: STEP_VALUES, qDot4(rows, blocks, step): the 4 rows' (row vec4 offsets `rows`) dot
//             products over values STEP_VALUES * step .. + STEP_VALUES - 1
const STEP_VALUES = 32u;

// One row's sum q x over a block: low nibbles with x0..x3, high nibbles with x4..x7.
fn dotNib(c: vec4<u32>, xs: array<vec4<f32>, 8>) -> f32 {
  let h = c >> vec4<u32>(4u);
  return dot(nib4(c.x), xs[0]) + dot(nib4(c.y), xs[1]) + dot(nib4(c.z), xs[2]) + dot(nib4(c.w), xs[3]) +
    dot(nib4(h.x), xs[4]) + dot(nib4(h.y), xs[5]) + dot(nib4(h.z), xs[6]) + dot(nib4(h.w), xs[7]);
}

fn qDot4(rows: vec4<u32>, blocks: u32, step: u32) -> vec4<f32> {
  let xb = 8u * step;
  let xs = array<vec4<f32>, 8>(x[xb], x[xb + 1u], x[xb + 2u], x[xb + 3u], x[xb + 4u], x[xb + 5u], x[xb + 6u],
                               x[xb + 7u]);
  let one = vec4<f32>(1.0);
  let xsum = dot(xs[0] + xs[1] + xs[2] + xs[3] + xs[4] + xs[5] + xs[6] + xs[7], one);
  let s = vec4<f32>(dotNib(w4[rows.x + step], xs), dotNib(w4[rows.y + step], xs), dotNib(w4[rows.z + step], xs),
                    dotNib(w4[rows.w + step], xs)) - vec4<f32>(8.0 * xsum);
  return s * vec4<f32>(qScale(rows.x, blocks, step), qScale(rows.y, blocks, step), qScale(rows.z, blocks, step),
                       qScale(rows.w, blocks, step));
}
