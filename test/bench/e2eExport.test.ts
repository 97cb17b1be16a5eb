/**
 * The e2e bench's model exports (bench/e2e/models.ts), checked in Node without a GPU:
 *
 * - ONNX (bench/e2e/onnxExport.ts), both graphs (GroupQueryAttention and plain MatMul / Softmax), of
 *   a tiny random llama with GQA (4 query heads, 2 KV heads), tied and untied LM head: the graph has
 *   the layout transformers.js loads (input_ids, attention_mask, position_ids,
 *   past_key_values.N.key/value → logits, present.N.key/value, with Optimum's symbolic dims), and
 *   onnxruntime-web's wasm backend runs it over a prompt from an empty cache and then one decode step
 *   on the returned present K/V, each within rel L2 1e-4 of the float64 reference forward.
 * - GGUF, as the bench writes it (src/model/ggufWriter.ts with the folder's name, F32 and Q8_0), of
 *   the shipped kjv-gqa, read back by the project's reader (parseGguf, ggufModelFiles): the same
 *   config, tokenizer and name, F32 tensors bit for bit (so the same reference logits) and Q8_0
 *   tensors within Q8_0's rounding.
 */
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-web';
import onnxProto from 'onnx-proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportDecoderOnnx } from '../../bench/e2e/onnxExport';
import { parseConfig } from '../../src/model/config';
import { expectedTensors } from '../../src/model/expectedTensors';
import { ggufModelFiles } from '../../src/model/ggufModelFiles';
import { writeModelGguf } from '../../src/model/ggufWriter';
import { referenceForward } from '../../src/reference/transformer';
import { parseGguf } from '../../src/sources/gguf';
import { folderSource, loadModelFiles, type ModelFiles } from '../../src/sources/modelSource';
import { readTensorF32 } from '../../src/sources/safetensors';
import { tokenizerFromModelFiles } from '../../src/tokenizer/tokenizer';
import { configs, lookup, randomIds, randomWeights, writeCheckpoint } from '../helpers/tinyModels';

const KJV = fileURLToPath(new URL('../../models/kjv-gqa', import.meta.url));

function relL2(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / den);
}

const sameBits = (a: Float32Array | Float64Array, b: Float32Array | Float64Array) =>
  a.length === b.length &&
  Buffer.compare(
    new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
    new Uint8Array(b.buffer, b.byteOffset, b.byteLength),
  ) === 0;

const valuesOf = (files: ModelFiles, name: string) => {
  const t = files.tensor(name);
  if (!t) throw new Error(`no tensor ${name}`);
  return readTensorF32(t.file, name);
};

const i64 = (values: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);

beforeAll(() => {
  // One thread: no worker_threads start-up in a seconds-long test on shared cores.
  ort.env.wasm.numThreads = 1;
});

