/**
 * The model step over the paged cache's sharing features, stepped by a StepRunner (the
 * scheduler's cache decides sharing, the model runs the batch), on a tiny random llama against the
 * float64 reference: prefix-cache reuse (a sequence registered with its prompt computes only the
 * uncached suffix and gets the full prefill's logits), fork + copy-on-write (branches that write
 * into a shared partial page each match a fresh sequence fed the same ids; the parent is unchanged),
 * and split-KV decode over more than one KV chunk, batched.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/model/config';
import { StepRunner } from '../../src/engine/stepRunner';
import { Transformer } from '../../src/model/transformer';
import { referenceForward } from '../../src/reference/transformer';
import { relL2 } from '../../src/reference/attention';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { configs, lookup, randomIds, randomWeights, writeCheckpoint } from '../helpers/tinyModels';
import { gpu } from './harness';

const config = configs.llama;
const spec = parseConfig(config);
const V = spec.vocabSize;
const weights = randomWeights(spec);
const dir = writeCheckpoint(config, weights);
const ref = (ids: number[]) => referenceForward(spec, lookup(weights), ids);
/** Rows from..to-1 of reference logits [T, vocab]. */
const rows = (logits: Float64Array, from: number, to = from + 1) => logits.subarray(from * V, to * V);

async function load(opts: { maxTokens: number; maxContext: number }) {
  const model = await Transformer.load(await gpu(), await loadModelFiles(folderSource(dir)), {
    weightDtype: 'f32',
    kvDtype: 'f32',
    pageSize: 4,
    maxSeqs: 4,
    maxLogitRows: 16,
    ...opts,
  });
  return { model, runner: await StepRunner.create(model) };
}

describe('model step over shared pages', () => {
  it('prefix cache: a registered prompt computes only its uncached suffix, with the full prefill logits', async () => {
    const { model, runner } = await load({ maxTokens: 16, maxContext: 32 });
    try {
      const P = randomIds(14, V);
      const full = ref(P);
      expect(relL2(await runner.step([{ seqId: 1, tokenIds: P }], { allRows: true }), full)).toBeLessThan(1e-3);

      // Live sharer: 3 full pages (12 tokens) hit, the last 2 tokens are computed.
      expect(runner.cache.addSequence(2, P)).toEqual({ cachedTokens: 12 });
      expect(runner.cache.blockTable(2)).toEqual(runner.cache.blockTable(1).slice(0, 3));
      const got = await runner.step([{ seqId: 2, tokenIds: P.slice(12) }], { allRows: true });
      expect(relL2(got, rows(full, 12, 14))).toBeLessThan(1e-3);

      // After both are freed the pages wait in the cache; a prompt sharing 9 tokens reuses 2 pages.
      runner.cache.free(1);
      runner.cache.free(2);
      const P2 = [...P.slice(0, 9), ...randomIds(6, V)];
      expect(runner.cache.addSequence(3, P2)).toEqual({ cachedTokens: 8 });
      const got2 = await runner.step([{ seqId: 3, tokenIds: P2.slice(8) }], { allRows: true });
      expect(relL2(got2, rows(ref(P2), 8, 15))).toBeLessThan(1e-3);
      runner.cache.validate();
      runner.cache.free(3);
      expect(runner.cache.stats().usedPages).toBe(0);
      await expect(
        runner.step([
          { seqId: 4, tokenIds: [1] },
          { seqId: 4, tokenIds: [2] },
        ]),
      ).rejects.toThrow(/appears twice/);
      expect(runner.cache.has(4)).toBe(false);
    } finally {
      runner.destroy();
      model.destroy();
    }
  });

  it('fork: branches writing into a shared partial page are copied first, and the parent is unchanged', async () => {
    const { model, runner } = await load({ maxTokens: 16, maxContext: 32 });
    try {
      const prompt = randomIds(10, V); // pageSize 4: the third page holds 2 tokens, shared after fork
      await runner.step([{ seqId: 1, tokenIds: prompt }]);
      runner.cache.fork(1, 2);
      runner.cache.fork(1, 3);
      const [a, b, c] = [randomIds(3, V), randomIds(3, V), randomIds(1, V)];
      // Both branches in one step: two copies of the same shared page.
      const step = await runner.step([
        { seqId: 2, tokenIds: [a[0]] },
        { seqId: 3, tokenIds: [b[0]] },
      ]);
      expect(relL2(step.subarray(0, V), rows(ref([...prompt, a[0]]), 10))).toBeLessThan(1e-3);
      expect(relL2(step.subarray(V), rows(ref([...prompt, b[0]]), 10))).toBeLessThan(1e-3);
      // Then each alone, two tokens (a prefill-path step on a branch).
      const la = await runner.step([{ seqId: 2, tokenIds: a.slice(1) }], { allRows: true });
      expect(relL2(la, rows(ref([...prompt, ...a]), 11, 13))).toBeLessThan(1e-3);
      const lb = await runner.step([{ seqId: 3, tokenIds: b.slice(1) }], { allRows: true });
      expect(relL2(lb, rows(ref([...prompt, ...b]), 11, 13))).toBeLessThan(1e-3);
      // The parent kept its own page: it continues as if nothing had been forked.
      const lc = await runner.step([{ seqId: 1, tokenIds: c }]);
      expect(relL2(lc, rows(ref([...prompt, ...c]), 10))).toBeLessThan(1e-3);
      // A fork of a fork that writes at once (copy and write in one step).
      runner.cache.fork(2, 4);
      const ld = await runner.step([{ seqId: 4, tokenIds: c }]);
      expect(relL2(ld, rows(ref([...prompt, ...a, ...c]), 13))).toBeLessThan(1e-3);
      runner.cache.validate();
      for (const s of [1, 2, 3, 4]) runner.cache.free(s);
      expect(runner.cache.stats().usedPages).toBe(0);
    } finally {
      runner.destroy();
      model.destroy();
    }
  });

  it('split-KV decode over several KV chunks, two sequences per step', async () => {
    const { model, runner } = await load({ maxTokens: 160, maxContext: 192 });
    try {
      const A = randomIds(150, V);
      const B = randomIds(133, V);
      await runner.step([{ seqId: 1, tokenIds: A.slice(0, 140) }]);
      await runner.step([{ seqId: 2, tokenIds: B.slice(0, 130) }]);
      const refA = ref(A);
      const refB = ref(B);
      for (let i = 0; i < 3; i++) {
        const got = await runner.step([
          { seqId: 1, tokenIds: [A[140 + i]] },
          { seqId: 2, tokenIds: [B[130 + i]] },
        ]);
        expect(relL2(got.subarray(0, V), rows(refA, 140 + i)), `step ${i} seq A`).toBeLessThan(1e-3);
        expect(relL2(got.subarray(V), rows(refB, 130 + i)), `step ${i} seq B`).toBeLessThan(1e-3);
      }
    } finally {
      runner.destroy();
      model.destroy();
    }
  });
});
