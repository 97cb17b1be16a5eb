// q6_KDot: the batch-1 GEMV step of q6_K (matvecQuant.wgsl): one ql vec4 (16 bytes: 32 values)
// of 4 rows against token 0's X, the X vec4s loaded once for the 4 rows. Consecutive lanes take
// consecutive ql vec4s. Step s is block s / 8 and its ql vec4 q = s % 8: half n = q / 4, j =
// (q / 2) % 2, l = 16 m .. 16 m + 15 (m = q % 2); the low nibbles are quarter i = j, the high ones
// quarter j + 2, their 2-bit high parts in qh vec4 8 + 2n + m (bits 2i, 2i + 1 of each byte), their
// scales sc[8n + m + 2i] (byte m + 2j of scale words 2n, 2n + 1). The code offset 32 is taken out
// once per quarter: sum (q - 32) x = sum q x - 32 sum x.
// e.g. step 13: block 1, q 5: n 1, j 0, m 1: quarter 0 is values 256 + 128 + 16 .. 31 (X vec4s 100
//   .. 103), quarter 2 values 256 + 128 + 64 + 16 .. 31 (X vec4s 116 .. 119).
//   requires: q6_K.wgsl, `x: array<vec4<f32>>` (token 0's X from index 0)
//   provides: STEP_VALUES, qDot4(rows, blocks, step): the 4 rows' (row vec4 offsets `rows`) dot
//             products over the 32 values of step `step` of the row (8 a block)
const STEP_VALUES = 32u;

// One row's sum over the step: (sum q x - 32 sum x) per quarter, times its scale and d.
fn dotQ6Row(row: u32, blocks: u32, b: u32, q: u32, lo: array<vec4<f32>, 4>, hi: array<vec4<f32>, 4>,
            sums: vec2<f32>) -> f32 {
  let n = q / 4u;
  let j = (q / 2u) % 2u;
  let m = q % 2u;
  let base = row + 12u * b;
  let ql = w4[base + q];
  let qh = w4[base + 8u + 2u * n + m];
  let sw = 4u * (row + 12u * blocks + b) + 2u * n;
  let sh = 24u - 8u * (m + 2u * j); // sign-extends byte m + 2j of a scale word
  let sc = vec2<f32>(vec2<i32>(bitcast<i32>(w[sw] << sh), bitcast<i32>(w[sw + 1u] << sh)) >> vec2<u32>(24u));
  let hs = 2u * j;
  let dlo = dot(q6Raw(ql.x, qh.x, 0u, hs), lo[0]) + dot(q6Raw(ql.y, qh.y, 0u, hs), lo[1]) +
    dot(q6Raw(ql.z, qh.z, 0u, hs), lo[2]) + dot(q6Raw(ql.w, qh.w, 0u, hs), lo[3]);
  let dhi = dot(q6Raw(ql.x, qh.x, 4u, hs + 4u), hi[0]) + dot(q6Raw(ql.y, qh.y, 4u, hs + 4u), hi[1]) +
    dot(q6Raw(ql.z, qh.z, 4u, hs + 4u), hi[2]) + dot(q6Raw(ql.w, qh.w, 4u, hs + 4u), hi[3]);
  return qHalf(4u * (row + 13u * blocks), b) * dot(sc, vec2<f32>(dlo, dhi) - 32.0 * sums);
}

fn qDot4(rows: vec4<u32>, blocks: u32, step: u32) -> vec4<f32> {
  let b = step / 8u;
  let q = step % 8u;
  // Quarter j: X vec4s xb .. xb + 3; quarter j + 2: xb + 16 ..
  let xb = 64u * b + 32u * (q / 4u) + 8u * ((q / 2u) % 2u) + 4u * (q % 2u);
  let lo = array<vec4<f32>, 4>(x[xb], x[xb + 1u], x[xb + 2u], x[xb + 3u]);
  let hi = array<vec4<f32>, 4>(x[xb + 16u], x[xb + 17u], x[xb + 18u], x[xb + 19u]);
  let one = vec4<f32>(1.0);
  let sums = vec2<f32>(dot(lo[0] + lo[1] + lo[2] + lo[3], one), dot(hi[0] + hi[1] + hi[2] + hi[3], one));
  return vec4<f32>(dotQ6Row(rows.x, blocks, b, q, lo, hi, sums), dotQ6Row(rows.y, blocks, b, q, lo, hi, sums),
                   dotQ6Row(rows.z, blocks, b, q, lo, hi, sums), dotQ6Row(rows.w, blocks, b, q, lo, hi, sums));
}
