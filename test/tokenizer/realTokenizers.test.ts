/**
 * The real tokenizer.json files of ../shared/realworld, loaded as the engine loads a model folder
 * (tokenizerFromModelFiles: tokenizer.json, tokenizer_config.json, the stop ids of
 * generation_config.json and config.json), each file read and parsed once:
 *   SmolLM2-135M-Instruct   byte-level BPE, Digits(individual_digits) pre-split, ChatML specials, no post-processor
 *   TinyLlama-1.1B-Chat     SentencePiece BPE + byte fallback, merges as ["a","b"] pairs, BOS added
 *   Phi-3.5-mini-instruct   the same vocabulary shape, no BOS, specials that strip the whitespace after them
 *   MiniCPM3-4B             SentencePiece BPE + byte fallback, 73440 + 8 added ids, BOS added
 *   tiny-random-t5          Unigram, Precompiled (nmt_nfkc) normalizer, WhitespaceSplit + Metaspace, EOS appended
 * and llama.cpp's test vectors through the two that have a vocabulary there (llama-spm ↔ TinyLlama,
 * phi-3 ↔ Phi-3.5), as the GGUF-built tokenizers are checked in ggufTokenizer.test.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseGguf } from '../../src/sources/gguf';
import { loadGgufTokenizer } from '../../src/tokenizer/ggufTokenizer';
import { type Tokenizer, tokenizerFromModelFiles } from '../../src/tokenizer/tokenizer';
import { REALWORLD, testVectors } from '../helpers/tokenizerVectors';

const readJson = (repo: string, file: string): unknown =>
  existsSync(`${REALWORLD}${repo}/${file}`) ? JSON.parse(readFileSync(`${REALWORLD}${repo}/${file}`, 'utf8')) : null;

// tokenizer.json files are up to 3.6 MB: each repo is read and loaded once for the whole file.
const loaded = new Map<string, { tok: Tokenizer; json: Record<string, unknown> }>();
function repoTokenizer(repo: string): { tok: Tokenizer; json: Record<string, unknown> } {
  let hit = loaded.get(repo);
  if (!hit) {
    const json = readJson(repo, 'tokenizer.json') as Record<string, unknown>;
    const tok = tokenizerFromModelFiles({
      source: repo,
      config: readJson(repo, 'config.json'),
      tokenizer: json,
      tokenizerConfig: readJson(repo, 'tokenizer_config.json'),
      generationConfig: readJson(repo, 'generation_config.json'),
    });
    hit = { tok, json };
    loaded.set(repo, hit);
  }
  return hit;
}

const SAMPLES = [
  'Hello world',
  ' leading space and  two spaces',
  'tabs\t\tand\nnewlines\n\n',
  'digits 1234567890 and 3.14',
  "contractions: it's, we'LL, they're",
  'Zoë naïve café — “quotes”',
  'Привет, мир',
  '你好，世界。日本語',
  'emoji 🦙👋🏽 and a rare one 𐍈',
  'code: if (a[i] != b) { return -1; }',
];

/** The concatenated output of a stream decoder fed `ids` one at a time. */
function streamed(tok: Tokenizer, ids: number[]): string {
  const s = tok.createStreamDecoder();
  return ids.map((id) => s.push(id)).join('') + s.flush();
}

const ggufMetadata = (name: string) => parseGguf(readFileSync(`${REALWORLD}gguf-vocab/${name}`), name).metadata;

const byteToken = (tok: Tokenizer, id: number) => /^<0x[0-9A-F]{2}>$/.test(tok.idToToken(id) ?? '');

