// Text ↔ token ids for a Hugging Face checkpoint: tokenizer.json through @huggingface/tokenizers,
// special tokens and the chat template from tokenizer_config.json, and an incremental decoder
// for streaming.
//
// Worked example (the byte-level BPE of test/tokenizer/tokenizer.test.ts, where a merge joins only
// the first two of the four bytes of '👋', F0 9F | 91 | 8B):
//   const tok = loadTokenizer(tokenizerJson, tokenizerConfig);
//   const ids = tok.encode('a👋b', { addSpecialTokens: false })  → [a, F09F, 91, 8B, b]
//   tok.decode(ids)                                             → 'a👋b'
//   const s = tok.createStreamDecoder();
//   ids.map((id) => s.push(id))  → ['a', '', '', '👋', 'b']   (nothing until the emoji's last byte)

import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { applyChatTemplate, type ChatMessage, type ChatTemplateOptions, type ChatTemplateSource } from './chatTemplate';

/** A special token in tokenizer_config.json: a plain string or an AddedToken object. */
type SpecialTokenField = string | { content?: string } | null | undefined;

/** The fields of tokenizer_config.json this module reads. Others are passed to the tokenizer untouched. */
export interface TokenizerConfig {
  bos_token?: SpecialTokenField;
  eos_token?: SpecialTokenField;
  chat_template?: ChatTemplateSource | null;
  clean_up_tokenization_spaces?: boolean;
  [field: string]: unknown;
}

/** config.json / generation_config.json: `eos_token_id` may be one id or a list. */
export interface EosSource {
  eos_token_id?: number | number[] | null;
}

export interface LoadTokenizerOptions {
  /** generation_config.json and/or config.json: their eos_token_id(s) are added to eosTokenIds. */
  eosSources?: readonly (EosSource | null | undefined)[];
}

export interface EncodeOptions {
  /** Add what the tokenizer's post-processor adds (BOS for Llama-3, nothing for Qwen2). Default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave out special tokens (BOS, EOS, <|im_end|>, ...). Default false. */
  skipSpecialTokens?: boolean;
  /** Remove spaces before punctuation (' .' → '.'). Default: clean_up_tokenization_spaces of the config, else false. */
  cleanUpTokenizationSpaces?: boolean;
}

/**
 * Takes generated ids one at a time and returns only the text that is new and complete.
 * Concatenating every push() and the final flush() gives `decode(ids, { cleanUpTokenizationSpaces: false })`.
 */
export interface StreamDecoder {
  /** The text this id completes; '' while a UTF-8 character is still split over byte tokens. */
  push(id: number): string;
  /** At the end of generation: whatever is still held back (an incomplete character decodes to U+FFFD). */
  flush(): string;
}

// Names an end-of-text token goes by when tokenizer_config.json (or its eos_token) is missing.
const FALLBACK_EOS_NAMES = [
  '</s>',
  '<|endoftext|>',
  '<|end_of_text|>',
  '<eos>',
  '<|im_end|>',
  '<|eot_id|>',
  '<end_of_turn>',
];

function specialTokenContent(field: SpecialTokenField): string | null {
  if (typeof field === 'string') return field;
  if (field && typeof field === 'object' && typeof field.content === 'string') return field.content;
  return null;
}

function idsOf(value: number | number[] | null | undefined): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.filter((v) => Number.isInteger(v));
  return [];
}

interface TemplateItem {
  SpecialToken?: { id: string };
  Sequence?: { id: string };
}
interface PostProcessorJson {
  type?: string;
  single?: TemplateItem[];
  processors?: PostProcessorJson[];
}

/** The special token a TemplateProcessing post-processor puts before the text (Llama-3: '<|begin_of_text|>'). */
function leadingTemplateToken(pp: PostProcessorJson | null | undefined): string | null {
  if (!pp) return null;
  if (pp.type === 'Sequence') {
    for (const inner of pp.processors ?? []) {
      const found = leadingTemplateToken(inner);
      if (found) return found;
    }
    return null;
  }
  if (pp.type !== 'TemplateProcessing') return null;
  const first = pp.single?.[0];
  return first?.SpecialToken ? first.SpecialToken.id : null;
}

