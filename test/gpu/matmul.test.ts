/**
 * matmul (prefill GEMM) and matvec (decode GEMV) against the float64 twin, on fresh random inputs
 * with the output poisoned (NaN) first: odd shapes (every M 1, 3, 17, 33 for matmul and 1, 3, 8 for
 * matvec; N 1, 7, 80, 257 and K 4, 64, 100, 576 each paired twice), f32 and f16 weights, with and
 * without bias. f32 weights: rel L2 < 1e-5. f16 weights: < 1e-5 against the twin on the
 * f16-rounded weights (the kernel's arithmetic is f32) and < 5e-3 against the unrounded ones.
 */
import { describe, expect, it } from 'vitest';
import { readFloat32, STORAGE, UNIFORM, uploadBuffer, writeBuffer } from '../../src/gpu/buffers';
import { ShapeError } from '../../src/gpu/errors';
import { MatMul, matmulParams, type MatmulSpec } from '../../src/kernels/matmul';
import type { WeightDtype } from '../../src/model/weights';
import { MatVec } from '../../src/kernels/matvec';
import { referenceMatmul } from '../../src/reference/matmul';
import { relL2 } from '../../src/reference/attention';
import { f16BitsToF32, f32ArrayToF16 } from '../../src/sources/halfFloat';
import { gpu, randomArray, rng } from './harness';

/** (N, K) pairs: every N meets two Ks and every K two Ns. */
const SHAPES: [number, number][] = [
  [1, 4],
  [7, 64],
  [80, 100],
  [257, 576],
  [1, 576],
  [7, 100],
  [80, 4],
  [257, 64],
];
const GEMM_M = [1, 3, 17, 33];
const GEMV_M = [1, 3, 8];

/** Host data as stored on the GPU, and the values the GPU sees. */
function weightData(
  values: Float32Array,
  dtype: WeightDtype,
): { data: Float32Array | Uint16Array; seen: Float32Array } {
  if (dtype === 'f32') return { data: values, seen: values };
  const bits = f32ArrayToF16(values);
  return { data: bits, seen: Float32Array.from(bits, f16BitsToF32) };
}

async function run(kernel: 'matmul' | 'matvec', spec: MatmulSpec, Ms: number[], seed: number) {
  const ctx = await gpu();
  const rand = rng(seed);
  const { N, K } = spec;
  const op = kernel === 'matmul' ? await MatMul.create(ctx, spec) : await MatVec.create(ctx, spec);
  const wValues = randomArray(N * K, rand, 0.5);
  const bValues = randomArray(N, rand);
  const w = weightData(wValues, spec.weightDtype);
  const b = weightData(bValues, spec.weightDtype);
  const maxM = Math.max(...Ms);
  const wBuf = await uploadBuffer(ctx, 'test.w', w.data);
  const bBuf = spec.bias ? await uploadBuffer(ctx, 'test.bias', b.data) : undefined;
  const xBuf = await ctx.createBuffer('test.x', maxM * K * 4, STORAGE);
  const yBuf = await ctx.createBuffer('test.y', maxM * N * 4, STORAGE);
  const params = await ctx.createBuffer('test.params', 16, UNIFORM);
  const bind = op.bind({ x: xBuf, w: wBuf, bias: bBuf, y: yBuf, params });
  // rel L2 over the outputs of every M together (a single output, M 1 and N 1, can be near zero).
  const got: number[] = [];
  const want: number[] = [];
  const wantUnrounded: number[] = [];
  for (const M of Ms) {
    const x = randomArray(M * K, rand);
    writeBuffer(ctx, xBuf, x);
    writeBuffer(ctx, yBuf, new Uint8Array(yBuf.size).fill(0xff)); // NaN
    writeBuffer(ctx, params, matmulParams(spec, M));
    await ctx.validated(`${kernel} test`, () => {
      const enc = ctx.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      op.encode(pass, bind, M);
      pass.end();
      ctx.device.queue.submit([enc.finish()]);
    });
    const y = await readFloat32(ctx, yBuf, M * N);
    const ref = referenceMatmul({ x, w: w.seen, bias: spec.bias ? b.seen : undefined, M, N, K });
    const refUnrounded = referenceMatmul({ x, w: wValues, bias: spec.bias ? bValues : undefined, M, N, K });
    got.push(...y);
    want.push(...ref);
    wantUnrounded.push(...refUnrounded);
  }
  for (const buf of [wBuf, bBuf, xBuf, yBuf, params]) buf?.destroy();
  op.destroy();
  return { err: relL2(got, want), errUnrounded: relL2(got, wantUnrounded) };
}

describe.each(['f32', 'f16'] as const)('matmul and matvec, %s weights', (weightDtype) => {
  for (const [N, K] of SHAPES) {
    for (const bias of [false, true]) {
      const spec: MatmulSpec = { N, K, weightDtype, bias };
      const tag = `N ${N}, K ${K}${bias ? ', bias' : ''}`;
      it(`matmul ${tag}, M ${GEMM_M.join('/')}`, async () => {
        const r = await run('matmul', spec, GEMM_M, (Math.random() * 2 ** 32) >>> 0);
        expect(r.err).toBeLessThan(1e-5);
        if (weightDtype === 'f16') expect(r.errUnrounded).toBeLessThan(5e-3);
      });
      it(`matvec ${tag}, M ${GEMV_M.join('/')}`, async () => {
        const r = await run('matvec', spec, GEMV_M, (Math.random() * 2 ** 32) >>> 0);
        expect(r.err).toBeLessThan(1e-5);
        if (weightDtype === 'f16') expect(r.errUnrounded).toBeLessThan(5e-3);
      });
    }
  }
});

describe('matmul / matvec shape guards', () => {
  it('rejects K not a multiple of 4, a missing or unexpected bias, short buffers and M past 8 for matvec', async () => {
    const ctx = await gpu();
    await expect(MatMul.create(ctx, { N: 8, K: 6, weightDtype: 'f32', bias: false })).rejects.toThrow(ShapeError);
    await expect(MatVec.create(ctx, { N: 0, K: 8, weightDtype: 'f16', bias: false })).rejects.toThrow(ShapeError);
    const spec: MatmulSpec = { N: 8, K: 8, weightDtype: 'f16', bias: true };
    const mv = await MatVec.create(ctx, spec);
    const buf = (bytes: number) => ctx.createBuffer('test.guard', bytes, STORAGE);
    const [x, w, bias, y, small] = await Promise.all([buf(32), buf(128), buf(16), buf(32), buf(16)]);
    const params = await ctx.createBuffer('test.params', 16, UNIFORM);
    expect(() => mv.bind({ x, w, y, params })).toThrow(/bias/);
    expect(() => mv.bind({ x, w: small, bias, y, params })).toThrow(ShapeError); // W [8, 8] f16 needs 128 bytes
    const bind = mv.bind({ x, w, bias, y, params });
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    expect(() => mv.encode(pass, bind, 9)).toThrow(ShapeError);
    pass.end();
    enc.finish();
    for (const b of [x, w, bias, y, small, params]) b.destroy();
    mv.destroy();
  });
});
