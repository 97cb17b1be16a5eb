/**
 * DeepSeek2 GGUF files from newer llama.cpp converters store each layer's kv_b_proj as two tensors
 * (DeepseekV2Model.modify_tensors): attn_k_b = k_b [H, C, N] (the per-head W_UK, transposed) and
 * attn_v_b = v_b [H, V, C]. The loader merges them back into kv_b_proj [H (N + V), C], so a file
 * in that layout is the same model as one with attn_kv_b: same spec, same tensors, same logits.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/model/config';
import { expectedTensors } from '../../src/model/expectedTensors';
import { ggufModelFiles } from '../../src/model/ggufModelFiles';
import { mergeKvB, splitKvB } from '../../src/model/ggufTensors';
import { referenceForward } from '../../src/reference/transformer';
import { f16BitsToF32, f32ToF16Bits } from '../../src/sources/halfFloat';
import { folderSource, loadModelFiles, type ModelFiles } from '../../src/sources/modelSource';
import { readTensorF32 } from '../../src/sources/safetensors';
import { writeDeepseek2Gguf } from '../helpers/ggufModels';
import { configs, lookup, randomIds, randomWeights } from '../helpers/tinyModels';

/** The converter's split spelled out with torch's view / split / transpose index maths. */
function converterSplit(kvb: Float32Array, H: number, C: number, N: number, V: number) {
  // kv_b.view(H, N + V, C); k_b = [:, :N, :] -> transpose(1, 2) -> [H, C, N]; v_b = [:, N:, :] -> [H, V, C]
  const at = (h: number, r: number, c: number) => kvb[(h * (N + V) + r) * C + c];
  const kb = new Float32Array(H * C * N);
  const vb = new Float32Array(H * V * C);
  for (let h = 0; h < H; h++)
    for (let c = 0; c < C; c++) {
      for (let n = 0; n < N; n++) kb[h * C * N + c * N + n] = at(h, n, c);
      for (let v = 0; v < V; v++) vb[h * V * C + v * C + c] = at(h, N + v, c);
    }
  return { kb, vb };
}

describe('mergeKvB / splitKvB', () => {
  it('worked example: H 1, C 2, N 1, V 1', () => {
    const d = { heads: 1, kvLoraRank: 2, nope: 1, v: 1 };
    expect([...mergeKvB(new Float32Array([1, 2]), new Float32Array([3, 4]), d)]).toEqual([1, 2, 3, 4]);
  });

  it('split is the converter split and merge undoes it (H 3, C 5, N 4, V 2)', () => {
    const [H, C, N, V] = [3, 5, 4, 2];
    const d = { heads: H, kvLoraRank: C, nope: N, v: V };
    const kvb = Float32Array.from({ length: H * (N + V) * C }, () => Math.random() - 0.5);
    const want = converterSplit(kvb, H, C, N, V);
    const got = splitKvB(kvb, d);
    expect(got.kb).toEqual(want.kb);
    expect(got.vb).toEqual(want.vb);
    expect(mergeKvB(got.kb, got.vb, d)).toEqual(kvb);
    expect(() => mergeKvB(got.kb.subarray(1), got.vb, d)).toThrow('k_b has 59 values (want 60)');
  });
});

describe('DeepSeek2 GGUF with attn_k_b / attn_v_b', () => {
  // The tiny dense DeepSeek-V2 of the family tests, without RoPE scaling (not what this is about).
  const config = { ...configs.deepseek, rope_scaling: undefined };
  const spec = parseConfig(config);
  const mla = spec.mla!;
  const d = { heads: spec.numHeads, kvLoraRank: mla.kvLoraRank, nope: mla.qkNopeHeadDim, v: mla.vHeadDim };
  // f16-exact values, so an F16 k_b / v_b holds the same numbers as the F32 kv_b.
  const weights = randomWeights(spec);
  for (const w of weights.values()) w.set(w.map((x) => f16BitsToF32(f32ToF16Bits(x))));
  const shapes = expectedTensors(spec);

  const filesOf = async (split: 'F32' | 'F16' | null, kbShape?: 'untransposed') =>
    ggufModelFiles(await loadModelFiles(folderSource(writeDeepseek2Gguf(spec, weights, split, kbShape))));

  const valuesOf = (files: ModelFiles, name: string) => {
    const t = files.tensor(name);
    if (!t) throw new Error(`no tensor ${name}`);
    return readTensorF32(t.file, name);
  };

  it('reads as the same model as the attn_kv_b file: spec, tensors, reference logits', async () => {
    const old = await filesOf(null);
    const ids = randomIds(6, spec.vocabSize);
    const want = referenceForward(spec, (n) => valuesOf(old, n), ids);
    expect(want).toEqual(referenceForward(spec, lookup(weights), ids)); // the old layout is the checkpoint
    for (const type of ['F32', 'F16'] as const) {
      const files = await filesOf(type);
      expect(parseConfig(files.config), type).toEqual(spec);
      expect(new Set(files.tensorNames()), type).toEqual(new Set(shapes.keys()));
      for (const [name, shape] of shapes) {
        expect(files.tensor(name)!.info.shape, `${type} ${name}`).toEqual(shape);
        expect(valuesOf(files, name), `${type} ${name}`).toEqual(weights.get(name));
      }
      expect(
        referenceForward(spec, (n) => valuesOf(files, n), ids),
        type,
      ).toEqual(want);
    }
  });

  it('a k_b whose shape disagrees with the config is refused, naming the tensor', async () => {
    const files = await filesOf('F32', 'untransposed'); // k_b [H, N, C]: the same values count
    expect(() => files.tensor('model.layers.0.self_attn.kv_b_proj.weight')).toThrow(
      `tensor "blk.0.attn_k_b.weight" has shape [${d.heads},${d.nope},${d.kvLoraRank}]; the MLA config implies ` +
        `[${d.heads},${d.kvLoraRank},${d.nope}]`,
    );
  });
});
