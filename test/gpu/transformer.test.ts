/**
 * The GPU forward pass on tiny random checkpoints written to disk, loaded through the real loader,
 * against the float64 reference forward: prefill, decode (one token per step through the KV
 * cache) and chunked prefill, stepped by a StepRunner (the model's KV pool and a scheduler), must all
 * give the reference logits (rel L2 < 1e-3 with f32 weights,
 * < 1e-2 with f16 weights and KV).
 */
import { describe, expect, it } from 'vitest';
import { checkForwardModes } from './forwardCheck';
import { parseConfig } from '../../src/model/config';
import { Scheduler } from '../../src/engine/scheduler';
import { StepRunner } from '../../src/engine/stepRunner';
import { Transformer } from '../../src/model/transformer';
import { referenceForward } from '../../src/reference/transformer';
import { relL2 } from '../../src/reference/attention';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { configs, lookup, randomIds, randomWeights, writeCheckpoint } from '../helpers/tinyModels';
import { gpu } from './harness';

const T = 9;

function checkFamily(family: string, dtype: 'f32' | 'f16') {
  return checkForwardModes(configs[family], { family, dtype, tokens: T, chunk: 4, maxContext: 64 });
}

describe('GPU forward pass vs float64 reference', () => {
  for (const family of ['llama', 'llama3', 'mistral', 'qwen2', 'qwen3', 'gemma']) {
    it(`${family} [f32 weights and KV]`, () => checkFamily(family, 'f32'));
  }
  it('llama [f16 weights and KV]', () => checkFamily('llama', 'f16'));

  it('batches sequences in one step and refuses what does not fit, changing nothing', async () => {
    const config = configs.llama;
    const spec = parseConfig(config);
    const weights = randomWeights(spec);
    const dir = writeCheckpoint(config, weights);
    const a = randomIds(6, spec.vocabSize);
    const b = randomIds(3, spec.vocabSize);
    const refA = referenceForward(spec, lookup(weights), a);
    const refB = referenceForward(spec, lookup(weights), b);
    const model = await Transformer.load(await gpu(), await loadModelFiles(folderSource(dir)), {
      weightDtype: 'f32',
      kvDtype: 'f32',
      pageSize: 4,
      maxTokens: 16,
      maxSeqs: 4,
      maxContext: 16,
    });
    const runner = await StepRunner.create(model, { numPages: 6 });
    try {
      const V = spec.vocabSize;
      const last = await runner.step([
        { seqId: 1, tokenIds: a },
        { seqId: 2, tokenIds: b },
      ]);
      expect(relL2(last.subarray(0, V), refA.subarray(5 * V, 6 * V))).toBeLessThan(1e-3);
      expect(relL2(last.subarray(V, 2 * V), refB.subarray(2 * V, 3 * V))).toBeLessThan(1e-3);
      const before = runner.cache.stats();
      await expect(runner.step([{ seqId: 3, tokenIds: randomIds(17, V) }])).rejects.toThrow(/17 tokens in one step/);
      await expect(runner.step([{ seqId: 1, tokenIds: randomIds(11, V) }])).rejects.toThrow(/past the context of 16/);
      await expect(runner.step([{ seqId: 3, tokenIds: randomIds(13, V) }])).rejects.toThrow(
        /needs 4 KV pages, 3 are free/,
      );
      await expect(runner.step([{ seqId: 3, tokenIds: [V] }])).rejects.toThrow(/outside the vocabulary/);
      expect(runner.cache.stats()).toEqual(before);
      expect(runner.cache.has(3)).toBe(false);
      // The model itself refuses a batch past the buffers it was sized for, before uploading it.
      const wide = new Scheduler({
        numPages: 6,
        pageSize: 4,
        maxTokens: 64,
        maxSeqs: 8,
        maxLogitRows: 64,
        maxContext: 64,
      });
      const tooLong = wide.batch([{ seqId: 1, tokenIds: randomIds(17, V) }]);
      await expect(model.forward(tooLong)).rejects.toThrow(/17 tokens; this model was set up for 1..16/);
    } finally {
      runner.destroy();
      model.destroy();
    }
  });
});
