/**
 * Weights split by rows across buffers (src/kernels/rowShards.ts): the GEMM and the embedding
 * gather and the GEMV over a W of 3 shards with a ragged last one (rows 64 + 64 + 37) at f32 / f16 /
 * q8 / q4 (block formats in packed rows, src/kernels/quantLayout.ts), against the float64 twin on
 * fresh random inputs with the output poisoned first; a shipped model whose embedding (its tied LM
 * head too) passes a simulated small binding limit gives the logits of the unsplit model, in
 * prefill and decode; a model that does not fit the device's memory is refused with the numbers.
 * Weights take the same packed-f16 path on both adapters
 * (sources.ts weightWord4Format), so what SwiftShader compiles slowly (each GEMM pipeline ~20 s,
 * a model's 30-50 s) runs on lavapipe only.
 */
import { describe, expect, it } from 'vitest';
import { readBuffer, readFloat32, STORAGE, UNIFORM, uploadBuffer, writeBuffer } from '../../src/gpu/buffers';
import type { GpuContext } from '../../src/gpu/context';
import { OutOfMemoryError, ShapeError } from '../../src/gpu/errors';
import { embeddingParams } from '../../src/kernels/embedding';
import { createEmbedding } from '../../src/kernels/embeddingQuant';
import { createMatmul, createMatvec, matrixBufferBytes, quantMatmulParams } from '../../src/kernels/matmulQuant';
import { packedRowBytes, packQuantRows, unpackQuantRows } from '../../src/kernels/quantLayout';
import { createShardRange, type RowShard } from '../../src/kernels/rowShards';
import { StepRunner } from '../../src/engine/stepRunner';
import { parseConfig } from '../../src/model/config';
import { runtimeTensors } from '../../src/model/expectedTensors';
import { Transformer } from '../../src/model/transformer';
import { uploadWeights, weightBuffers, weightBytesAt } from '../../src/model/weights';
import { relL2 } from '../../src/reference/attention';
import { referenceMatmul } from '../../src/reference/matmul';
import { dequantizeBlocks, referenceQuantizeQ4_0, referenceQuantizeQ8_0 } from '../../src/reference/quant';
import { f16BitsToF32, f32ArrayToF16 } from '../../src/sources/halfFloat';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { dispatch, expectedShaderF16, gpu, poisoned, randomArray, rng } from './harness';

const swiftshader = expectedShaderF16() === false;

type Dtype = 'f32' | 'f16' | 'q8' | 'q4';

/** ctx with some limits lowered (a phone's 128 MiB binding, shrunk to a tiny model's size). */
function withLimits(ctx: GpuContext, lower: Partial<Record<keyof GPUSupportedLimits, number>>): GpuContext {
  const real = ctx.limits;
  const limits = new Proxy(real, {
    get: (target, key) => (key in lower ? lower[key as keyof GPUSupportedLimits] : target[key as keyof typeof target]),
  });
  return Object.create(ctx, { limits: { get: () => limits } }) as GpuContext;
}

/** W [N, K] as stored on the GPU (row after row; block formats in packed rows) and the values the kernels see. */
function storedMatrix(dtype: Dtype, values: Float32Array, N: number, K: number) {
  if (dtype === 'f32') return { bytes: new Uint8Array(values.buffer.slice(0)), seen: values, rowLength: 4 * K };
  if (dtype === 'f16') {
    const bits = f32ArrayToF16(values);
    return { bytes: new Uint8Array(bits.buffer), seen: Float32Array.from(bits, f16BitsToF32), rowLength: 2 * K };
  }
  const blocks = dtype === 'q8' ? referenceQuantizeQ8_0(values) : referenceQuantizeQ4_0(values);
  const bytes = packQuantRows(dtype, blocks, N, K);
  return { bytes, seen: dequantizeBlocks(dtype, blocks, N * K), rowLength: packedRowBytes(dtype, K) };
}

const SHARD_ROWS = [64, 64, 37]; // ragged last shard
const N = SHARD_ROWS.reduce((a, b) => a + b);
const K = 96; // 3 blocks of 32

/** Uploads each shard's rows into its own buffer (padded as a whole buffer of that many rows) with its range. */
async function uploadShards(ctx: GpuContext, dtype: Dtype, bytes: Uint8Array, rowLength: number): Promise<RowShard[]> {
  const shards: RowShard[] = [];
  let firstRow = 0;
  for (const rows of SHARD_ROWS) {
    const data = new Uint8Array(matrixBufferBytes(dtype, rows, K));
    data.set(bytes.subarray(firstRow * rowLength, (firstRow + rows) * rowLength));
    const buffer = await uploadBuffer(ctx, `test.w.rows${firstRow}`, data);
    shards.push({ buffer, firstRow, rows, range: await createShardRange(ctx, 'test.range', firstRow, rows) });
    firstRow += rows;
  }
  return shards;
}

