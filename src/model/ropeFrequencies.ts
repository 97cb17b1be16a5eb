/**
 * RoPE frequencies, from a ModelSpec's `rope` alone (theta, rotary width, scaling):
 *   ropeInvFrequencies(spec)  per-pair inverse frequencies after linear / llama3 / yarn scaling
 *   ropeAttentionFactor(spec) yarn's multiplier on cos and sin (1 otherwise)
 *   yarnGetMscale(scale, m)   DeepSeek's mscale, which config parsing uses to resolve the above
 * The host computes these tables once per model (src/kernels/rope.ts uploads them; the float64
 * reference uses the same numbers). This module imports nothing, so config.ts can use it.
 */

export type RopeScaling =
  | { type: 'none' }
  /** Positions divided by factor (HF: inv_freq / factor). */
  | { type: 'linear'; factor: number }
  /** Llama 3.1: low frequencies / factor, high ones kept, a smooth ramp between. */
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    }
  /**
   * YaRN: frequencies blended between extrapolated and interpolated by a ramp over
   * [low, high] dims found from betaFast / betaSlow rotations; cos and sin scaled by
   * attentionFactor (already resolved from mscale / mscale_all_dim, see ropeAttentionFactor).
   */
  | {
      type: 'yarn';
      factor: number;
      originalMaxPositionEmbeddings: number;
      betaFast: number;
      betaSlow: number;
      mscale: number;
      mscaleAllDim: number;
      attentionFactor: number;
    }
  /**
   * LongRoPE (Phi-3.5 / Phi-4-mini, MiniCPM3): pair i's frequency divided by shortFactor[i] at
   * positions below originalMaxPositionEmbeddings and by longFactor[i] from there on; cos and sin
   * scaled by attentionFactor at every position.
   */
  | {
      type: 'longrope';
      shortFactor: number[];
      longFactor: number[];
      originalMaxPositionEmbeddings: number;
      attentionFactor: number;
    };

/** What RoPE needs of a ModelSpec (ModelSpec['rope']). */
export interface RopeSpec {
  theta: number;
  /** Dims of each head that are rotated (MLA: qkRopeHeadDim). */
  rotaryDim: number;
  /** true: pairs (2i, 2i+1) (DeepSeek); false: rotate-half pairs (i, i + rotaryDim/2) (llama). */
  interleaved: boolean;
  scaling: RopeScaling;
}

/** DeepSeek's yarn_get_mscale: 0.1 * mscale * ln(scale) + 1 for scale > 1, else 1. */
export function yarnGetMscale(scale: number, mscale = 1): number {
  return scale <= 1 ? 1 : 0.1 * mscale * Math.log(scale) + 1;
}

/**
 * Inverse frequency of each rotary pair i in [0, rotaryDim/2), as HF computes it:
 *   base:   1 / theta^(2i / rotaryDim)
 *   linear: base / factor
 *   llama3: wavelen = 2π / base; wavelen < orig/high → base; wavelen > orig/low → base / factor;
 *           between: (1 - s) * base/factor + s * base with s = (orig/wavelen - low) / (high - low)
 *   yarn:   ramp r_i = clamp((i - lo) / (hi - lo), 0, 1) over the dims [lo, hi] found from
 *           betaFast / betaSlow rotations at the original length; base * (1 - r) + base/factor * r
 * Worked example: rotaryDim 64, theta 10000 → pair 0 has 1 (wavelength 2π), pair 31 has 10000^(-62/64).
 */
export function ropeInvFrequencies(spec: { rope: RopeSpec }, table: 'short' | 'long' = 'short'): Float64Array {
  const { theta, rotaryDim: dim, scaling } = spec.rope;
  const half = dim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / dim);
  switch (scaling.type) {
    case 'none':
      return inv;
    case 'longrope': {
      const factors = table === 'long' ? scaling.longFactor : scaling.shortFactor;
      return inv.map((f, i) => f / factors[i]);
    }
    case 'linear':
      return inv.map((f) => f / scaling.factor);
    case 'llama3': {
      const { factor, lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositionEmbeddings: old } = scaling;
      const lowFreqWavelen = old / lo;
      const highFreqWavelen = old / hi;
      return inv.map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < highFreqWavelen) return f;
        if (wavelen > lowFreqWavelen) return f / factor;
        const s = (old / wavelen - lo) / (hi - lo);
        return (1 - s) * (f / factor) + s * f;
      });
    }
    case 'yarn': {
      const { factor, betaFast, betaSlow, originalMaxPositionEmbeddings: orig } = scaling;
      // yarn_find_correction_dim: the dim whose wavelength makes numRotations turns over orig.
      const correctionDim = (rot: number) => (dim * Math.log(orig / (rot * 2 * Math.PI))) / (2 * Math.log(theta));
      const low = Math.max(Math.floor(correctionDim(betaFast)), 0);
      let high = Math.min(Math.ceil(correctionDim(betaSlow)), dim - 1);
      if (low === high) high += 0.001; // as yarn_linear_ramp_mask: avoid dividing by zero
      return inv.map((f, i) => {
        const ramp = Math.min(Math.max((i - low) / (high - low), 0), 1);
        const extrapolation = 1 - ramp; // weight of the unscaled frequency
        return (f / factor) * (1 - extrapolation) + f * extrapolation;
      });
    }
  }
}

/** Multiplier on cos and sin (YaRN's and LongRoPE's attention factor); 1 for every other scaling. */
export function ropeAttentionFactor(spec: { rope: RopeSpec }): number {
  const s = spec.rope.scaling;
  return s.type === 'yarn' || s.type === 'longrope' ? s.attentionFactor : 1;
}

/**
 * First position that rotates with the long table (LongRoPE: original_max_position_embeddings),
 * or null when there is one table. HF switches the whole forward call to the long factors once
 * the sequence is longer than the original context; choosing per position instead keeps every
 * cached key the same whichever way (prefill, chunked, decode) it was computed, and equals HF for
 * every sequence that fits the original context.
 * e.g. Phi-3.5 (original 4096): positions 0..4095 short factors, 4096.. long.
 */
export function ropeLongFrom(spec: { rope: RopeSpec }): number | null {
  const s = spec.rope.scaling;
  return s.type === 'longrope' ? s.originalMaxPositionEmbeddings : null;
}

/**
 * The frequency table a kernel reads: [rotaryDim / 2] f32, or for LongRoPE [2][rotaryDim / 2]
 * (short table, then long), as f32.
 */
export function ropeFrequencyTable(spec: { rope: RopeSpec }): Float32Array {
  const short = ropeInvFrequencies(spec, 'short');
  if (ropeLongFrom(spec) === null) return Float32Array.from(short);
  const long = ropeInvFrequencies(spec, 'long');
  const t = new Float32Array(2 * short.length);
  t.set(short);
  t.set(long, short.length);
  return t;
}
