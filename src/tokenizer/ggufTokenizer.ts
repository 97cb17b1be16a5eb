/**
 * A GGUF file's tokenizer (`tokenizer.ggml.*` metadata) as the tokenizer.json + tokenizer_config.json
 * that Hugging Face's converters write for the same vocabulary, loaded through tokenizer.ts, so a
 * GGUF model encodes text exactly as its Hugging Face original does.
 *
 *   tokenizer.ggml.model "llama" (SentencePiece BPE, scores, <0xXX> byte fallback) → a BPE model
 *     with byte_fallback whose merges are generated from the scores as transformers'
 *     SentencePieceExtractor does: every split (l, r) of a piece p with l and r in the vocabulary,
 *     ranked by p's score (highest first), then by the lengths of l and r (longest first); the
 *     normalizer turns ' ' into '▁' and, with add_space_prefix (default true), prepends '▁' to each
 *     run of text between special tokens, as llama.cpp and the legacy Llama tokenizer.json do.
 *   tokenizer.ggml.model "gpt2" (byte-level BPE) → a BPE model on tokenizer.ggml.merges, pre-split by
 *     the regexes llama.cpp uses for `tokenizer.ggml.pre` (gpt-2 style ones through ByteLevel's own).
 *   token types (tokenizer.ggml.token_type): 1 normal, 2 unknown, 3 control, 4 user defined,
 *     5 unused, 6 byte. Unknown and control tokens become special added tokens, user-defined ones
 *     plain added tokens (both matched in the text before the model runs, as llama.cpp does).
 *   bos / eos / unk / pad ids, add_bos_token / add_eos_token (defaults as llama.cpp: SPM adds BOS;
 *     BPE adds it only for the llama3 family), tokenizer.chat_template.
 *   general.name naming Phi-3: its special tokens strip the whitespace after them, as llama.cpp does.
 * The layers forbid this file to import src/sources, so it takes any Map-like of { type, value }:
 * a GgufHeader's `metadata` fits.
 */
import { loadTokenizer, type Tokenizer } from './tokenizer';

/** What this file needs of a GGUF metadata entry (src/sources/gguf.ts GgufKv is one). */
export interface GgufMetadataEntry {
  type: string;
  itemType?: string;
  value: unknown;
}
export interface GgufMetadataLike {
  get(key: string): GgufMetadataEntry | undefined;
}

export class GgufTokenizerError extends Error {
  override name = 'GgufTokenizerError';
}

export const GGUF_TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

// llama.cpp's split regexes (llama-vocab.cpp, llm_tokenizer_bpe), one list per pre-tokenizer type.
// Each regex splits every piece the previous ones left into matches and the text between them.
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
// The Hugging Face tokenizer.json regexes (llama.cpp spells (?i:...) out by hand; this is the original).
const LLAMA3 =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" +
  '\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';
const QWEN2 =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" +
  '\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';
const DEEPSEEK_LLM = [
  '[\r\n]',
  '\\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-' +
    '\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-' +
    '\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-' +
    '\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}' +
    '\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-' +
    '\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-' +
    '\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}' +
    '\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}' +
    '\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}' +
    '\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-' +
    '\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}' +
    '\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-' +
    '\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+',
  '\\s?[\u{21}-\u{2F}\u{3A}-\u{7E}\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+',
  '\\s+$',
  '[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+',
  '\\p{N}+',
];
const DEEPSEEK_CODER = [
  '[\r\n]',
  '\\s?\\p{L}+',
  '\\s?\\p{P}+',
  '[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+',
  '\\p{N}',
];
const DEEPSEEK_V3 = [
  '\\p{N}{1,3}',
  '[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+',
  '[!"#$%&\'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|' +
    ' ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+',
];
const FALCON = ['[\\p{P}\\$\\+<=>\\^~\\|`]+', GPT2, '[0-9][0-9][0-9]'];
const STARCODER = ['\\p{N}', GPT2];
const BLOOM = [' ?[^(\\s|.,!?…。，、।۔،)]+'];
const DEFAULT = ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]'];

