// naive: what the three passes of the naive attention baseline share (naiveScores, naiveSoftmax,
// naiveOutput). Not a kernel. The passes process the query-token chunk
// [tokenStart, tokenStart + numTokens); a pass that does not use a binding leaves it out.
// Bindings:
//   9  scores    read_write  f32 [numTokens * H][maxKv]   chunk row R = (token - tokenStart) * H + head
//   12 naive     uniform     NaiveParams
//   13 tokenSeq  read        u32 [numQ]  sequence of each query token
// requires: (nothing)
// provides: NaiveParams, scores, naive, tokenSeq, flatIndex

struct NaiveParams { tokenStart: u32, numTokens: u32, maxKv: u32 }

@group(0) @binding(9) var<storage, read_write> scores: array<f32>;
@group(0) @binding(12) var<uniform> naive: NaiveParams;
@group(0) @binding(13) var<storage, read> tokenSeq: array<u32>;

// Invocation index of a 64-wide 1-D grid folded into (x, y) to stay under the dispatch limit.
fn flatIndex(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.y * nwg.x + wid.x) * 64u + lid; }
