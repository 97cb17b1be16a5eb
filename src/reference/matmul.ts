/**
 * Float64 reference for matmul and matvec: Y [M, N] = X [M, K] · Wᵀ (+ bias [N]), W [N, K] in
 * Hugging Face layout (out_features x in_features). Pass the weight values the GPU sees (for f16
 * weights: the f16-rounded values) to compare at f32 tolerance.
 *   y[m * N + n] = bias[n] + Σ_k x[m * K + k] · w[n * K + k]
 *   e.g. M 2, N 3, K 4: y[1 * 3 + 2] = bias[2] + Σ_k x[4 + k] · w[8 + k]
 */
export interface ReferenceMatmulArgs {
  x: ArrayLike<number>; // [M, K]
  w: ArrayLike<number>; // [N, K]
  bias?: ArrayLike<number>; // [N]
  M: number;
  N: number;
  K: number;
}

export function referenceMatmul(a: ReferenceMatmulArgs): Float64Array {
  const { M, N, K, x, w, bias } = a;
  if (x.length < M * K || w.length < N * K || (bias && bias.length < N)) {
    throw new RangeError(`referenceMatmul: operands too short for M ${M}, N ${N}, K ${K}`);
  }
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      y[m * N + n] = s;
    }
  }
  return y;
}