const destroyShards = (shards: RowShard[]) => shards.forEach((s) => [s.buffer, s.range].forEach((b) => b.destroy()));

describe.each(['f32', 'f16', 'q8', 'q4'] as const)('kernels over a %s W in 3 row shards', (dtype) => {
  for (const kernel of ['matmul', 'matvec'] as const) {
    const Ms = kernel === 'matmul' ? [1, 17, 33] : [1, 3, 8];
    const skip = kernel === 'matmul' && swiftshader;
    it.skipIf(skip)(`${kernel}, bias, N ${N} = ${SHARD_ROWS.join(' + ')}, K ${K}, M ${Ms.join('/')}`, async () => {
      const ctx = await gpu();
      const seed = (Math.random() * 2 ** 32) >>> 0;
      const rand = rng(seed);
      const spec = { N, K, weightDtype: dtype, bias: true };
      const op = kernel === 'matmul' ? await createMatmul(ctx, spec) : await createMatvec(ctx, spec);
      const w = storedMatrix(dtype, randomArray(N * K, rand, 0.5), N, K);
      const shards = await uploadShards(ctx, dtype, w.bytes, w.rowLength);
      // The bias is stored as the plain kernels' W (f32 or f16); f16 for the quantized ones.
      const biasValues = randomArray(N, rand);
      const biasBits = f32ArrayToF16(biasValues);
      const biasF32 = dtype === 'f32';
      const bias = await uploadBuffer(ctx, 'test.bias', biasF32 ? biasValues : biasBits);
      const biasSeen = biasF32 ? biasValues : Float32Array.from(biasBits, f16BitsToF32);
      const maxM = Math.max(...Ms);
      const x = await ctx.createBuffer('test.x', maxM * K * 4, STORAGE);
      const y = await ctx.createBuffer('test.y', maxM * N * 4, STORAGE);
      const params = await ctx.createBuffer('test.params', 16, UNIFORM);
      const bind = op.bind({ x, w: shards, bias, y, params });
      const [got, want]: number[][] = [[], []];
      for (const M of Ms) {
        const xValues = randomArray(M * K, rand);
        writeBuffer(ctx, x, xValues);
        writeBuffer(ctx, y, new Uint8Array(y.size).fill(0xff)); // NaN
        writeBuffer(ctx, params, quantMatmulParams(spec, M));
        await dispatch(`${kernel} shards test`, (pass) => op.encode(pass, bind, M));
        got.push(...(await readFloat32(ctx, y, M * N)));
        want.push(...referenceMatmul({ x: xValues, w: w.seen, bias: biasSeen, M, N, K }));
      }
      expect(got.every(Number.isFinite), `seed ${seed}: every output written`).toBe(true);
      expect(relL2(got, want), `seed ${seed}`).toBeLessThan(dtype === 'f32' || dtype === 'f16' ? 1e-5 : 1e-4);
      destroyShards(shards);
      for (const b of [bias, x, y, params]) b.destroy();
      op.destroy();
    });
  }

  it(`embedding, vocab ${N} = ${SHARD_ROWS.join(' + ')}, dim ${K}: ids of every shard, one past: NaN`, async () => {
    const ctx = await gpu();
    const seed = (Math.random() * 2 ** 32) >>> 0;
    const rand = rng(seed);
    const scale = 1.5;
    const table = storedMatrix(dtype, randomArray(N * K, rand), N, K);
    const shards = await uploadShards(ctx, dtype, table.bytes, table.rowLength);
    const idList = [70, 0, 164, 63, 64, 128, N, 127, 70, 5]; // every shard, both sides of each edge, one past
    const ids = await uploadBuffer(ctx, 'test.ids', new Uint32Array(idList));
    const out = await poisoned('test.out', idList.length * K * 4);
    const params = await uploadBuffer(ctx, 'test.params', embeddingParams(idList.length), UNIFORM);
    const op = await createEmbedding(ctx, { vocab: N, dim: K, tableDtype: dtype, scale });
    const bind = op.bind({ ids, table: shards, out, params });
    await dispatch('embedding shards test', (pass) => op.encode(pass, bind, idList.length));
    const got = await readFloat32(ctx, out, idList.length * K);
    const [gotValid, want]: number[][] = [[], []];
    idList.forEach((id, t) => {
      const row = got.subarray(t * K, (t + 1) * K);
      if (id >= N) {
        expect(row.every(Number.isNaN), `token ${t}: NaN`).toBe(true);
        return;
      }
      gotValid.push(...row);
      for (let d = 0; d < K; d++) want.push(table.seen[id * K + d] * scale);
    });
    expect(gotValid.every(Number.isFinite), `seed ${seed}: every row written`).toBe(true);
    expect(relL2(gotValid, want), `seed ${seed}`).toBeLessThan(1e-6);
    destroyShards(shards);
    for (const b of [ids, out, params]) b.destroy();
    op.destroy();
  });
});

