// attentionTileV1: the previous FlashAttention-2 inner loop of flashPrefill (K / V tile unpacked to
// f32), kept as the bench's baseline ('flash v1' prefill rows); flashPrefill v2 used attentionTileV2.wgsl
// (v2). Measured (npm run bench, lavapipe on a loaded 2-core machine, GQA 32/8 d 128 f16, causal
// prefill of 512 tokens, median of 5 rounds interleaved): v1 3091 ms, v2 2543 ms (1.22x), naive
// 6983 ms (v2 2.75x naive, v1 2.26x). v2 over native vec4<f16> words was 0.92x v1 on lavapipe.
// The guarded loop for tiles with masked keys (NaN-safe P V, issue 16) is the same as v2's.
// Not a kernel on its own: each kernel file is appended after this snippet and supplies `main`,
// which calls attendTile() and then writes its own epilogue from `acc`, rowM and rowL.
//
// One workgroup owns BLOCK_M "rows" of one KV head: a row is (query token, head in group), flattened
// as row = token * GROUP_SIZE + g, so the G query heads that share a KV head are packed into the
// tile and every K/V tile loaded from the pages serves all of them. Worked example, GQA 32/8 heads
// (G = 4), BLOCK_M = 16: rows 0..15 = tokens 0..3 x heads 4*kvHead + 0..3.
//
// Per KV tile of BLOCK_N keys: load K (unpacked to f32) into kvTile; S = Q K^T (scale folded into Q);
// online softmax per row (running max rowM, sum rowL, rescale factor rowAlpha) while V overwrites K
// in kvTile; acc = acc * alpha + P V. Keys past the causal diagonal or outside the window are never
// loaded: the KV loop is bounded by the first and last row of the tile.
//
// Composed as: word4 snippet + kvPages*.wgsl (1, 2, row readers) + pagedKv.wgsl (0, 3-6, 8) + workItem.wgsl (binding 7)
// + onlineSoftmax.wgsl + this + kernel.
// Overrides beyond pagedKv's: BLOCK_M, BLOCK_N,
//   WORKGROUP_SIZE (the kernel's @workgroup_size), ACC_PER_THREAD = ceil(BLOCK_M * DV4 / WORKGROUP_SIZE)
//   which must be <= ACC_MAX.
// requires: Word4, q, kRow, vRow, kVec, vVec, params, NEG, D4, DV4, V_ROW4, GROUP_SIZE, NUM_KV_HEADS,
//   SeqView, rowPos, keyVisible, capScore, onlineSoftmaxRows, WorkItem, work
// provides: BLOCK_M, BLOCK_N, WORKGROUP_SIZE, ACC_PER_THREAD, qTile, kvTile, sTile, rowM, rowL, rowAlpha, acc,
//   keyRange, attendTile

override BLOCK_M: u32 = 16u;
override BLOCK_N: u32 = 32u;
override WORKGROUP_SIZE: u32 = 64u;
override ACC_PER_THREAD: u32 = 8u;
override KV_W4: u32 = max(D4, DV4);    // derived: width of a kvTile row
override ROW_GROUPS: u32 = WORKGROUP_SIZE / BLOCK_N;                   // derived (BLOCK_N divides it)
override ROWS_PER_LANE: u32 = (BLOCK_M + ROW_GROUPS - 1u) / ROW_GROUPS; // derived, <= SROWS_MAX
const ACC_MAX = 8u;
const SROWS_MAX = 32u;

var<workgroup> qTile: array<vec4<f32>, BLOCK_M * D4>;     // scaled Q rows
var<workgroup> kvTile: array<vec4<f32>, BLOCK_N * KV_W4>; // K tile, then V tile
var<workgroup> sTile: array<f32, BLOCK_M * BLOCK_N>;      // scores, then probabilities
var<workgroup> rowM: array<f32, BLOCK_M>;
var<workgroup> rowL: array<f32, BLOCK_M>;
var<workgroup> rowAlpha: array<f32, BLOCK_M>;
var<private> acc: array<vec4<f32>, ACC_MAX>;  // element e = lid + k * WORKGROUP_SIZE of the
                                              // BLOCK_M x DV4 output tile: row e / DV4, col e % DV4

