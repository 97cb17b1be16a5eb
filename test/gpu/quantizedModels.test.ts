/**
 * The shipped models run with quantized weights (uploadWeights quantizes on load): perplexity of
 * the GPU forward on held-out KJV lines (test/fixtures/models/kjv-validation-lines.json.gz, the
 * chapters the models never saw) at f16, q8 and q4. q8 must be within 1% of f16, q4 within 8%
 * (issue 13). 12 evenly spaced lines (about 450 tokens) keep it short on a software adapter; the
 * README numbers come from 200 lines.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { logitsForIds } from '../../src/engine/stepRunner';
import { Transformer } from '../../src/model/transformer';
import type { LoadDtype } from '../../src/model/weights';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { gpu } from './harness';

const LINES = 12;
const validation = JSON.parse(
  gunzipSync(readFileSync(new URL('../fixtures/models/kjv-validation-lines.json.gz', import.meta.url))).toString(
    'utf8',
  ),
) as { ids: number[][] };
const lines = validation.ids.filter((_, i) => i % Math.floor(validation.ids.length / LINES) === 0).slice(0, LINES);

/** exp(mean next-token NLL) over the lines, each fed as one prefill after BOS (id 0). */
async function perplexity(model: string, weightDtype: LoadDtype): Promise<number> {
  const ctx = await gpu();
  const files = await loadModelFiles(folderSource(new URL(`../../models/${model}`, import.meta.url).pathname));
  const maxLen = Math.max(...lines.map((l) => l.length + 1));
  const m = await Transformer.load(ctx, files, {
    weightDtype,
    kvDtype: 'f32',
    maxTokens: maxLen,
    maxSeqs: 1,
    maxLogitRows: maxLen,
    maxContext: maxLen,
  });
  try {
    const V = m.spec.vocabSize;
    let nll = 0;
    let count = 0;
    for (const ids of lines) {
      const seq = [0, ...ids];
      const logits = await logitsForIds(m, seq, seq.length);
      for (let t = 0; t + 1 < seq.length; t++) {
        const row = logits.subarray(t * V, (t + 1) * V);
        const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
        let sum = 0;
        for (const v of row) sum += Math.exp(v - max);
        nll += max + Math.log(sum) - row[seq[t + 1]];
        count++;
      }
    }
    return Math.exp(nll / count);
  } finally {
    m.destroy();
  }
}

describe.each(['kjv-gqa', 'kjv-mla'])('%s with quantized weights', (model) => {
  it('q8 within 1% and q4 within 8% of the f16 perplexity', async () => {
    const f16 = await perplexity(model, 'f16');
    const q8 = await perplexity(model, 'q8');
    const q4 = await perplexity(model, 'q4');
    expect(Math.abs(q8 / f16 - 1), `f16 ${f16}, q8 ${q8}`).toBeLessThan(0.01);
    expect(Math.abs(q4 / f16 - 1), `f16 ${f16}, q4 ${q4}`).toBeLessThan(0.08);
    expect(f16).toBeLessThan(100); // a trained model, not noise (uniform would be 2048)
  }, 600_000); // SwiftShader compiles the q8 and q4 pipelines at first use: minutes on a busy machine
});
