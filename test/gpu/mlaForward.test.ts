/**
 * The GPU forward pass of DeepSeek MLA models (absorbed form: latent cache rows, absorbed query,
 * per-head outputs from o_lat) on tiny random checkpoints, against the float64 reference's
 * decompressed form: prefill, decode (split-KV) and chunked prefill, f32 (rel L2 < 1e-3) and f16
 * weights and KV (< 1e-2). Configs: q_lora_rank null with YaRN (deepseek_v2), q_lora_rank set
 * (deepseek_v3), and the shape of models/kjv-mla (d_c 32 + d_rope 16 = 48-wide cache rows).
 * Also decode over more than one KV chunk (300 keys; mlaDecode's chunks hold >= 256), and fork +
 * copy-on-write and prefix reuse on the latent pool (one buffer per layer, no V).
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/model/config';
import { StepRunner } from '../../src/engine/stepRunner';
import { Transformer } from '../../src/model/transformer';
import { referenceForward } from '../../src/reference/transformer';
import { relL2 } from '../../src/reference/attention';
import { f16BitsToF32, f32ToF16Bits } from '../../src/sources/halfFloat';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { configs, lookup, randomIds, randomWeights, writeCheckpoint } from '../helpers/tinyModels';
import { gpu } from './harness';

const T = 9;

/** models/kjv-mla's attention shape on a tiny vocabulary, one layer. */
const kjvShape = {
  ...configs.deepseek,
  hidden_size: 128,
  intermediate_size: 64,
  num_hidden_layers: 1,
  num_attention_heads: 8,
  num_key_value_heads: 8,
  qk_nope_head_dim: 16,
  qk_rope_head_dim: 16,
  v_head_dim: 16,
  kv_lora_rank: 32,
  q_lora_rank: null,
  rope_scaling: null,
};

async function load(config: Record<string, unknown>, dtype: 'f32' | 'f16', sizes = { maxTokens: 16, maxContext: 64 }) {
  const spec = parseConfig(config);
  const weights = randomWeights(spec);
  if (dtype === 'f16') for (const w of weights.values()) w.set(w.map((x) => f16BitsToF32(f32ToF16Bits(x))));
  const dir = writeCheckpoint(config, weights, dtype === 'f16' ? 'F16' : 'F32');
  const model = await Transformer.load(await gpu(), await loadModelFiles(folderSource(dir)), {
    weightDtype: dtype,
    kvDtype: dtype,
    pageSize: 4,
    maxSeqs: 4,
    maxLogitRows: 16,
    ...sizes,
  });
  const runner = await StepRunner.create(model);
  const destroy = () => {
    runner.destroy();
    model.destroy();
  };
  const ref = (ids: number[]) => referenceForward(spec, lookup(weights), ids);
  return { spec, weights, model, runner, destroy, ref };
}

async function checkModes(config: Record<string, unknown>, dtype: 'f32' | 'f16', name: string) {
  const { spec, runner, destroy, ref } = await load(config, dtype);
  try {
    const ids = randomIds(T, spec.vocabSize);
    const want = ref(ids);
    const tol = dtype === 'f32' ? 1e-3 : 1e-2;
    for (const [mode, chunk] of [
      ['prefill', T],
      ['decode', 1],
      ['chunked:4', 4],
    ] as const) {
      const got = await runner.logitsForIds(ids, chunk); // a new sequence, freed afterwards
      expect(relL2(got, want), `${name} ${dtype} ${mode}`).toBeLessThan(tol);
    }
    expect(runner.cache.stats().usedPages).toBe(0);
  } finally {
    destroy();
  }
}

describe('GPU MLA forward vs the float64 reference (decompressed)', () => {
  // Every config and dtype compiles its own pipelines (seconds each on lavapipe): one dtype per config.
  it('deepseek_v2, q_lora_rank null, YaRN [f32]', () => checkModes(configs.deepseek, 'f32', 'deepseek'));
  it('deepseek_v3, q_lora_rank set [f16 weights and KV]', () => checkModes(configs.deepseekV3, 'f16', 'deepseekV3'));
  it('the models/kjv-mla shape (48-wide cache rows) [f32]', () => checkModes(kjvShape, 'f32', 'kjv-mla shape'));

  it('decode past one KV chunk of the MLA decode kernel, two sequences per step', async () => {
    const { spec, runner, destroy, ref } = await load(configs.deepseek, 'f32', { maxTokens: 160, maxContext: 320 });
    const V = spec.vocabSize;
    try {
      const A = randomIds(300, V);
      const B = randomIds(40, V);
      await runner.step([{ seqId: 1, tokenIds: A.slice(0, 150) }]);
      await runner.step([{ seqId: 1, tokenIds: A.slice(150, 298) }]);
      await runner.step([{ seqId: 2, tokenIds: B.slice(0, 38) }]);
      const [refA, refB] = [ref(A), ref(B)];
      for (let i = 0; i < 2; i++) {
        const got = await runner.step([
          { seqId: 1, tokenIds: [A[298 + i]] },
          { seqId: 2, tokenIds: [B[38 + i]] },
        ]);
        expect(relL2(got.subarray(0, V), refA.subarray((298 + i) * V, (299 + i) * V)), `step ${i} A`).toBeLessThan(
          1e-3,
        );
        expect(relL2(got.subarray(V), refB.subarray((38 + i) * V, (39 + i) * V)), `step ${i} B`).toBeLessThan(1e-3);
      }
    } finally {
      destroy();
    }
  });

  it('fork and prefix reuse on the latent pool', async () => {
    const { spec, runner, destroy, ref } = await load(configs.deepseek, 'f32');
    const V = spec.vocabSize;
    try {
      const prompt = randomIds(10, V);
      await runner.step([{ seqId: 1, tokenIds: prompt }]);
      runner.cache.fork(1, 2);
      const [a, c] = [randomIds(1, V), randomIds(1, V)];
      const la = await runner.step([{ seqId: 2, tokenIds: a }]);
      expect(relL2(la, ref([...prompt, ...a]).subarray(10 * V))).toBeLessThan(1e-3);
      const lc = await runner.step([{ seqId: 1, tokenIds: c }]);
      expect(relL2(lc, ref([...prompt, ...c]).subarray(10 * V))).toBeLessThan(1e-3);
      expect(runner.cache.addSequence(3, prompt)).toEqual({ cachedTokens: 8 });
      const l3 = await runner.step([{ seqId: 3, tokenIds: prompt.slice(8) }], { allRows: true });
      expect(relL2(l3, ref(prompt).subarray(8 * V))).toBeLessThan(1e-3);
      for (const s of [1, 2, 3]) runner.cache.free(s);
      runner.cache.validate();
    } finally {
      destroy();
    }
  });
});