describe('row shards: binding checks', () => {
  it('refuses shards that do not cover the rows in order, and a single W past the binding limit', async () => {
    const ctx = await gpu();
    const spec = { N, K, weightDtype: 'f16' as const, bias: false };
    const op = await createMatvec(ctx, spec);
    const w = storedMatrix('f16', randomArray(N * K, rng(1)), N, K);
    const shards = await uploadShards(ctx, 'f16', w.bytes, w.rowLength);
    const x = await ctx.createBuffer('test.x', K * 4, STORAGE);
    const y = await ctx.createBuffer('test.y', N * 4, STORAGE);
    const params = await ctx.createBuffer('test.params', 16, UNIFORM);
    expect(() => op.bind({ x, w: [shards[0], shards[2]], y, params })).toThrow(
      /shard 1 holds rows 128\.\.164; expected from 64/,
    );
    expect(() => op.bind({ x, w: shards.slice(0, 2), y, params })).toThrow(
      /shards hold 128 rows, the kernel reads 165/,
    );
    const whole = await uploadBuffer(ctx, 'test.whole', w.bytes);
    const small = withLimits(ctx, { maxStorageBufferBindingSize: 16 * 1024 }); // W is 31680 bytes
    const opSmall = await createMatvec(small, spec);
    expect(() => opSmall.bind({ x, w: whole, y, params })).toThrow(ShapeError);
    expect(() => opSmall.bind({ x, w: whole, y, params })).toThrow(
      /over this adapter's maxStorageBufferBindingSize \(16384\); bind it as row shards/,
    );
    opSmall.bind({ x, w: shards, y, params }); // each shard fits
    destroyShards(shards);
    for (const b of [x, y, params, whole]) b.destroy();
    op.destroy();
    opSmall.destroy();
  });
});

const KJV = 'models/kjv-gqa'; // vocab 2048, hidden 128, tied embeddings: the LM head reads the same table

