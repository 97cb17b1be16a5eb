import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type GgufKv, parseGguf, writeGguf } from '../../src/sources/gguf';
import {
  GgufTokenizerError,
  ggufTokenizerFiles,
  loadGgufTokenizer,
  sentencePieceMerges,
} from '../../src/tokenizer/ggufTokenizer';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { testVectors } from '../helpers/tokenizerVectors';

const ROOT = new URL('../../', import.meta.url).pathname;
const REALWORLD = `${ROOT}../shared/realworld/`;

const metadataOf = (path: string) => parseGguf(readFileSync(path), path.split('/').pop()).metadata;

describe('GGUF-built tokenizers match the Hugging Face test vectors', () => {
  // Every gguf-vocab file has vectors; the others in tokenizer-test-vectors have no GGUF here.
  const vocabs = ['llama-spm', 'phi-3', 'gpt-2', 'falcon', 'deepseek-llm'];
  const passes: Record<string, string> = {};
  for (const v of vocabs) {
    it(`ggml-vocab-${v}.gguf: every string encodes to the listed ids`, () => {
      const name = `ggml-vocab-${v}.gguf`;
      const tok = loadGgufTokenizer(metadataOf(`${REALWORLD}gguf-vocab/${name}`), name);
      const vectors = testVectors(name);
      expect(vectors.length).toBe(46);
      const failures: string[] = [];
      for (const { text, ids } of vectors) {
        const got = tok.encode(text, { addSpecialTokens: false });
        if (JSON.stringify(got) !== JSON.stringify(ids))
          failures.push(`${JSON.stringify(text)}: want ${ids} got ${got}`);
      }
      passes[v] = `${vectors.length - failures.length}/${vectors.length}`;
      console.log(`${name}: ${passes[v]} test vectors`);
      expect(failures).toEqual([]);
    });
  }
});

describe('a Qwen2 vocabulary converted as convert_hf_to_gguf.py does (vocab.json + merges.txt + added tokens)', () => {
  it('matches the Qwen2 test vectors through the qwen2 pre-tokenizer', () => {
    const dir = `${REALWORLD}Qwen2.5-0.5B-Instruct/`;
    const vocab = JSON.parse(readFileSync(`${dir}vocab.json`, 'utf8')) as Record<string, number>;
    const config = JSON.parse(readFileSync(`${dir}tokenizer_config.json`, 'utf8'));
    const added = config.added_tokens_decoder as Record<string, { content: string; special: boolean }>;
    const merges = readFileSync(`${dir}merges.txt`, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#version'));
    // the converter lists every id up to the config's vocab_size, padding the gaps with [PADn]
    const size = 151936;
    const tokens = Array.from({ length: size }, (_, i) => `[PAD${i}]`);
    const types = new Int32Array(size).fill(4);
    for (const [t, id] of Object.entries(vocab)) {
      tokens[id] = t;
      types[id] = 1;
    }
    for (const [id, t] of Object.entries(added)) {
      tokens[Number(id)] = t.content;
      types[Number(id)] = t.special ? 3 : 4;
    }
    const file = writeGguf({
      metadata: [
        ['general.architecture', { type: 'string', value: 'qwen2' }],
        ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
        ['tokenizer.ggml.pre', { type: 'string', value: 'qwen2' }],
        ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }],
        ['tokenizer.ggml.token_type', { type: 'array', itemType: 'int32', value: types }],
        ['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: merges }],
        ['tokenizer.ggml.eos_token_id', { type: 'uint32', value: 151645 }],
        ['tokenizer.ggml.bos_token_id', { type: 'uint32', value: 151643 }],
        ['tokenizer.ggml.add_bos_token', { type: 'bool', value: false }],
      ],
    });
    const tok = loadGgufTokenizer(parseGguf(file, 'qwen2.gguf').metadata, 'qwen2.gguf');
    const failures: string[] = [];
    const vectors = testVectors('ggml-vocab-qwen2.gguf');
    for (const { text, ids } of vectors) {
      const got = tok.encode(text);
      if (JSON.stringify(got) !== JSON.stringify(ids)) failures.push(`${JSON.stringify(text)}: want ${ids} got ${got}`);
    }
    console.log(
      `qwen2 (Qwen2.5 vocab.json + merges.txt): ${vectors.length - failures.length}/${vectors.length} test vectors`,
    );
    expect(failures).toEqual([]);
    expect(tok.encode('<|im_start|>user')[0]).toBe(151644);
  });
});