interface PreType {
  /** Split regexes, or 'byte-level' for ByteLevel's own GPT-2 regex. */
  split: readonly string[] | 'byte-level';
  /** A word that is a whole token skips the merges (HF ignore_merges). */
  ignoreMerges?: boolean;
  /** llama.cpp adds BOS by default for this type. */
  addBos?: boolean;
  /** llama.cpp's clean_spaces (default true for BPE): decode removes spaces before punctuation. */
  cleanSpaces?: boolean;
  /** The Hugging Face tokenizer.json has an NFC normalizer (Qwen2). */
  nfc?: boolean;
}

/** tokenizer.ggml.pre → how llama.cpp pre-tokenizes (names as llama-vocab.cpp accepts them). */
const PRE_TYPES: Record<string, PreType> = {};
const define = (names: string[], t: PreType) => {
  for (const n of names) PRE_TYPES[n] = t;
};
define(['default'], { split: DEFAULT });
define(['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2'], {
  split: [LLAMA3],
  ignoreMerges: true,
  addBos: true,
});
define(['dbrx', 'smaug-bpe'], { split: [LLAMA3] });
define(['deepseek-llm'], { split: DEEPSEEK_LLM, cleanSpaces: false });
define(['deepseek-coder'], { split: DEEPSEEK_CODER, cleanSpaces: false });
define(['deepseek-v3'], { split: DEEPSEEK_V3, cleanSpaces: false });
define(['falcon'], { split: FALCON });
define([
  'gpt-2',
  'phi-2',
  'mpt',
  'olmo',
  'jais',
  'jina-es',
  'jina-de',
  'gigachat',
  'jina-v2-es',
  'jina-v2-de',
  'exaone4',
], {
  split: 'byte-level',
});
define(['starcoder', 'refact', 'codeshell', 'exaone', 'minerva-7b'], { split: STARCODER });
define(['command-r', 'smollm'], { split: STARCODER, cleanSpaces: false });
define(['qwen2', 'deepseek-r1-qwen', 'megrez'], { split: [QWEN2], cleanSpaces: false, nfc: true });
define(['stablelm2'], { split: [QWEN2] });
define(['poro-chat'], { split: BLOOM, cleanSpaces: false });
define(['bloom', 'gpt3-finnish'], { split: BLOOM });
define(['viking'], { split: [...BLOOM, '\\p{N}'], cleanSpaces: false });
export const GGUF_PRE_TOKENIZERS: readonly string[] = Object.keys(PRE_TYPES);

/** Typed metadata access; errors name the key. */
class Meta {
  constructor(
    readonly m: GgufMetadataLike,
    readonly source: string,
  ) {}
  fail(key: string, why: string): never {
    throw new GgufTokenizerError(`${this.source}: GGUF metadata ${key}: ${why}`);
  }
  entry(key: string, type?: string): GgufMetadataEntry | undefined {
    const e = this.m.get(key);
    if (e !== undefined && type !== undefined && e.type !== type) this.fail(key, `must be a ${type}, got a ${e.type}`);
    return e;
  }
  str(key: string): string | undefined {
    return this.entry(key, 'string')?.value as string | undefined;
  }
  bool(key: string): boolean | undefined {
    return this.entry(key, 'bool')?.value as boolean | undefined;
  }
  id(key: string, vocabSize: number): number | undefined {
    const e = this.entry(key);
    if (e === undefined) return undefined;
    const v = typeof e.value === 'bigint' ? Number(e.value) : e.value;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
      this.fail(key, `must be a token id, got ${String(e.value)}`);
    // llama.cpp ignores an id past the vocabulary (with a warning); so does this.
    return v < vocabSize ? v : undefined;
  }
  array(key: string, itemTypes: readonly string[]): ArrayLike<unknown> | undefined {
    const e = this.entry(key, 'array');
    if (e === undefined) return undefined;
    if (!itemTypes.includes(e.itemType ?? ''))
      this.fail(key, `must be an array of ${itemTypes.join(' or ')}, got ${e.itemType}`);
    return e.value as ArrayLike<unknown>;
  }
}

