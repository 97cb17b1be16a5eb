// attentionTile (v3): the FlashAttention-2 inner loop of flashPrefill, S and P in registers.
// Not a kernel on its own: flashPrefill.wgsl is appended after this snippet and supplies `main`,
// which calls attendRows() and then writes its epilogue from this lane's accO, rowMax and rowSum.
//
// One workgroup owns BLOCK_M "rows" of one KV head: a row is (query token, head in group), flattened
// as row = token * GROUP_SIZE + g, so the G query heads that share a KV head are packed into the
// tile and every K/V tile loaded from the pages serves all of them. Worked example, GQA 32/8 heads
// (G = 4), BLOCK_M = 64: rows 0..63 = tokens 0..15 x heads 4*kvHead + 0..3.
//
// Lanes: LANES_PER_ROW (L) lanes own one row: lane lid -> row r = lid / L, part = lid % L. The
// lane keeps its share of the row in registers: q words c = part + w * L (w < QW = D4 / L),
// output words part + w * L (w < AW = DV4 / L), the tile's scores / probabilities s[0..BLOCK_N)
// and the row's running max and sum. A score is the sum of the L lanes' partial dots, added up by
// a butterfly of subgroup shuffles (fromLane, the lane snippet; L > 1 needs a fixed subgroup size
// that L divides), after which every lane of the row holds the whole score row and runs the same
// online softmax: no workgroup memory for Q, S or the statistics, and no barrier for the softmax.
// L = 1 is the plain path (no subgroups): a lane owns a whole row. Worked example, L 4, d 128:
// lane 9 -> row 2, part 1: q words 1, 5, ..., 29 (8 vec4), output words 1, 5, ..., 29.
//
// Per KV tile of BLOCK_N keys: K and V are loaded together, as stored (Word4: f16 pairs, vec4<f16>
// or f32), into one of KV_BUFFERS buffers. Double-buffered (2), the loop is one barrier per tile:
// after it, tile t is in buffer t % 2 and every lane is done with buffer (t + 1) % 2, so the lanes
// load tile t + 1 there before computing tile t (on a GPU the loads' latency hides behind the
// arithmetic). Single-buffered (1, where two do not fit the workgroup storage) it is two.
// Every K / V word read from the tile has the same address in all the lanes that share a part
// (all lanes with L = 1): a broadcast, which CPU drivers read as one load for the whole SIMD
// vector in uniform control flow (every loop here has uniform bounds).
// KV_DIRECT: no tiles and no barriers; the lanes read K / V straight from the pages at those same
// shared addresses (on a GPU an L1 broadcast; on a CPU driver one scalar load). CPU drivers take
// it (1.13x the tiles on lavapipe), and so do head dims whose tiles would not fit the storage.
// Keys past the causal diagonal or outside the window are never loaded: the KV loop is bounded by
// the first and last row of the tile.
//
// Composed as: lane snippet (mlaDecodeLanes.wgsl or mlaDecodeSubgroups.wgsl) + word4 snippet +
// kvPages*.wgsl (1, 2, row readers) + pagedKv.wgsl (0, 3-6, 8) + workItem.wgsl (binding 7) + this +
// flashPrefill.wgsl.
// Overrides beyond pagedKv's: BLOCK_M rows, BLOCK_N keys per tile (a multiple of 8, <= S_MAX),
//   LANES_PER_ROW (divides D4 and DV4; 1 without subgroups), KV_BUFFERS (1 or 2), V_IN_K. The workgroup is
//   WORKGROUP_SIZE = BLOCK_M * LANES_PER_ROW lanes; QW <= Q_MAX, AW <= A_MAX.
// Workgroup memory: KV_BUFFERS * BLOCK_N * (D4 + V_TILE4) Word4s (src/kernels/tiling.ts, choosePrefillTiles).
// requires: Word4, unpackWord4, q, kRow, vRow, kWord, vWord, params, NEG, D4, DV4, GROUP_SIZE, NUM_KV_HEADS,
//   SeqView, rowPos, keyVisible, capScore, fromLane
// provides: BLOCK_M, BLOCK_N, LANES_PER_ROW, KV_BUFFERS, WORKGROUP_SIZE, QW, AW, V_IN_K, V_TILE4, kTile, vTile,
//   qReg, accO, sReg, rowMax, rowSum, keyRange, loadTile, KV_DIRECT, K_TILE4, tileKRow, tileVRow, kAt, vAt,
//   rowLanesSum, tileScores, tilePV, attendRows

