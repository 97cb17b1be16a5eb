/**
 * The families of issue 18 on the GPU: a tiny random checkpoint per family in its exact config keys
 * and tensor names (test/helpers/familyModels.ts), written to disk and loaded through the real
 * loader (phi3's fused tensors split at load, MiniCPM3's muP folded in), against the float64
 * reference forward in prefill, decode (one token per step through the paged KV cache) and chunked
 * prefill. 13 tokens with pages of 4 and windows of 5: the window boundary crosses pages; LongRoPE's
 * original context is 8, so positions 8..12 use the long factors. On SwiftShader (no shader-f16)
 * one case runs, with f16 weights and KV: the packed-f16 path.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/model/config';
import { StepRunner } from '../../src/engine/stepRunner';
import { Transformer } from '../../src/model/transformer';
import { referenceForward } from '../../src/reference/transformer';
import { relL2 } from '../../src/reference/attention';
import { f16BitsToF32, f32ToF16Bits } from '../../src/sources/halfFloat';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { lookup, randomIds, randomWeights, writeCheckpoint } from '../helpers/tinyModels';
import { familyConfigs } from '../helpers/familyModels';
import { expectedShaderF16, gpu } from './harness';

const T = 13;

async function checkFamily(family: string, dtype: 'f32' | 'f16') {
  const config = familyConfigs[family];
  const spec = parseConfig(config);
  const weights = randomWeights(spec);
  if (dtype === 'f16') for (const w of weights.values()) w.set(w.map((x) => f16BitsToF32(f32ToF16Bits(x))));
  const dir = writeCheckpoint(config, weights, dtype === 'f16' ? 'F16' : 'F32');
  const ids = randomIds(T, spec.vocabSize);
  const ref = referenceForward(spec, lookup(weights), ids);
  const ctx = await gpu();
  const model = await Transformer.load(ctx, await loadModelFiles(folderSource(dir)), {
    weightDtype: dtype,
    kvDtype: dtype,
    pageSize: 4,
    maxTokens: 16,
    maxSeqs: 4,
    maxLogitRows: 16,
    maxContext: 32,
  });
  const runner = await StepRunner.create(model);
  try {
    const tol = dtype === 'f32' ? 1e-3 : 1e-2;
    for (const [mode, chunk] of [
      ['prefill', T],
      ['decode', 1],
      ['chunked:5', 5],
    ] as const) {
      const got = await runner.logitsForIds(ids, chunk); // a new sequence, freed afterwards
      expect(relL2(got, ref), `${family} ${dtype} ${mode}`).toBeLessThan(tol);
    }
    expect(runner.cache.stats().usedPages).toBe(0);
  } finally {
    runner.destroy();
    model.destroy();
  }
}

const swiftshader = expectedShaderF16() === false;

describe('issue-18 families on the GPU vs the float64 reference', () => {
  for (const family of ['gemma2', 'gemma3', 'phi3', 'phi35', 'smollm3', 'minicpm3']) {
    it.skipIf(swiftshader)(`${family} [f32 weights and KV]`, () => checkFamily(family, 'f32'));
  }
  it('gemma3 [f16 weights and KV]', () => checkFamily('gemma3', 'f16'));
});
