// mlaDecodeV1: the previous mlaDecode, kept as the bench's baseline (the ladder with its numbers is in
// mlaDecode.wgsl's header; mlaDecode.ts `version: 1`). One key per lane in the score pass; else as v2.
//
// mlaDecode v1: split-KV decode for absorbed MLA (DeepSeek-V2/V3 latent attention). One query token
// per sequence with H heads, all against ONE latent row per key: K = the row [c_kv | k_pe]
// (HEAD_DIM_QK = d_c + d_rope wide), V = its first HEAD_DIM_V = d_c values, read in place
// (vPages is bound to the K buffer, V_ROW4 = D4). Like splitKvDecode, each workgroup writes an
// unnormalised partial (o, m, l) of one (sequence, KV chunk, head block) in the same layout, and
// mergePartials combines the chunks.
// Composed as: lane snippet (mlaDecodeSubgroups.wgsl or mlaDecodeLanes.wgsl) + word4 snippet +
// kvPages*.wgsl (1, 2, row readers) + pagedKv.wgsl (0, 3-6, 8) + workItem.wgsl (binding 7) + onlineSoftmax.wgsl + this.
//
// Why a kernel of its own: the H heads share every latent row, so the work per byte read grows
// with H (DeepSeek: 2 * H * (576 + 512) flop per 1152-byte f16 row; H 128 -> 242 flop/byte). The
// generic decode tiles at most 4 heads at Dv 512 and re-reads the cache once per 4 heads; here a
// workgroup takes BLOCK_M heads (16 by default: all of H = 16, an eighth of H = 128; up to 32), so
// the cache is read H / BLOCK_M times per step, and all the arithmetic is register blocked over
// the head block. (32 heads halves the re-reads but doubles the accumulators; on lavapipe that
// spilled and ran 1.5x slower per flop, and at H = 128 the step is compute-bound anyway.)
//   - scores: one key per lane (BLOCK_N = workgroup size). A lane reads its key's latent row once
//     (the row is contiguous: 1152 bytes at DeepSeek dims) and dots it with the q rows of all
//     BLOCK_M heads, BLOCK_M accumulators in registers. q is read straight from the storage buffer
//     at addresses that are the same for every lane (a broadcast; no workgroup copy of q, which at
//     16 heads x 576 f32 would not fit 16 KiB): with subgroups, lane i of each subgroup reads head
//     b + i's word and the subgroup shuffles it around (SG_SIZE > 1, see mlaDecodeSubgroups.wgsl).
//     The softmax scale is applied to the finished score.
//   - P V: lane `lid` owns output vec4 column lid % DV4 of rows lid / DV4, lid / DV4 + WG / DV4, ...
//     (all BLOCK_M rows when DV4 = WG, DeepSeek's 128 columns). For each key it reads one V word
//     of its column (consecutive lanes, consecutive words: coalesced; the row was just read by the
//     score pass, so this is a cache hit) and does one vec4 FMA per row with the probability
//     broadcast from workgroup memory (shuffled around the subgroup like q): ACC_PER_THREAD =
//     BLOCK_M * DV4 / BLOCK_N vec4 accumulators, updated PV_GROUP at a time.
//   Workgroup memory is only the probability tile: 4 * BLOCK_M * (BLOCK_N + 3) bytes
//   (16 heads x 128 keys: 8.4 KiB, inside 16 KiB; 32 heads needs 16.8 KiB).
//
// Workgroup: BLOCK_N threads. Grid: (numWorkItems, 1). Work item = (seq, rowStart, kvStart, kvEnd,
// slot): heads rowStart .. rowStart + BLOCK_M - 1 (rows past GROUP_SIZE are computed on a clamped
// q row and never written) over keys [kvStart, kvEnd) of sequence seq; slot numbers the
// (sequence, chunk) pair. Worked example: H 128, BLOCK_M 16, one sequence of 4096 keys in chunks of
// 256 -> 16 slots x 8 head blocks = 128 work items.
//
// Extra bindings (7 work: workItem.wgsl):
//   9  partialO   read_write  f32 [numSlots][GROUP_SIZE][HEAD_DIM_V] (as vec4), unnormalised
//   10 partialML  read_write  vec2<f32> [numSlots][GROUP_SIZE]  (running max m, sum l)
// Overrides beyond pagedKv's (NUM_KV_HEADS must be 1, GROUP_SIZE = H):
//   BLOCK_M heads per workgroup (<= ROWS_MAX), BLOCK_N keys per tile = workgroup size,
//   ACC_PER_THREAD = ceil(BLOCK_M * DV4 / BLOCK_N) <= ACC_MAX, SG_SIZE = the adapter's fixed
//   subgroup size with the subgroup snippet, 1 with the plain one.
// requires: q, kRow, vRow, kVec, vVec, params, NEG, D4, DV4, V_ROW4, GROUP_SIZE, seqView,
//   capScore, onlineSoftmaxRows, WorkItem, work, LaneIds, subgroupLane, fromLane4, fromLane

override BLOCK_M: u32 = 16u;
override BLOCK_N: u32 = 128u;
override ACC_PER_THREAD: u32 = 16u;
override SG_SIZE: u32 = 1u;
const ACC_MAX = 32u;
const PV_GROUP = 8u;
const ROWS_MAX = 32u;

@group(0) @binding(9) var<storage, read_write> partialO: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> partialML: array<vec2<f32>>;

var<workgroup> sTile: array<f32, BLOCK_M * BLOCK_N>; // scores, then probabilities [head][key]
var<workgroup> rowM: array<f32, BLOCK_M>;
var<workgroup> rowL: array<f32, BLOCK_M>;
var<workgroup> rowAlpha: array<f32, BLOCK_M>;