describe.skipIf(!existsSync(REALWORLD))('real tokenizer.json files', () => {
  interface LosslessCase {
    repo: string;
    bos: string | null;
    /** Whether encode() with its default (addSpecialTokens) puts the BOS first. */
    addsBos: boolean;
    eos: string;
    eosIds: number[];
    specials: Record<string, number>;
    vocabSize: number;
    /** SentencePiece BPE with byte fallback: a character outside the vocabulary goes out as <0xXX> bytes. */
    byteFallback: boolean;
  }
  const lossless: LosslessCase[] = [
    {
      repo: 'SmolLM2-135M-Instruct',
      bos: '<|im_start|>',
      addsBos: false, // tokenizer_config names a bos_token, but tokenizer.json has no post-processor
      eos: '<|im_end|>',
      eosIds: [2],
      specials: { '<|endoftext|>': 0, '<|im_start|>': 1, '<|im_end|>': 2, '<file_sep>': 5 },
      vocabSize: 49152,
      byteFallback: false,
    },
    {
      repo: 'TinyLlama-1.1B-Chat-v1.0',
      bos: '<s>',
      addsBos: true,
      eos: '</s>',
      eosIds: [2],
      specials: { '<unk>': 0, '<s>': 1, '</s>': 2 },
      vocabSize: 32000,
      byteFallback: true,
    },
    {
      repo: 'Phi-3.5-mini-instruct',
      bos: '<s>',
      addsBos: false, // add_bos_token: false; its chat template writes no BOS either
      eos: '<|endoftext|>',
      eosIds: [32000, 32001, 32007], // generation_config.json adds <|assistant|> and <|end|>
      specials: {
        '<|endoftext|>': 32000,
        '<|assistant|>': 32001,
        '<|system|>': 32006,
        '<|end|>': 32007,
        '<|user|>': 32010,
      },
      vocabSize: 32011, // config.json's vocab_size is 32064: the embedding has unused rows
      byteFallback: true,
    },
    {
      repo: 'MiniCPM3-4B',
      bos: '<s>',
      addsBos: true,
      eos: '<|im_end|>',
      eosIds: [73440, 2], // tokenizer_config's <|im_end|>, then config.json's [2, 73440]
      specials: { '<s>': 1, '</s>': 2, '<|im_end|>': 73440, '<|im_start|>': 73441, '<|tool_call|>': 73442 },
      vocabSize: 73448,
      byteFallback: true,
    },
  ];

  for (const c of lossless) {
    it(`${c.repo}: loads, finds its special tokens, and round-trips text`, () => {
      const { tok } = repoTokenizer(c.repo);
      expect(tok.vocabSize).toBe(c.vocabSize);
      expect(tok.bosToken).toBe(c.bos);
      expect(tok.eosToken).toBe(c.eos);
      expect([...tok.eosTokenIds].sort()).toEqual([...c.eosIds].sort());
      for (const [token, id] of Object.entries(c.specials)) {
        expect(tok.tokenToId(token), token).toBe(id);
        expect(tok.isSpecial(id), token).toBe(true);
        // matched whole inside text, never split by the model
        expect(tok.encode(`ab${token}cd`, { addSpecialTokens: false })).toContain(id);
      }
      for (const text of SAMPLES) {
        const ids = tok.encode(text, { addSpecialTokens: false });
        expect(tok.decode(ids), text).toBe(text);
        expect(streamed(tok, ids), text).toBe(text);
        const withSpecial = tok.encode(text);
        expect(withSpecial).toEqual(c.addsBos ? [tok.bosTokenId, ...ids] : ids);
      }
      const rare = tok.encode('𐍈', { addSpecialTokens: false });
      expect(rare.some((id) => byteToken(tok, id))).toBe(c.byteFallback);
      // a chat turn: the specials are single ids, and skipped on request
      const turn = `${c.bos ?? ''}${c.eos}Hi${c.eos}`;
      const turnIds = tok.encode(turn, { addSpecialTokens: false });
      expect(turnIds.filter((id) => id === tok.tokenToId(c.eos))).toHaveLength(2);
      expect(tok.decode(turnIds, { skipSpecialTokens: true }).trim()).toBe('Hi');
    });
  }

  it('SmolLM2: digits are split one by one (its Digits pre-tokenizer)', () => {
    const { tok } = repoTokenizer('SmolLM2-135M-Instruct');
    const ids = tok.encode('12345', { addSpecialTokens: false });
    expect(ids.map((id) => tok.idToToken(id))).toEqual(['1', '2', '3', '4', '5']);
  });

  it('Phi-3.5: its specials take the whitespace after them (rstrip), as transformers encodes its chat prompts', () => {
    const { tok } = repoTokenizer('Phi-3.5-mini-instruct');
    const hi = tok.encode('Hi', { addSpecialTokens: false });
    expect(tok.encode('<|user|>\nHi<|end|>\n<|assistant|>\n', { addSpecialTokens: false })).toEqual([
      32010,
      ...hi,
      32007,
      32001,
    ]);
    // <s> and <|endoftext|> do not strip: the space after them is text
    expect(tok.encode('<|endoftext|> Hi', { addSpecialTokens: false })[1]).not.toBe(hi[0]);
  });

  it("Phi-3: the GGUF-built tokenizer strips after its specials too, giving llama.cpp's ids for a chat turn", () => {
    // llama.cpp sets RSTRIP on a Phi-3 vocabulary's special tokens from general.name ("Phi3" here);
    // its ids for this turn are [1, 32010, 317, 21554, 13, 17628, 32007, 32001] (▁SYS = 317 21554).
    const turn = '<|user|>\nSYS\nHI<|end|>\n<|assistant|>\n';
    const turnIds = [32010, 317, 21554, 13, 17628, 32007, 32001];
    const phi3 = loadGgufTokenizer(ggufMetadata('ggml-vocab-phi-3.gguf'));
    expect(phi3.encode(turn)).toEqual([1, ...turnIds]); // the GGUF (Phi-3-mini) sets add_bos_token
    const { tok } = repoTokenizer('Phi-3.5-mini-instruct');
    expect(tok.encode(turn)).toEqual(turnIds);
    expect(phi3.encode('</s>\nHi', { addSpecialTokens: false })).toEqual(
      tok.encode('</s>\nHi', { addSpecialTokens: false }),
    );
    // any other SentencePiece vocabulary keeps the whitespace after a special token
    const llama = loadGgufTokenizer(ggufMetadata('ggml-vocab-llama-spm.gguf'));
    expect(llama.encode('</s>\nHi', { addSpecialTokens: false })).toContain(13);
  });

  describe('tiny-random-t5 (Unigram)', () => {
    const repo = 'hf-internal-testing-tiny-random-t5';

    /**
     * The best segmentation of one pre-tokenized piece, written independently of the library: the
     * split into vocabulary pieces whose scores (log probabilities) have the largest sum.
     * '▁Hello' with pieces ▁H ell o … → the highest-scoring path through the lattice.
     */
    function viterbi(piece: string, scores: Map<string, { id: number; score: number }>): number[] | null {
      const best: number[] = [0];
      const from: { start: number; id: number }[] = [];
      for (let end = 1; end <= piece.length; end++) {
        best[end] = -Infinity;
        for (let start = 0; start < end; start++) {
          const hit = scores.get(piece.slice(start, end));
          if (hit && best[start] + hit.score > best[end]) {
            best[end] = best[start] + hit.score;
            from[end] = { start, id: hit.id };
          }
        }
      }
      if (best[piece.length] === -Infinity) return null;
      const ids: number[] = [];
      for (let end = piece.length; end > 0; end = from[end].start) ids.unshift(from[end].id);
      return ids;
    }

    it('loads; encodes as the Unigram lattice says, normalizes NFKC and whitespace, appends </s>', () => {
      const { tok, json } = repoTokenizer(repo);
      expect(tok.vocabSize).toBe(1302);
      expect(tok.eosToken).toBe('</s>');
      expect(tok.eosTokenIds).toEqual([1]);
      expect(tok.bosTokenId).toBe(null); // T5 has none
      for (const [token, id] of Object.entries({ '<pad>': 0, '</s>': 1, '<unk>': 2, '<extra_id_0>': 102 })) {
        expect(tok.tokenToId(token), token).toBe(id);
        expect(tok.isSpecial(id), token).toBe(true);
      }
      const model = json.model as { vocab: [string, number][] };
      const scores = new Map<string, { id: number; score: number }>();
      model.vocab.forEach(([piece, score], id) => {
        if (id > 102) scores.set(piece, { id, score }); // the specials and sentinels are matched before the model
      });
      for (const text of ['Hello world', 'The quick brown fox jumps over the lazy dog.', 'hello there, general']) {
        const ids = tok.encode(text, { addSpecialTokens: false });
        const want = text.split(' ').flatMap((w) => viterbi(`▁${w}`, scores) ?? [-1]);
        expect(ids, text).toEqual(want);
        expect(tok.decode(ids)).toBe(text);
        expect(tok.encode(text)).toEqual([...ids, 1]); // the post-processor appends </s>
      }
      // nmt_nfkc through the Precompiled charsmap: full-width letters fold; whitespace runs and tabs are one space
      const plain = tok.encode('hello world', { addSpecialTokens: false });
      expect(tok.encode('ｈｅｌｌｏ world', { addSpecialTokens: false })).toEqual(plain);
      expect(tok.encode('  hello \t\n world ', { addSpecialTokens: false })).toEqual(plain);
      // a sentinel is one id; a character outside the 1302 pieces is <unk> (Unigram has no byte fallback)
      expect(tok.encode('a <extra_id_0> b', { addSpecialTokens: false })).toContain(102);
      expect(tok.encode('你', { addSpecialTokens: false })).toContain(2);
    });
  });
});

