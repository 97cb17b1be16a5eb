// splitKvDecode (v3): Flash-Decoding for MHA / GQA / MQA, and the small-qLen prefill chunks that go
// through it (2-16 query tokens per sequence: speculative verification, chunked-prefill tails). The
// KV range of each (sequence, KV head) is split into chunks handled by separate workgroups, each
// writing an unnormalised partial (o, m, l) per row that mergePartials combines by log-sum-exp weights.
// Composed as: lane snippet (mlaDecodeSubgroups.wgsl; needs one fixed subgroup size) + word4 snippet +
// kvPages*.wgsl (row readers, page layout: bindings 1, 2, 16..21) + pagedKv.wgsl (0, 3-6, 8) +
// workItem.wgsl (binding 7) + this.
//
// Ladder (bin/webattn.js bench --only 'decode b1 ctx16384' --reps 3, lavapipe on 2 cores shared with
// other jobs, load average 17; GQA 32/8 d 128 f16, batch 1, 16K context; each rep alternates v3, v2,
// v1, naive and a copy kernel; "of copy" = this row's GB/s / that copy's):
//   v1 (splitKvDecodeV1.wgsl)  1968 ms  0.09 of copy   q from workgroup memory, 128-key chunks
//   v2 (splitKvDecodeV2.wgsl)  1129 ms  0.15 of copy   q shuffled through subgroups, 64-key chunks
//   v3 (this file)              245 ms  0.71 of copy   q and p in registers through shuffles, a softmax
//                                                      state per subgroup, no barrier in the key loop
//   naive three-pass           3824 ms  0.05 of copy
// CPU time of lavapipe's worker threads (less load-dependent), same shape, 256-key chunks, against the
// copy kernel's: v1 0.14, v2 0.15, v3 0.60; v3 with 8 subgroups per workgroup (the GPU layout) 0.49.
// Where v2's time went on lavapipe (CPU time of its worker threads, same run as a copy kernel): P V 65%,
// q k 12%, the rest (softmax through workgroup memory, barriers) 23%. llvmpipe turns EVERY load inside a
// loop into 8 masked per-lane loads (uniform addresses included), so what counts is the number of loads
// a lane issues: v2 re-read q and the probabilities from workgroup memory for every key.
//
// The design (a GPU's first: K/V read once per KV head, V reads coalesced, no barrier in the key loop):
//   - The workgroup is NUM_SG subgroups of SG_SIZE lanes (BLOCK_N = NUM_SG * SG_SIZE); each subgroup
//     owns keys t0 + g * SG_SIZE .. + SG_SIZE - 1 of every BLOCK_N-key tile and keeps its OWN online
//     softmax state, so subgroups never wait for each other until the end of the chunk (FlashInfer's
//     per-warp states). Relies on subgroups being runs of consecutive local_invocation_index (subgroup
//     g = lanes g * SG_SIZE ..), as every Vulkan, Metal and D3D12 driver lays out a 1-D workgroup.
//   - q k: one key per lane; the lane reads its key's K row word by word (8 bytes per f16 word) and
//     dots it with the BLOCK_M q rows. q lives in registers, spread over the subgroup: lane i holds
//     words i, i + SG_SIZE, .. of every row (QW per row), read once per workgroup, and word c comes from
//     lane c % SG_SIZE by subgroupShuffle (a register permute; no load in the loop).
//   - softmax: the subgroup's SG_SIZE scores per row are still one per lane: subgroupMax / subgroupAdd.
//   - P V: lane i owns output words i, i + SG_SIZE, .. (AW per row) of every row; for each of the
//     subgroup's keys, the lanes read consecutive V words of that key's row (coalesced) and the key's
//     probability comes from the lane that scored it by subgroupShuffle.
//   - end of chunk: the NUM_SG states merge through workgroup memory (M = max m_g, weights exp(m_g - M)),
//     one row at a time, 2 barriers per row. CPU drivers take NUM_SG = 1 (SplitKvDecode.create, gated on
//     the adapter): a CPU runs subgroups one after another, so only the merge would be left of them.
// Per lane in registers: BLOCK_M * QW q words and BLOCK_M * AW accumulators (vec4), at most REG_MAX
// each: GPU SG 32 at d 128: 1 + 1 per row; lavapipe (SG 8): 4 + 4; SwiftShader (SG 4): 8 + 8.
//
// Rows: the GROUP_SIZE query heads of one KV head for each of the sequence's qLen query tokens, row
// r = token r / GROUP_SIZE, head r % GROUP_SIZE, tiled by BLOCK_M; a row at position p sees keys
// <= p (causal) and > p - window. Grid: (numWorkItems, NUM_KV_HEADS). Work item = (seq, rowStart,
// kvStart, kvEnd, slot): keys [kvStart, kvEnd) of sequence seq for rows rowStart .. rowStart +
// BLOCK_M - 1; partial row of (token t, head hq) is slot + t, head hq (the plan numbers a sequence's
// slots [chunk][token]). Worked example: GQA G 4, one sequence with qLen 2 and 300 keys in 256-key
// chunks, BLOCK_M 4 -> items (rows 0-3, chunk 0, slot 0), (rows 4-7, chunk 0, slot 0), (rows 0-3,
// chunk 1, slot 2), (rows 4-7, chunk 1, slot 2); token 1 of chunk 1 writes slot 3.
// Workgroup memory: 8 * BLOCK_M * NUM_SG (m, l) + 16 * NUM_SG * DV4 (one row of every subgroup's
// accumulator) bytes; e.g. lavapipe d 128, BLOCK_M 4: 256 + 4096.
//
// Extra bindings (7 work: workItem.wgsl):
//   9  partialO   read_write  f32 [numSlots][NUM_KV_HEADS * GROUP_SIZE][HEAD_DIM_V] (as vec4), unnormalised
//   10 partialML  read_write  vec2<f32> [numSlots][NUM_KV_HEADS * GROUP_SIZE]  (running max m, sum l)
// Overrides beyond pagedKv's: BLOCK_M (<= ROWS_MAX), SG_SIZE (the adapter's fixed subgroup size), NUM_SG,
//   BLOCK_N = NUM_SG * SG_SIZE (the workgroup size), QW = ceil(D4 / SG_SIZE), AW = ceil(DV4 / SG_SIZE),
//   BLOCK_M * QW and BLOCK_M * AW <= REG_MAX.
// requires: q, kRow, vRow, kVec, vVec, params, NEG, D4, DV4, GROUP_SIZE, NUM_KV_HEADS, seqView, rowPos,
//   capScore, WorkItem, work, LaneIds, subgroupLane, fromLane4, fromLane, lanesMax, lanesAdd

