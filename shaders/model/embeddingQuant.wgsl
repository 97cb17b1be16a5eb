// embeddingQuant: out[t] = table[ids[t]] * SCALE for a table of GGUF blocks (q8 = Q8_0, q4, ...),
// repacked by row into 16-byte-aligned planes (src/kernels/quantLayout.ts; DIM / BLOCK_VALUES blocks
// per row); composed with quantWords.wgsl and one format snippet (qUnit dequantizes 16 values).
// An id >= VOCAB writes a row of NaN, as embedding.wgsl does.
// e.g. q8, DIM 128 (4 blocks, 9 vec4s a row): token 2 with id 5, unit 3 -> codes vec4 5 * 9 + 3
//   (block 1, values 16..31), d in word 4 * (45 + 8) -> out[2 * 128 + 48 .. + 63].
//
// Workgroup: 64 lanes, one per (token, 16-value unit). Grid: (x, y) with x * y * 64 >=
//   numTokens * DIM / 16, x <= maxComputeWorkgroupsPerDimension; lane = (wid.y * x + wid.x) * 64 + lid.
//
// Bindings:
//   0 ids     read        u32 [numTokens]
//   1 w4      read        vec4<u32> [VOCAB][qRowVec4s(DIM / BLOCK_VALUES)] (the packed rows)
//   5 w       read        u32, the same buffer as w4 (scales are read one word at a time)
//   2 out     read_write  vec4<f32> [numTokens][DIM / 4]
//   3 params  uniform     { numTokens }
//   4 shard   uniform     { firstRow, rows }: w holds rows firstRow .. firstRow + rows - 1 (as embedding.wgsl)
// Overrides: DIM (a multiple of BLOCK_VALUES), VOCAB, SCALE.

override DIM: u32 = 256u;
override VOCAB: u32 = 1u;
override SCALE: f32 = 1.0;

struct Params { numTokens: u32 }
// Rows [firstRow, firstRow + rows) of the table live in this dispatch's table buffer (a table split
// by rows across buffers, src/model/weights.ts: one dispatch per shard, each writing only the tokens
// whose id it holds; ids >= VOCAB are the last shard's); an unsplit table is one shard (0, VOCAB).
struct Shard { firstRow: u32, rows: u32 }

@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> w4: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> params: Params;
@group(0) @binding(4) var<uniform> shard: Shard;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * 64u + lid;
  _ = &w4; // both views stay in the layout whichever the format reads (q4_K: only w4)
  _ = &w;
  let units = DIM / 16u;
  if (idx >= params.numTokens * units) { return; }
  let t = idx / units;
  let unit = idx % units;
  let id = ids[t];
  let o = (t * DIM + 16u * unit) / 4u;
  if (id >= VOCAB) {
    if (shard.firstRow + shard.rows == VOCAB) {
      let nan = vec4<f32>(bitcast<f32>(0x7fc00000u | (id & 0u))); // a runtime NaN (a constant one is a WGSL error)
      for (var i = 0u; i < 4u; i++) { out[o + i] = nan; }
    }
    return;
  }
  let row = id - shard.firstRow; // wraps past rows when id < firstRow
  if (row >= shard.rows) { return; } // another shard's id
  let blocks = DIM / BLOCK_VALUES;
  let q = qUnit(row * qRowVec4s(blocks), blocks, unit);
  out[o] = q[0] * SCALE;
  out[o + 1u] = q[1] * SCALE;
  out[o + 2u] = q[2] * SCALE;
  out[o + 3u] = q[3] * SCALE;
}
