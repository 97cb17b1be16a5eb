/**
 * Sliding-window layers free their pages on the GPU (issue 18 part 2): a tiny gemma3-shaped model
 * (3 layers: 2 sliding with window 6, 1 full; pages of 4) generates 40 tokens in two sequences
 * side by side, one decode step each, its sliding layers in a pool of their own. Every step the
 * local group holds at most ceil(6 / 4) + 1 = 3 pages per sequence (and reaches 3), the full layers
 * every page, and every logits row equals the float64 reference forward of the whole sequence,
 * so the dead pages mapped to the pinned page are never read and the reused pages are rewritten.
 * Then chunked prefill (chunks of 8 and 3) and a fork with copy-on-write in both pools, against
 * the reference too.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/model/config';
import { Engine } from '../../src/engine/engine';
import { StepRunner } from '../../src/engine/stepRunner';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { tokenizerConfig, tokenizerJson } from '../helpers/tinyTokenizer';
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
  it.skipIf(expectedShaderF16() === false)(
    'gemma3: 40 decode steps hold ceil(window / pageSize) + 1 local pages; logits match the reference',
    async () => {
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

        // Chunked prefill: each chunk's first query reads the window before it from live pages.
        for (const chunk of [8, 3]) {
          expect(relL2(await runner.logitsForIds(seqs[0], chunk), refs[0]), `chunks of ${chunk}`).toBeLessThan(1e-3);
        }
        // Fork after 21 tokens (a shared partial page: copy-on-write in both pools), then each
        // continues with its own tokens; the child's logits are the reference of its own sequence.
        const F = 21;
        const childIds = [...seqs[0].slice(0, F), ...seqs[1].slice(F)];
        const childRef = referenceForward(spec, lookup(weights), childIds);
        const child = new Float32Array(T * V);
        for (let start = 0; start < F; start += 7) {
          const rows = await runner.step([{ seqId: 1, tokenIds: seqs[0].slice(start, start + 7) }], { allRows: true });
          child.set(rows, start * V);
        }
        runner.scheduler.forkSequence(1, 3);
        for (let t = F; t < T; t++) {
          const rows = await runner.step([
            { seqId: 1, tokenIds: [seqs[0][t]] },
            { seqId: 3, tokenIds: [childIds[t]] },
          ]);
          child.set(rows.subarray(V, 2 * V), t * V);
          for (const id of [1, 3]) expect(local.livePages(id)).toBeLessThanOrEqual(held);
          local.validate();
        }
        expect(relL2(child, childRef), 'forked child').toBeLessThan(1e-3);
        for (const i of [1, 3]) runner.scheduler.freeSequence(i);
        expect(local.stats().usedPages).toBe(1);
        expect(runner.cache.stats().usedPages).toBe(0);
      } finally {
        runner.destroy();
        model.destroy();
      }
    },
  );

  it.skipIf(expectedShaderF16() === false)(
    'gemma3 through Engine.forModel: two pools, greedy tokens are the reference argmax',
    async () => {
      const config = { ...familyConfigs.gemma3, sliding_window: WINDOW };
      const spec = parseConfig(config);
      const weights = randomWeights(spec);
      const dir = writeCheckpoint(config, weights, 'F32');
      const prompt = randomIds(6, spec.vocabSize);
      const N = 30;
      // The reference's greedy continuation: argmax of the last row, appended, N times.
      const want = prompt.slice();
      for (let i = 0; i < N; i++) {
        const logits = referenceForward(spec, lookup(weights), want);
        const last = logits.subarray((want.length - 1) * spec.vocabSize, want.length * spec.vocabSize);
        want.push(last.indexOf(Math.max(...last)));
      }
      const model = await Transformer.load(await gpu(), await loadModelFiles(folderSource(dir)), {
        weightDtype: 'f32',
        kvDtype: 'f32',
        pageSize: PAGE,
        maxTokens: 8,
        maxSeqs: 2,
        maxLogitRows: 8,
        maxContext: 48,
      });
      const engine = await Engine.forModel(model, loadTokenizer(tokenizerJson, tokenizerConfig));
      try {
        const held = Math.ceil(WINDOW / PAGE) + 1;
        let maxHeld = 0;
        engine.onStep = () => {
          const snap = engine.kvSnapshot();
          expect(snap.local!.window).toBe(WINDOW);
          for (const r of snap.local!.requests) if (r.tokens > 8) maxHeld = Math.max(maxHeld, r.pages);
        };
        const got: number[] = [];
        for await (const c of engine.generate(prompt, { maxTokens: N, temperature: 0, ignoreEos: true }))
          if (c.tokenId >= 0) got.push(c.tokenId);
        expect(got).toEqual(want.slice(prompt.length));
        expect(maxHeld).toBe(held);
        expect(engine.scheduler.localCache!.stats().usedPages).toBe(1);
      } finally {
        engine.dispose(); // frees both pools; the model is ours
        model.destroy();
      }
    },
  );
});