override BLOCK_M: u32 = 64u;
override BLOCK_N: u32 = 32u;
override LANES_PER_ROW: u32 = 1u;
override KV_BUFFERS: u32 = 2u;
override WORKGROUP_SIZE: u32 = BLOCK_M * LANES_PER_ROW; // derived
override QW: u32 = D4 / LANES_PER_ROW;                  // derived: q words per lane
override AW: u32 = DV4 / LANES_PER_ROW;                 // derived: output words per lane
// V is the first DV4 words of the K row (MLA, vPages bound to the K buffer): read from the K tile.
override V_IN_K: bool = false;
// Read K / V straight from the pages at addresses shared by every lane of the workgroup (no tile,
// no barrier) instead of through workgroup tiles.
override KV_DIRECT: bool = false;
override V_TILE4: u32 = select(DV4, 1u, V_IN_K || KV_DIRECT); // derived; 1 when unused (WGSL has no zero-length arrays)
override K_TILE4: u32 = select(D4, 1u, KV_DIRECT);            // derived
// Register budgets (private arrays need constant sizes): MLA's 576 / 512 head dims on one lane.
const Q_MAX = 144u;
const A_MAX = 128u;
const S_MAX = 64u;

var<workgroup> kTile: array<Word4, KV_BUFFERS * BLOCK_N * K_TILE4>;  // [buffer][key][D4], as stored
var<workgroup> vTile: array<Word4, KV_BUFFERS * BLOCK_N * V_TILE4>; // [buffer][key][DV4], as stored
var<private> qReg: array<vec4<f32>, Q_MAX>;  // this lane's scaled q words
var<private> accO: array<vec4<f32>, A_MAX>;  // this lane's output words, unnormalised
var<private> sReg: array<f32, S_MAX>;        // the row's scores, then probabilities, of one tile
var<private> rowMax: f32;                    // running max m of the row's scaled scores
var<private> rowSum: f32;                    // running sum l of exp(s - m)

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

// Keys [k0, k0 + BLOCK_N) of KV head h into buffer buf; keys at or past hi are zero (not garbage:
// p = 0 times a NaN would still be NaN).
fn loadTile(s: SeqView, h: u32, k0: u32, hi: u32, buf: u32, lid: u32) {
  for (var e = lid; e < BLOCK_N * D4; e += WORKGROUP_SIZE) {
    let key = k0 + e / D4;
    var w = Word4();
    if (key < hi) { w = kWord(kRow(s, key, h), e % D4); }
    kTile[buf * BLOCK_N * D4 + e] = w;
  }
  if (V_IN_K) { return; }
  for (var e = lid; e < BLOCK_N * DV4; e += WORKGROUP_SIZE) {
    let key = k0 + e / DV4;
    var w = Word4();
    if (key < hi) { w = vWord(vRow(s, key, h), e % DV4); }
    vTile[buf * BLOCK_N * DV4 + e] = w;
  }
}

// The K / V rows of key j of the tile: with KV_DIRECT, straight from the pages (keys at or past
// hi clamped to hi - 1: masked, and never added); else the tile's row in buffer buf.
fn tileKRow(s: SeqView, h: u32, k0: u32, hi: u32, buf: u32, j: u32) -> KvRow {
  if (KV_DIRECT) { return kRow(s, min(k0 + j, hi - 1u), h); }
  return KvRow();
}
fn tileVRow(s: SeqView, h: u32, k0: u32, hi: u32, buf: u32, j: u32) -> KvRow {
  if (KV_DIRECT && V_IN_K) { return kRow(s, min(k0 + j, hi - 1u), h); } // V is read from the K row
  if (KV_DIRECT) { return vRow(s, min(k0 + j, hi - 1u), h); }
  return KvRow();
}
// K / V word c of key j: from its row (KV_DIRECT) or the tile.
fn kAt(r: KvRow, buf: u32, j: u32, c: u32) -> vec4<f32> {
  if (KV_DIRECT) { return unpackWord4(kWord(r, c)); }
  return unpackWord4(kTile[(buf * BLOCK_N + j) * D4 + c]);
}
fn vAt(r: KvRow, buf: u32, j: u32, c: u32) -> vec4<f32> {
  if (KV_DIRECT) {
    if (V_IN_K) { return unpackWord4(kWord(r, c)); }
    return unpackWord4(vWord(r, c));
  }
  if (V_IN_K) { return unpackWord4(kTile[(buf * BLOCK_N + j) * D4 + c]); }
  return unpackWord4(vTile[(buf * BLOCK_N + j) * DV4 + c]);
}

