/**
 * A checkpoint whose layer-1 norm is all NaN (or all Infinity) must not generate fluent text: the
 * engine fails the request with a NonFiniteLogitsError naming the request and the step. Built here
 * from the tiny random llama (test/helpers/tinyModels.ts) and the tiny BPE tokenizer. Also: bad
 * Engine.load options are named before the model loads.
 *
 * post_attention_layernorm poisons the MLP branch (GEMM / GEMV, no softmax in the way), so NaN
 * reaches the logits through matmuls alone. input_layernorm poisons q/k/v: NaN reaches the logits
 * only if the attention kernels pass NaN on (shaders/attention/onlineSoftmax.wgsl gave a NaN score
 * probability 0 before that fix); that case runs on the adapter's f32 KV path.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import { NonFiniteLogitsError } from '../../src/engine/errors';
import type { EngineOptions } from '../../src/engine/types';
import { parseConfig } from '../../src/model/config';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { configs, randomWeights, writeCheckpoint } from '../helpers/tinyModels';
import { ID, tokenizerConfig, tokenizerJson } from '../helpers/tinyTokenizer';
import { gpu } from './harness';

const config = { ...configs.llama, vocab_size: 272, eos_token_id: ID['<|im_end|>'] };
const opts: EngineOptions = {
  weightDtype: 'f32',
  kvDtype: 'f32',
  maxSeqs: 2,
  maxTokens: 32,
  maxContext: 64,
  pageSize: 16,
};

function checkpoint(poison?: { tensor: string; value: number }): string {
  const weights = randomWeights(parseConfig(config));
  if (poison) weights.get(poison.tensor)!.fill(poison.value);
  const dir = writeCheckpoint(config, weights);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
  return dir;
}

async function generateFrom(dir: string): Promise<{ text: string; error?: Error }> {
  const files = await loadModelFiles(folderSource(dir), { needTokenizer: true });
  const engine = await Engine.load(await gpu(), files, opts);
  let text = '';
  try {
    for await (const c of engine.generate('Hello world', { maxTokens: 6, temperature: 0 })) text += c.text;
    return { text };
  } catch (e) {
    return { text, error: e as Error };
  } finally {
    expect(engine.scheduler.cache.stats().usedPages).toBe(0);
    engine.dispose();
  }
}

describe('non-finite weights surface as a clear error', () => {
  it('a clean checkpoint generates', async () => {
    const got = await generateFrom(checkpoint());
    expect(got.error).toBeUndefined();
  });

  const failsClearly = async (norm: string, value: number) => {
    const got = await generateFrom(checkpoint({ tensor: `model.layers.1.${norm}.weight`, value }));
    expect(got.text).toBe('');
    expect(got.error).toBeInstanceOf(NonFiniteLogitsError);
    expect(got.error!.message).toMatch(/^request 1: step 0 gave non-finite logits for sample 0/);
  };

  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
  ])('layer 1 post_attention_layernorm all %s: "non-finite" error naming the request and step 0', (_, value) =>
    failsClearly('post_attention_layernorm', value),
  );

  // NaN q/k/v must come out of attention as NaN (the attention snippets pass it on), so the
  // engine reports it instead of generating text.
  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
  ])('layer 1 input_layernorm all %s: "non-finite" error naming the request and step 0', (_, value) =>
    failsClearly('input_layernorm', value),
  );

  it('bad Engine.load options are named before anything loads', async () => {
    const files = await loadModelFiles(folderSource(checkpoint()), { needTokenizer: true });
    const ctx = await gpu();
    await expect(Engine.load(ctx, files, { ...opts, pageSize: 0 })).rejects.toThrow(
      /Engine\.load: pageSize must be an integer in 1\.\.128, got 0/,
    );
    await expect(Engine.load(ctx, files, { ...opts, maxContext: 1e9 })).rejects.toThrow(
      /maxContext must be an integer in 1\.\.1048576/,
    );
    await expect(Engine.load(ctx, files, { ...opts, numPages: 1e7 })).rejects.toThrow(
      /Engine\.forModel: numPages must be in 1\.\.\d+ for this model on this device/,
    );
    const big = ctx.limits.maxStorageBufferBindingSize;
    const rows = Math.floor(big / (4 * 272)) + 1;
    if (rows <= 65536)
      await expect(Engine.load(ctx, files, { ...opts, maxSeqs: 2, maxLogitRows: rows })).rejects.toThrow(
        /maxLogitRows \d+ is too large/,
      );
  });
});
