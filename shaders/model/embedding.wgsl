// embedding: out[t] = table[ids[t]] * SCALE (gemma: SCALE = sqrt(hidden)), one row of DIM per token.
// An id >= VOCAB writes a row of NaN, so a bad id shows up in the logits instead of reading
// another tensor's memory.
// Table words are u32: f32 bits (TABLE_F16 false) or two f16 values per word, low half first
// (TABLE_F16 true; element e = id * DIM + d is half e & 1 of word e >> 1), read with
// unpack2x16float (no `shader-f16` needed). e.g. DIM 5, id 3, d 2 -> e 17 -> word 8, high half.
//
// Workgroup: 64 lanes, one per (token, d). Grid: (x, y) with x * y * 64 >= numTokens * DIM,
//   x <= maxComputeWorkgroupsPerDimension; lane index = (wid.y * x + wid.x) * 64 + lid.
//
// Bindings:
//   0 ids     read        u32 [numTokens]
//   1 table   read        u32 [VOCAB][DIM] f32 bits, or [ceil(VOCAB * DIM / 2)] f16 pairs
//   2 out     read_write  f32 [numTokens][DIM]
//   3 params  uniform     { numTokens }
//   4 shard   uniform     { firstRow, rows }: table holds rows firstRow .. firstRow + rows - 1
// Overrides: DIM, VOCAB, TABLE_F16, SCALE.

override DIM: u32 = 64u;
override VOCAB: u32 = 1u;
override TABLE_F16: bool = false;
override SCALE: f32 = 1.0;

struct Params { numTokens: u32 }
// Rows [firstRow, firstRow + rows) of the table live in this dispatch's table buffer (a table split
// by rows across buffers, src/model/weights.ts: one dispatch per shard, each writing only the tokens
// whose id it holds; ids >= VOCAB are the last shard's); an unsplit table is one shard (0, VOCAB).
struct Shard { firstRow: u32, rows: u32 }

@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
@group(0) @binding(4) var<uniform> shard: Shard;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (idx >= params.numTokens * DIM) { return; }
  let d = idx % DIM;
  let t = idx / DIM;
  let id = ids[t];
  if (id >= VOCAB) {
    if (shard.firstRow + shard.rows == VOCAB) {
      out[idx] = bitcast<f32>(0x7fc00000u | (id & 0u)); // NaN (a runtime value: a constant NaN is a WGSL error)
    }
    return;
  }
  let row = id - shard.firstRow; // wraps past rows when id < firstRow
  if (row >= shard.rows) { return; } // another shard's id
  let e = row * DIM + d;
  var v: f32;
  if (TABLE_F16) {
    v = unpack2x16float(table[e >> 1u])[e & 1u];
  } else {
    v = bitcast<f32>(table[e]);
  }
  out[idx] = v * SCALE;
}
