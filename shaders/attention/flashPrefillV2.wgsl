// flashPrefillV2: the kernel of the previous flashPrefill versions (v1, v2), kept as the bench's
// baselines: FlashAttention-2 style attention of a ragged batch of query chunks over the paged
// KV cache, causal tiles past the diagonal skipped, optional sliding window. Composed as: word4
// snippet + kvPages*.wgsl + pagedKv.wgsl + workItem.wgsl + onlineSoftmax.wgsl + attentionTileV2.wgsl
// (or attentionTileV1.wgsl) (inner loop, bindings 0..8, overrides) + this.
//
// Workgroup: WORKGROUP_SIZE threads; one (row tile, KV head) per workgroup.
// Grid: (numWorkItems, NUM_KV_HEADS). Work item w = (seq, rowStart, 0, kvLen, -) for every
// BLOCK_M-row tile of every sequence: sequence i has qLen_i * GROUP_SIZE rows
// (qLen_i = qoIndptr[i + 1] - qoIndptr[i]).
// Tiles: BLOCK_M rows x BLOCK_N keys; Q tile BLOCK_M x HEAD_DIM_QK and one K-or-V tile
// BLOCK_N x max(HEAD_DIM_QK, HEAD_DIM_V) in f32 workgroup memory (sizes picked from the adapter's
// maxComputeWorkgroupStorageSize by src/kernels/tiling.ts).
//
// Extra bindings:
//   9  out  read_write  f32 [numQ][NUM_KV_HEADS * GROUP_SIZE][HEAD_DIM_V] (as vec4)
//   10 lse  read_write  f32 [numQ][NUM_KV_HEADS * GROUP_SIZE]  natural-log sum-exp of scaled scores
// requires: work, seqView, attendTile, acc, rowM, rowL, BLOCK_M, DV4, GROUP_SIZE, NUM_KV_HEADS, ACC_PER_THREAD,
//   WORKGROUP_SIZE

@group(0) @binding(9) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> lse: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let item = work[wid.x];
  let h = wid.y;
  let s = seqView(item.seq);
  attendTile(s, h, item.rowStart, item.kvStart, item.kvEnd, lid);

  let numHeads = NUM_KV_HEADS * GROUP_SIZE;
  for (var k = 0u; k < ACC_PER_THREAD; k++) {
    let e = lid + k * WORKGROUP_SIZE;
    let row = item.rowStart + e / DV4;
    if (e < BLOCK_M * DV4 && row < s.rows) {
      let l = rowL[e / DV4]; // 0: the row saw no key (out 0); NaN: a NaN score or value (out NaN)
      let token = s.qStart + row / GROUP_SIZE;
      let head = h * GROUP_SIZE + row % GROUP_SIZE;
      out[(token * numHeads + head) * DV4 + e % DV4] = select(acc[k] / l, vec4<f32>(0.0), l == 0.0);
    }
  }
  for (var r = lid; r < BLOCK_M; r += WORKGROUP_SIZE) {
    let row = item.rowStart + r;
    if (row < s.rows) {
      let token = s.qStart + row / GROUP_SIZE;
      lse[token * numHeads + h * GROUP_SIZE + row % GROUP_SIZE] = rowM[r] + log(rowL[r]);
    }
  }
}
