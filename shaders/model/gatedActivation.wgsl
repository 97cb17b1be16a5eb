// gatedActivation: out = act(gate) * up, the middle of a gated MLP (down(act(gate(x)) * up(x))).
//   act SiLU (ACTIVATION 0):      x / (1 + exp(-x))
//   act GELU-tanh (ACTIVATION 1): 0.5 x (1 + tanh(u)), u = sqrt(2/π) (x + 0.044715 x³),
//     computed as x / (1 + exp(-2u)) (the same function; no tanh overflow to NaN for large |u|).
// Inputs are read with a row stride and an offset, so one kernel serves both layouts:
//   split:  gate [T][I] and up [T][I] in two buffers   (IN_STRIDE = I, UP_OFFSET = 0)
//   concat: one buffer [T][2I], gate | up per row, bound to both bindings (IN_STRIDE = 2I,
//           UP_OFFSET = I), as a fused gate_up projection writes it.
//   e.g. concat, I 3, token 1, j 2: gate at 1 * 6 + 2 = 8, up at 8 + 3 = 11, out at 1 * 3 + 2 = 5.
//
// Workgroup: 64 lanes, one per (token, j). Grid: (x, y) with x * y * 64 >= numTokens * I,
//   x <= maxComputeWorkgroupsPerDimension; lane index = (wid.y * x + wid.x) * 64 + lid.
//
// Bindings:
//   0 gate    read        f32 [numTokens][IN_STRIDE]  (gate at j)
//   1 up      read        f32 [numTokens][IN_STRIDE]  (up at UP_OFFSET + j; may be gate's buffer)
//   2 out     read_write  f32 [numTokens][I]
//   3 params  uniform     { numTokens }
// Overrides: I, IN_STRIDE, UP_OFFSET, ACTIVATION (0 SiLU, 1 GELU-tanh).

override I: u32 = 64u;
override IN_STRIDE: u32 = 64u;
override UP_OFFSET: u32 = 0u;
override ACTIVATION: u32 = 0u;

struct Params { numTokens: u32 }

@group(0) @binding(0) var<storage, read> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (idx >= params.numTokens * I) { return; }
  let j = idx % I;
  let t = idx / I;
  let g = gate[t * IN_STRIDE + j];
  let u = up[t * IN_STRIDE + UP_OFFSET + j];
  var z = g; // the sigmoid's argument: silu(g) = g * sigmoid(g)
  if (ACTIVATION == 1u) { z = 1.5957691216057308 * (g + 0.044715 * g * g * g); } // 2 sqrt(2/π) (...)
  out[idx] = g / (1.0 + exp(-z)) * u;
}
