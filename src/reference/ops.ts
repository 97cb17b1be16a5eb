/**
 * Float64 twins of the per-token kernels of a forward step (shaders/model: rmsNorm, rope,
 * embedding, gatedActivation), with the same arguments and layouts as their wrappers, for tests.
 */

/**
 * RMSNorm over rows of width dim: y = x / sqrt(mean(x²) + eps) * w (plusOne: * (1 + w)).
 * With `residual` (fused): s = residual + x is the normalised row, returned as `sum` too.
 * x, residual [rows, dim], w [dim] → y [rows, dim] (and sum [rows, dim]).
 */
export function rmsNormRef(
  x: ArrayLike<number>,
  rows: number,
  dim: number,
  w: ArrayLike<number>,
  eps: number,
  opts: { plusOne?: boolean; residual?: ArrayLike<number> } = {},
): { y: Float64Array; sum: Float64Array } {
  const sum = new Float64Array(rows * dim); // [rows, dim]
  for (let i = 0; i < rows * dim; i++) sum[i] = x[i] + (opts.residual ? opts.residual[i] : 0);
  const y = new Float64Array(rows * dim); // [rows, dim]
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += sum[r * dim + i] ** 2;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = sum[r * dim + i] * inv * (opts.plusOne ? 1 + w[i] : w[i]);
  }
  return { y, sum };
}

/** Where the heads of one rope operand sit in its rows (as RopeOperand in src/kernels/rope.ts). */
export interface RopeLayout {
  heads: number;
  headStride: number;
  tokenStride?: number;
  offset?: number;
}

/**
 * Rotary embedding in place on x [T][tokenStride], token t at positions[t]: for each head and pair
 * i < rotaryDim / 2, angle = positions[t] · invFreq[i] and (a, b) → (a cos − b sin, b cos + a sin)
 * · attentionFactor, where (a, b) are values (i, i + rotaryDim/2) (rotate-half) or (2i, 2i+1)
 * (interleaved) counted from `offset` within the head.
 * The angle is rounded to f32 as the kernel (and HF's f32 `inv_freq @ position_ids`) computes it,
 * unless `exactAngles`: at position 3000 an f32 angle is off by up to ~1e-4 rad, an error of the
 * format, not of the kernel.
 */
export function ropeRef(
  x: Float64Array,
  T: number,
  layout: RopeLayout,
  positions: ArrayLike<number>,
  invFreq: ArrayLike<number>,
  rotaryDim: number,
  interleaved: boolean,
  attentionFactor = 1,
  exactAngles = false,
): void {
  const { heads, headStride } = layout;
  const tokenStride = layout.tokenStride ?? heads * headStride;
  const offset = layout.offset ?? 0;
  const half = rotaryDim / 2;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < heads; h++) {
      const base = t * tokenStride + h * headStride + offset;
      for (let i = 0; i < half; i++) {
        const exact = positions[t] * invFreq[i];
        const angle = exactAngles ? exact : Math.fround(exact);
        const cos = Math.cos(angle) * attentionFactor;
        const sin = Math.sin(angle) * attentionFactor;
        const ia = interleaved ? base + 2 * i : base + i;
        const ib = interleaved ? base + 2 * i + 1 : base + i + half;
        const a = x[ia];
        const b = x[ib];
        x[ia] = a * cos - b * sin;
        x[ib] = b * cos + a * sin;
      }
    }
  }
}

/** out [T, dim] = table[ids[t]] * scale; table [vocab, dim]; an id >= vocab gives a row of NaN. */
export function embeddingRef(
  ids: ArrayLike<number>,
  table: ArrayLike<number>,
  vocab: number,
  dim: number,
  scale = 1,
): Float64Array {
  const out = new Float64Array(ids.length * dim); // [T, dim]
  for (let t = 0; t < ids.length; t++) {
    for (let d = 0; d < dim; d++) out[t * dim + d] = ids[t] < vocab ? table[ids[t] * dim + d] * scale : NaN;
  }
  return out;
}

export const silu = (x: number): number => x / (1 + Math.exp(-x));
/** GELU, tanh approximation (torch gelu(approximate='tanh')). */
export const geluTanh = (x: number): number =>
  0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

/** out [T, I] = act(gate) * up; gate, up [T, I]. */
export function gatedActivationRef(
  gate: ArrayLike<number>,
  up: ArrayLike<number>,
  activation: 'silu' | 'geluTanh',
): Float64Array {
  const act = activation === 'silu' ? silu : geluTanh;
  const out = new Float64Array(gate.length); // [T, I]
  for (let i = 0; i < gate.length; i++) out[i] = act(gate[i]) * up[i];
  return out;
}
