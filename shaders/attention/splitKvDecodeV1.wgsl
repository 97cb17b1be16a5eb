// splitKvDecodeV1: the previous split-KV decode kernel, kept as the bench's baseline ('flash v1' rows);
// the runtime uses splitKvDecode.wgsl (v2). Measured (npm run bench, lavapipe on a loaded 2-core
// machine, GQA 32/8 d 128 f16, batch 1, median of 5 rounds interleaved with v2 and naive):
// ctx 1K v1 105.2 ms, v2 95.6 ms (1.10x), naive 244 ms; ctx 16K v1 1189 ms, v2 1106 ms (1.08x),
// naive 2798 ms; v2 at 16K reads at 0.20 of the same run's copy bandwidth, v1 at 0.19.
//
// Flash-Decoding. One query token per sequence; the KV range of each
// (sequence, KV head) is split into chunks handled by separate workgroups, each writing an
// unnormalised partial (o, m, l) that mergePartials combines by log-sum-exp weights.
// Composed as: word4 snippet + kvPages*.wgsl (1, 2, row readers) + pagedKv.wgsl (0, 3-6, 8) + workItem.wgsl (binding 7)
// + onlineSoftmax.wgsl + this.
//
// Decode reads every K/V row once and does little arithmetic per byte, so unlike flashPrefill it
// does not stage K/V tiles in workgroup memory: each lane reads its key's K row straight from the
// page (scores for all BLOCK_M query heads at once, q broadcast from workgroup memory), and in
// P V each lane owns output columns and reads V rows of consecutive columns (coalesced).
//
// Workgroup: BLOCK_N threads (one key per lane per tile). Rows = the GROUP_SIZE query heads of one
// KV head, tiled by BLOCK_M when GROUP_SIZE > BLOCK_M, so a KV page is read once per step for all
// the heads in a tile. Grid: (numWorkItems, NUM_KV_HEADS). Work item = (seq, rowStart, kvStart,
// kvEnd, slot): chunk [kvStart, kvEnd) of sequence seq; slot numbers the (sequence, chunk) pair.
// Worked example: two sequences of 1000 and 300 keys in 256-key chunks -> slots 0..3 for seq 0,
// slot 4 for seq 1.
// Workgroup memory: 16 * BLOCK_M * D4 (q) + 4 * BLOCK_M * (BLOCK_N + 3) bytes.
//
// Extra bindings (7 work: workItem.wgsl):
//   9  partialO   read_write  f32 [numSlots][NUM_KV_HEADS * GROUP_SIZE][HEAD_DIM_V] (as vec4), unnormalised
//   10 partialML  read_write  vec2<f32> [numSlots][NUM_KV_HEADS * GROUP_SIZE]  (running max m, sum l)
// Overrides beyond pagedKv's: BLOCK_M (<= ROWS_MAX), BLOCK_N (= workgroup size),
//   ACC_PER_THREAD = ceil(BLOCK_M * DV4 / BLOCK_N) <= ACC_MAX.
// requires: q, kRow, vRow, kVec, vVec, params, NEG, D4, DV4, V_ROW4, GROUP_SIZE, NUM_KV_HEADS, seqView,
//   capScore, onlineSoftmaxRows, WorkItem, work

override BLOCK_M: u32 = 4u;
override BLOCK_N: u32 = 64u;
override ACC_PER_THREAD: u32 = 2u;
const ACC_MAX = 8u;
const ROWS_MAX = 32u;

@group(0) @binding(9) var<storage, read_write> partialO: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> partialML: array<vec2<f32>>;

var<workgroup> qTile: array<vec4<f32>, BLOCK_M * D4>; // scaled q of the tile's heads
var<workgroup> sTile: array<f32, BLOCK_M * BLOCK_N>;  // scores, then probabilities [row][key]
var<workgroup> rowM: array<f32, BLOCK_M>;
var<workgroup> rowL: array<f32, BLOCK_M>;
var<workgroup> rowAlpha: array<f32, BLOCK_M>;

