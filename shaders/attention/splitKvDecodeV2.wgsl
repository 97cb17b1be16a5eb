// splitKvDecodeV2: the previous split-KV decode kernel, kept as the bench's baseline ('flash v2' rows)
// and as the kernel of adapters without one fixed subgroup size (splitKvDecode.wgsl, v3, needs one).
// Measured (lavapipe, GQA 32/8 d 128 f16, batch 1 at 16K, reps alternated with v3, v1, naive and a
// copy kernel, 2 shared cores, load average 17): 1129 ms, 0.15 of the copy kernel's bandwidth (v3: 245 ms,
// 0.71); the ladder is in splitKvDecode.wgsl's header.
//
// Flash-Decoding. One query token per sequence; the KV range of each
// (sequence, KV head) is split into chunks handled by separate workgroups, each writing an
// unnormalised partial (o, m, l) that mergePartials combines by log-sum-exp weights.
// Composed as: lane snippet (mlaDecodeSubgroups.wgsl or mlaDecodeLanes.wgsl) + word4 snippet +
// kvPages*.wgsl (1, 2, row readers) + pagedKv.wgsl (0, 3-6, 8) + workItem.wgsl (binding 7) + onlineSoftmax.wgsl + this.
//
// Decode reads every K/V row once and does little arithmetic per byte, so unlike flashPrefill it
// does not stage K/V tiles in workgroup memory: each lane reads its key's K row straight from the
// page (scores for all BLOCK_M query heads at once), and in P V each lane owns output columns and
// reads V rows of consecutive columns (coalesced).
// What changed from v1 (splitKvDecodeV1.wgsl, kept as the bench baseline):
//   - q through subgroups (as mlaDecode): for each run of SG_SIZE q words, lane i of a subgroup reads
//     word c0 + i of every row from workgroup memory and subgroupShuffle hands it around, so a lane
//     does BLOCK_M loads per SG_SIZE words instead of per word (on lavapipe a workgroup load inside
//     the key loop is a per-lane gather; on a GPU a shuffle is a register move). SG_SIZE is the
//     adapter's fixed subgroup size, 1 with the plain lane snippet (then this is v1's loop).
//   - with subgroups, the tile's softmax statistics come from subgroupMax / subgroupAdd over the
//     scores still in registers (lane = key), and every lane keeps the rows' m, l and rescale factor
//     in registers; v1 handed them to one lane per row (BLOCK_M of 64 lanes busy, looping over 64
//     keys twice). Relies on subgroups being runs of consecutive local_invocation_index (subgroup
//     g = lanes g * SG_SIZE ..), as every Vulkan, Metal and D3D12 driver lays out a 1-D workgroup;
//   - no branch around the K row read: a lane past the chunk's end reads the last key (masked), so
//     the loop stays in uniform control flow (loads are not predicated per lane);
//   - chunks down to one tile (64 keys, v1 128), so batch-1 decode at 1K context with 8 KV heads
//     launches 128 workgroups (v1: 64), enough for a GPU with 80+ compute units.
//
// Workgroup: BLOCK_N threads (one key per lane per tile). Rows = the GROUP_SIZE query heads of one
// KV head, tiled by BLOCK_M when GROUP_SIZE > BLOCK_M, so a KV page is read once per step for all
// the heads in a tile. Grid: (numWorkItems, NUM_KV_HEADS). Work item = (seq, rowStart, kvStart,
// kvEnd, slot): chunk [kvStart, kvEnd) of sequence seq; slot numbers the (sequence, chunk) pair.
// Worked example: two sequences of 1000 and 300 keys in 256-key chunks -> slots 0..3 for seq 0,
// slot 4 for seq 1.
// Workgroup memory: 16 * BLOCK_M * D4 (q) + 4 * BLOCK_M * (BLOCK_N + 3) + 8 * BLOCK_M * NUM_SG bytes.
//
// Extra bindings (7 work: workItem.wgsl):
//   9  partialO   read_write  f32 [numSlots][NUM_KV_HEADS * GROUP_SIZE][HEAD_DIM_V] (as vec4), unnormalised
//   10 partialML  read_write  vec2<f32> [numSlots][NUM_KV_HEADS * GROUP_SIZE]  (running max m, sum l)
// Overrides beyond pagedKv's: BLOCK_M (<= ROWS_MAX), BLOCK_N (= workgroup size),
//   ACC_PER_THREAD = ceil(BLOCK_M * DV4 / BLOCK_N) <= ACC_MAX, SG_SIZE (1: plain lane snippet),
//   NUM_SG = BLOCK_N / SG_SIZE subgroups per workgroup (1 with the plain snippet: arrays unused).
// requires: q, kRow, vRow, kVec, vVec, params, NEG, D4, DV4, V_ROW4, GROUP_SIZE, NUM_KV_HEADS, seqView,
//   capScore, onlineSoftmaxRows, WorkItem, work, LaneIds, subgroupLane, fromLane4, lanesMax, lanesAdd

override BLOCK_M: u32 = 4u;
override BLOCK_N: u32 = 64u;
override ACC_PER_THREAD: u32 = 2u;
override SG_SIZE: u32 = 1u;
override NUM_SG: u32 = 1u;
const ACC_MAX = 8u;
const ROWS_MAX = 32u;

@group(0) @binding(9) var<storage, read_write> partialO: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> partialML: array<vec2<f32>>;

