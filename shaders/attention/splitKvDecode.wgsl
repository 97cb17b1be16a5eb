// splitKvDecode: Flash-Decoding. One query token per sequence; the KV range of each
// (sequence, KV head) is split into chunks handled by separate workgroups, each writing an
// unnormalised partial (o, m, l) that mergePartials combines by log-sum-exp weights.
// Appended to attentionTile.wgsl (inner loop, bindings 0..8, overrides) and a KV storage snippet.
//
// Workgroup: WORKGROUP_SIZE threads; rows = the GROUP_SIZE query heads of one KV head (tiled by
// BLOCK_M when GROUP_SIZE > BLOCK_M), so each KV page is read once per step for all of them.
// Grid: (numWorkItems, NUM_KV_HEADS). Work item = (seq, rowStart, kvStart, kvEnd, slot): chunk
// [kvStart, kvEnd) of sequence seq; slot numbers the (sequence, chunk) pair. Worked example: two
// sequences of 1000 and 300 keys with 256-key chunks -> slots 0..3 for seq 0, slot 4 for seq 1.
//
// Extra bindings:
//   9  partialO   read_write  f32 [numSlots][NUM_KV_HEADS * GROUP_SIZE][HEAD_DIM_V] (as vec4), unnormalised
//   10 partialML  read_write  vec2<f32> [numSlots][NUM_KV_HEADS * GROUP_SIZE]  (running max m, sum l)

@group(0) @binding(9) var<storage, read_write> partialO: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> partialML: array<vec2<f32>>;

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
      let head = h * GROUP_SIZE + row;
      partialO[(item.slot * numHeads + head) * DV4 + e % DV4] = acc[k];
    }
  }
  for (var r = lid; r < BLOCK_M; r += WORKGROUP_SIZE) {
    let row = item.rowStart + r;
    if (row < s.rows) {
      partialML[item.slot * numHeads + h * GROUP_SIZE + row] = vec2<f32>(rowM[r], rowL[r]);
    }
  }
}
