/**
 * One check shared by the family sweeps (transformer.test.ts, families.test.ts): a tiny random
 * checkpoint written to disk and loaded through the real loader, stepped by a StepRunner in prefill,
 * decode (one token per step through the paged KV cache) and chunked prefill, against the float64
 * reference forward: rel L2 < 1e-3 with f32 weights and KV, < 1e-2 with f16. Every page is freed after.
 */
import { expect } from 'vitest';
import { StepRunner } from '../../src/engine/stepRunner';
import { parseConfig } from '../../src/model/config';
import { Transformer } from '../../src/model/transformer';
import { relL2 } from '../../src/reference/attention';
import { referenceForward } from '../../src/reference/transformer';
import { f16BitsToF32, f32ToF16Bits } from '../../src/sources/halfFloat';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { lookup, randomIds, randomWeights, writeCheckpoint } from '../helpers/tinyModels';
import { gpu } from './harness';

export interface ForwardCheck {
  family: string; // named in the failure message
  dtype: 'f32' | 'f16';
  tokens: number;
  chunk: number; // the chunked-prefill mode's chunk size
  maxContext: number;
}

export async function checkForwardModes(config: Record<string, unknown>, c: ForwardCheck): Promise<void> {
  const spec = parseConfig(config);
  const weights = randomWeights(spec);
  if (c.dtype === 'f16') for (const w of weights.values()) w.set(w.map((x) => f16BitsToF32(f32ToF16Bits(x))));
  const dir = writeCheckpoint(config, weights, c.dtype === 'f16' ? 'F16' : 'F32');
  const ids = randomIds(c.tokens, spec.vocabSize);
  const ref = referenceForward(spec, lookup(weights), ids);
  const ctx = await gpu();
  const model = await Transformer.load(ctx, await loadModelFiles(folderSource(dir)), {
    weightDtype: c.dtype,
    kvDtype: c.dtype,
    pageSize: 4,
    maxTokens: 16,
    maxSeqs: 4,
    maxLogitRows: 16,
    maxContext: c.maxContext,
  });
  const runner = await StepRunner.create(model);
  try {
    const tol = c.dtype === 'f32' ? 1e-3 : 1e-2;
    const modes: [string, number][] = [
      ['prefill', c.tokens],
      ['decode', 1],
      [`chunked:${c.chunk}`, c.chunk],
    ];
    for (const [mode, chunk] of modes) {
      const got = await runner.logitsForIds(ids, chunk); // a new sequence, freed afterwards
      expect(relL2(got, ref), `${c.family} ${c.dtype} ${mode}`).toBeLessThan(tol);
    }
    expect(runner.cache.stats().usedPages).toBe(0);
  } finally {
    runner.destroy();
    model.destroy();
  }
}