describe.skipIf(!existsSync(REALWORLD))(
  "llama.cpp's test vectors through the tokenizer.json of the same vocabulary",
  () => {
    // The .out ids are AutoTokenizer(...).encode(text, add_special_tokens=False) of Llama-2-7b-hf and
    // Phi-3-mini-4k-instruct; TinyLlama and Phi-3.5 ship the same 32000-piece vocabulary. So each string is
    // encoded without specials here too. The BOS conventions differ on purpose and are checked apart:
    // TinyLlama's post-processor adds <s> (as Llama-2 and the llama-spm GGUF do); Phi-3.5 dropped it
    // (add_bos_token false), while the phi-3 GGUF, made from Phi-3-mini, still sets add_bos_token.
    const pairs = [
      { vectors: 'ggml-vocab-llama-spm.gguf', repo: 'TinyLlama-1.1B-Chat-v1.0', bosFirst: true },
      { vectors: 'ggml-vocab-phi-3.gguf', repo: 'Phi-3.5-mini-instruct', bosFirst: false },
    ];
    for (const { vectors: name, repo, bosFirst } of pairs) {
      it(`${name} ↔ ${repo}/tokenizer.json: every string encodes to the listed ids and decodes back`, () => {
        const { tok } = repoTokenizer(repo);
        const vectors = testVectors(name);
        expect(vectors.length).toBe(46);
        const failures: string[] = [];
        for (const { text, ids } of vectors) {
          const got = tok.encode(text, { addSpecialTokens: false });
          if (JSON.stringify(got) !== JSON.stringify(ids))
            failures.push(`${JSON.stringify(text)}: want ${ids} got ${got}`);
          else if (tok.decode(got) !== text)
            failures.push(`${JSON.stringify(text)}: decodes to ${JSON.stringify(tok.decode(got))}`);
        }
        console.log(`${repo}/tokenizer.json: ${vectors.length - failures.length}/${vectors.length} ${name} vectors`);
        expect(failures).toEqual([]);
        const hello = vectors.find((v) => v.text === 'Hello world')!;
        expect(tok.encode(hello.text)).toEqual(bosFirst ? [1, ...hello.ids] : hello.ids);
      });
    }
  },
);