/** A vocabulary map that keeps '__proto__' and friends as keys; a repeated token keeps its last id (llama.cpp). */
function vocabObject(tokens: readonly string[]): Record<string, number> {
  const vocab: Record<string, number> = Object.create(null);
  tokens.forEach((t, i) => {
    vocab[t] = i;
  });
  return vocab;
}

/**
 * transformers' generate_merges (convert_slow_tokenizer.py) for a SentencePiece BPE vocabulary:
 * for each piece in id order, its splits (l, r) with both halves in the vocabulary, sorted by
 * (id of l, id of r); then all of them, stably, by (score of the piece, length of l, length of r),
 * highest first. Lengths are in code points. Only pieces of type normal are merge results.
 * Worked example: pieces a(-1) b(-2) ab(-3) abb(-4) bb(-5) → merges [a b], [ab b], [a bb]:
 * "ab" first (score -3), then "abb"'s two splits, the longer left half first.
 */
export function sentencePieceMerges(
  tokens: readonly string[],
  scores: ArrayLike<number>,
  types?: ArrayLike<number>,
): [string, string][] {
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (!ids.has(t)) ids.set(t, i);
  });
  interface Merge {
    l: string;
    r: string;
    score: number;
    lenL: number;
    lenR: number;
    order: number;
  }
  const merges: Merge[] = [];
  for (let id = 0; id < tokens.length; id++) {
    if (types && types[id] !== GGUF_TOKEN_TYPE.normal) continue;
    const cps = Array.from(tokens[id]);
    const local: { l: string; r: string; li: number; ri: number; lenL: number }[] = [];
    for (let k = 1; k < cps.length; k++) {
      const l = cps.slice(0, k).join('');
      const r = cps.slice(k).join('');
      const li = ids.get(l);
      const ri = ids.get(r);
      if (li !== undefined && ri !== undefined) local.push({ l, r, li, ri, lenL: k });
    }
    local.sort((x, y) => x.li - y.li || x.ri - y.ri);
    for (const m of local) {
      merges.push({ l: m.l, r: m.r, score: scores[id], lenL: m.lenL, lenR: cps.length - m.lenL, order: merges.length });
    }
  }
  merges.sort((x, y) => y.score - x.score || y.lenL - x.lenL || y.lenR - x.lenR || x.order - y.order);
  return merges.map((m) => [m.l, m.r]);
}

export interface GgufTokenizerFiles {
  /** A tokenizer.json object for @huggingface/tokenizers. */
  tokenizerJson: Record<string, unknown>;
  /** A tokenizer_config.json object (special tokens, chat template, add_bos_token, ...). */
  tokenizerConfig: Record<string, unknown>;
  /** Every id that ends generation: eos, eot, eom (those present). */
  eosTokenIds: number[];
}

