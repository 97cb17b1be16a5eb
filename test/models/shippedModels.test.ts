/**
 * The four shipped models on the CPU: their configs parse to the attention variant each is named
 * for, their weights are the F16 tensors the spec expects, and our float64 reference forward
 * (src/reference/transformer.ts) gives torch's logits on trained weights (the fixture), which
 * checks the reference's MLA (interleaved rope, latent norm, softmax scale) as well as llama's.
 * The GPU forward is compared with the same fixtures in test/gpu/shippedModels.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { expectedTensors } from '../../src/model/expectedTensors';
import { kvBytesPerToken } from '../../src/kv/accounting';
import { relL2 } from '../../src/reference/attention';
import { referenceForward } from '../../src/reference/transformer';
import { SHIPPED_MODELS, shippedSpec, shippedWeights, torchFixture } from './shippedFixtures';

const VARIANT = { 'kjv-mha': 'mha', 'kjv-gqa': 'gqa', 'kjv-mqa': 'mqa', 'kjv-mla': 'mla' } as const;
// KV bytes per token in f16, all 4 layers: 2 * layers * (2 * kvHeads * 16) or 2 * layers * (32 + 16).
const KV_BYTES_F16 = { 'kjv-mha': 2048, 'kjv-gqa': 512, 'kjv-mqa': 256, 'kjv-mla': 384 } as const;

describe('shipped models (CPU)', () => {
  for (const name of SHIPPED_MODELS) {
    it(`${name}: config, F16 tensors, KV bytes per token`, () => {
      const spec = shippedSpec(name);
      expect(spec.attention).toBe(VARIANT[name]);
      expect([spec.hiddenSize, spec.numLayers, spec.numHeads, spec.vocabSize, spec.intermediateSize]).toEqual([
        128, 4, 8, 2048, 384,
      ]);
      const { file, bytes } = shippedWeights(name);
      expect(bytes).toBeLessThanOrEqual(8 * 2 ** 20);
      const expected = expectedTensors(spec);
      expect([...file.tensors.keys()].sort()).toEqual([...expected.keys()].sort());
      for (const [n, shape] of expected) {
        expect(file.tensors.get(n)!.dtype, n).toBe('F16');
        expect(file.tensors.get(n)!.shape, n).toEqual(shape);
      }
      const kv = kvBytesPerToken({
        variant: spec.attention,
        numLayers: spec.numLayers,
        numKvHeads: spec.numKvHeads,
        headDimQK: spec.headDim,
        headDimV: spec.headDimV,
        latentDim: spec.mla?.kvLoraRank,
        ropeDim: spec.mla?.qkRopeHeadDim,
        dtype: 'f16',
      });
      expect(kv).toBe(KV_BYTES_F16[name]);
    });

    it(`${name}: float64 reference forward gives torch's logits`, () => {
      const spec = shippedSpec(name);
      const { weight } = shippedWeights(name);
      const { ids, logits } = torchFixture(name);
      const ref = referenceForward(spec, weight, ids);
      expect(relL2(ref, logits)).toBeLessThan(1e-5);
      // A trained model, not noise: the logits are far from uniform and mostly predict the text.
      let hits = 0;
      for (let t = 0; t + 1 < ids.length; t++) {
        const row = logits.subarray(t * spec.vocabSize, (t + 1) * spec.vocabSize);
        let best = 0;
        for (let v = 1; v < row.length; v++) if (row[v] > row[best]) best = v;
        if (best === ids[t + 1]) hits++;
      }
      expect(hits).toBeGreaterThanOrEqual(3);
    });
  }
});
