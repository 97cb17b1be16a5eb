/**
 * matvecQuant (decode GEMV) and matmulQuant (prefill GEMM) over GGUF blocks, against the float64
 * twin of the same blocks (src/reference/quant.ts dequantizes them, referenceMatmul multiplies; the
 * GPU gets them in packed rows, src/kernels/quantLayout.ts), on
 * fresh random inputs with the output poisoned first: rel L2 < 1e-4.
 * Blocks: q8 / q4 / q5_0 from the reference quantizers on random values; q4_K / q6_K random bytes
 * with their f16 scales set to finite values. Ragged shapes: K an odd number of 32-blocks (96, 160,
 * 544; K-quants 256, 512, 768: their rows are whole 256-value super-blocks), N 1, 7, 33, 257 (not
 * multiples of 4), M 1/3/17/33 (GEMM) and 1/3/8 (GEMV), with and without an f16 bias.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readFloat32, STORAGE, UNIFORM, uploadBuffer, writeBuffer } from '../../src/gpu/buffers';
import { ShapeError } from '../../src/gpu/errors';
import type { QuantDtype } from '../../src/gpu/dtype';
import {
  quantBufferBytes,
  quantMatmulParams,
  QuantMatMul,
  QuantMatVec,
  quantWeightBytes,
  type QuantMatmulSpec,
} from '../../src/kernels/matmulQuant';
import { packQuantRows } from '../../src/kernels/quantLayout';
import { referenceMatmul } from '../../src/reference/matmul';
import { relL2 } from '../../src/reference/attention';
import { dequantizeBlocks, GGUF_BLOCKS } from '../../src/reference/quant';
import { f16BitsToF32, f32ArrayToF16 } from '../../src/sources/halfFloat';
import { readGgufTensors } from '../reference/ggufTensors';
import { randomBlocks } from './quantBlocks';
import { expectedShaderF16, gpu, randomArray, rng } from './harness';

const SHAPES_32: [number, number][] = [
  [1, 32],
  [7, 96],
  [33, 544],
  [257, 160],
];
const SHAPES_256: [number, number][] = [
  [1, 256],
  [7, 768],
  [33, 512],
  [257, 256],
];
const GEMM_M = [1, 3, 17, 33];
const GEMV_M = [1, 3, 8];

async function run(kernel: 'matmul' | 'matvec', spec: QuantMatmulSpec, Ms: number[], seed: number, given?: Uint8Array) {
  const ctx = await gpu();
  const rand = rng(seed);
  const { N, K, weightDtype } = spec;
  const op = kernel === 'matmul' ? await QuantMatMul.create(ctx, spec) : await QuantMatVec.create(ctx, spec);
  const blocks = given ?? randomBlocks(weightDtype, N, K, rand);
  const wSeen = dequantizeBlocks(weightDtype, blocks, N * K);
  const padded = packQuantRows(weightDtype, blocks, N, K); // as uploadWeights stores them
  expect(padded.length).toBe(quantBufferBytes(weightDtype, N, K));
  const biasBits = f32ArrayToF16(randomArray(N, rand));
  const biasSeen = Float64Array.from(biasBits, f16BitsToF32);
  const maxM = Math.max(...Ms);
  const w = await uploadBuffer(ctx, 'test.w', padded);
  const bias = spec.bias ? await uploadBuffer(ctx, 'test.bias', biasBits) : undefined;
  const x = await ctx.createBuffer('test.x', maxM * K * 4, STORAGE);
  const y = await ctx.createBuffer('test.y', maxM * N * 4, STORAGE);
  const params = await ctx.createBuffer('test.params', 16, UNIFORM);
  const bind = op.bind({ x, w, bias, y, params });
  const got: number[] = [];
  const want: number[] = [];
  for (const M of Ms) {
    const xValues = randomArray(M * K, rand);
    writeBuffer(ctx, x, xValues);
    writeBuffer(ctx, y, new Uint8Array(y.size).fill(0xff)); // NaN
    writeBuffer(ctx, params, quantMatmulParams(spec, M));
    await ctx.validated(`${kernel}Quant test`, () => {
      const enc = ctx.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      op.encode(pass, bind, M);
      pass.end();
      ctx.device.queue.submit([enc.finish()]);
    });
    got.push(...(await readFloat32(ctx, y, M * N)));
    want.push(...referenceMatmul({ x: xValues, w: wSeen, bias: spec.bias ? biasSeen : undefined, M, N, K }));
  }
  for (const b of [w, bias, x, y, params]) b?.destroy();
  op.destroy();
  return relL2(got, want);
}

it('runs on the f16 path the project selected', async () => {
  const want = expectedShaderF16();
  if (want !== undefined) expect((await gpu()).features.shaderF16).toBe(want);
});

describe.each(['q8', 'q4', 'q5_0', 'q4_K', 'q6_K'] as const)('matmulQuant and matvecQuant, %s', (weightDtype) => {
  const shapes = GGUF_BLOCKS[weightDtype].blockValues === 256 ? SHAPES_256 : SHAPES_32;
  shapes.forEach(([N, K], i) => {
    const bias = i % 2 === 1; // half the shapes with a bias
    const spec: QuantMatmulSpec = { N, K, weightDtype, bias };
    const tag = `N ${N}, K ${K}${bias ? ', bias' : ''}`;
    it(`matmul ${tag}, M ${GEMM_M.join('/')}`, async () => {
      const seed = (Math.random() * 2 ** 32) >>> 0;
      expect(await run('matmul', spec, GEMM_M, seed), `seed ${seed}`).toBeLessThan(1e-4);
    });
    it(`matvec ${tag}, M ${GEMV_M.join('/')}`, async () => {
      const seed = (Math.random() * 2 ** 32) >>> 0;
      expect(await run('matvec', spec, GEMV_M, seed), `seed ${seed}`).toBeLessThan(1e-4);
    });
  });
});

const GGUF_DIR = new URL('../../../shared/realworld/gguf/', import.meta.url).pathname;

describe.skipIf(!existsSync(`${GGUF_DIR}kjv-gqa-Q4_0.gguf`))('real blocks written by llama.cpp (kjv-gqa)', () => {
  // [file, tensor, dtype]: GGUF dims are [K (row length), N].
  const CASES: [string, string, QuantDtype][] = [
    ['kjv-gqa-Q4_0.gguf', 'blk.1.ffn_up.weight', 'q4'],
    ['kjv-gqa-Q4_K_M.gguf', 'blk.0.ffn_down.weight', 'q5_0'],
    ['kjv-gqa-Q8_0.gguf', 'token_embd.weight', 'q8'],
  ];
  for (const [file, name, dtype] of CASES) {
    it(`${file} ${name} (${dtype}): GEMV and GEMM`, async () => {
      const t = readGgufTensors(`${GGUF_DIR}${file}`).get(name)!;
      expect(t.ggmlType).toBe(GGUF_BLOCKS[dtype].ggmlType);
      const [K, N] = t.dims;
      const spec: QuantMatmulSpec = { N, K, weightDtype: dtype, bias: false };
      expect(await run('matvec', spec, [1, 5], 1, t.data.subarray(0, quantWeightBytes(dtype, N, K)))).toBeLessThan(
        1e-4,
      );
      expect(await run('matmul', spec, [9], 2, t.data.subarray(0, quantWeightBytes(dtype, N, K)))).toBeLessThan(1e-4);
    });
  }
});

describe('quant kernel guards', () => {
  it('rejects K that is not whole blocks, a plain dtype and M past 8 for the GEMV', async () => {
    const ctx = await gpu();
    await expect(QuantMatVec.create(ctx, { N: 4, K: 48, weightDtype: 'q8', bias: false })).rejects.toThrow(ShapeError);
    await expect(QuantMatMul.create(ctx, { N: 4, K: 288, weightDtype: 'q4_K', bias: false })).rejects.toThrow(
      /multiple of 256/,
    );
    await expect(QuantMatMul.create(ctx, { N: 4, K: 32, weightDtype: 'f16' as never, bias: false })).rejects.toThrow(
      ShapeError,
    );
    const mv = await QuantMatVec.create(ctx, { N: 4, K: 32, weightDtype: 'q4', bias: false });
    const buf = (bytes: number) => ctx.createBuffer('test.guard', bytes, STORAGE);
    const [x, w, y, short] = await Promise.all([
      buf(32 * 4 * 9),
      buf(quantBufferBytes('q4', 4, 32)),
      buf(16 * 9),
      buf(16),
    ]);
    const params = await ctx.createBuffer('test.params', 16, UNIFORM);
    expect(() => mv.bind({ x, w: short, y, params })).toThrow(ShapeError);
    const bind = mv.bind({ x, w, y, params });
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    expect(() => mv.encode(pass, bind, 9)).toThrow(ShapeError);
    pass.end();
    enc.finish();
    for (const b of [x, w, y, short, params]) b.destroy();
    mv.destroy();
  });
});
