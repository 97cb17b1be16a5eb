/**
 * embeddingQuant (the gather over GGUF blocks) against the float64 twin: rows of the dequantized
 * table (src/reference/quant.ts) times the scale, for every format, with an id past the vocabulary
 * giving a row of NaN; the output poisoned first.
 */
import { describe, expect, it } from 'vitest';
import { readFloat32, UNIFORM, uploadBuffer } from '../../src/gpu/buffers';
import { embeddingParams } from '../../src/kernels/embedding';
import { createEmbedding } from '../../src/kernels/embeddingQuant';
import { quantBufferBytes } from '../../src/kernels/matmulQuant';
import { packQuantRows } from '../../src/kernels/quantLayout';
import { relL2 } from '../../src/reference/attention';
import { dequantizeBlocks, GGUF_BLOCKS } from '../../src/reference/quant';
import { randomBlocks } from './quantBlocks';
import { dispatch, gpu, poisoned, rng } from './harness';

describe.each(['q8', 'q4', 'q5_0', 'q4_K', 'q6_K'] as const)('embeddingQuant, %s', (dtype) => {
  it('gathers dequantized rows times the scale; an id past the vocabulary gives NaN', async () => {
    const ctx = await gpu();
    const vocab = 13;
    const dim = GGUF_BLOCKS[dtype].blockValues === 256 ? 512 : 96;
    const scale = 1.5;
    const blocks = randomBlocks(dtype, vocab, dim, rng(99));
    const padded = packQuantRows(dtype, blocks, vocab, dim); // as uploadWeights stores them
    expect(padded.length).toBe(quantBufferBytes(dtype, vocab, dim));
    const table = await uploadBuffer(ctx, 'test.table', padded);
    const tableValues = dequantizeBlocks(dtype, blocks, vocab * dim);
    const idList = [3, 0, 12, 7, 13, 3]; // 13: past the vocabulary
    const ids = await uploadBuffer(ctx, 'test.ids', new Uint32Array(idList));
    const out = await poisoned('test.out', idList.length * dim * 4);
    const params = await uploadBuffer(ctx, 'test.params', embeddingParams(idList.length), UNIFORM);
    const op = await createEmbedding(ctx, { vocab, dim, tableDtype: dtype, scale });
    const bind = op.bind({ ids, table, out, params });
    await dispatch('embeddingQuant test', (pass) => op.encode(pass, bind, idList.length));
    const got = await readFloat32(ctx, out, idList.length * dim);
    const want: number[] = [];
    const gotValid: number[] = [];
    idList.forEach((id, t) => {
      const row = got.subarray(t * dim, (t + 1) * dim);
      if (id >= vocab) {
        expect(row.every(Number.isNaN), `token ${t}`).toBe(true);
        return;
      }
      gotValid.push(...row);
      for (let d = 0; d < dim; d++) want.push(tableValues[id * dim + d] * scale);
    });
    expect(relL2(gotValid, want)).toBeLessThan(1e-6);
    for (const b of [table, ids, out, params]) b.destroy();
    op.destroy();
  });
});
