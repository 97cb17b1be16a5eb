// flashPrefill (v3): FlashAttention-2 style attention of a ragged batch of query chunks over the
// paged KV cache, causal tiles past the diagonal skipped, optional sliding window, S and P in
// registers (attentionTile.wgsl). Composed as: lane snippet + word4 snippet + kvPages*.wgsl +
// pagedKv.wgsl + workItem.wgsl + attentionTile.wgsl (inner loop, bindings 0..8, overrides) + this.
//
// Workgroup: WORKGROUP_SIZE = BLOCK_M * LANES_PER_ROW lanes; one (row tile, KV head) per workgroup.
// Grid: (numWorkItems, NUM_KV_HEADS). Work item w = (seq, rowStart, 0, kvLen, -) for every
// BLOCK_M-row tile of every sequence: sequence i has qLen_i * GROUP_SIZE rows
// (qLen_i = qoIndptr[i + 1] - qoIndptr[i]).
// Tiles: BLOCK_M rows x BLOCK_N keys; K and V tiles as stored in workgroup memory, KV_BUFFERS deep,
// or none (KV_DIRECT: CPU drivers, and head dims whose tiles do not fit) (sizes picked from the
// head dims, the adapter's maxComputeWorkgroupStorageSize and its subgroups by
// src/kernels/tiling.ts, choosePrefillTiles).
//
// Ladder (npm run bench, GQA 32/8 d 128 f16 KV, causal, batch 1; ratios from one run):
//   v1 (attentionTileV1.wgsl, tile unpacked to f32) and v2 (attentionTileV2.wgsl, tile as stored):
//     Q, S, P and the statistics in workgroup memory, 5 barriers per 16-32 key tile.
//   v3 (this): S, P and the statistics in registers; no barrier (KV_DIRECT) or one per tile.
// Measured, GQA 32/8 d 128, causal, 256 tokens, a scratch script timing the flash kernels only, median of 3
// interleaved, machine loaded (load average 13-27 on 2 cores), same run within each line:
//   lavapipe f16 KV: v3 first cut (accumulators read / written per key) 3720 ms vs v2 2511 ms;
//   v3 with 8-word register blocks in P V: 1682 ms vs v2 2657 ms (1.58x v2); direct reads
//   1344 ms vs 16-key double-buffered tiles 1517 ms (1.13x).
//   SwiftShader (Node) f32 KV: v3 direct 28.2 s, v3 tiles 24.1 s, v2 28.5 s: no gain there yet
//   (its private arrays and page reads are the suspects; not measured further).
// npm run bench --only "prefill b1 len512" --reps 3, lavapipe, load average 20-30 (the copy kernel
// at 0.22 GB/s, a tenth of a quiet run's): v3 7188 ms (2.90x naive), v2 12799 ms (1.63x), v1
// 11224 ms (1.86x), naive 20831 ms; v3 = 1.78x v2. The same, quiet (load average ~1, copy 1.60 GB/s):
// v3 625 ms (4.17x naive, 3.44 GFLOP/s), v2 918 ms (2.84x), v1 1161 ms (2.24x), naive 2604 ms.
//   bench:peer --reps 3, SwiftShader in Chromium, f32, load average ~40: v3 direct vsOrt 0.66 at 256
//   tokens, 0.54 at 512 (v2, an earlier and quieter run: 0.59, 0.52).
//
// Extra bindings:
//   9  out  read_write  f32 [numQ][NUM_KV_HEADS * GROUP_SIZE][HEAD_DIM_V] (as vec4)
//   10 lse  read_write  f32 [numQ][NUM_KV_HEADS * GROUP_SIZE]  natural-log sum-exp of scaled scores
// requires: work, seqView, attendRows, accO, rowMax, rowSum, BLOCK_M, DV4, GROUP_SIZE, NUM_KV_HEADS, AW,
//   LANES_PER_ROW, WORKGROUP_SIZE, LaneIds, subgroupLane

@group(0) @binding(9) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> lse: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, ids: LaneIds) {
  let lid = ids.lid;
  let item = work[wid.x];
  let h = wid.y;
  let s = seqView(item.seq);
  attendRows(s, h, item.rowStart, item.kvStart, item.kvEnd, lid, subgroupLane(ids));

  let row = item.rowStart + lid / LANES_PER_ROW;
  if (row < s.rows) {
    let part = lid % LANES_PER_ROW;
    let l = rowSum; // 0: the row saw no key (out 0); NaN: a NaN score or value (out NaN)
    let numHeads = NUM_KV_HEADS * GROUP_SIZE;
    let idx = (s.qStart + row / GROUP_SIZE) * numHeads + h * GROUP_SIZE + row % GROUP_SIZE;
    for (var w = 0u; w < AW; w++) {
      out[idx * DV4 + part + w * LANES_PER_ROW] = select(accO[w] / l, vec4<f32>(0.0), l == 0.0);
    }
    if (part == 0u) { lse[idx] = rowMax + log(l); }
  }
}
