/**
 * The MLA kernels of a forward step against their float64 twins (src/reference/headOps.ts) on
 * fresh random inputs, outputs poisoned (NaN) first: headMatmul in both directions (absorbed
 * query with q_pe copied through; head outputs from the v rows), rmsNorm over the latent row; f32 and f16 (packed)
 * weights, the shapes of the tiny test models, of models/kjv-mla and of DeepSeek-V2-Lite's head.
 * Tolerances (rel L2): < 1e-5 against the twin on the weights the GPU sees (f32 sums).
 */
import { describe, expect, it } from 'vitest';
import { readFloat32, UNIFORM, uploadBuffer } from '../../src/gpu/buffers';
import { ShapeError } from '../../src/gpu/errors';
import type { WeightDtype } from '../../src/gpu/dtype';
import { HeadMatmul, type HeadMatmulSpec } from '../../src/kernels/headMatmul';
import { RmsNorm } from '../../src/kernels/rmsNorm';
import { headMatmulRef, latentNormRef } from '../../src/reference/headOps';
import { relL2 } from '../../src/reference/attention';
import { f16BitsToF32, f32ArrayToF16 } from '../../src/sources/halfFloat';
import { dispatch, gpu, poisoned, randomArray, rng } from './harness';

const seed = () => (Math.random() * 2 ** 32) >>> 0;

function weightData(
  values: Float32Array,
  dtype: WeightDtype,
): { data: Float32Array | Uint16Array; seen: Float32Array } {
  if (dtype === 'f32') return { data: values, seen: values };
  const bits = f32ArrayToF16(values);
  return { data: bits, seen: Float32Array.from(bits, f16BitsToF32) };
}

// (H, C, N, R, V): tiny deepseek, tiny deepseek_v3, models/kjv-mla, DeepSeek-V2-Lite (C 512, N 128, R 64, V 128).
const shapes = [
  { H: 4, C: 16, N: 8, R: 4, V: 6 },
  { H: 4, C: 12, N: 4, R: 8, V: 8 },
  { H: 8, C: 32, N: 16, R: 16, V: 16 },
  { H: 16, C: 512, N: 128, R: 64, V: 128 },
];

describe('headMatmul (MLA absorption)', () => {
  // Each shape is a pipeline compile (seconds on lavapipe): both dtypes on the tiny shape only.
  const dtypes: WeightDtype[][] = [['f32', 'f16'], ['f16'], ['f32'], ['f16']];
  const cases = shapes.flatMap((s, i) =>
    dtypes[i].flatMap((weightDtype) => (['query', 'output'] as const).map((kind) => ({ ...s, weightDtype, kind }))),
  );
  it.each(cases)(
    '$kind, H $H C $C N $N R $R V $V, $weightDtype weights',
    async ({ H, C, N, R, V, weightDtype, kind }) => {
      const ctx = await gpu();
      const rand = rng(seed());
      const T = 3;
      const spec: HeadMatmulSpec =
        kind === 'query'
          ? { heads: H, wCols: C, wHeadRows: N + V, wRow0: 0, transposed: true, in: N, copy: R, weightDtype }
          : { heads: H, wCols: C, wHeadRows: N + V, wRow0: N, transposed: false, in: C, weightDtype };
      const op = await HeadMatmul.create(ctx, spec);
      const xStride = kind === 'query' ? N + R : C;
      const x = randomArray(T * H * xStride, rand, 2);
      const w = weightData(randomArray(H * (N + V) * C, rand), weightDtype);
      const yStride = kind === 'query' ? C + R : V;
      expect(op.yStride).toBe(yStride);
      const xBuf = await uploadBuffer(ctx, 'test.x', x);
      const wBuf = await uploadBuffer(ctx, 'test.w', w.data);
      const yBuf = await poisoned('test.y', T * H * yStride * 4);
      const params = await uploadBuffer(ctx, 'test.params', new Uint32Array([T, 0, 0, 0]), UNIFORM);
      const bind = op.bind({ x: xBuf, w: wBuf, y: yBuf, params });
      await dispatch('headMatmul test', (pass) => op.encode(pass, bind, T));
      const y = await readFloat32(ctx, yBuf, T * H * yStride);
      expect(relL2(y, headMatmulRef(x, T, w.seen, spec))).toBeLessThan(1e-5);
      for (const b of [xBuf, wBuf, yBuf, params]) b.destroy();
    },
  );

  it('rejects shapes it cannot run', async () => {
    const ctx = await gpu();
    const base: HeadMatmulSpec = {
      heads: 2,
      wCols: 8,
      wHeadRows: 6,
      wRow0: 2,
      transposed: false,
      in: 8,
      weightDtype: 'f32',
    };
    await expect(HeadMatmul.create(ctx, { ...base, wCols: 6, in: 6 })).rejects.toThrow(/multiple of 4/);
    await expect(HeadMatmul.create(ctx, { ...base, in: 4 })).rejects.toThrow(/in = wCols/);
    await expect(HeadMatmul.create(ctx, { ...base, transposed: true, in: 5, wRow0: 2 })).rejects.toThrow(ShapeError);
  });
});

describe('rmsNorm with a row stride (MLA latent cache row)', () => {
  const cases = [
    { dim: 16, stride: 20, weightDtype: 'f16' as const },
    { dim: 32, stride: 48, weightDtype: 'f32' as const },
    { dim: 512, stride: 576, weightDtype: 'f16' as const },
    { dim: 7, stride: 7, weightDtype: 'f32' as const },
  ];
  it.each(cases)('dim $dim of $stride, $weightDtype weights', async ({ dim, stride, weightDtype }) => {
    const ctx = await gpu();
    const rand = rng(seed());
    const rows = 5;
    const eps = 1e-6;
    const op = await RmsNorm.create(ctx, { dim, stride, eps, weightDtype });
    const x = randomArray(rows * stride, rand, 2);
    const w = weightData(randomArray(dim, rand), weightDtype);
    const xBuf = await uploadBuffer(ctx, 'test.x', x);
    const wBuf = await uploadBuffer(ctx, 'test.w', w.data);
    const yBuf = await poisoned('test.y', rows * stride * 4);
    const params = await uploadBuffer(ctx, 'test.params', new Uint32Array([rows, 0, 0, 0]), UNIFORM);
    const bind = op.bind({ x: xBuf, weight: wBuf, y: yBuf, params });
    await dispatch('latentNorm test', (pass) => op.encode(pass, bind, rows));
    const y = await readFloat32(ctx, yBuf, rows * stride);
    expect(relL2(y, latentNormRef(x, rows, dim, stride, w.seen, eps))).toBeLessThan(1e-5);
    for (const b of [xBuf, wBuf, yBuf, params]) b.destroy();
    op.destroy();
  });
});
