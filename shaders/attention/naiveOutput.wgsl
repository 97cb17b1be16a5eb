// naiveOutput: pass 3 of the naive three-pass attention: out = P V with P read back from the
// materialised probabilities. Composed as: word4 + kvPages*.wgsl + pagedKv.wgsl + naive.wgsl + this.
// Workgroup: 64 threads, one per (chunk row, vec4 column of V). Grid: x * y >= numTokens * H * DV4 / 64.
// Extra bindings:
//   9  scores    read        f32 [numTokens * H][maxKv]   probabilities after naiveSoftmax
//   10 out       read_write  f32 [numQ][H][HEAD_DIM_V] (as vec4)
//   8  params    uniform     Params (pagedKv.wgsl: causal, window for keyVisible)
//   12 naive     uniform     NaiveParams
//   13 tokenSeq  read        u32 [numQ]
// requires: vRow, vVec, DV4, V_ROW4, GROUP_SIZE, NUM_KV_HEADS, seqView, keyVisible, scores,
//   naive, tokenSeq, flatIndex

@group(0) @binding(10) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let numHeads = NUM_KV_HEADS * GROUP_SIZE;
  let i = flatIndex(wid, nwg, lid);
  if (i >= naive.numTokens * numHeads * DV4) { return; }
  let c = i % DV4;
  let chunkRow = i / DV4;
  let token = naive.tokenStart + chunkRow / numHeads;
  let head = chunkRow % numHeads;
  let s = seqView(tokenSeq[token]);
  let row = (token - s.qStart) * GROUP_SIZE + head % GROUP_SIZE; // row within the sequence
  var o = vec4<f32>(0.0);
  // Every visible key, p = 0 included: 0 * a NaN value is NaN, as in the float64 twin; masked keys
  // are skipped (their V may be anything).
  for (var key = 0u; key < s.kvLen; key++) {
    let p = scores[chunkRow * naive.maxKv + key];
    if (keyVisible(s, row, key)) { o += p * vVec(vRow(s, key, head / GROUP_SIZE), c); }
  }
  out[(token * numHeads + head) * DV4 + c] = o;
}
