import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';

import { BASE, BYTE, chars, ID, SPECIAL, tokenizerConfig, tokenizerJson, vocab } from '../helpers/tinyTokenizer';

const tok = loadTokenizer(tokenizerJson, tokenizerConfig);

const SAMPLES = [
  'Hello world',
  'Hello world! Hello, world.',
  '  leading and trailing spaces  \n\ttabs\n',
  '你好，世界',
  '你你你 你',
  'wave 👋 and 👋🏽 and a family 👨‍👩‍👧 done',
  'naïve café – 5 € · ∑ ∞',
  'mixed: Hello 你 👋 world',
];

function streamAll(ids: number[], skipSpecialTokens = false): string[] {
  const stream = tok.createStreamDecoder({ skipSpecialTokens });
  const pieces = ids.map((id) => stream.push(id));
  pieces.push(stream.flush());
  return pieces;
}

describe('loadTokenizer: byte-level BPE', () => {
  it('applies the merges: exact ids for known words', () => {
    expect(tok.encode('Hello world', { addSpecialTokens: false })).toEqual([vocab['Hello'], vocab['Ġworld']]);
    expect(tok.encode('你', { addSpecialTokens: false })).toEqual([vocab[chars('你')]]);
    // The emoji: one merged token for its first two bytes, then its last two bytes alone.
    expect(tok.encode('👋', { addSpecialTokens: false })).toEqual([vocab[BYTE[0xf0] + BYTE[0x9f]], 0x91, 0x8b]);
  });

  it('adds BOS through the post-processor unless told not to', () => {
    expect(tok.encode('Hello')).toEqual([ID['<|begin_of_text|>'], vocab['Hello']]);
    expect(tok.encode('Hello', { addSpecialTokens: false })).toEqual([vocab['Hello']]);
    expect(tok.bosToken).toBe('<|begin_of_text|>');
    expect(tok.bosTokenId).toBe(ID['<|begin_of_text|>']);
  });

  it('round-trips ASCII, CJK, emoji (incl. skin tone and ZWJ sequences) and accents', () => {
    for (const text of SAMPLES) {
      const ids = tok.encode(text, { addSpecialTokens: false });
      expect(tok.decode(ids)).toBe(text);
      expect(tok.decode(tok.encode(text), { skipSpecialTokens: true })).toBe(text);
    }
  });

  it('round-trips any Unicode text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => {
        expect(tok.decode(tok.encode(text, { addSpecialTokens: false }))).toBe(text);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps special tokens whole and can skip them when decoding', () => {
    const text = '<|im_start|>user\nHello<|im_end|>';
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(ids[0]).toBe(ID['<|im_start|>']);
    expect(ids[ids.length - 1]).toBe(ID['<|im_end|>']);
    expect(ids).toContain(vocab['Hello']);
    expect(tok.decode(ids)).toBe(text);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('user\nHello');
    expect(tok.isSpecial(ID['<|im_end|>'])).toBe(true);
    expect(tok.isSpecial(vocab['Hello'])).toBe(false);
    expect(tok.tokenToId('<|endoftext|>')).toBe(ID['<|endoftext|>']);
    expect(tok.idToToken(vocab['Ġworld'])).toBe('Ġworld');
  });

  it('decodes an empty list to the empty string', () => {
    expect(tok.decode([])).toBe('');
    expect(tok.decode([ID['<|im_end|>']], { skipSpecialTokens: true })).toBe('');
  });

  it('reports vocab size and EOS ids from the config, generation config and model config', () => {
    expect(tok.vocabSize).toBe(BASE + SPECIAL.length);
    expect(tok.eosToken).toBe('<|im_end|>');
    expect(tok.eosTokenIds).toEqual([ID['<|im_end|>']]);
    const withGen = loadTokenizer(tokenizerJson, tokenizerConfig, {
      eosSources: [
        { eos_token_id: [ID['<|endoftext|>'], ID['<|im_end|>']] },
        { eos_token_id: ID['<|im_start|>'] },
        null,
      ],
    });
    expect([...withGen.eosTokenIds].sort((a, b) => a - b)).toEqual([
      ID['<|endoftext|>'],
      ID['<|im_start|>'],
      ID['<|im_end|>'],
    ]);
  });

  it('without tokenizer_config: BOS from the post-processor, EOS from well-known names', () => {
    const bare = loadTokenizer(JSON.stringify(tokenizerJson));
    expect(bare.bosTokenId).toBe(ID['<|begin_of_text|>']);
    expect([...bare.eosTokenIds].sort((a, b) => a - b)).toEqual([ID['<|endoftext|>'], ID['<|im_end|>']]);
    expect(bare.chatTemplate).toBeNull();
    expect(() => bare.applyChatTemplate([{ role: 'user', content: 'x' }])).toThrow(/no chat_template/);
  });

  it('renders its own chat template with its special tokens', () => {
    const prompt = tok.applyChatTemplate([{ role: 'user', content: 'Hello' }], { addGenerationPrompt: true });
    expect(prompt).toBe('<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n');
    const ids = tok.encode(prompt, { addSpecialTokens: false });
    expect(ids.filter((id) => tok.isSpecial(id))).toEqual([ID['<|im_start|>'], ID['<|im_end|>'], ID['<|im_start|>']]);
  });

  it('names the file when tokenizer.json is malformed', () => {
    expect(() => loadTokenizer('{ not json')).toThrow(/tokenizer\.json is not valid JSON/);
    expect(() => loadTokenizer('[1, 2]')).toThrow(/tokenizer\.json must hold a JSON object/);
    expect(() => loadTokenizer({ model: { type: 'NoSuchModel' } })).toThrow(/tokenizer\.json could not be loaded/);
  });
});

