/**
 * `webattn generate` with several --prompt flags and --json: every prompt is served by the engine
 * in one batch, and each JSON line equals what the single-prompt path streams for that prompt.
 */
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/model/config';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { configs, randomWeights, writeCheckpoint } from '../helpers/tinyModels';
import { ID, tokenizerConfig, tokenizerJson } from '../helpers/tinyTokenizer';

const root = path.resolve(__dirname, '../..');
const tokenizer = loadTokenizer(tokenizerJson, tokenizerConfig);
const config = { ...configs.llama, vocab_size: tokenizer.vocabSize, eos_token_id: ID['<|im_end|>'] };
const dir = writeCheckpoint(config, randomWeights(parseConfig(config)));
writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function webattn(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(root, 'bin/webattn.js'), ...args],
      { cwd: root, timeout: 200_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

const common = [
  '--model',
  dir,
  '--temperature',
  '0',
  '--max-new-tokens',
  '6',
  '--weight-dtype',
  'f32',
  '--kv-dtype',
  'f32',
];

describe('webattn generate with several prompts', () => {
  it('--json prints one object per prompt, each equal to its single-prompt run', async () => {
    const prompts = ['hello world', 'Hello', 'a much longer prompt than the others, with more words in it'];
    const batch = await webattn(['generate', ...common, ...prompts.flatMap((p) => ['--prompt', p]), '--json']);
    expect(batch.code, batch.stderr).toBe(0);
    const lines = batch.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.prompt)).toEqual(prompts);
    expect(batch.stderr).toMatch(/3 prompts, \d+ tokens .* batched decode [\d.-]+ tok\/s/);
    for (const i of [0, 2]) {
      const p = prompts[i];
      const single = await webattn(['generate', ...common, '--prompt', p]);
      expect(single.code, single.stderr).toBe(0);
      expect(lines[i].text).toBe(single.stdout.replace(/\n$/, ''));
      expect(lines[i].ids.length).toBeGreaterThan(0);
      expect(
        tokenizer.decode(
          lines[i].ids.filter((t: number) => t !== ID['<|im_end|>']),
          { skipSpecialTokens: true },
        ),
      ).toBe(lines[i].text);
      expect(lines[i].usage.promptTokens).toBe(tokenizer.encode(p).length);
      expect(['stop', 'length']).toContain(lines[i].finishReason);
    }
    const plain = await webattn(['generate', ...common, '--prompt', prompts[0], '--prompt', prompts[1]]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toBe(`--- prompt 1\n${lines[0].text}\n--- prompt 2\n${lines[1].text}\n`);
  });

  it('usage errors exit 2 with one line', async () => {
    const r = await webattn(['generate', '--model', dir, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('webattn generate: --prompt is required');
  });
});
