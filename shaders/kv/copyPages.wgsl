// copyPages: whole-page copies inside one pool buffer, for copy-on-write of a shared partial page
// (KvCacheManager.appendSlots returns the {src, dst} pairs). WebGPU forbids copyBufferToBuffer
// within one buffer, hence a kernel. Works on raw u32 words, so it serves every KV dtype.
// Workgroup: 64 threads, one u32 word each. Grid: x * y >= numPairs * PAGE_WORDS / 64.
// Bindings:
//   0 pairs   read        vec2<u32> [numPairs]  (src page, dst page)
//   1 pages   read_write  u32 [numPages][PAGE_WORDS]
//   2 params  uniform     { numPairs }
// Overrides: PAGE_WORDS (u32 words per page of this buffer).

override PAGE_WORDS: u32 = 1u;

struct Params { numPairs: u32 }

@group(0) @binding(0) var<storage, read> pairs: array<vec2<u32>>;
@group(0) @binding(1) var<storage, read_write> pages: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (i >= params.numPairs * PAGE_WORDS) { return; }
  let pair = pairs[i / PAGE_WORDS];
  let w = i % PAGE_WORDS;
  pages[pair.y * PAGE_WORDS + w] = pages[pair.x * PAGE_WORDS + w];
}