@compute @workgroup_size(BLOCK_N)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let item = work[wid.x];
  let h = wid.y;
  let s = seqView(item.seq);
  let numHeads = NUM_KV_HEADS * GROUP_SIZE;
  // q row of head h * G + rowStart + r of the sequence's single query token
  for (var e = lid; e < BLOCK_M * D4; e += BLOCK_N) {
    let row = item.rowStart + e / D4;
    var v = vec4<f32>(0.0);
    if (row < s.rows) { v = q[(s.qStart * numHeads + h * GROUP_SIZE + row) * D4 + e % D4] * params.scale; }
    qTile[e] = v;
  }
  for (var r = lid; r < BLOCK_M; r += BLOCK_N) { rowM[r] = NEG; rowL[r] = 0.0; }
  var acc: array<vec4<f32>, ACC_MAX>;
  // The query sits at position kvLen - 1: causal masking is moot, a window cuts the start.
  let pos = s.kvLen - 1u;
  var lo = item.kvStart;
  if (params.window > 0u && pos + 1u > params.window) { lo = max(lo, pos + 1u - params.window); }
  let hi = item.kvEnd;

  for (var k0 = lo; k0 < hi; k0 += BLOCK_N) {
    workgroupBarrier(); // qTile ready / previous tile's P V done with sTile
    let key = k0 + lid;
    var d: array<f32, ROWS_MAX>;
    for (var r = 0u; r < BLOCK_M; r++) { d[r] = 0.0; } // explicit: relying on zero-init here miscompiled
    if (key < hi) {
      let base = kRow(s, key, h);
      for (var c = 0u; c < D4; c++) {
        let kv = kVec(base, c);
        for (var r = 0u; r < BLOCK_M; r++) { d[r] += dot(qTile[r * D4 + c], kv); }
      }
    }
    for (var r = 0u; r < BLOCK_M; r++) {
      sTile[r * BLOCK_N + lid] = select(NEG, capScore(d[r]), key < hi && item.rowStart + r < s.rows);
    }
    workgroupBarrier();
    onlineSoftmaxRows(lid, BLOCK_N); // onlineSoftmax.wgsl
    workgroupBarrier();
    // acc += P V: element e = lid + k * BLOCK_N of the BLOCK_M x DV4 tile is (row e / DV4, col
    // e % DV4). When DV4 divides BLOCK_N all k of a lane share one column, so each V word read
    // from the page serves ACC_PER_THREAD rows.
    let n = min(BLOCK_N, hi - k0);
    if (BLOCK_N % DV4 == 0u) {
      let c = lid % DV4;
      for (var k = 0u; k < ACC_PER_THREAD; k++) {
        acc[k] *= rowAlpha[min((lid + k * BLOCK_N) / DV4, BLOCK_M - 1u)];
      }
      for (var j = 0u; j < n; j++) {
        let vw = vVec(vRow(s, k0 + j, h), c);
        for (var k = 0u; k < ACC_PER_THREAD; k++) {
          acc[k] += sTile[min((lid + k * BLOCK_N) / DV4, BLOCK_M - 1u) * BLOCK_N + j] * vw;
        }
      }
    } else {
      for (var k = 0u; k < ACC_PER_THREAD; k++) {
        let e = lid + k * BLOCK_N;
        if (e < BLOCK_M * DV4) {
          let r = e / DV4;
          let c = e % DV4;
          var a = acc[k] * rowAlpha[r];
          for (var j = 0u; j < n; j++) {
            a += sTile[r * BLOCK_N + j] * vVec(vRow(s, k0 + j, h), c);
          }
          acc[k] = a;
        }
      }
    }
  }
  workgroupBarrier(); // rowM / rowL final

  for (var k = 0u; k < ACC_PER_THREAD; k++) {
    let e = lid + k * BLOCK_N;
    let row = item.rowStart + e / DV4;
    if (e < BLOCK_M * DV4 && row < s.rows) {
      partialO[(item.slot * numHeads + h * GROUP_SIZE + row) * DV4 + e % DV4] = acc[k];
    }
  }
  for (var r = lid; r < BLOCK_M; r += BLOCK_N) {
    let row = item.rowStart + r;
    if (row < s.rows) { partialML[item.slot * numHeads + h * GROUP_SIZE + row] = vec2<f32>(rowM[r], rowL[r]); }
  }
}