// Sum over the L lanes of a row (consecutive lanes of one subgroup): a butterfly, log2(L) shuffles;
// every lane of the row gets the sum. The identity for L = 1.
fn rowLanesSum(x: f32, sub: u32) -> f32 {
  var v = x;
  for (var m = 1u; m < LANES_PER_ROW; m <<= 1u) { v += fromLane(v, sub ^ m); }
  return v;
}

// S = q K^T for the tile in buffer buf, into sReg: eight keys at a time, one vec4 accumulator
// each (independent FMA chains), so each q word read serves 8 keys. On CPU drivers qReg is in
// per-lane scratch memory (it is indexed by a loop counter), so each read is a gather: the block
// of 8 keys is what amortises it.
fn tileScores(s: SeqView, h: u32, k0: u32, hi: u32, buf: u32, part: u32, sub: u32) {
  for (var j = 0u; j < BLOCK_N; j += 8u) {
    var d: array<vec4<f32>, 8>;
    var r: array<KvRow, 8>;
    for (var i = 0u; i < 8u; i++) {
      d[i] = vec4<f32>(0.0);
      r[i] = tileKRow(s, h, k0, hi, buf, j + i);
    }
    for (var w = 0u; w < QW; w++) {
      let qw = qReg[w];
      let c = part + w * LANES_PER_ROW;
      for (var i = 0u; i < 8u; i++) { d[i] = fma(qw, kAt(r[i], buf, j + i, c), d[i]); }
    }
    for (var i = 0u; i < 8u; i++) { sReg[j + i] = rowLanesSum((d[i].x + d[i].y) + (d[i].z + d[i].w), sub); }
  }
}

// acc = acc * alpha + P V over the tile in buffer buf, eight output words at a time held in
// registers over the tile's keys (each probability read serves 8 words; accO, in scratch memory
// on CPU drivers, is read and written once per tile). `masked`: the tile has keys masked for some
// row; a masked key has p = 0, and 0 * a NaN or Inf V value would still be NaN, so only the row's
// visible keys are added (as the float64 twin does), by a select that keeps the loop uniform.
fn tilePV(s: SeqView, h: u32, buf: u32, part: u32, alpha: f32, masked: bool, row: u32, k0: u32, hi: u32) {
  for (var w0 = 0u; w0 < AW; w0 += 8u) {
    var a: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) { a[i] = accO[min(w0 + i, A_MAX - 1u)] * alpha; }
    if (masked) {
      for (var j = 0u; j < BLOCK_N; j++) {
        let p = vec4<f32>(sReg[j]);
        let key = k0 + j;
        let visible = key < hi && keyVisible(s, row, key);
        let vr = tileVRow(s, h, k0, hi, buf, j);
        for (var i = 0u; i < 8u; i++) {
          if (w0 + i < AW) {
            a[i] = select(a[i], fma(p, vAt(vr, buf, j, part + (w0 + i) * LANES_PER_ROW), a[i]), visible);
          }
        }
      }
    } else {
      for (var j = 0u; j < BLOCK_N; j++) {
        let p = vec4<f32>(sReg[j]);
        let vr = tileVRow(s, h, k0, hi, buf, j);
        for (var i = 0u; i < 8u; i++) {
          if (w0 + i < AW) { a[i] = fma(p, vAt(vr, buf, j, part + (w0 + i) * LANES_PER_ROW), a[i]); }
        }
      }
    }
    for (var i = 0u; i < 8u; i++) { if (w0 + i < AW) { accO[w0 + i] = a[i]; } }
  }
}