describe('a Llama 3 vocabulary (tiktoken ranks → merges, as transformers converts them)', () => {
  /** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest map to U+0100 and up. */
  function byteToUnicode(): string[] {
    const table: string[] = [];
    let extra = 0;
    for (let b = 0; b < 256; b++) {
      const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
      table[b] = String.fromCodePoint(printable ? b : 256 + extra++);
    }
    return table;
  }

  it('matches the Llama 3 test vectors through the llama-bpe pre-tokenizer (ignore_merges)', () => {
    // tokens as binary strings (one char per byte), rank = id
    const ranks = new Map<string, number>();
    for (const line of readFileSync(`${REALWORLD}Llama-3-tiktoken/tokenizer.model`, 'utf8').split('\n')) {
      if (!line) continue;
      const [b64, rank] = line.split(' ');
      ranks.set(Buffer.from(b64, 'base64').toString('latin1'), Number(rank));
    }
    // transformers' TikTokenConverter.extract_merges: every split of a token into two tokens,
    // ranked by the token's rank, then by the ranks of the halves
    const u = byteToUnicode();
    const uni = (s: string) => Array.from(s, (c) => u[c.charCodeAt(0)]).join('');
    const tokens: string[] = [];
    const ranked: [string, string, number, number, number][] = [];
    for (const [t, rank] of ranks) {
      tokens[rank] = uni(t);
      for (let k = 1; k < t.length; k++) {
        const l = ranks.get(t.slice(0, k));
        const r = ranks.get(t.slice(k));
        if (l !== undefined && r !== undefined) ranked.push([t.slice(0, k), t.slice(k), rank, l, r]);
      }
    }
    ranked.sort((a, b) => a[2] - b[2] || a[3] - b[3] || a[4] - b[4]);
    const merges = ranked.map(([l, r]) => `${uni(l)} ${uni(r)}`);
    const types = new Int32Array(128256).fill(1);
    for (let i = 128000; i < 128256; i++) {
      tokens[i] = `<|reserved_special_token_${i - 128000}|>`;
      types[i] = 3;
    }
    tokens[128000] = '<|begin_of_text|>';
    tokens[128001] = '<|end_of_text|>';
    const file = writeGguf({
      metadata: [
        ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
        ['tokenizer.ggml.pre', { type: 'string', value: 'llama-bpe' }],
        ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }],
        ['tokenizer.ggml.token_type', { type: 'array', itemType: 'int32', value: types }],
        ['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: merges }],
        ['tokenizer.ggml.bos_token_id', { type: 'uint32', value: 128000 }],
        ['tokenizer.ggml.eos_token_id', { type: 'uint32', value: 128001 }],
      ],
    });
    const tok = loadGgufTokenizer(parseGguf(file, 'llama-bpe.gguf').metadata, 'llama-bpe.gguf');
    const failures: string[] = [];
    const vectors = testVectors('ggml-vocab-llama-bpe.gguf');
    for (const { text, ids } of vectors) {
      const got = tok.encode(text, { addSpecialTokens: false });
      if (JSON.stringify(got) !== JSON.stringify(ids)) failures.push(`${JSON.stringify(text)}: want ${ids} got ${got}`);
    }
    console.log(
      `llama-bpe (Llama 3 tiktoken ranks): ${vectors.length - failures.length}/${vectors.length} test vectors`,
    );
    expect(failures).toEqual([]);
    // llama.cpp adds BOS for the llama3 family by default
    expect(tok.encode('Hi')[0]).toBe(128000);
  });
});

describe("the real GGUF models' tokenizers", () => {
  it('stories260K (SentencePiece): "Once upon a time" gives run.c\'s prompt ids, and decodes back', () => {
    const tok = loadGgufTokenizer(metadataOf(`${REALWORLD}gguf/stories260K-F32.gguf`));
    expect(tok.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenIds).toEqual([2]);
    expect(tok.decode([1, 403, 407, 261, 378], { skipSpecialTokens: true })).toBe('Once upon a time');
    // byte fallback: a character outside the 512 pieces goes out as <0xXX> bytes and comes back
    const ids = tok.encode('Zoë 🦙', { addSpecialTokens: false });
    expect(ids.some((id) => /^<0x[0-9A-F]{2}>$/.test(tok.idToToken(id)!))).toBe(true);
    expect(tok.decode(ids)).toBe('Zoë 🦙');
  });

  it('kjv-gqa (byte-level BPE) encodes as the shipped tokenizer.json does, with its chat template', () => {
    const md = metadataOf(`${REALWORLD}gguf/kjv-gqa-Q4_0.gguf`);
    const tok = loadGgufTokenizer(md);
    const hf = loadTokenizer(
      JSON.parse(readFileSync(`${ROOT}models/kjv-gqa/tokenizer.json`, 'utf8')),
      JSON.parse(readFileSync(`${ROOT}models/kjv-gqa/tokenizer_config.json`, 'utf8')),
    );
    expect(tok.encode('Once upon a time')).toEqual([0, 81, 112, 349, 426, 261, 784]);
    expect(tok.encode('In the beginning')).toEqual([0, 1169, 260, 1803, 1253]);
    for (const { text } of testVectors('ggml-vocab-gpt-2.gguf')) {
      expect(tok.encode(text)).toEqual(hf.encode(text));
      const ids = tok.encode(text, { addSpecialTokens: false });
      // llama.cpp cleans up spaces before punctuation for gpt-2 vocabularies; kjv's tokenizer_config does not
      expect(tok.decode(ids, { cleanUpTokenizationSpaces: false })).toBe(hf.decode(ids));
    }
    expect(tok.bosToken).toBe('<s>');
    expect(tok.eosToken).toBe('</s>');
    expect(tok.eosTokenIds).toEqual([1]);
    expect(tok.isSpecial(0)).toBe(true);
    expect(tok.chatTemplate).toBe(hf.chatTemplate);
    const messages = [
      { role: 'user', content: 'In the beginning' },
      { role: 'assistant', content: 'God created' },
    ] as const;
    expect(tok.applyChatTemplate(messages)).toBe(hf.applyChatTemplate(messages));
  });

  it('phi-3: the chat template, the eos and pad tokens from the metadata', () => {
    const md = metadataOf(`${REALWORLD}gguf-vocab/ggml-vocab-phi-3.gguf`);
    const { tokenizerConfig, eosTokenIds } = ggufTokenizerFiles(md);
    expect(tokenizerConfig).toMatchObject({ bos_token: '<s>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>' });
    expect(eosTokenIds).toEqual([32000]);
    const tok = loadGgufTokenizer(md);
    expect(tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true })).toBe(
      '<s><|user|>\nhi<|end|>\n<|assistant|>\n',
    );
    // control tokens in the text are matched whole
    expect(tok.encode('<|user|>', { addSpecialTokens: false })).toEqual([tok.tokenToId('<|user|>')]);
  });
});

