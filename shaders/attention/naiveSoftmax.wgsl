// naiveSoftmax: pass 2 of the naive three-pass attention: normalise each materialised score row in
// place (max, exp, sum, divide) and write its log-sum-exp. Composed as: naive.wgsl + this.
// Workgroup: 64 threads, one per chunk row. Grid: ceil(numTokens * NUM_HEADS / 64) (x, y split).
// Bindings:
//   9  scores  read_write  f32 [numTokens * NUM_HEADS][maxKv]   (see naiveScores.wgsl)
//   11 lse     read_write  f32 [numQ][NUM_HEADS]
//   12 naive   uniform     NaiveParams
// Overrides: NUM_HEADS.
// requires: scores, naive, flatIndex

override NUM_HEADS: u32 = 1u;
const NEG = -1.0e30;

@group(0) @binding(11) var<storage, read_write> lse: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = flatIndex(wid, nwg, lid);
  if (r >= naive.numTokens * NUM_HEADS) { return; }
  let base = r * naive.maxKv;
  var m = NEG;
  for (var j = 0u; j < naive.maxKv; j++) { m = max(m, scores[base + j]); }
  var sum = 0.0;
  for (var j = 0u; j < naive.maxKv; j++) {
    let s = scores[base + j];
    // Masked: exactly NEG, compared as bits (lavapipe's float != is ordered: NaN != NEG is false there).
    let p = select(0.0, exp(s - m), bitcast<u32>(s) != bitcast<u32>(NEG));
    scores[base + j] = p;
    sum += p;
  }
  for (var j = 0u; j < naive.maxKv; j++) { scores[base + j] = scores[base + j] / sum; }
  lse[naive.tokenStart * NUM_HEADS + r] = m + log(sum);
}
