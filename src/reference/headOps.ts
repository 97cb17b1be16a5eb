/**
 * Float64 twins of the MLA kernels of a forward step (shaders/model/headMatmul.wgsl, and
 * rmsNorm.wgsl with a row stride: the latent norm), with the same arguments and layouts as their
 * wrappers, for tests.
 */
import type { HeadMatmulSpec } from '../kernels/headMatmul';

/**
 * Per (token, head) matmul against the head's block of W [heads * wHeadRows][wCols], then `copy`
 * values of x passed through. x [T][heads][xStride] → y [T][heads][out + copy].
 */
export function headMatmulRef(
  x: ArrayLike<number>,
  T: number,
  w: ArrayLike<number>,
  spec: Omit<HeadMatmulSpec, 'weightDtype'>,
): Float64Array {
  const { heads, wCols, wHeadRows, wRow0, transposed } = spec;
  const IN = spec.in;
  const copy = spec.copy ?? 0;
  const xStride = spec.xStride ?? IN + copy;
  const out = transposed ? wCols : wHeadRows - wRow0;
  const yStride = out + copy;
  const y = new Float64Array(T * heads * yStride); // [T][heads][out + copy]
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < heads; h++) {
      const xb = (t * heads + h) * xStride;
      const yb = (t * heads + h) * yStride;
      const row0 = h * wHeadRows + wRow0;
      for (let j = 0; j < out; j++) {
        let s = 0;
        for (let i = 0; i < IN; i++)
          s += (transposed ? w[(row0 + i) * wCols + j] : w[(row0 + j) * wCols + i]) * x[xb + i];
        y[yb + j] = s;
      }
      for (let c = 0; c < copy; c++) y[yb + out + c] = x[xb + IN + c];
    }
  }
  return y;
}

/**
 * RMSNorm of the first `dim` values of each row of width `stride`, the rest copied.
 * x [rows][stride] → y [rows][stride].
 */
export function latentNormRef(
  x: ArrayLike<number>,
  rows: number,
  dim: number,
  stride: number,
  w: ArrayLike<number>,
  eps: number,
): Float64Array {
  const y = new Float64Array(rows * stride);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * stride + i] ** 2;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < stride; i++) y[r * stride + i] = i < dim ? x[r * stride + i] * inv * w[i] : x[r * stride + i];
  }
  return y;
}
