// copy: the bandwidth ceiling. Reads and writes every vec4 of a buffer once; its bytes/s is what
// the memory-bound decode kernel is compared against in the same run.
// Workgroup: 256 threads, one vec4 each. Grid: x * y >= numVec4 / 256 (x <= 65535).
// Bindings:
//   0 src     read        vec4<f32> [numVec4]
//   1 dst     read_write  vec4<f32> [numVec4]
//   2 params  uniform     { numVec4 }

struct Params { numVec4: u32 }

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i < params.numVec4) { dst[i] = src[i]; }
}
