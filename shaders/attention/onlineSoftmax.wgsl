// onlineSoftmax: one step of the online softmax over a tile of scores, shared by flashPrefill
// (through attentionTile.wgsl) and splitKvDecode. Not a kernel: the kernel that includes it
// declares the workgroup arrays sTile [BLOCK_M][BLOCK_N] (scores in, probabilities out),
// rowM, rowL, rowAlpha [BLOCK_M] and the overrides BLOCK_M, BLOCK_N; NEG comes from pagedKv.wgsl.
//
// For each row r, one lane per row (lanes lid, lid + threads, ...):
//   m' = max(m, max_j s_j);  p_j = exp(s_j - m'), 0 where masked (s_j is exactly NEG, compared as
//   bits: a NaN score is not masked, so its p, the row sum and the row's output are not finite, as
//   in the float64 twin; max() may drop the NaN from m', which the NaN p makes moot);
//   alpha = exp(m - m') rescales what the row accumulated so far;  l' = l * alpha + sum_j p_j.
// Worked example: m = 2, l = 3, tile scores (4, NEG): m' = 4, p = (1, 0), alpha = e^-2, l' = 3e^-2 + 1.
// requires: sTile, rowM, rowL, rowAlpha, BLOCK_M, BLOCK_N, NEG
// provides: onlineSoftmaxRows
fn onlineSoftmaxRows(lid: u32, threads: u32) {
  for (var r = lid; r < BLOCK_M; r += threads) {
    let mOld = rowM[r];
    var mNew = mOld;
    for (var j = 0u; j < BLOCK_N; j++) { mNew = max(mNew, sTile[r * BLOCK_N + j]); }
    var sum = 0.0;
    for (var j = 0u; j < BLOCK_N; j++) {
      let sc = sTile[r * BLOCK_N + j];
      // Masked: the bits of NEG. Not `sc != NEG` nor `sc > NEG / 2`: lavapipe evaluates float
      // comparisons as ordered (NaN != NEG is false there), which would give a NaN score p = 0.
      let p = select(0.0, exp(sc - mNew), bitcast<u32>(sc) != bitcast<u32>(NEG));
      sTile[r * BLOCK_N + j] = p;
      sum += p;
    }
    let alpha = exp(mOld - mNew); // 1 while the row has seen nothing (both NEG)
    rowAlpha[r] = alpha;
    rowL[r] = rowL[r] * alpha + sum;
    rowM[r] = mNew;
  }
}
