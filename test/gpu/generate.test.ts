/**
 * Generation end to end on a tiny random llama with a real tokenizer.json: greedy output equals the
 * float64 reference's greedy continuation token for token (generate() over a model, and generateText
 * over an engine: the same loop); abort frees the sequence; and the CLI
 * (`webattn logits`, `webattn info`, `webattn generate`) on the same folder; `webattn logits` on a
 * tiny DeepSeek (MLA) checkpoint.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/model/config';
import { Engine } from '../../src/engine/engine';
import { generate, generateText, type GenerateStats } from '../../src/engine/generate';
import { Transformer } from '../../src/model/transformer';
import { referenceForward } from '../../src/reference/transformer';
import { relL2 } from '../../src/reference/attention';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { parseSafetensors, readTensorF32 } from '../../src/sources/safetensors';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { configs, lookup, randomWeights, writeCheckpoint } from '../helpers/tinyModels';
import { ID, tokenizerConfig, tokenizerJson } from '../helpers/tinyTokenizer';
import { gpu } from './harness';

const tokenizer = loadTokenizer(tokenizerJson, tokenizerConfig);
const config = { ...configs.llama, vocab_size: tokenizer.vocabSize, eos_token_id: ID['<|im_end|>'] };
const spec = parseConfig(config);
const weights = randomWeights(spec);
const dir = writeCheckpoint(config, weights);
writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** The reference's greedy continuation (stops at EOS like generate does). */
function referenceGreedy(prompt: number[], n: number): number[] {
  const ids = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const logits = referenceForward(spec, lookup(weights), ids);
    const next = argmax(logits.subarray((ids.length - 1) * spec.vocabSize, ids.length * spec.vocabSize));
    out.push(next);
    if (tokenizer.eosTokenIds.includes(next)) break;
    ids.push(next);
  }
  return out;
}

const webattn = (args: string[]) =>
  spawnSync(process.execPath, ['bin/webattn.js', ...args], { encoding: 'utf8', timeout: 240_000, env: process.env });

describe('generate', () => {
  const prompt = tokenizer.encode('hello world', { addSpecialTokens: false });

  it('greedy decoding streams exactly the reference greedy continuation', async () => {
    const model = await Transformer.load(
      await gpu(),
      await loadModelFiles(folderSource(dir), { needTokenizer: true }),
      {
        weightDtype: 'f32',
        kvDtype: 'f32',
        maxSeqs: 2,
        maxContext: 64,
      },
    );
    try {
      const want = referenceGreedy(prompt, 12);
      const stats: Partial<GenerateStats> = {};
      let text = '';
      for await (const piece of generate(model, tokenizer, prompt, { temperature: 0, maxNewTokens: 12 }, stats))
        text += piece;
      const wantText = tokenizer.decode(
        want.filter((t) => !tokenizer.eosTokenIds.includes(t)),
        { skipSpecialTokens: true },
      );
      expect(text).toBe(wantText);
      expect(stats.generatedTokens).toBe(want.length);

      const engine = await Engine.forModel(model, tokenizer);
      try {
        const again: Partial<GenerateStats> = {};
        let text2 = '';
        const greedy = { temperature: 0, maxNewTokens: 12 };
        for await (const piece of generateText(engine, prompt, greedy, again)) text2 += piece;
        expect(text2).toBe(wantText);
        expect(again.generatedTokens).toBe(want.length);
        expect(engine.scheduler.cache.stats().usedPages).toBe(0); // the sequence was freed

        const controller = new AbortController();
        let pieces = 0;
        const opts = { temperature: 0.8, seed: 3, maxNewTokens: 40, signal: controller.signal };
        for await (const _ of generateText(engine, prompt, opts)) {
          pieces++;
          controller.abort();
        }
        expect(pieces).toBeLessThanOrEqual(1);
        expect(engine.scheduler.cache.stats().usedPages).toBe(0);
      } finally {
        engine.dispose();
      }
      await expect(async () => {
        for await (const _ of generate(model, tokenizer, prompt, { maxNewTokens: 64 })) void _;
      }).rejects.toThrow(/pass the context of 64/);
    } finally {
      model.destroy();
    }
  });

  it('webattn logits, info and generate on the same folder', () => {
    const ids = [5, 77, 120, 9, 31, 200, 3];
    const out = join(dir, 'logits.safetensors');
    const r = webattn(['logits', '--model', dir, '--ids', ids.join(','), '--mode', 'chunked:3', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const logits = readTensorF32(parseSafetensors(new Uint8Array(readFileSync(out)), out), 'logits');
    expect(relL2(logits, referenceForward(spec, lookup(weights), ids))).toBeLessThan(1e-3);

    const bad = webattn(['logits', '--model', dir, '--ids', '5,9999', '--out', out]);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n').at(-1)).toMatch(/9999 is outside the vocabulary/);

    const info = webattn(['info', '--model', dir, '--context', '1000']);
    expect(info.status, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/attention: GQA, 4 query heads, 2 KV heads of 8/);
    expect(info.stdout).toMatch(/KV per token: 128 bytes in f16/); // 2 layers x 2 heads x (8 + 8) x 2 bytes

    const gen = webattn([
      'generate',
      '--model',
      dir,
      '--prompt',
      'hello world',
      '--temperature',
      '0',
      '--max-new-tokens',
      '6',
      '--weight-dtype',
      'f32',
      '--kv-dtype',
      'f32',
    ]);
    expect(gen.status, gen.stderr).toBe(0);
    const want = referenceGreedy(tokenizer.encode('hello world'), 6);
    expect(gen.stdout.replace(/\n$/, '')).toBe(
      tokenizer.decode(
        want.filter((t) => !tokenizer.eosTokenIds.includes(t)),
        { skipSpecialTokens: true },
      ),
    );
    expect(gen.stderr).toMatch(/decode \d+ tokens at [\d.-]+ tok\/s/);
  });

  it('webattn logits on an MLA checkpoint (config.json and weights only)', () => {
    const mlaConfig = configs.deepseekV3;
    const mlaSpec = parseConfig(mlaConfig);
    const mlaWeights = randomWeights(mlaSpec);
    const mlaDir = writeCheckpoint(mlaConfig, mlaWeights);
    const ids = [5, 17, 2, 30, 9, 11];
    const out = join(mlaDir, 'logits.safetensors');
    const r = webattn([
      'logits',
      '--model',
      mlaDir,
      '--ids',
      ids.join(','),
      '--mode',
      'decode',
      '--weight-dtype',
      'f32',
      '--kv-dtype',
      'f32',
      '--out',
      out,
    ]);
    expect(r.status, r.stderr).toBe(0);
    const logits = readTensorF32(parseSafetensors(new Uint8Array(readFileSync(out)), out), 'logits');
    expect(relL2(logits, referenceForward(mlaSpec, lookup(mlaWeights), ids))).toBeLessThan(1e-3);
  });
});
