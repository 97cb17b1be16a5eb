// rope: rotary position embedding, in place, on the q and k rows of a batch of tokens.
//
// For token t at position p = positions[t] and pair i < ROTARY_DIM / 2, the angle is
// p * invFreq[i] (invFreq from the host: plain, linear, llama3 or yarn scaling is already in it)
// and the pair (a, b) becomes (a cos − b sin, b cos + a sin) · ATTENTION_FACTOR (yarn's mscale).
// The rotated values of one head start OFFSET values into it (MLA: the rope part after the nope
// part); the pair's two elements are
//   rotate-half (llama, qwen, gemma; INTERLEAVED false): (i, i + ROTARY_DIM / 2)
//   interleaved (DeepSeek; INTERLEAVED true):            (2i, 2i + 1)
// Element index of a head's value d: t * TOKEN_STRIDE + h * HEAD_STRIDE + OFFSET + d, per operand;
//   e.g. q of a fused QKV row with 4 q heads, 2 kv heads of 64: Q_TOKEN_STRIDE (4 + 2 * 2) * 64 = 512,
//   Q_HEAD_STRIDE 64; head 3 of token 2, d 5 -> 2 * 512 + 3 * 64 + 5 = 1221.
// sin and cos come from sinCos below, not the built-ins (see there why).
// LongRoPE (Phi-3.5, Phi-4-mini, MiniCPM3): invFreq holds two tables, [2][ROTARY_DIM / 2], and a
// position p >= LONG_FROM reads the second (long factors), e.g. LONG_FROM 4096: p 4095 -> invFreq[i],
// p 4096 -> invFreq[HALF + i]. LONG_FROM = 0xffffffff (the default): one table.
//
// Workgroup: 64 lanes, one per (token, head, pair); heads 0..Q_HEADS-1 are q's, the next K_HEADS k's.
// Grid: (x, y) with x * y * 64 >= numTokens * (Q_HEADS + K_HEADS) * ROTARY_DIM / 2,
//   x <= maxComputeWorkgroupsPerDimension; lane index = (wid.y * x + wid.x) * 64 + lid.
//
// Bindings:
//   0 q          read_write  f32 [numTokens][Q_TOKEN_STRIDE]  (Q_HEADS heads of Q_HEAD_STRIDE)
//   1 k          read_write  f32 [numTokens][K_TOKEN_STRIDE]  (placeholder when K_HEADS is 0)
//   2 positions  read        u32 [numTokens]
//   3 invFreq    read        f32 [ROTARY_DIM / 2] ([2][ROTARY_DIM / 2] when LONG_FROM is set)
//   4 params     uniform     { numTokens }
// Overrides: Q_HEADS, Q_HEAD_STRIDE, Q_TOKEN_STRIDE, Q_OFFSET, K_HEADS, K_HEAD_STRIDE,
//   K_TOKEN_STRIDE, K_OFFSET, ROTARY_DIM (even), INTERLEAVED, ATTENTION_FACTOR, LONG_FROM.

override Q_HEADS: u32 = 1u;
override Q_HEAD_STRIDE: u32 = 64u;
override Q_TOKEN_STRIDE: u32 = 64u;
override Q_OFFSET: u32 = 0u;
override K_HEADS: u32 = 0u;
override K_HEAD_STRIDE: u32 = 64u;
override K_TOKEN_STRIDE: u32 = 64u;
override K_OFFSET: u32 = 0u;
override ROTARY_DIM: u32 = 64u;
override INTERLEAVED: bool = false;
override ATTENTION_FACTOR: f32 = 1.0;
override LONG_FROM: u32 = 0xffffffffu;
override HALF: u32 = ROTARY_DIM / 2u; // derived, never set from TS

struct Params { numTokens: u32 }

@group(0) @binding(0) var<storage, read_write> q: array<f32>;
@group(0) @binding(1) var<storage, read_write> k: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> invFreq: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

// sin and cos of an angle, accurate to ~1e-7 for |angle| < 1e5: the built-ins are not (WGSL only
// bounds their error inside [-π, π], and SwiftShader's are off by ~1e-4 there too). The angle is
// reduced by quarter turns, r = angle - n π/2 with π/2 = PIO2_HI + PIO2_LO (Cody–Waite: PIO2_HI has
// 8 significant bits, so n * PIO2_HI is exact for |n| < 2^16), then Taylor polynomials on
// |r| <= π/4 (truncation < 2e-9) and the quadrant n mod 4 picks and signs them.
// e.g. angle 10: n = round(6.366) = 6, r = 10 - 6 π/2 = 0.5752, quadrant 2: sin = -sin r, cos = -cos r.
const PIO2_HI = 1.5703125;
const PIO2_LO = 4.8382679489661923e-4;
const TWO_OVER_PI = 0.63661977236758134;

fn sinCos(angle: f32) -> vec2<f32> {
  let n = round(angle * TWO_OVER_PI);
  let r = (angle - n * PIO2_HI) - n * PIO2_LO;
  let r2 = r * r;
  let sr = r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0)))));
  let cr = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 + r2 * (-1.0 / 3628800.0)))));
  let quadrant = u32(i32(n) & 3); // two's complement: -1 & 3 = 3
  switch (quadrant) {
    case 0u: { return vec2<f32>(sr, cr); }
    case 1u: { return vec2<f32>(cr, -sr); }
    case 2u: { return vec2<f32>(-sr, -cr); }
    default: { return vec2<f32>(-cr, sr); }
  }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * 64u + lid;
  let heads = Q_HEADS + K_HEADS;
  if (idx >= params.numTokens * heads * HALF) { return; }
  let i = idx % HALF;
  let h = (idx / HALF) % heads;
  let t = idx / (HALF * heads);

  let pos = positions[t];
  let table = select(0u, HALF, pos >= LONG_FROM);
  let angle = f32(pos) * invFreq[table + i];
  let sc = sinCos(angle) * ATTENTION_FACTOR;
  let s = sc.x;
  let c = sc.y;

  let ia = select(i, 2u * i, INTERLEAVED);
  let ib = select(i + HALF, 2u * i + 1u, INTERLEAVED);
  if (h < Q_HEADS) {
    let base = t * Q_TOKEN_STRIDE + h * Q_HEAD_STRIDE + Q_OFFSET;
    let a = q[base + ia];
    let b = q[base + ib];
    q[base + ia] = a * c - b * s;
    q[base + ib] = b * c + a * s;
  } else {
    let base = t * K_TOKEN_STRIDE + (h - Q_HEADS) * K_HEAD_STRIDE + K_OFFSET;
    let a = k[base + ia];
    let b = k[base + ib];
    k[base + ia] = a * c - b * s;
    k[base + ib] = b * c + a * s;
  }
}