override BLOCK_M: u32 = 4u;
override SG_SIZE: u32 = 8u;
override NUM_SG: u32 = 8u;
override BLOCK_N: u32 = NUM_SG * SG_SIZE;
override QW: u32 = (D4 + SG_SIZE - 1u) / SG_SIZE;
override AW: u32 = (DV4 + SG_SIZE - 1u) / SG_SIZE;
const REG_MAX = 32u;
const ROWS_MAX = 32u;

@group(0) @binding(9) var<storage, read_write> partialO: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> partialML: array<vec2<f32>>;

var<workgroup> sgM: array<f32, BLOCK_M * NUM_SG>;       // [row][subgroup] the subgroup's running max
var<workgroup> sgL: array<f32, BLOCK_M * NUM_SG>;       // [row][subgroup] its running sum
var<workgroup> accTile: array<vec4<f32>, NUM_SG * DV4>; // [subgroup][word] one row of every accumulator

@compute @workgroup_size(BLOCK_N)
fn main(@builtin(workgroup_id) wid: vec3<u32>, ids: LaneIds) {
  let lid = ids.lid;
  let sub = subgroupLane(ids);
  let g = lid / SG_SIZE;
  let item = work[wid.x];
  let h = wid.y;
  let s = seqView(item.seq);
  let numHeads = NUM_KV_HEADS * GROUP_SIZE;
  // Partial / q row of tile row r: token (rowStart + r) / G, query head h * G + (rowStart + r) % G.
  // Rows past the sequence's are computed on its last row (never written).
  var qReg: array<vec4<f32>, REG_MAX>; // [row][t]: word sub + t * SG_SIZE, scaled; 0 past the row
  for (var r = 0u; r < BLOCK_M; r++) {
    let row = min(item.rowStart + r, s.rows - 1u);
    let qBase = ((s.qStart + row / GROUP_SIZE) * numHeads + h * GROUP_SIZE + row % GROUP_SIZE) * D4;
    for (var t = 0u; t < QW; t++) {
      let w = sub + t * SG_SIZE;
      qReg[r * QW + t] = select(vec4<f32>(0.0), q[qBase + min(w, D4 - 1u)] * params.scale, w < D4);
    }
  }
  var acc: array<vec4<f32>, REG_MAX>; // [row][t]: output word sub + t * SG_SIZE
  for (var e = 0u; e < BLOCK_M * AW; e++) { acc[e] = vec4<f32>(0.0); }
  var mRow: array<f32, ROWS_MAX>; // this subgroup's running max and sum per row (the same in every lane)
  var lRow: array<f32, ROWS_MAX>;
  for (var r = 0u; r < BLOCK_M; r++) { mRow[r] = NEG; lRow[r] = 0.0; }
  // Keys any row of the tile can see: from the first row's window start to the last row's position.
  let lastRow = min(item.rowStart + BLOCK_M, s.rows) - 1u;
  let posFirst = rowPos(s, item.rowStart);
  var lo = item.kvStart;
  if (params.window > 0u && posFirst + 1u > params.window) { lo = max(lo, posFirst + 1u - params.window); }
  var hi = item.kvEnd;
  if (params.causal != 0u) { hi = min(hi, rowPos(s, lastRow) + 1u); }

  // The loop bounds are the same for every lane, so the shuffles below stay in uniform control flow;
  // a subgroup whose keys start past hi runs its last tile fully masked.
  for (var t0 = lo; t0 < hi; t0 += BLOCK_N) {
    let k0 = t0 + g * SG_SIZE; // this subgroup's first key
    let key = k0 + sub;
    var d: array<f32, ROWS_MAX>;
    for (var r = 0u; r < BLOCK_M; r++) { d[r] = 0.0; } // explicit: lavapipe does not re-zero per iteration
    let base = kRow(s, min(key, hi - 1u), h); // past the end: the last key, masked below
    // Word c = t * SG_SIZE + i of the K row against word c of every q row (from lane i). The i loop is
    // outermost so that the register indices (r, t) are constants once the inner loops unroll: a
    // private array indexed by a loop variable became per-lane inserts and extracts on lavapipe.
    for (var i = 0u; i < SG_SIZE; i++) {
      for (var t = 0u; t < QW; t++) {
        let c = t * SG_SIZE + i;
        // select, not a branch: no control flow around the shuffles; past the row: 0, never 0 * K
        // (folded away when SG_SIZE divides D4).
        let kv = select(vec4<f32>(0.0), kVec(base, min(c, D4 - 1u)), D4 % SG_SIZE == 0u || c < D4);
        for (var r = 0u; r < BLOCK_M; r++) {
          let qw = fromLane4(qReg[r * QW + t], i);
          d[r] = fma(qw.x, kv.x, fma(qw.y, kv.y, fma(qw.z, kv.z, fma(qw.w, kv.w, d[r]))));
        }
      }
    }
    // Online softmax over this subgroup's keys, per row; the probabilities stay one per lane.
    var p: array<f32, ROWS_MAX>;
    for (var r = 0u; r < BLOCK_M; r++) {
      let row = item.rowStart + r;
      let pos = rowPos(s, row);
      var visible = key < hi && row < s.rows;
      if (params.causal != 0u) { visible = visible && key <= pos; }
      if (params.window > 0u) { visible = visible && key + params.window > pos; }
      let sc = select(NEG, capScore(d[r]), visible);
      let mNew = max(mRow[r], lanesMax(sc));
      // Masked: the bits of NEG (see onlineSoftmax.wgsl: a NaN score must not get p = 0).
      p[r] = select(0.0, exp(sc - mNew), bitcast<u32>(sc) != bitcast<u32>(NEG));
      let alpha = exp(mRow[r] - mNew); // 1 while the row has seen nothing (both NEG)
      lRow[r] = lRow[r] * alpha + lanesAdd(p[r]);
      mRow[r] = mNew;
      for (var t = 0u; t < AW; t++) { acc[r * AW + t] *= alpha; }
    }
    // acc += P V over the subgroup's keys: key k0 + i's probabilities come from lane i.
    for (var i = 0u; i < SG_SIZE; i++) {
      var pi: array<f32, ROWS_MAX>;
      for (var r = 0u; r < BLOCK_M; r++) { pi[r] = fromLane(p[r], i); }
      // A key past the chunk is skipped, not multiplied by p = 0: its V row may hold a NaN or an Inf.
      if (k0 + i < hi) {
        let vr = vRow(s, k0 + i, h);
        for (var t = 0u; t < AW; t++) {
          let vw = vVec(vr, min(sub + t * SG_SIZE, DV4 - 1u)); // past the row: never written
          for (var r = 0u; r < BLOCK_M; r++) { acc[r * AW + t] = fma(vec4<f32>(pi[r]), vw, acc[r * AW + t]); }
        }
      }
    }
  }

  if (NUM_SG == 1u) {
    // One subgroup (CPU drivers): its state is the partial.
    for (var r = 0u; r < BLOCK_M; r++) {
      let row = item.rowStart + r;
      let dst = (item.slot + row / GROUP_SIZE) * numHeads + h * GROUP_SIZE + row % GROUP_SIZE;
      if (row < s.rows) {
        for (var t = 0u; t < AW; t++) {
          let w = sub + t * SG_SIZE;
          if (w < DV4) { partialO[dst * DV4 + w] = acc[r * AW + t]; }
        }
        if (sub == 0u) { partialML[dst] = vec2<f32>(mRow[r], lRow[r]); }
      }
    }
    return;
  }
  // Merge the NUM_SG subgroup states of each row: M = max_g m_g, o = sum_g exp(m_g - M) o_g, same for l.
  if (sub == 0u) {
    for (var r = 0u; r < BLOCK_M; r++) { sgM[r * NUM_SG + g] = mRow[r]; sgL[r * NUM_SG + g] = lRow[r]; }
  }
  workgroupBarrier();
  for (var r = 0u; r < BLOCK_M; r++) {
    var mAll = NEG;
    for (var j = 0u; j < NUM_SG; j++) { mAll = max(mAll, sgM[r * NUM_SG + j]); }
    let weight = exp(mRow[r] - mAll); // 1 when both are NEG (nothing seen): o_g is 0 then
    for (var t = 0u; t < AW; t++) {
      let w = sub + t * SG_SIZE;
      if (w < DV4) { accTile[g * DV4 + w] = acc[r * AW + t] * weight; }
    }
    workgroupBarrier();
    let row = item.rowStart + r;
    let dst = (item.slot + row / GROUP_SIZE) * numHeads + h * GROUP_SIZE + row % GROUP_SIZE;
    if (row < s.rows) {
      for (var w = lid; w < DV4; w += BLOCK_N) {
        var o = vec4<f32>(0.0);
        for (var j = 0u; j < NUM_SG; j++) { o += accTile[j * DV4 + w]; }
        partialO[dst * DV4 + w] = o;
      }
      if (lid == 0u) {
        var l = 0.0;
        for (var j = 0u; j < NUM_SG; j++) { l += sgL[r * NUM_SG + j] * exp(sgM[r * NUM_SG + j] - mAll); }
        partialML[dst] = vec2<f32>(mAll, l);
      }
    }
    workgroupBarrier(); // accTile free for the next row
  }
}
