// naiveScores: pass 1 of the naive three-pass attention (the benchmark baseline a runtime without
// flash kernels has): materialise every scaled score q.k into a global buffer, masked ones as NEG.
// Composed as: word4 + kvPages*.wgsl + pagedKv.wgsl + naive.wgsl + this.
//
// Rows are (query token, head) pairs of the token chunk [tokenStart, tokenStart + numTokens):
//   chunk row R = (token - tokenStart) * H + head;  scores[R * maxKv + key]
//   e.g. H 32, maxKv 1024, token tokenStart+2, head 5, key 7 -> (2*32 + 5)*1024 + 7 = 70663
// Workgroup: 64 threads, one per (chunk row, key). Grid: x * y >= numTokens * H * maxKv / 64.
// Extra bindings:
//   9  scores    read_write f32 [numTokens * H][maxKv]
//   12 naive     uniform    NaiveParams
//   13 tokenSeq  read       u32 [numQ]  sequence of each query token
// requires: q, kRow, kVec, NEG, D4, GROUP_SIZE, NUM_KV_HEADS, seqView, keyVisible, capScore,
//   scores, naive, tokenSeq, flatIndex

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let numHeads = NUM_KV_HEADS * GROUP_SIZE;
  let i = flatIndex(wid, nwg, lid);
  if (i >= naive.numTokens * numHeads * naive.maxKv) { return; }
  let key = i % naive.maxKv;
  let chunkRow = i / naive.maxKv;
  let token = naive.tokenStart + chunkRow / numHeads;
  let head = chunkRow % numHeads;
  let s = seqView(tokenSeq[token]);
  let row = (token - s.qStart) * GROUP_SIZE + head % GROUP_SIZE; // row within the sequence
  var score = NEG;
  if (key < s.kvLen && keyVisible(s, row, key)) {
    let kBase = kRow(s, key, head / GROUP_SIZE);
    var d = 0.0;
    for (var c = 0u; c < D4; c++) { d += dot(q[(token * numHeads + head) * D4 + c], kVec(kBase, c)); }
    score = capScore(d * params.scale);
  }
  scores[i] = score;
}
