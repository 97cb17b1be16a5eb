/** A tiny byte-level BPE tokenizer (GPT-2 byte map, a few merges, ChatML specials) for tests. */
// GPT-2's bytes_to_unicode: every byte gets a printable character (printable Latin-1 bytes map to
// themselves, the rest to U+0100 upwards), e.g. ' ' (0x20) → 'Ġ', 0xA0 → 'ł'.
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    map[b] = printable.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + extra++);
  }
  return map;
}
export const BYTE = bytesToUnicode();
export const chars = (text: string) => Array.from(new TextEncoder().encode(text), (b) => BYTE[b]).join('');

// A tiny byte-level BPE in tokenizer.json form: ids 0..255 are the bytes (id = byte value), then
// one token per merge, then the added special tokens. The merges build 'Hello', ' world', the
// whole of '你' (E4 BD A0) and only the first two bytes of '👋' (F0 9F | 91 | 8B), so the emoji
// stays split over three tokens.
export const MERGES: [string, string][] = [
  ['Ġ', 'w'],
  ['l', 'l'],
  ['ll', 'o'],
  ['H', 'e'],
  ['He', 'llo'],
  ['o', 'r'],
  ['Ġw', 'or'],
  ['l', 'd'],
  ['Ġwor', 'ld'],
  [chars('你')[0], chars('你')[1]],
  [chars('你').slice(0, 2), chars('你')[2]],
  [BYTE[0xf0], BYTE[0x9f]],
];
export const vocab: Record<string, number> = {};
BYTE.forEach((c, b) => (vocab[c] = b));
for (const [a, b] of MERGES) vocab[a + b] = Object.keys(vocab).length;
export const BASE = Object.keys(vocab).length; // 268
export const SPECIAL = ['<|begin_of_text|>', '<|endoftext|>', '<|im_start|>', '<|im_end|>'];
export const ID = Object.fromEntries(SPECIAL.map((t, i) => [t, BASE + i])) as Record<string, number>;

export const tokenizerJson = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: SPECIAL.map((content, i) => ({
    id: BASE + i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  })),
  normalizer: null,
  pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  // Llama-3's shape: byte-level offsets, then a template that puts BOS first.
  post_processor: {
    type: 'Sequence',
    processors: [
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [
          { SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } },
          { Sequence: { id: 'B', type_id: 1 } },
        ],
        special_tokens: {
          '<|begin_of_text|>': {
            id: '<|begin_of_text|>',
            ids: [ID['<|begin_of_text|>']],
            tokens: ['<|begin_of_text|>'],
          },
        },
      },
    ],
  },
  decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: {
    type: 'BPE',
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: false,
    vocab,
    merges: MERGES.map(([a, b]) => `${a} ${b}`),
  },
};

export const tokenizerConfig = {
  bos_token: '<|begin_of_text|>',
  eos_token: { content: '<|im_end|>', lstrip: false, rstrip: false, normalized: false, single_word: false },
  clean_up_tokenization_spaces: false,
  chat_template:
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + " +
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
};