// Runs the online-softmax loop over keys [kvStart, kvEnd) for rows [rowStart, rowStart + BLOCK_M)
// of kvHead h. On return accO, rowMax and rowSum hold this lane's unnormalised result. Rows past
// the sequence's end compute on its last row and are never written.
fn attendRows(s: SeqView, h: u32, rowStart: u32, kvStart: u32, kvEnd: u32, lid: u32, sub: u32) {
  let part = lid % LANES_PER_ROW;
  let row = min(rowStart + lid / LANES_PER_ROW, s.rows - 1u);
  // q row: row = token * G + g  ->  q[(qStart + token) * H + h * G + g]
  let qBase = ((s.qStart + row / GROUP_SIZE) * NUM_KV_HEADS * GROUP_SIZE + h * GROUP_SIZE + row % GROUP_SIZE) * D4;
  for (var w = 0u; w < QW; w++) { qReg[w] = q[qBase + part + w * LANES_PER_ROW] * params.scale; }
  for (var w = 0u; w < AW; w++) { accO[w] = vec4<f32>(0.0); }
  rowMax = NEG;
  rowSum = 0.0;
  let range = keyRange(s, rowStart, kvStart, kvEnd);
  let firstPos = rowPos(s, rowStart);
  let lastPos = rowPos(s, min(rowStart + BLOCK_M, s.rows) - 1u);

  if (!KV_DIRECT && KV_BUFFERS == 2u && range.x < range.y) { loadTile(s, h, range.x, range.y, 0u, lid); }
  var buf = 0u;
  for (var k0 = range.x; k0 < range.y; k0 += BLOCK_N) {
    if (!KV_DIRECT) {
      if (KV_BUFFERS == 1u) {
        workgroupBarrier(); // every lane is done with the previous tile
        loadTile(s, h, k0, range.y, 0u, lid);
      }
      workgroupBarrier(); // tile k0 is in buffer buf; buffer buf ^ 1 is free
      if (KV_BUFFERS == 2u && k0 + BLOCK_N < range.y) { loadTile(s, h, k0 + BLOCK_N, range.y, buf ^ 1u, lid); }
    }

    tileScores(s, h, k0, range.y, buf, part, sub);
    // Every key of the tile visible to every row of the tile (the same for all lanes): no masks.
    let allVisible = k0 + BLOCK_N <= range.y && (params.causal == 0u || k0 + BLOCK_N <= firstPos + 1u) &&
                     (params.window == 0u || k0 + params.window > lastPos);
    // Online softmax of the row: m' = max(m, max_j s_j); p_j = exp(s_j - m'), 0 where masked
    // (s_j is exactly NEG, compared as bits: a NaN score is not masked, so its p, the row sum and
    // the row's output are not finite, as in the float64 twin); alpha = exp(m - m');
    // l' = l * alpha + sum_j p_j. Worked example: m = 2, l = 3, scores (4, NEG): m' = 4, p = (1, 0),
    // alpha = e^-2, l' = 3e^-2 + 1.
    var mNew = rowMax;
    for (var j = 0u; j < BLOCK_N; j++) {
      var sc = capScore(sReg[j]);
      if (!allVisible) {
        let key = k0 + j;
        sc = select(NEG, sc, key < range.y && keyVisible(s, row, key));
      }
      sReg[j] = sc;
      mNew = max(mNew, sc);
    }
    var sum = 0.0;
    for (var j = 0u; j < BLOCK_N; j++) {
      let sc = sReg[j];
      // Not `sc != NEG`: lavapipe evaluates float comparisons as ordered (NaN != NEG is false there).
      let p = select(0.0, exp(sc - mNew), bitcast<u32>(sc) != bitcast<u32>(NEG));
      sReg[j] = p;
      sum += p;
    }
    let alpha = exp(rowMax - mNew); // 1 while the row has seen nothing (both NEG)
    rowSum = rowSum * alpha + sum;
    rowMax = mNew;

    tilePV(s, h, buf, part, alpha, !allVisible, row, k0, range.y);
    if (KV_BUFFERS == 2u) { buf ^= 1u; }
  }
}