describe('a model whose embedding passes one binding', () => {
  it.each(['f16', 'q8'] as const)('%s: uploads it as row shards, byte for byte the unsplit tensor', async (dtype) => {
    const ctx = await gpu();
    const files = await loadModelFiles(folderSource(KJV));
    const spec = parseConfig(files.config);
    const name = 'model.embed_tokens.weight';
    const all = runtimeTensors(spec); // the whole model (uploadWeights refuses a checkpoint's extra tensors)
    const wholeModel = await uploadWeights(ctx, files, all, { dtype });
    const limit = 96 * 1024; // f16: 512 KiB -> 6 shards; q8: 272 KiB -> 3
    const splitModel = await uploadWeights(withLimits(ctx, { maxStorageBufferBindingSize: limit }), files, all, {
      dtype,
    });
    const [whole, split] = [wholeModel.get(name)!, splitModel.get(name)!];
    expect(split.shards!.length).toBeGreaterThanOrEqual(3);
    expect(whole.shards).toBeUndefined();
    const rowLength = matrixBufferBytes(split.dtype, 1, spec.hiddenSize);
    const wholeBytes = new Uint8Array(await readBuffer(ctx, whole.buffer, spec.vocabSize * rowLength));
    for (const s of split.shards!) {
      expect(s.buffer.size).toBeLessThanOrEqual(limit);
      const bytes = new Uint8Array(await readBuffer(ctx, s.buffer, s.rows * rowLength));
      const want = wholeBytes.subarray(s.firstRow * rowLength, (s.firstRow + s.rows) * rowLength);
      expect(Buffer.from(bytes).equals(Buffer.from(want)), `rows ${s.firstRow}..`).toBe(true);
    }
    for (const w of [...wholeModel.values(), ...splitModel.values()]) weightBuffers(w).forEach((b) => b.destroy());
  });

  it("a GGUF's own blocks (uploadWeights' native tensors, q5_0 here) split by rows byte for byte", async () => {
    const ctx = await gpu();
    const files = await loadModelFiles(folderSource(KJV));
    const spec = parseConfig(files.config);
    const name = 'model.embed_tokens.weight';
    const rowLength = (spec.hiddenSize / 32) * 22; // 4 Q5_0 blocks of 22 bytes
    const packedLength = packedRowBytes('q5_0', spec.hiddenSize); // 64 + 16 + 16
    const blocks = new Uint8Array(spec.vocabSize * rowLength).map(() => Math.floor(Math.random() * 256));
    const native = (n: string) => (n === name ? { dtype: 'q5_0' as const, bytes: blocks } : null);
    const limit = 72 * 1024; // 176 KiB of blocks, 192 KiB in packed rows (96 bytes a row) -> 3 shards
    const small = withLimits(ctx, { maxStorageBufferBindingSize: limit });
    const model = await uploadWeights(small, files, runtimeTensors(spec), { dtype: 'q8', native });
    const w = model.get(name)!;
    expect(w.dtype).toBe('q5_0');
    expect(w.shards!.length).toBe(3);
    for (const s of w.shards!) {
      expect(s.buffer.size).toBeLessThanOrEqual(limit);
      const packed = new Uint8Array(await readBuffer(ctx, s.buffer, s.rows * packedLength));
      const bytes = unpackQuantRows('q5_0', packed, s.rows, spec.hiddenSize); // the file's blocks again
      const want = blocks.subarray(s.firstRow * rowLength, (s.firstRow + s.rows) * rowLength);
      expect(Buffer.from(bytes).equals(Buffer.from(want)), `rows ${s.firstRow}..`).toBe(true);
    }
    for (const x of model.values()) weightBuffers(x).forEach((b) => b.destroy());
  });

  it.skipIf(swiftshader).each(['f16', 'q8'] as const)(
    '%s: prefill and decode logits equal the unsplit model (tied LM head over the shards)',
    async (dtype) => {
      const ctx = await gpu();
      const files = await loadModelFiles(folderSource(KJV));
      const opts = {
        weightDtype: dtype,
        kvDtype: 'f16',
        pageSize: 4,
        maxTokens: 16,
        maxSeqs: 2,
        maxLogitRows: 12,
      } as const;
      const ids = Array.from({ length: 12 }, (_, i) => (i * 677 + 5) % 2048); // ids in every shard
      const logits = async (c: GpuContext) => {
        const model = await Transformer.load(c, files, opts);
        const runner = await StepRunner.create(model);
        try {
          return { prefill: await runner.logitsForIds(ids, ids.length), decode: await runner.logitsForIds(ids, 1) };
        } finally {
          runner.destroy();
          model.destroy();
        }
      };
      const want = await logits(ctx);
      // 96 KiB: the embedding (f16 512 KiB, q8 272 KiB) splits; the MLP weights (96 KiB at f16) just fit.
      const got = await logits(withLimits(ctx, { maxStorageBufferBindingSize: 96 * 1024 }));
      for (const mode of ['prefill', 'decode'] as const) {
        expect(got[mode].every(Number.isFinite), mode).toBe(true);
        expect(relL2(got[mode], want[mode]), mode).toBeLessThan(1e-6);
      }
    },
  );
});

describe('a model that does not fit the device memory', () => {
  it('is refused naming the tensor, the bytes it asked for, the model total and what was allocated', async () => {
    const ctx = await gpu();
    const files = await loadModelFiles(folderSource(KJV));
    const expected = runtimeTensors(parseConfig(files.config));
    const total = weightBytesAt(expected, 'f16');
    // A device with room for half the weights: its createBuffer fails as an out-of-memory one does.
    let used = 0;
    const createBuffer = async (label: string, size: number, usage: GPUBufferUsageFlags) => {
      if (usage === STORAGE && used + size > total / 2) {
        throw new OutOfMemoryError(`${label}: out of GPU memory allocating ${size} bytes`);
      }
      const b = await ctx.createBuffer(label, size, usage);
      used += b.size;
      return b;
    };
    const small = Object.create(ctx, { createBuffer: { value: createBuffer } }) as GpuContext;
    const err = await uploadWeights(small, files, expected, { dtype: 'f16' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutOfMemoryError);
    const pattern = new RegExp(
      'tensor "([^"]+)" \\[[\\d,]+\\] f16: (\\d+) bytes could not be allocated .*' +
        "the model's weights take (\\d+) bytes, (\\d+) were allocated before it: the model does not fit",
    );
    const m = pattern.exec((err as Error).message);
    expect(m, (err as Error).message).not.toBeNull();
    const [, tensor, asked, modelBytes, allocated] = m!;
    expect(expected.has(tensor)).toBe(true);
    expect(Number(modelBytes)).toBe(total);
    expect(Number(allocated) + Number(asked)).toBeGreaterThan(total / 2);
    expect(Number(allocated)).toBeLessThanOrEqual(total / 2);
  });
});
