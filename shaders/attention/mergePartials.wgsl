// mergePartials: combines a split-KV decode's partials of each (query token, head) into its output row.
//   M = max_s m_s;  w_s = exp(m_s - M);  L = sum_s w_s l_s
//   out = sum_s w_s o_s / L;  lse = M + log(L)
// Worked example: two chunks with (m, l) = (2, 3) and (1, 5): M = 2, L = 3 + 5e^-1 = 4.84.
// Slots of sequence i (slotIndptr[i] .. slotIndptr[i+1]) are [chunk][token] for its qLen_i query
// tokens (qLen 1: one slot per chunk): token t's slots are slotIndptr[i] + c * qLen_i + t.
// e.g. qLen 2, 3 chunks, slotIndptr[i] = 10: token 0 merges slots 10, 12, 14, token 1 slots 11, 13, 15.
// NaN propagates: a chunk with a NaN m or l makes L (and so out and lse) NaN; only L == 0 (no key
// seen at all) gives out 0.
//
// Workgroup: 64 threads over the HEAD_DIM_V / 4 columns of one (sequence, head).
// Grid: (numSeqs, NUM_HEADS).
// Bindings:
//   0 partialO    read        f32 [numSlots][NUM_HEADS][HEAD_DIM_V] (as vec4)
//   1 partialML   read        vec2<f32> [numSlots][NUM_HEADS]
//   2 slotIndptr  read        u32 [numSeqs + 1]  slots of sequence i: slotIndptr[i] .. slotIndptr[i+1]
//   3 qoIndptr    read        u32 [numSeqs + 1]  sequence i's output rows: qoIndptr[i] .. qoIndptr[i+1]
//   4 out         read_write  f32 [numQ][NUM_HEADS][HEAD_DIM_V] (as vec4)
//   5 lse         read_write  f32 [numQ][NUM_HEADS]
// Overrides: NUM_HEADS, HEAD_DIM_V.

override NUM_HEADS: u32 = 1u;
override HEAD_DIM_V: u32 = 128u;
override DV4: u32 = HEAD_DIM_V / 4u; // derived

@group(0) @binding(0) var<storage, read> partialO: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> partialML: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> slotIndptr: array<u32>;
@group(0) @binding(3) var<storage, read> qoIndptr: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let seq = wid.x;
  let head = wid.y;
  let first = slotIndptr[seq];
  let qStart = qoIndptr[seq];
  let qLen = qoIndptr[seq + 1u] - qStart;
  let end = slotIndptr[seq + 1u];
  for (var t = 0u; t < qLen; t++) {
    var mMax = -1.0e30;
    for (var s = first + t; s < end; s += qLen) { mMax = max(mMax, partialML[s * NUM_HEADS + head].x); }
    var total = 0.0;
    for (var s = first + t; s < end; s += qLen) {
      let ml = partialML[s * NUM_HEADS + head];
      total += exp(ml.x - mMax) * ml.y;
    }
    let token = qStart + t;
    for (var c = lid; c < DV4; c += 64u) {
      var o = vec4<f32>(0.0);
      for (var s = first + t; s < end; s += qLen) {
        o += exp(partialML[s * NUM_HEADS + head].x - mMax) * partialO[(s * NUM_HEADS + head) * DV4 + c];
      }
      out[(token * NUM_HEADS + head) * DV4 + c] = select(o / total, vec4<f32>(0.0), total == 0.0);
    }
    if (lid == 0u) { lse[token * NUM_HEADS + head] = mMax + log(total); }
  }
}
