/**
 * The tokenizer shipped with models/kjv-* (trained by tools/train/bpe.py) through
 * @huggingface/tokenizers: every validation line of the KJV (the chapters the models never saw)
 * must encode to exactly the ids the training script used and decode back to the same text.
 * The lines and ids come from test/fixtures/models/kjv-validation-lines.json.gz, written by
 * tools/train/train_all.py next to the models.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';

const MODELS = ['kjv-mha', 'kjv-gqa', 'kjv-mqa', 'kjv-mla'];
const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

function shipped(name: string) {
  const json = read(`models/${name}/tokenizer.json`);
  const config = JSON.parse(read(`models/${name}/tokenizer_config.json`)) as Record<string, unknown>;
  return {
    json,
    config,
    tok: loadTokenizer(json, config, { eosSources: [JSON.parse(read(`models/${name}/generation_config.json`))] }),
  };
}

const validation = JSON.parse(
  gunzipSync(readFileSync(new URL('../fixtures/models/kjv-validation-lines.json.gz', import.meta.url))).toString(
    'utf8',
  ),
) as { lines: string[]; ids: number[][] };

describe('shipped KJV tokenizer', () => {
  const { json, tok } = shipped('kjv-gqa');

  it('is the same tokenizer in every model folder', () => {
    for (const name of MODELS) expect(shipped(name).json, name).toBe(json);
  });

  it('has the vocabulary, specials and BOS the models were trained with', () => {
    expect(tok.vocabSize).toBe(2048);
    expect(tok.bosTokenId).toBe(0);
    expect(tok.eosTokenIds).toEqual([1]);
    expect(tok.isSpecial(0) && tok.isSpecial(1)).toBe(true);
    const ids = tok.encode('In the beginning');
    expect(ids[0]).toBe(0); // the post-processor adds <s>, as every training chapter starts with it
    expect(ids.length).toBeLessThan(6); // common words are single tokens
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('In the beginning');
  });

  const roundTripTitle =
    `encodes all ${validation.lines.length} validation lines ` + 'to the training ids and decodes them back exactly';
  it(roundTripTitle, () => {
    expect(validation.lines.length).toBeGreaterThan(1000);
    let tokens = 0;
    let chars = 0;
    validation.lines.forEach((line, i) => {
      const ids = tok.encode(line, { addSpecialTokens: false });
      if (ids.length !== validation.ids[i].length || ids.some((id, j) => id !== validation.ids[i][j])) {
        expect(ids, `line ${i}: ${line}`).toEqual(validation.ids[i]);
      }
      const back = tok.decode(ids);
      if (back !== line) expect(back, `line ${i}`).toBe(line);
      tokens += ids.length;
      chars += line.length;
    });
    // A trained BPE compresses: about 3.5 characters per token on KJV text (bytes would be 1).
    expect(chars / tokens).toBeGreaterThan(3);
  });

  it('streams a validation chapter back to the same text', () => {
    const text = validation.lines.slice(0, 30).join('\n');
    const ids = tok.encode(text, { addSpecialTokens: false });
    const s = tok.createStreamDecoder();
    expect(ids.map((id) => s.push(id)).join('') + s.flush()).toBe(text);
  });

  it('renders the chat template: the text after <s>, for the base model to continue', () => {
    const text = tok.applyChatTemplate([{ role: 'user', content: 'And God said' }], { addGenerationPrompt: true });
    expect(text).toBe('<s>And God said');
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(ids).toEqual(tok.encode('And God said'));
  });
});