export class Tokenizer {
  /** Number of rows of the embedding this tokenizer can index: highest id + 1 (added tokens included). */
  readonly vocabSize: number;
  readonly bosToken: string | null;
  readonly bosTokenId: number | null;
  readonly eosToken: string | null;
  /** Every id that ends generation: tokenizer_config's eos_token plus the eos ids of `eosSources`. */
  readonly eosTokenIds: readonly number[];
  /** tokenizer_config.json's chat_template, or null when the checkpoint has none. */
  readonly chatTemplate: ChatTemplateSource | null;

  private readonly specialIds: ReadonlySet<number>;
  private readonly cleanUpSpaces: boolean;

  constructor(
    private readonly hf: HfTokenizer,
    tokenizerJson: { post_processor?: PostProcessorJson | null },
    config: TokenizerConfig,
    options: LoadTokenizerOptions,
  ) {
    let maxId = -1;
    for (const id of hf.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;

    const special = new Set<number>();
    for (const [id, added] of hf.get_added_tokens_decoder()) if (added.special) special.add(id);
    this.specialIds = special;

    this.bosToken = specialTokenContent(config.bos_token) ?? leadingTemplateToken(tokenizerJson.post_processor);
    this.bosTokenId = this.bosToken === null ? null : (hf.token_to_id(this.bosToken) ?? null);

    const eos = new Set<number>();
    this.eosToken = specialTokenContent(config.eos_token);
    const configEos = this.eosToken === null ? undefined : hf.token_to_id(this.eosToken);
    if (configEos !== undefined) eos.add(configEos);
    for (const source of options.eosSources ?? []) for (const id of idsOf(source?.eos_token_id)) eos.add(id);
    if (eos.size === 0) {
      for (const name of FALLBACK_EOS_NAMES) {
        const id = hf.token_to_id(name);
        if (id !== undefined && special.has(id)) eos.add(id);
      }
    }
    this.eosTokenIds = [...eos];

    this.chatTemplate = config.chat_template ?? null;
    this.cleanUpSpaces = config.clean_up_tokenization_spaces ?? false;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.hf.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    return this.hf.decode(Array.from(ids), {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: opts.cleanUpTokenizationSpaces ?? this.cleanUpSpaces,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /**
   * Incremental detokenizer (HF tokenizers' DecodeStream). It keeps a short window of ids: the
   * ones behind the last emitted text (`prefix`, for context: Metaspace drops a leading space
   * only at the start of a decode, BPE joins bytes across tokens) and the ones not emitted yet.
   * Each push decodes the window; when the result is longer than the prefix's text and does not
   * end in U+FFFD (an incomplete UTF-8 character), the difference is emitted and the window
   * moves up. Cost per push: one decode of a few ids, never of the whole output.
   *
   * Worked example: '€' is bytes E2 82 AC, here three byte tokens a, b, c after 'x':
   *   push(x) → 'x'   window [x]          prefix 'x'
   *   push(a) → ''    decode [x,a] = 'x\uFFFD', held
   *   push(b) → ''    decode [x,a,b] = 'x\uFFFD', held
   *   push(c) → '€'   decode [x,a,b,c] = 'x€'; window becomes [a,b,c], prefix '€'
   */
  createStreamDecoder(opts: { skipSpecialTokens?: boolean } = {}): StreamDecoder {
    const decodeOpts: DecodeOptions = {
      skipSpecialTokens: opts.skipSpecialTokens ?? false,
      cleanUpTokenizationSpaces: false,
    };
    let window: number[] = []; // ids: [prefix ids | ids not emitted yet]
    let prefixText = ''; // decode(window[0 .. prefixLen))
    let prefixLen = 0;
    return {
      push: (id: number): string => {
        window.push(id);
        const text = this.decode(window, decodeOpts);
        if (text.length <= prefixText.length || text.endsWith('\uFFFD')) return '';
        // A decoder that rewrote the prefix's text with more context would not start with it;
        // the text past its length is still the best available answer.
        const fresh = text.slice(prefixText.length);
        window = window.slice(prefixLen);
        prefixLen = window.length;
        prefixText = this.decode(window, decodeOpts);
        return fresh;
      },
      flush: (): string => {
        const text = this.decode(window, decodeOpts);
        const rest = text.length > prefixText.length ? text.slice(prefixText.length) : '';
        window = window.slice(prefixLen);
        prefixLen = window.length;
        prefixText = this.decode(window, decodeOpts);
        return rest;
      },
    };
  }

  /** The checkpoint's own chat template with its bos/eos tokens; see applyChatTemplate. */
  applyChatTemplate(
    messages: readonly ChatMessage[],
    opts: Omit<ChatTemplateOptions, 'bosToken' | 'eosToken'> = {},
  ): string {
    if (this.chatTemplate === null) {
      throw new Error(
        'this tokenizer has no chat_template ' +
          '(none in tokenizer_config.json, chat_template.jinja or chat_template.json)',
      );
    }
    return applyChatTemplate(this.chatTemplate, messages, {
      ...opts,
      bosToken: this.bosToken ?? '',
      eosToken: this.eosToken ?? '',
    });
  }
}

/**
 * Builds a Tokenizer from tokenizer.json (parsed, or its text) and tokenizer_config.json.
 * Without a config the BOS comes from the post-processor's template and the EOS ids from
 * well-known end-of-text token names. Malformed input is an Error that says which file.
 *
 * STOP TOKENS: tokenizer_config.json names one eos_token, but many chat models stop on more ids,
 * listed only in generation_config.json (Phi-3.5: `<|end|>` 32007; Llama-3.2: `<|eom_id|>` 128008).
 * Pass `{ eosSources: [generationConfig, config] }`, or use tokenizerFromModelFiles(files),
 * which does; without them generation runs past the end of the assistant's turn.
 * The chat template is tokenizer_config.json's `chat_template`: loadModelFiles puts the one from
 * chat_template.jinja / chat_template.json there.
 */
export function loadTokenizer(
  tokenizerJson: object | string,
  tokenizerConfig: object = {},
  options: LoadTokenizerOptions = {},
): Tokenizer {
  let json: Record<string, unknown>;
  try {
    json = (typeof tokenizerJson === 'string' ? JSON.parse(tokenizerJson) : tokenizerJson) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`tokenizer.json is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!json || typeof json !== 'object' || Array.isArray(json))
    throw new Error('tokenizer.json must hold a JSON object');
  // tokenizers.js requires these keys to be present (null is fine) and added_tokens to be a list.
  const complete: Record<string, unknown> = {
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    added_tokens: [],
    ...json,
  };
  let hf: HfTokenizer;
  try {
    hf = new HfTokenizer(complete, tokenizerConfig);
  } catch (err) {
    throw new Error(`tokenizer.json could not be loaded: ${(err as Error).message}`, { cause: err });
  }
  return new Tokenizer(
    hf,
    complete as { post_processor?: PostProcessorJson | null },
    tokenizerConfig as TokenizerConfig,
    options,
  );
}

/** What tokenizerFromModelFiles reads: the fields of loadModelFiles' ModelFiles of the same names. */
export interface TokenizerFiles {
  source?: string;
  config: unknown;
  tokenizer: unknown | null;
  tokenizerConfig: unknown | null;
  generationConfig: unknown | null;
}

/**
 * The tokenizer of a loaded model folder: tokenizer.json, tokenizer_config.json (with the chat
 * template loadModelFiles found), and the stop ids of generation_config.json and config.json.
 */
export function tokenizerFromModelFiles(files: TokenizerFiles): Tokenizer {
  if (!files.tokenizer) throw new Error(`${files.source ?? 'model'}: tokenizer.json is missing`);
  return loadTokenizer(files.tokenizer as object, (files.tokenizerConfig ?? {}) as object, {
    eosSources: [files.generationConfig as EosSource | null, files.config as EosSource | null],
  });
}