// Key range [lo, hi) this tile must visit: [kvStart, kvEnd) cut by the causal diagonal of the
// tile's last row and the window of its first row.
fn keyRange(s: SeqView, rowStart: u32, kvStart: u32, kvEnd: u32) -> vec2<u32> {
  let lastRow = min(rowStart + BLOCK_M, s.rows) - 1u;
  var hi = kvEnd;
  if (params.causal != 0u) { hi = min(hi, rowPos(s, lastRow) + 1u); }
  var lo = kvStart;
  let firstPos = rowPos(s, rowStart);
  if (params.window > 0u && firstPos + 1u > params.window) { lo = max(lo, firstPos + 1u - params.window); }
  return vec2<u32>(lo, max(lo, hi));
}

// Runs the online-softmax loop over keys [kvStart, kvEnd) for rows [rowStart, rowStart+BLOCK_M)
// of kvHead h. On return (after a barrier) acc, rowM and rowL hold the unnormalised result.
fn attendTile(s: SeqView, h: u32, rowStart: u32, kvStart: u32, kvEnd: u32, lid: u32) {
  // Q tile: row r = token * G + g  ->  q[(qStart + token) * H + h * G + g]
  for (var e = lid; e < BLOCK_M * D4; e += WORKGROUP_SIZE) {
    let row = rowStart + e / D4;
    var v = vec4<f32>(0.0);
    if (row < s.rows) {
      let head = h * GROUP_SIZE + row % GROUP_SIZE;
      v = q[((s.qStart + row / GROUP_SIZE) * NUM_KV_HEADS * GROUP_SIZE + head) * D4 + e % D4] * params.scale;
    }
    qTile[e] = v;
  }
  for (var r = lid; r < BLOCK_M; r += WORKGROUP_SIZE) { rowM[r] = NEG; rowL[r] = 0.0; }
  for (var k = 0u; k < ACC_MAX; k++) { acc[k] = vec4<f32>(0.0); }
  let range = keyRange(s, rowStart, kvStart, kvEnd);

  for (var k0 = range.x; k0 < range.y; k0 += BLOCK_N) {
    workgroupBarrier(); // previous tile's P V is done with kvTile and sTile
    for (var e = lid; e < BLOCK_N * D4; e += WORKGROUP_SIZE) {
      let key = k0 + e / D4;
      var v = vec4<f32>(0.0);
      if (key < range.y) { v = kVec(kRow(s, key, h), e % D4); }
      kvTile[(e / D4) * KV_W4 + e % D4] = v;
    }
    workgroupBarrier();
    // S = Q K^T, register-blocked: lane -> key j = lid % BLOCK_N and rows rg, rg + ROW_GROUPS, ...
    // (rg = lid / BLOCK_N), so each K word read from kvTile serves ROWS_PER_LANE rows and the Q
    // word is the same for all lanes of a row group (a broadcast). Worked example, WORKGROUP_SIZE
    // 128, BLOCK_N 16, BLOCK_M 32: 8 row groups, lane 37 -> key 5, rows 2, 10, 18, 26.
    {
      let j = lid % BLOCK_N;
      let rg = lid / BLOCK_N;
      var d: array<f32, SROWS_MAX>;
      for (var t = 0u; t < ROWS_PER_LANE; t++) { d[t] = 0.0; }
      for (var c = 0u; c < D4; c++) {
        let kw = kvTile[j * KV_W4 + c];
        for (var t = 0u; t < ROWS_PER_LANE; t++) {
          d[t] += dot(qTile[min(rg + t * ROW_GROUPS, BLOCK_M - 1u) * D4 + c], kw);
        }
      }
      let key = k0 + j;
      for (var t = 0u; t < ROWS_PER_LANE; t++) {
        let r = rg + t * ROW_GROUPS;
        if (r < BLOCK_M) {
          let visible = key < range.y && rowStart + r < s.rows && keyVisible(s, rowStart + r, key);
          sTile[r * BLOCK_N + j] = select(NEG, capScore(d[t]), visible);
        }
      }
    }
    workgroupBarrier();
    // Online softmax (onlineSoftmax.wgsl), one lane per row, while the other lanes load V over K.
    onlineSoftmaxRows(lid, WORKGROUP_SIZE);
    for (var e = lid; e < BLOCK_N * DV4; e += WORKGROUP_SIZE) {
      let key = k0 + e / DV4;
      var v = vec4<f32>(0.0); // zero, not garbage: p = 0 times NaN would still be NaN
      if (key < range.y) { v = vVec(vRow(s, key, h), e % DV4); }
      kvTile[(e / DV4) * KV_W4 + e % DV4] = v;
    }
    workgroupBarrier();
    // acc += P V. Element e = lid + k * WORKGROUP_SIZE of the output tile is (row e / DV4, col
    // e % DV4). When DV4 divides the workgroup every k of a lane shares one column, so each V word
    // read from kvTile serves ACC_PER_THREAD rows (register blocking, as in S above).
    // A key masked for some row of the tile (the causal diagonal, the window's edge) has p = 0 there,
    // and 0 * a NaN or Inf V value would still be NaN: such a tile takes the guarded loop, which adds
    // only row r's visible keys [jLo, jHi) of the tile (as the float64 twin does), with runtime
    // bounds so it is not unrolled (it runs on few tiles; unrolled it doubled lavapipe's compile
    // time). Every other tile takes the plain loops below.
    let kLast = min(k0 + BLOCK_N, range.y) - 1u;
    let lastRow = min(rowStart + BLOCK_M, s.rows) - 1u;
    let allVisible = (params.causal == 0u || kLast <= rowPos(s, rowStart)) &&
                     (params.window == 0u || k0 + params.window > rowPos(s, lastRow));
    if (!allVisible) {
      for (var k = 0u; k < ACC_PER_THREAD; k++) {
        let e = lid + k * WORKGROUP_SIZE;
        if (e < BLOCK_M * DV4) {
          let r = e / DV4;
          let c = e % DV4;
          let p = rowPos(s, min(rowStart + r, s.rows - 1u)); // rows past the end are never written
          var jHi = kLast + 1u - k0;
          if (params.causal != 0u) { jHi = min(jHi, select(0u, p + 1u - k0, p + 1u > k0)); }
          var jLo = 0u;
          if (params.window > 0u && p + 1u > params.window + k0) { jLo = p + 1u - params.window - k0; }
          var a = acc[k] * rowAlpha[r];
          for (var j = jLo; j < jHi; j++) { a += sTile[r * BLOCK_N + j] * kvTile[j * KV_W4 + c]; }
          acc[k] = a;
        }
      }
    } else if (WORKGROUP_SIZE % DV4 == 0u) {
      let c = lid % DV4;
      for (var k = 0u; k < ACC_PER_THREAD; k++) {
        acc[k] *= rowAlpha[min((lid + k * WORKGROUP_SIZE) / DV4, BLOCK_M - 1u)];
      }
      for (var j = 0u; j < BLOCK_N; j++) {
        let vw = kvTile[j * KV_W4 + c];
        for (var k = 0u; k < ACC_PER_THREAD; k++) {
          acc[k] += sTile[min((lid + k * WORKGROUP_SIZE) / DV4, BLOCK_M - 1u) * BLOCK_N + j] * vw;
        }
      }
    } else {
      for (var k = 0u; k < ACC_PER_THREAD; k++) {
        let e = lid + k * WORKGROUP_SIZE;
        if (e < BLOCK_M * DV4) {
          let r = e / DV4;
          let c = e % DV4;
          var a = acc[k] * rowAlpha[r];
          for (var j = 0u; j < BLOCK_N; j++) { a += sTile[r * BLOCK_N + j] * kvTile[j * KV_W4 + c]; }
          acc[k] = a;
        }
      }
    }
  }
  workgroupBarrier(); // rowM / rowL final for the epilogue
}
