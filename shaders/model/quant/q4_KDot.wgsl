// q4_KDot: the batch-1 GEMV step of q4_K (matvecQuant.wgsl): 16 values of 4 rows (one sub-block's
// nibbles of one code vec4) against token 0's X, the X vec4s loaded once for the 4 rows; the
// sub-block's scale is applied once to the dot product and its min once to the sum of its X values
// (sum (s q - m) x = s sum q x - m sum x). Step s is block s / 16, code vec4 q = s % 8 (chunk
// c = q / 2, bytes 16 (q % 2) ..), low nibbles for s % 16 < 8 (sub-block 2c), high ones after
// (2c + 1): consecutive lanes take consecutive code vec4s.
// e.g. step 29: block 1, q 5, high nibbles: chunk 2, sub-block 5, values 256 + 128 + 32 + 16 ..
//   31: X vec4s 108 .. 111.
//   requires: q4_K.wgsl, `x: array<vec4<f32>>` (token 0's X from index 0)
//   provides: STEP_VALUES, qDot4(rows, blocks, step): the 4 rows' (row vec4 offsets `rows`) dot
//             products over the 16 values of step `step` of the row (16 a block)
const STEP_VALUES = 16u;

fn dotQ4k(base: u32, q: u32, hi: u32, xs: array<vec4<f32>, 4>, xsum: f32) -> f32 {
  let c = w4[base + 1u + q] >> vec4<u32>(4u * hi);
  let sm = q4kScaleMin(w4[base], 2u * (q / 2u) + hi);
  let s = dot(nib4(c.x), xs[0]) + dot(nib4(c.y), xs[1]) + dot(nib4(c.z), xs[2]) + dot(nib4(c.w), xs[3]);
  return sm.x * s - sm.y * xsum;
}

fn qDot4(rows: vec4<u32>, blocks: u32, step: u32) -> vec4<f32> {
  let b = step / 16u;
  let q = step % 8u;
  let hi = (step / 8u) % 2u;
  let xb = 64u * b + 16u * (q / 2u) + 8u * hi + 4u * (q % 2u);
  let xs = array<vec4<f32>, 4>(x[xb], x[xb + 1u], x[xb + 2u], x[xb + 3u]);
  let xsum = dot(xs[0] + xs[1] + xs[2] + xs[3], vec4<f32>(1.0));
  let o = 9u * b;
  return vec4<f32>(dotQ4k(rows.x + o, q, hi, xs, xsum), dotQ4k(rows.y + o, q, hi, xs, xsum),
                   dotQ4k(rows.z + o, q, hi, xs, xsum), dotQ4k(rows.w + o, q, hi, xs, xsum));
}
