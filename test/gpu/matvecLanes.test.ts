/**
 * The decode GEMVs' reductions (matvec.wgsl, matvecQuant.wgsl; src/kernels/matvec.ts matvecLanes):
 * every lane layout the kernels are compiled for, on the adapter the project selected, against the
 * float64 twin on fresh random inputs with the output poisoned (NaN) first:
 *   - the adapter's own choice (software adapters: f16 in subgroup strips, 64 lanes, a strip of 4
 *     rows per subgroup; the block formats one subgroup per workgroup; no barrier either way);
 *   - f16 in workgroup strips (software adapters: one subgroup per workgroup, matvec.wgsl v2), and in
 *     subgroup strips at 16 lanes (several workgroups, the last with strips past N);
 *   - 64 lanes with subgroups (what GPUs run: subgroupAdd, then a tree over 64 / SG_SIZE entries);
 *   - the plain tree without subgroups, at the adapter's size and at 64 lanes.
 * The layouts with barriers take fewer formats and the 64-lane ones run on lavapipe only (LAYOUTS).
 * Weights f16, q8, q4 and q6_K at ragged shapes: N 33 (a last strip of one row), K 96 (q8 / q4: 3
 * blocks a row, so every other row starts at a byte 2 mod 4 and takes the other half-word path), K
 * 100 (f16), K 256 (q6_K); M 1 (the batch-1 loop), 3 and 8 (the token loop). rel L2 < 1e-5.
 */
import { describe, expect, it } from 'vitest';
import { readFloat32, STORAGE, UNIFORM, uploadBuffer, writeBuffer } from '../../src/gpu/buffers';
import type { MatrixDtype } from '../../src/gpu/dtype';
import { createMatvec, quantMatmulParams } from '../../src/kernels/matmulQuant';
import { packQuantRows } from '../../src/kernels/quantLayout';
import { matvecLanes, type MatvecOptions } from '../../src/kernels/matvec';
import { relL2 } from '../../src/reference/attention';
import { referenceMatmul } from '../../src/reference/matmul';
import { dequantizeBlocks } from '../../src/reference/quant';
import { f16BitsToF32, f32ArrayToF16 } from '../../src/sources/halfFloat';
import { expectedShaderF16, gpu, randomArray, rng } from './harness';
import { randomBlocks } from './quantBlocks';

const CASES: [MatrixDtype, number, number][] = [
  ['f16', 33, 100],
  ['q8', 33, 96],
  ['q4', 33, 96],
  ['q6_K', 33, 256],
];
/**
 * Layouts with barriers (NUM_SG > 1) compile slowly on lavapipe for the block formats (35 s for q4,
 * 130 s for q6_K on a loaded 2-core machine; f16 under a second), so those layouts take f16 and,
 * for the GPUs' 64-lane path, q4; the 64-lane layouts run on lavapipe only.
 */
const MS = [1, 3, 8];
const pick = (...dtypes: MatrixDtype[]) => CASES.filter(([d]) => dtypes.includes(d));
const onLavapipe = expectedShaderF16() !== false;
const LAYOUTS: [string, MatvecOptions, typeof CASES][] = [
  ['adapter default', {}, CASES],
  ['plain', { subgroups: false }, pick('f16')],
  ['workgroup strips', { strips: 'workgroup' }, pick('f16')],
  ['subgroup strips, 16 lanes', { strips: 'subgroup', workgroupSize: 16 }, pick('f16')],
  ...(onLavapipe
    ? ([
        ['64 lanes, subgroups', { workgroupSize: 64 }, pick('f16', 'q4')],
        ['plain, 64 lanes', { subgroups: false, workgroupSize: 64 }, pick('f16')],
      ] as [string, MatvecOptions, typeof CASES][])
    : []),
];

async function run(weightDtype: MatrixDtype, N: number, K: number, opts: MatvecOptions, seed: number) {
  const ctx = await gpu();
  const rand = rng(seed);
  const spec = { N, K, weightDtype, bias: true };
  const op = await createMatvec(ctx, spec, opts);
  let data: Uint16Array | Uint8Array;
  let seen: ArrayLike<number>;
  if (weightDtype === 'f16') {
    data = f32ArrayToF16(randomArray(N * K, rand, 0.5));
    seen = Float32Array.from(data, f16BitsToF32);
  } else if (weightDtype === 'f32') {
    throw new Error('f32 is covered by matmul.test.ts');
  } else {
    const blocks = randomBlocks(weightDtype, N, K, rand);
    data = packQuantRows(weightDtype, blocks, N, K);
    seen = dequantizeBlocks(weightDtype, blocks, N * K);
  }
  // Bias as each kernel stores it: f16 (Word4 for f16 weights, f16 pairs for the block formats).
  const biasBits = f32ArrayToF16(randomArray(N + 3, rand));
  const biasSeen = Float32Array.from(biasBits, f16BitsToF32);
  const w = await uploadBuffer(ctx, 'test.w', data);
  const bias = await uploadBuffer(ctx, 'test.bias', biasBits);
  const x = await ctx.createBuffer('test.x', 8 * K * 4, STORAGE);
  const y = await ctx.createBuffer('test.y', 8 * N * 4, STORAGE);
  const params = await ctx.createBuffer('test.params', 16, UNIFORM);
  const bind = op.bind({ x, w, bias, y, params });
  const got: number[] = [];
  const want: number[] = [];
  for (const M of MS) {
    const xValues = randomArray(M * K, rand);
    writeBuffer(ctx, x, xValues);
    writeBuffer(ctx, y, new Uint8Array(y.size).fill(0xff)); // NaN
    writeBuffer(ctx, params, quantMatmulParams(spec, M));
    await ctx.validated('matvecLanes test', () => {
      const enc = ctx.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      op.encode(pass, bind, M);
      pass.end();
      ctx.device.queue.submit([enc.finish()]);
    });
    got.push(...(await readFloat32(ctx, y, M * N)));
    want.push(...referenceMatmul({ x: xValues, w: seen, bias: biasSeen, M, N, K }));
  }
  for (const b of [w, bias, x, y, params]) b.destroy();
  op.destroy();
  return relL2(got, want);
}

describe.each(LAYOUTS)('decode GEMV lanes: %s', (_name, opts, cases) => {
  it('is the layout asked for', async () => {
    const lanes = matvecLanes(await gpu(), opts);
    if (opts.subgroups === false) expect(lanes.sgSize).toBe(1);
    if (opts.workgroupSize) expect(lanes.wg).toBe(opts.workgroupSize);
    expect(lanes.numSg * lanes.sgSize).toBe(lanes.wg);
    if (opts.strips === 'subgroup' && lanes.sgSize > 1) expect(lanes.stripLanes).toBe(lanes.sgSize);
    if (opts.strips === 'workgroup') expect(lanes.stripLanes).toBe(lanes.wg);
  });
  for (const [dtype, N, K] of cases) {
    it(`${dtype} N ${N}, K ${K}, bias, M ${MS.join('/')}`, async () => {
      const seed = (Math.random() * 2 ** 32) >>> 0;
      expect(await run(dtype, N, K, opts, seed), `seed ${seed}`).toBeLessThan(1e-5);
    });
  }
});