/** Builds the tokenizer.json and tokenizer_config.json objects of a GGUF file's vocabulary. */
export function ggufTokenizerFiles(metadata: GgufMetadataLike, source = '<gguf>'): GgufTokenizerFiles {
  const m: Meta = new Meta(metadata, source);
  const model = m.str('tokenizer.ggml.model');
  if (model === undefined) m.fail('tokenizer.ggml.model', 'is required (the file has no tokenizer)');
  if (model !== 'llama' && model !== 'gpt2') {
    m.fail(
      'tokenizer.ggml.model',
      `"${model}" is not supported (supported: llama = SentencePiece BPE, gpt2 = byte-level BPE)`,
    );
  }
  const tokens = m.array('tokenizer.ggml.tokens', ['string']) as string[] | undefined;
  if (!tokens || tokens.length === 0) m.fail('tokenizer.ggml.tokens', 'is required and must not be empty');
  const n = tokens.length;
  const typesRaw = m.array('tokenizer.ggml.token_type', ['int32', 'uint32', 'int8', 'uint8', 'int16', 'uint16']);
  if (typesRaw && typesRaw.length !== n)
    m.fail('tokenizer.ggml.token_type', `has ${typesRaw.length} entries for ${n} tokens`);
  const types = typesRaw
    ? Array.from(typesRaw as ArrayLike<number>)
    : new Array<number>(n).fill(GGUF_TOKEN_TYPE.normal);

  const spm = model === 'llama';
  const unkId = m.id('tokenizer.ggml.unknown_token_id', n) ?? (spm ? 0 : undefined);
  const bosId = m.id('tokenizer.ggml.bos_token_id', n) ?? (spm ? 1 : 11 < n ? 11 : undefined);
  const eosId = m.id('tokenizer.ggml.eos_token_id', n) ?? (spm ? 2 : 11 < n ? 11 : undefined);
  const eotId = m.id('tokenizer.ggml.eot_token_id', n);
  const eomId = m.id('tokenizer.ggml.eom_token_id', n);
  const padId = m.id('tokenizer.ggml.padding_token_id', n);

  let pre: PreType | undefined;
  if (!spm) {
    const preName = m.str('tokenizer.ggml.pre') ?? 'default';
    pre = Object.hasOwn(PRE_TYPES, preName) ? PRE_TYPES[preName] : undefined;
    if (!pre)
      m.fail('tokenizer.ggml.pre', `"${preName}" is not supported (supported: ${GGUF_PRE_TOKENIZERS.join(', ')})`);
  }
  const addBos = m.bool('tokenizer.ggml.add_bos_token') ?? (spm ? true : (pre?.addBos ?? false));
  const addEos = m.bool('tokenizer.ggml.add_eos_token') ?? false;
  const addSpacePrefix = spm ? (m.bool('tokenizer.ggml.add_space_prefix') ?? true) : false;

  const vocab = vocabObject(tokens);
  // Phi-3: llama.cpp gives its special tokens RSTRIP (they take the whitespace after them, as in the
  // tokenizer.json, so '<|user|>\nHi' is <|user|> ▁Hi), keyed on general.name as llama-vocab.cpp is,
  // since nothing in the tokenizer metadata says it; <unk>, <s> and <|endoftext|> keep it.
  const name = (m.str('general.name') ?? '').toLowerCase();
  const phi3 = name.includes('phi-3') || name.includes('phi3');
  const rstrip = (token: string) => phi3 && token !== '<unk>' && token !== '<s>' && token !== '<|endoftext|>';
  const added_tokens: Record<string, unknown>[] = [];
  types.forEach((t, id) => {
    if (t === GGUF_TOKEN_TYPE.control || t === GGUF_TOKEN_TYPE.unknown || t === GGUF_TOKEN_TYPE.userDefined) {
      added_tokens.push({
        id,
        content: tokens[id],
        single_word: false,
        lstrip: false,
        rstrip: rstrip(tokens[id]),
        normalized: false,
        special: t !== GGUF_TOKEN_TYPE.userDefined,
      });
    }
  });

  let modelJson: Record<string, unknown>;
  let normalizer: unknown = null;
  let preTokenizer: unknown = null;
  let decoder: unknown;
  if (spm) {
    const scores = m.array('tokenizer.ggml.scores', ['float32', 'float64']) as ArrayLike<number> | undefined;
    if (scores && scores.length !== n) m.fail('tokenizer.ggml.scores', `has ${scores.length} entries for ${n} tokens`);
    modelJson = {
      type: 'BPE',
      dropout: null,
      unk_token: unkId === undefined ? null : tokens[unkId],
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: sentencePieceMerges(tokens, scores ?? new Float32Array(n), types),
    };
    const replace = { type: 'Replace', pattern: { String: ' ' }, content: '▁' };
    normalizer = addSpacePrefix
      ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, replace] }
      : replace;
    decoder = {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    };
  } else {
    const mergeStrings = m.array('tokenizer.ggml.merges', ['string']) as string[] | undefined;
    if (!mergeStrings) m.fail('tokenizer.ggml.merges', 'is required for a gpt2 (byte-level BPE) tokenizer');
    const merges = mergeStrings.map((s, i): [string, string] => {
      const at = s.indexOf(' ', 1); // llama.cpp: the first space after the first character
      if (at < 0) m.fail(`tokenizer.ggml.merges[${i}]`, `${JSON.stringify(s)} is not "left right"`);
      return [s.slice(0, at), s.slice(at + 1)];
    });
    modelJson = {
      type: 'BPE',
      dropout: null,
      unk_token: unkId === undefined ? null : tokens[unkId],
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: pre!.ignoreMerges ?? false,
      vocab,
      merges,
    };
    const byteLevel = (useRegex: boolean) => ({
      type: 'ByteLevel',
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: useRegex,
    });
    preTokenizer =
      pre!.split === 'byte-level'
        ? byteLevel(true)
        : {
            type: 'Sequence',
            pretokenizers: [
              ...pre!.split.map((r) => ({ type: 'Split', pattern: { Regex: r }, behavior: 'Isolated', invert: false })),
              byteLevel(false),
            ],
          };
    if (pre!.nfc) normalizer = { type: 'NFC' };
    decoder = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
  }

  const single: unknown[] = [];
  const pair: unknown[] = [];
  const specialTokens: Record<string, unknown> = {};
  const special = (id: number) => {
    specialTokens[tokens[id]] = { id: tokens[id], ids: [id], tokens: [tokens[id]] };
    return { SpecialToken: { id: tokens[id], type_id: 0 } };
  };
  if (addBos && bosId !== undefined) {
    single.push(special(bosId));
    pair.push(special(bosId));
  }
  single.push({ Sequence: { id: 'A', type_id: 0 } });
  pair.push({ Sequence: { id: 'A', type_id: 0 } });
  if (addEos && eosId !== undefined) {
    single.push(special(eosId));
    pair.push(special(eosId));
  }
  if (addBos && bosId !== undefined) pair.push(special(bosId));
  pair.push({ Sequence: { id: 'B', type_id: 1 } });
  if (addEos && eosId !== undefined) pair.push(special(eosId));

  const tokenizerJson: Record<string, unknown> = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens,
    normalizer,
    pre_tokenizer: preTokenizer,
    post_processor: { type: 'TemplateProcessing', single, pair, special_tokens: specialTokens },
    decoder,
    model: modelJson,
  };

  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: addBos,
    add_eos_token: addEos,
    clean_up_tokenization_spaces: spm ? false : (pre!.cleanSpaces ?? true),
    // llama.cpp matches special tokens itself; tokenizers.js reads `legacy` for nothing here.
  };
  if (bosId !== undefined) tokenizerConfig.bos_token = tokens[bosId];
  if (eosId !== undefined) tokenizerConfig.eos_token = tokens[eosId];
  if (unkId !== undefined) tokenizerConfig.unk_token = tokens[unkId];
  if (padId !== undefined) tokenizerConfig.pad_token = tokens[padId];
  const template = m.str('tokenizer.chat_template');
  if (template !== undefined) tokenizerConfig.chat_template = template;

  const eosTokenIds = [...new Set([eosId, eotId, eomId].filter((id): id is number => id !== undefined))];
  return { tokenizerJson, tokenizerConfig, eosTokenIds };
}

/** The Tokenizer of a GGUF file (see ggufTokenizerFiles), with its end-of-generation ids. */
export function loadGgufTokenizer(metadata: GgufMetadataLike, source = '<gguf>'): Tokenizer {
  const { tokenizerJson, tokenizerConfig, eosTokenIds } = ggufTokenizerFiles(metadata, source);
  return loadTokenizer(tokenizerJson, tokenizerConfig, { eosSources: [{ eos_token_id: eosTokenIds }] });
}