@compute @workgroup_size(BLOCK_N)
fn main(@builtin(workgroup_id) wid: vec3<u32>, ids: LaneIds) {
  let lid = ids.lid;
  let sub = subgroupLane(ids); // 0 without subgroups
  let item = work[wid.x];
  let s = seqView(item.seq);
  // First q word of this block's heads: q [numQ][GROUP_SIZE][D4]. Head rowStart + r is clamped
  // into range (its row is never written) so a partial last block reads nothing out of bounds.
  let qBase = s.qStart * GROUP_SIZE;
  let lastHead = GROUP_SIZE - 1u;
  for (var r = lid; r < BLOCK_M; r += BLOCK_N) { rowM[r] = NEG; rowL[r] = 0.0; }
  var acc: array<vec4<f32>, ACC_MAX>;
  for (var k = 0u; k < ACC_PER_THREAD; k++) { acc[k] = vec4<f32>(0.0); }
  // The query sits at position kvLen - 1: causal masking is moot, a window cuts the start.
  let pos = s.kvLen - 1u;
  var lo = item.kvStart;
  if (params.window > 0u && pos + 1u > params.window) { lo = max(lo, pos + 1u - params.window); }
  let hi = item.kvEnd;

  for (var k0 = lo; k0 < hi; k0 += BLOCK_N) {
    // Scores of key k0 + lid against every head of the block.
    // Lanes past the chunk's end score the last key (masked below) instead of branching: the loop
    // stays in uniform control flow, where lavapipe reads q as one broadcast load per word.
    let key = k0 + lid;
    var d: array<f32, ROWS_MAX>;
    for (var r = 0u; r < BLOCK_M; r++) { d[r] = 0.0; } // explicit: lavapipe does not re-zero per iteration
    let base = kRow(s, min(key, hi - 1u), 0u);
    for (var c = 0u; c < D4; c++) {
      let kv = kVec(base, c);
      for (var b = 0u; b < BLOCK_M; b += SG_SIZE) {
        // This lane's word: head b + sub's (clamped); head b + i's comes from lane i.
        let own = q[(qBase + min(item.rowStart + b + sub, lastHead)) * D4 + c];
        for (var i = 0u; i < SG_SIZE; i++) {
          if (b + i < BLOCK_M) {
            // An FMA chain rather than dot(): 4 fused ops instead of 4 multiplies and 4 adds on lavapipe.
            let qw = fromLane4(own, i);
            d[b + i] = fma(qw.x, kv.x, fma(qw.y, kv.y, fma(qw.z, kv.z, fma(qw.w, kv.w, d[b + i]))));
          }
        }
      }
    }
    workgroupBarrier(); // the previous tile's P V is done with sTile
    for (var r = 0u; r < BLOCK_M; r++) {
      sTile[r * BLOCK_N + lid] = select(NEG, capScore(d[r] * params.scale), key < hi);
    }
    workgroupBarrier();
    onlineSoftmaxRows(lid, BLOCK_N); // onlineSoftmax.wgsl: sTile -> probabilities, rowAlpha
    workgroupBarrier();
    // acc = acc * alpha + P V over this tile's keys.
    let n = min(BLOCK_N, hi - k0);
    if (BLOCK_N % DV4 == 0u) {
      // Every k of a lane shares column lid % DV4: one V word serves ACC_PER_THREAD rows.
      // DeepSeek (DV4 = BLOCK_N = 128): r0 = 0 written as a constant, so the probability reads
      // below have the same address in every lane (a broadcast, not a gather, on lavapipe).
      let c = lid % DV4;
      let r0 = select(lid / DV4, 0u, DV4 == BLOCK_N);
      let rStep = BLOCK_N / DV4;
      for (var k = 0u; k < ACC_PER_THREAD; k++) { acc[k] *= rowAlpha[min(r0 + k * rStep, BLOCK_M - 1u)]; }
      // PV_GROUP accumulators at a time over the tile's keys (the V word is read again per group):
      // a group fits a CPU's vector registers, all ACC_PER_THREAD would spill on lavapipe.
      for (var g = 0u; g < ACC_PER_THREAD; g += PV_GROUP) {
        for (var j = 0u; j < n; j++) {
          let vw = vVec(vRow(s, k0 + j, 0u), c);
          if (DV4 == BLOCK_N) {
            // Rows k = g + i are the same in every lane: one probability read per SG_SIZE rows.
            for (var b = 0u; b < PV_GROUP; b += SG_SIZE) {
              let own = sTile[min(g + b + sub, BLOCK_M - 1u) * BLOCK_N + j];
              for (var i = 0u; i < SG_SIZE; i++) {
                let k = g + b + i;
                if (b + i < PV_GROUP && k < ACC_PER_THREAD) { acc[k] = fma(vec4<f32>(fromLane(own, i)), vw, acc[k]); }
              }
            }
          } else {
            for (var i = 0u; i < PV_GROUP; i++) {
              let k = g + i;
              if (k < ACC_PER_THREAD) {
                acc[k] = fma(vec4<f32>(sTile[min(r0 + k * rStep, BLOCK_M - 1u) * BLOCK_N + j]), vw, acc[k]);
              }
            }
          }
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
            a += sTile[r * BLOCK_N + j] * vVec(vRow(s, k0 + j, 0u), c);
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
    if (e < BLOCK_M * DV4 && row < GROUP_SIZE) {
      partialO[(item.slot * GROUP_SIZE + row) * DV4 + e % DV4] = acc[k];
    }
  }
  for (var r = lid; r < BLOCK_M; r += BLOCK_N) {
    let row = item.rowStart + r;
    if (row < GROUP_SIZE) { partialML[item.slot * GROUP_SIZE + row] = vec2<f32>(rowM[r], rowL[r]); }
  }
}
