/**
 * Sliding-window layers free their pages on the GPU (issue 18 part 2): a tiny gemma3-shaped model
 * (3 layers: 2 sliding with window 6, 1 full; pages of 4) generates 40 tokens in two sequences
 * side by side, one decode step each, its sliding layers in a pool of their own. Every step the
 * local group holds at most ceil(6 / 4) + 1 = 3 pages per sequence (and reaches 3), the full layers
 * every page, and every logits row equals the float64 reference forward of the whole sequence,
 * so the dead pages mapped to the pinned page are never read and the reused pages are rewritten.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/model/config';
import { StepRunner } from '../../src/engine/stepRunner';
import { Transformer } from '../../src/model/transformer';
import { referenceForward } from '../../src/reference/transformer';
import { relL2 } from '../../src/reference/attention';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { lookup, randomIds, randomWeights, writeCheckpoint } from '../helpers/tinyModels';
import { familyConfigs } from '../helpers/familyModels';
import { expectedShaderF16, gpu } from './harness';

const T = 40;
// Window 6 over pages of 4: 6 tokens straddle at most ceil((6 - 1) / 4) + 1 = 3 = ceil(6 / 4) + 1 pages
// (the family's window of 5 spans 2 pages of 4 at most: the bound would never be reached).
const PAGE = 4;
const WINDOW = 6;

describe('sliding-window pages freed on the GPU', () => {
  it.skipIf(expectedShaderF16() === false)('gemma3: 40 decode steps hold ceil(window / pageSize) + 1 local pages; logits match the reference', async () => {
    const config = { ...familyConfigs.gemma3, sliding_window: WINDOW };
    const spec = parseConfig(config);
    const window = spec.slidingWindow!;
    expect(window).toBe(WINDOW);
    expect(spec.layers.filter((l) => l.sliding).length).toBe(2);
    const weights = randomWeights(spec);
    const dir = writeCheckpoint(config, weights, 'F32');
    const seqs = [randomIds(T, spec.vocabSize), randomIds(T, spec.vocabSize)];
    const refs = seqs.map((ids) => referenceForward(spec, lookup(weights), ids));
    const model = await Transformer.load(await gpu(), await loadModelFiles(folderSource(dir)), {
      weightDtype: 'f32',
      kvDtype: 'f32',
      pageSize: PAGE,
      maxTokens: 8,
      maxSeqs: 2,
      maxLogitRows: 8,
      maxContext: 48,
    });
    const runner = await StepRunner.create(model);
    try {
      const local = runner.scheduler.localCache!;
      expect(local).not.toBeNull();
      expect(model.kvPoolLocal!.spec.numLayers).toBe(2);
      expect(runner.pool.spec.numLayers).toBe(1);
      const V = spec.vocabSize;
      const got = seqs.map(() => new Float32Array(T * V));
      const held = Math.ceil(window / PAGE) + 1;
      let maxHeld = 0;
      for (let t = 0; t < T; t++) {
        const rows = await runner.step(seqs.map((ids, i) => ({ seqId: i + 1, tokenIds: [ids[t]] })));
        seqs.forEach((_, i) => {
          got[i].set(rows.subarray(i * V, (i + 1) * V), t * V);
          const pages = local.livePages(i + 1);
          expect(pages, `step ${t}`).toBeLessThanOrEqual(held);
          maxHeld = Math.max(maxHeld, pages);
          expect(runner.cache.livePages(i + 1)).toBe(Math.ceil((t + 1) / PAGE));
        });
        local.validate();
        runner.cache.validate();
      }
      expect(maxHeld).toBe(held);
      expect(held).toBe(Math.ceil((window - 1) / PAGE) + 1);
      // 2 x 20 pages in the full layers' pool; the local pool serves the same windows with held + held pages.
      expect(local.stats().usedPages).toBeLessThanOrEqual(2 * held + 1);
      seqs.forEach((_, i) => expect(relL2(got[i], refs[i]), `sequence ${i + 1}`).toBeLessThan(1e-3));
      for (const i of [1, 2]) runner.scheduler.freeSequence(i);
      expect(local.stats().usedPages).toBe(1); // the pinned page
    } finally {
      runner.destroy();
      model.destroy();
    }
  });
});