describe('createStreamDecoder', () => {
  it('emits exactly the full text, piece by piece', () => {
    for (const text of SAMPLES) {
      const ids = tok.encode(text, { addSpecialTokens: false });
      const pieces = streamAll(ids);
      expect(pieces.join('')).toBe(text);
      for (const piece of pieces) expect(piece).not.toContain('\uFFFD');
    }
  });

  it('holds back a character split over byte tokens until its last byte', () => {
    const ids = tok.encode('a👋b', { addSpecialTokens: false });
    expect(ids).toEqual([vocab['a'], vocab[BYTE[0xf0] + BYTE[0x9f]], 0x91, 0x8b, vocab['b']]);
    expect(streamAll(ids)).toEqual(['a', '', '', '👋', 'b', '']);
  });

  it('holds back a CJK character fed one byte at a time', () => {
    const bytes = Array.from(new TextEncoder().encode('x你好'));
    expect(streamAll(bytes)).toEqual(['x', '', '', '你', '', '', '好', '']);
  });

  it('keeps spaces that the decoder joins across tokens', () => {
    const ids = tok.encode('Hello world world', { addSpecialTokens: false });
    expect(streamAll(ids)).toEqual(['Hello', ' world', ' world', '']);
  });

  it('passes special tokens through, or skips them', () => {
    const ids = [ID['<|im_start|>'], ...tok.encode('Hi 你', { addSpecialTokens: false }), ID['<|im_end|>']];
    expect(streamAll(ids).join('')).toBe('<|im_start|>Hi 你<|im_end|>');
    expect(streamAll(ids, true).join('')).toBe('Hi 你');
  });

  it('flush releases an incomplete character at the end as U+FFFD', () => {
    const stream = tok.createStreamDecoder();
    expect(stream.push(vocab['a'])).toBe('a');
    expect(stream.push(vocab[BYTE[0xf0] + BYTE[0x9f]])).toBe('');
    expect(stream.flush()).toBe('\uFFFD');
    expect(stream.flush()).toBe('');
  });

  it('matches decode() on any text, whatever the split', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 12 }), { maxLength: 5 }), (parts) => {
        const text = parts.join(' ');
        const ids = tok.encode(text, { addSpecialTokens: false });
        const pieces = streamAll(ids);
        expect(pieces.join('')).toBe(text);
      }),
      { numRuns: 200 },
    );
  });
});

// A Llama-2 / SentencePiece style tokenizer: Metaspace ('▁') words, byte fallback (<0xE4>) for
// characters outside the vocab, and a decoder that strips the first leading space. The stream
// decoder has to keep spaces between words although each decode on its own strips one.
describe('createStreamDecoder: Metaspace with byte fallback', () => {
  const pieces = ['▁', 'H', 'e', 'l', 'o', 'w', 'r', 'd'];
  const merges: [string, string][] = [
    ['l', 'l'],
    ['▁', 'H'],
    ['▁H', 'e'],
    ['▁He', 'll'],
    ['▁Hell', 'o'],
    ['▁', 'w'],
    ['o', 'r'],
    ['▁w', 'or'],
    ['l', 'd'],
    ['▁wor', 'ld'],
  ];
  const spVocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) spVocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  for (const p of pieces) spVocab[p] = Object.keys(spVocab).length;
  for (const [a, b] of merges) spVocab[a + b] = Object.keys(spVocab).length;
  const sp = loadTokenizer(
    {
      added_tokens: ['<unk>', '<s>', '</s>'].map((content, id) => ({
        id,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: {
        type: 'Sequence',
        normalizers: [
          { type: 'Prepend', prepend: '▁' },
          { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
        ],
      },
      pre_tokenizer: null,
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [],
        special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
      },
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
          { type: 'ByteFallback' },
          { type: 'Fuse' },
          { type: 'Strip', content: ' ', start: 1, stop: 0 },
        ],
      },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: '<unk>',
        fuse_unk: true,
        byte_fallback: true,
        vocab: spVocab,
        merges: merges.map(([a, b]) => `${a} ${b}`),
      },
    },
    { bos_token: '<s>', eos_token: '</s>', add_bos_token: true },
  );

  it('encodes words and falls back to bytes for CJK', () => {
    expect(sp.encode('Hello world 你')).toEqual([
      1,
      spVocab['▁Hello'],
      spVocab['▁world'],
      spVocab['▁'],
      3 + 0xe4,
      3 + 0xbd,
      3 + 0xa0,
    ]);
    expect(sp.decode(sp.encode('Hello world 你'), { skipSpecialTokens: true })).toBe('Hello world 你');
    expect(sp.bosTokenId).toBe(1);
    expect(sp.eosTokenIds).toEqual([2]);
  });

  it('streams the same text, spaces and split characters included', () => {
    const text = 'Hello world 你好 Hello 👋 world';
    const ids = sp.encode(text, { addSpecialTokens: false });
    const stream = sp.createStreamDecoder();
    const out = ids.map((id) => stream.push(id));
    out.push(stream.flush());
    expect(out.join('')).toBe(sp.decode(ids));
    expect(out.join('')).toBe(text);
    expect(out.slice(0, 3)).toEqual(['Hello', ' world', ' ']);
    for (const piece of out) expect(piece).not.toContain('\uFFFD');
  });
});
