/**
 * The shipped models (models/kjv-*) through the real loader and the GPU forward pass, against
 * torch's logits of the same f16 weights (test/fixtures/models, written by
 * tools/train/train_all.py): an independent check of loader and forward on trained weights.
 * Prefill (all 16 tokens in one step) and decode (6 tokens, one per step, through 4-token KV pages),
 * f16 weights and f16 KV as the demo runs them: rel L2 < 1e-3 (the issue asks 1e-2) and the same top token in >= 90% of
 * rows. Then greedy generation from "In the beginning" must reproduce torch's greedy
 * continuation (models/training-summary.json).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generate } from '../../src/engine/generate';
import { StepRunner } from '../../src/engine/stepRunner';
import { Transformer } from '../../src/model/transformer';
import { relL2 } from '../../src/reference/attention';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { repoPath, torchFixture, type ShippedModel } from '../models/shippedFixtures';
import { expectedShaderF16, gpu } from './harness';

const summary = JSON.parse(readFileSync(repoPath('models/training-summary.json'), 'utf8')) as {
  models: Record<string, { torch_greedy_sample: string }>;
};

async function load(name: ShippedModel) {
  const files = await loadModelFiles(folderSource(repoPath(`models/${name}`)), { needTokenizer: true });
  const model = await Transformer.load(await gpu(), files, {
    weightDtype: 'f16',
    kvDtype: 'f16',
    pageSize: 4,
    maxTokens: 16,
    maxSeqs: 2,
    maxLogitRows: 16,
    maxContext: 64,
  });
  return { files, model };
}

function argmaxAgreement(got: Float32Array, ref: Float32Array, vocab: number): number {
  let agree = 0;
  const rows = ref.length / vocab;
  for (let t = 0; t < rows; t++) {
    let a = 0;
    let b = 0;
    for (let v = 1; v < vocab; v++) {
      if (got[t * vocab + v] > got[t * vocab + a]) a = v;
      if (ref[t * vocab + v] > ref[t * vocab + b]) b = v;
    }
    if (a === b) agree++;
  }
  return agree / rows;
}

// Decode runs one step (and one readback) per token, seconds each on SwiftShader: 6 tokens are
// enough to cross a 4-token KV page. The fixture's rows are causal, so a prefix's rows are its rows.
const DECODE_TOKENS = 6;

async function checkLogits(name: ShippedModel, model: Transformer, modes: readonly ('prefill' | 'decode')[]) {
  const fixture = torchFixture(name);
  const vocab = model.spec.vocabSize;
  const runner = await StepRunner.create(model);
  try {
    for (const mode of modes) {
      const ids = mode === 'prefill' ? fixture.ids : fixture.ids.slice(0, DECODE_TOKENS);
      const ref = fixture.logits.subarray(0, ids.length * vocab);
      const chunk = mode === 'prefill' ? ids.length : 1;
      const got = await runner.logitsForIds(ids, chunk);
      expect(relL2(got, ref), `${name} ${mode}`).toBeLessThan(1e-3); // measured 5e-5 to 8e-5 on lavapipe
      expect(argmaxAgreement(got, ref, vocab), `${name} ${mode} argmax`).toBeGreaterThanOrEqual(0.9);
    }
  } finally {
    runner.destroy();
  }
}

// Every model compiles its own pipelines (10-30 s per model on a cold software adapter), so the
// default model (kjv-gqa) gets prefill, decode and generation, MLA (its own kernels) prefill and
// decode, MHA and MQA prefill only, and those two only where shader-f16 is native (lavapipe): on
// SwiftShader's packed-f16 path GQA and MLA cover the same kernels.
const packedF16Only = expectedShaderF16() === false;

describe('shipped models on the GPU vs torch', () => {
  for (const name of ['kjv-mha', 'kjv-mqa'] as const) {
    it.skipIf(packedF16Only)(`${name}: prefill logits match torch (f16 weights and KV)`, async () => {
      const { model } = await load(name);
      try {
        await checkLogits(name, model, ['prefill']);
      } finally {
        model.destroy();
      }
    });
  }

  // MLA runs the absorbed form (one latent row per token, W_UK folded into the query), torch the
  // decompressed one: both modes, since decode takes its own kernel (mlaDecode).
  it('kjv-mla: prefill and decode logits match torch (f16 weights and latent cache)', async () => {
    const { model } = await load('kjv-mla');
    try {
      await checkLogits('kjv-mla', model, ['prefill', 'decode']);
    } finally {
      model.destroy();
    }
  });

  const kjvGqaTitle =
    'kjv-gqa: prefill and decode logits match torch; ' +
    'greedy generation from "In the beginning" is torch\'s greedy continuation';
  it(kjvGqaTitle, async () => {
    const { files, model } = await load('kjv-gqa');
    try {
      await checkLogits('kjv-gqa', model, ['prefill', 'decode']);
      const tok = loadTokenizer(files.tokenizer as object, files.tokenizerConfig as object, {
        eosSources: [files.generationConfig as object],
      });
      const prompt = 'In the beginning';
      let text = prompt;
      for await (const piece of generate(model, tok, tok.encode(prompt), { temperature: 0, maxNewTokens: 12 }))
        text += piece;
      expect(text.length).toBeGreaterThan(prompt.length + 30);
      expect(summary.models['kjv-gqa'].torch_greedy_sample.startsWith(text), `GPU: ${JSON.stringify(text)}`).toBe(true);
    } finally {
      model.destroy();
    }
  });
});