describe('e2e ONNX export', () => {
  for (const tied of [false, true])
    for (const attention of ['gqa', 'plain'] as const) {
      const title =
        `tiny llama (4 heads, 2 KV heads, ${tied ? 'tied' : 'untied'} LM head), ${attention} attention: ` +
        'transformers.js layout; prompt and a decode step on ORT wasm match the float64 reference';
      it(title, async () => {
        const config = { ...configs.llama, tie_word_embeddings: tied, max_position_embeddings: 64 };
        const spec = parseConfig(config);
        const weights = randomWeights(spec);
        if (tied) weights.delete('lm_head.weight');
        const files = await loadModelFiles(folderSource(writeCheckpoint(config, weights)));
        const bytes = exportDecoderOnnx(files, { attention });

        // The graph's interface, as transformers.js reads it from the session metadata.
        const { numLayers: L, numKvHeads: Hkv, headDim: D, vocabSize: V } = spec;
        const model = onnxProto.onnx.ModelProto.decode(bytes);
        const dims = (vi: onnxProto.onnx.IValueInfoProto) =>
          vi.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
        const io = (list: onnxProto.onnx.IValueInfoProto[]) => list.map((vi) => [vi.name, dims(vi)]);
        const perLayer = (f: (l: number) => [string, (string | number)[]][]) =>
          Array.from({ length: L }, (_, l) => f(l)).flat();
        expect(io(model.graph!.input!)).toEqual([
          ['input_ids', ['batch_size', 'sequence_length']],
          ['attention_mask', ['batch_size', 'total_sequence_length']],
          ['position_ids', ['batch_size', 'sequence_length']],
          ...perLayer((l) => [
            [`past_key_values.${l}.key`, ['batch_size', Hkv, 'past_sequence_length', D]],
            [`past_key_values.${l}.value`, ['batch_size', Hkv, 'past_sequence_length', D]],
          ]),
        ]);
        expect(io(model.graph!.output!)).toEqual([
          ['logits', ['batch_size', 'sequence_length', V]],
          ...perLayer((l) => [
            [`present.${l}.key`, ['batch_size', Hkv, 'total_sequence_length', D]],
            [`present.${l}.value`, ['batch_size', Hkv, 'total_sequence_length', D]],
          ]),
        ]);
        const ops = new Set(model.graph!.node!.map((n) => n.opType));
        expect(ops.has('GroupQueryAttention')).toBe(attention === 'gqa');
        expect(ops.has('Softmax')).toBe(attention === 'plain');
        expect(ops.has(tied ? 'Gemm' : 'MatMul')).toBe(true);

        const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
        try {
          const T = 7;
          const ids = randomIds(T + 1, V);
          const want = referenceForward(spec, lookup(weights), ids); // [T + 1, V]
          // Prompt: ids[0..T), an empty cache.
          const empty = new ort.Tensor('float32', new Float32Array(0), [1, Hkv, 0, D]);
          const feeds: Record<string, ort.Tensor> = {
            input_ids: i64(ids.slice(0, T), [1, T]),
            attention_mask: i64(Array(T).fill(1), [1, T]),
            position_ids: i64([...Array(T).keys()], [1, T]),
          };
          for (let l = 0; l < L; l++) {
            feeds[`past_key_values.${l}.key`] = empty;
            feeds[`past_key_values.${l}.value`] = empty;
          }
          const prompt = await session.run(feeds);
          expect(prompt.logits.dims).toEqual([1, T, V]);
          expect(prompt['present.0.key'].dims).toEqual([1, Hkv, T, D]);
          const promptErr = relL2(prompt.logits.data as Float32Array, want.subarray(0, T * V));
          expect(promptErr).toBeLessThan(1e-4);

          // One decode step: ids[T] at position T, the prompt's present K/V as the past.
          const step: Record<string, ort.Tensor> = {
            input_ids: i64([ids[T]], [1, 1]),
            attention_mask: i64(Array(T + 1).fill(1), [1, T + 1]),
            position_ids: i64([T], [1, 1]),
          };
          for (let l = 0; l < L; l++) {
            step[`past_key_values.${l}.key`] = prompt[`present.${l}.key`];
            step[`past_key_values.${l}.value`] = prompt[`present.${l}.value`];
          }
          const decoded = await session.run(step);
          expect(decoded.logits.dims).toEqual([1, 1, V]);
          expect(decoded[`present.${L - 1}.value`].dims).toEqual([1, Hkv, T + 1, D]);
          const decodeErr = relL2(decoded.logits.data as Float32Array, want.subarray(T * V));
          expect(decodeErr).toBeLessThan(1e-4);
        } finally {
          await session.release();
        }
      });
    }

  it('refuses what it does not export (attention biases), naming the checkpoint', async () => {
    const config = { ...configs.qwen2 };
    const weights = randomWeights(parseConfig(config));
    const files = await loadModelFiles(folderSource(writeCheckpoint(config, weights)));
    expect(() => exportDecoderOnnx(files)).toThrow('the ONNX export here covers plain llama checkpoints only');
  });
});

describe('e2e GGUF export (the bench writes it, the project reads it back)', () => {
  for (const type of ['F32', 'Q8_0'] as const) {
    const tensors = type === 'F32' ? 'bit for bit' : 'within Q8_0 rounding';
    it(`kjv-gqa ${type}: the same config, tokenizer and name; tensors ${tensors}`, async () => {
      const folder = await loadModelFiles(folderSource(KJV), { needTokenizer: true });
      const bytes = writeModelGguf(folder, { type, name: 'kjv-gqa' });
      const gguf = parseGguf(bytes, `model-${type}.gguf`);
      expect(gguf.metadata.get('general.name')?.value).toBe('kjv-gqa');
      const files = ggufModelFiles({ ...folder, config: null, tokenizer: null, gguf });
      const spec = parseConfig(folder.config, 'folder');
      expect(parseConfig(files.config, 'gguf')).toEqual(spec);
      const text = 'In the beginning God created';
      expect(tokenizerFromModelFiles(files).encode(text)).toEqual(tokenizerFromModelFiles(folder).encode(text));
      for (const [name, shape] of expectedTensors(spec)) {
        if (spec.tieWordEmbeddings && name === 'lm_head.weight') continue;
        const got = valuesOf(files, name);
        const want = valuesOf(folder, name);
        expect(files.tensor(name)!.info.shape, name).toEqual(shape);
        // (bytes compared: vitest's toEqual walks a million-element array for seconds)
        if (type === 'F32') expect(sameBits(got, want), name).toBe(true);
        // Q8_0: 8-bit values over a per-32 scale; norms and other 1-D tensors stay F32.
        else expect(relL2(got, want), name).toBeLessThan(shape.length === 1 ? 1e-7 : 1e-2);
      }
      if (type === 'F32') {
        const ids = randomIds(5, spec.vocabSize);
        const logits = referenceForward(spec, (n) => valuesOf(files, n), ids);
        expect(
          sameBits(
            logits,
            referenceForward(spec, (n) => valuesOf(folder, n), ids),
          ),
        ).toBe(true);
      }
    });
  }
});