var<workgroup> qTile: array<vec4<f32>, BLOCK_M * D4>; // scaled q of the tile's heads
var<workgroup> sTile: array<f32, BLOCK_M * BLOCK_N>;  // scores, then probabilities [row][key]
var<workgroup> rowM: array<f32, BLOCK_M>;
var<workgroup> rowL: array<f32, BLOCK_M>;
var<workgroup> rowAlpha: array<f32, BLOCK_M>;
var<workgroup> sgMax: array<f32, BLOCK_M * NUM_SG>; // [row][subgroup] tile max (subgroup path)
var<workgroup> sgSum: array<f32, BLOCK_M * NUM_SG>; // [row][subgroup] tile sum of p (subgroup path)

@compute @workgroup_size(BLOCK_N)
fn main(@builtin(workgroup_id) wid: vec3<u32>, ids: LaneIds) {
  let lid = ids.lid;
  let sub = subgroupLane(ids); // 0 without subgroups
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
  // Per-row softmax state held by every lane (subgroup path), and the rescale factor P V applies.
  var mRow: array<f32, ROWS_MAX>;
  var lRow: array<f32, ROWS_MAX>;
  var alpha: array<f32, ROWS_MAX>;
  for (var r = 0u; r < BLOCK_M; r++) { mRow[r] = NEG; lRow[r] = 0.0; alpha[r] = 1.0; }
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
    let base = kRow(s, min(key, hi - 1u), h); // past the end: the last key, masked below
    for (var c0 = 0u; c0 < D4; c0 += SG_SIZE) {
      // This lane's q word of every row: word c0 + sub (clamped); word c0 + i comes from lane i.
      var own: array<vec4<f32>, ROWS_MAX>;
      for (var r = 0u; r < BLOCK_M; r++) { own[r] = qTile[r * D4 + min(c0 + sub, D4 - 1u)]; }
      for (var i = 0u; i < SG_SIZE; i++) {
        if (c0 + i < D4) {
          let kv = kVec(base, c0 + i);
          for (var r = 0u; r < BLOCK_M; r++) {
            let qw = fromLane4(own[r], i);
            d[r] = fma(qw.x, kv.x, fma(qw.y, kv.y, fma(qw.z, kv.z, fma(qw.w, kv.w, d[r]))));
          }
        }
      }
    }
    if (SG_SIZE > 1u) {
      // Tile max per row: subgroupMax over the lanes' scores, then over the NUM_SG subgroups.
      let g = lid / SG_SIZE;
      for (var r = 0u; r < BLOCK_M; r++) {
        d[r] = select(NEG, capScore(d[r]), key < hi && item.rowStart + r < s.rows);
        let m = lanesMax(d[r]);
        if (sub == 0u) { sgMax[r * NUM_SG + g] = m; }
      }
      workgroupBarrier();
      for (var r = 0u; r < BLOCK_M; r++) {
        var mNew = mRow[r];
        for (var i = 0u; i < NUM_SG; i++) { mNew = max(mNew, sgMax[r * NUM_SG + i]); }
        // Masked: the bits of NEG (see onlineSoftmax.wgsl: a NaN score must not get p = 0).
        let p = select(0.0, exp(d[r] - mNew), bitcast<u32>(d[r]) != bitcast<u32>(NEG));
        sTile[r * BLOCK_N + lid] = p;
        let sum = lanesAdd(p);
        if (sub == 0u) { sgSum[r * NUM_SG + g] = sum; }
        alpha[r] = exp(mRow[r] - mNew); // 1 while the row has seen nothing (both NEG)
        mRow[r] = mNew;
      }
      workgroupBarrier();
      for (var r = 0u; r < BLOCK_M; r++) {
        var sum = 0.0;
        for (var i = 0u; i < NUM_SG; i++) { sum += sgSum[r * NUM_SG + i]; }
        lRow[r] = lRow[r] * alpha[r] + sum;
      }
    } else {
      for (var r = 0u; r < BLOCK_M; r++) {
        sTile[r * BLOCK_N + lid] = select(NEG, capScore(d[r]), key < hi && item.rowStart + r < s.rows);
      }
      workgroupBarrier();
      onlineSoftmaxRows(lid, BLOCK_N); // onlineSoftmax.wgsl
      workgroupBarrier();
      for (var r = 0u; r < BLOCK_M; r++) { alpha[r] = rowAlpha[r]; }
    }
    // acc += P V: element e = lid + k * BLOCK_N of the BLOCK_M x DV4 tile is (row e / DV4, col
    // e % DV4). When DV4 divides BLOCK_N all k of a lane share one column, so each V word read
    // from the page serves ACC_PER_THREAD rows.
    let n = min(BLOCK_N, hi - k0);
    if (BLOCK_N % DV4 == 0u) {
      let c = lid % DV4;
      for (var k = 0u; k < ACC_PER_THREAD; k++) {
        acc[k] *= alpha[min((lid + k * BLOCK_N) / DV4, BLOCK_M - 1u)];
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
          var a = acc[k] * alpha[r];
          for (var j = 0u; j < n; j++) {
            a += sTile[r * BLOCK_N + j] * vVec(vRow(s, k0 + j, h), c);
          }
          acc[k] = a;
        }
      }
    }
  }
  if (SG_SIZE > 1u) {
    for (var r = lid; r < BLOCK_M; r += BLOCK_N) { rowM[r] = mRow[r]; rowL[r] = lRow[r]; }
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