describe('sentencePieceMerges', () => {
  it("the worked example: ranked by the merged piece's score, then the longer left half", () => {
    const tokens = ['a', 'b', 'ab', 'abb', 'bb'];
    expect(sentencePieceMerges(tokens, [-1, -2, -3, -4, -5])).toEqual([
      ['a', 'b'],
      ['ab', 'b'],
      ['a', 'bb'],
      ['b', 'b'],
    ]);
    // only pieces of type normal are merge results
    expect(sentencePieceMerges(tokens, [-1, -2, -3, -4, -5], [1, 1, 3, 1, 1])).toEqual([
      ['ab', 'b'],
      ['a', 'bb'],
      ['b', 'b'],
    ]);
  });
});

describe('GGUF tokenizer metadata errors name the key', () => {
  const kv = (type: GgufKv['type'], value: unknown, itemType?: string) => ({ type, value, itemType });
  const base = () =>
    new Map<string, { type: string; itemType?: string; value: unknown }>([
      ['tokenizer.ggml.model', kv('string', 'gpt2')],
      ['tokenizer.ggml.pre', kv('string', 'gpt-2')],
      ['tokenizer.ggml.tokens', kv('array', ['a', 'b', 'ab'], 'string')],
      ['tokenizer.ggml.merges', kv('array', ['a b'], 'string')],
    ]);
  it('a minimal byte-level vocabulary loads', () => {
    const tok = loadGgufTokenizer(base(), 'min.gguf');
    expect(tok.encode('ab')).toEqual([2]);
  });
  const cases: [string, (m: ReturnType<typeof base>) => void, string][] = [
    ['no model', (m) => m.delete('tokenizer.ggml.model'), 'min.gguf: GGUF metadata tokenizer.ggml.model: is required'],
    [
      'unknown model',
      (m) => m.set('tokenizer.ggml.model', kv('string', 't5')),
      'tokenizer.ggml.model: "t5" is not supported',
    ],
    [
      'unknown pre',
      (m) => m.set('tokenizer.ggml.pre', kv('string', 'nope')),
      'tokenizer.ggml.pre: "nope" is not supported (supported: default,',
    ],
    ['no tokens', (m) => m.delete('tokenizer.ggml.tokens'), 'tokenizer.ggml.tokens: is required and must not be empty'],
    [
      'tokens not strings',
      (m) => m.set('tokenizer.ggml.tokens', kv('array', new Int32Array(2), 'int32')),
      'must be an array of string, got int32',
    ],
    ['no merges', (m) => m.delete('tokenizer.ggml.merges'), 'tokenizer.ggml.merges: is required for a gpt2'],
    [
      'bad merge',
      (m) => m.set('tokenizer.ggml.merges', kv('array', ['ab'], 'string')),
      'tokenizer.ggml.merges[0]: "ab" is not "left right"',
    ],
    [
      'token types of the wrong length',
      (m) => m.set('tokenizer.ggml.token_type', kv('array', new Int32Array(2), 'int32')),
      'tokenizer.ggml.token_type: has 2 entries for 3 tokens',
    ],
    [
      'bool of the wrong type',
      (m) => m.set('tokenizer.ggml.add_bos_token', kv('uint8', 1)),
      'add_bos_token: must be a bool, got a uint8',
    ],
  ];
  for (const [what, edit, message] of cases) {
    it(what, () => {
      const m = base();
      edit(m);
      expect(() => loadGgufTokenizer(m, 'min.gguf')).toThrow(GgufTokenizerError);
      expect(() => loadGgufTokenizer(m, 'min.gguf')).toThrow(message);
    });
  }
});
