/**
 * Tokenizer files of real repos as they are (../shared/realworld): a re-saved TinyLlama keeps its
 * template only in chat_template.jinja; Phi-3.5 stops on `<|end|>`, which only generation_config.json names.
 */
import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { writeSafetensors } from '../../src/sources/safetensors';
import { loadTokenizer, tokenizerFromModelFiles } from '../../src/tokenizer/tokenizer';

const REALWORLD = join(__dirname, '..', '..', '..', 'shared', 'realworld');

/** A folder holding the repo's own text files and a one-tensor model.safetensors (the repos ship no small weights). */
function repoFolder(repo: string, files: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'webattn-repo-'));
  for (const f of files) copyFileSync(join(REALWORLD, repo, f), join(dir, f));
  const weights = writeSafetensors({ w: { dtype: 'F32', shape: [1], data: new Float32Array(1) } });
  writeFileSync(join(dir, 'model.safetensors'), weights);
  return dir;
}

describe.skipIf(!existsSync(REALWORLD))('real repos: chat template files and stop tokens', () => {
  it('re-saved TinyLlama: the template comes from chat_template.jinja', async () => {
    const files = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];
    files.push('chat_template.jinja');
    const m = await loadModelFiles(folderSource(repoFolder('TinyLlama-1.1B-Chat-v1.0', files)));
    expect(m.chatTemplateFile).toBe('chat_template.jinja');
    const tok = tokenizerFromModelFiles(m);
    expect(tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true })).toBe(
      '<|user|>\nHi</s>\n<|assistant|>\n',
    );
  });

  it('Phi-3.5: tokenizerFromModelFiles stops on <|end|>, as generation_config.json says', async () => {
    const files = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];
    const m = await loadModelFiles(folderSource(repoFolder('Phi-3.5-mini-instruct', files)));
    const tok = tokenizerFromModelFiles(m);
    const end = tok.tokenToId('<|end|>')!;
    expect(end).toBe(32007);
    expect(tok.eosTokenIds).toEqual(expect.arrayContaining([32000, 32001, 32007]));
    // The documented trap: tokenizer_config.json names only <|endoftext|>.
    const plain = loadTokenizer(m.tokenizer as object, m.tokenizerConfig as object);
    expect(plain.eosTokenIds).toEqual([32000]);
  });
});
