/**
 * Each new family's own chat template through the engine's chat API (engine.chat.completions.create:
 * templateMessages → the tokenizer's template → encode without specials → generate), on a two-turn
 * chat: gemma-2 and gemma-3 (gemma-3-1b-it), phi3 (Phi-3.5-mini-instruct, Phi-4-mini-instruct),
 * smollm3 (SmolLM3-3B) and MiniCPM3-4B.
 *
 * Templates and special tokens come from the repos' tokenizer_config.json in ../shared/realworld; the
 * two that are not there are fixtures: test/fixtures/chat-templates/SmolLM3-3B.jinja (the model's
 * chat_template.jinja, with its {% generation %} blocks) and Phi-4-mini-instruct.jinja (its
 * tokenizer_config.json chat_template). Where transformers' own render of the same chat is in
 * test/fixtures/chat-templates/transformers-renders.json, the prompt must match it exactly.
 *
 * Phi-3.5 and MiniCPM3 use their real tokenizer.json; gemma's (33 MB) and SmolLM3's / Phi-4-mini's
 * (Llama-3 / o200k size) are not here, so those run on the tiny byte-level BPE of the test helpers
 * with the family's special tokens added: lossless, so the prompt ids decode back to the exact text.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Engine } from '../../src/engine/engine';
import type { ChatCompletionRequest } from '../../src/engine/types';
import type { ChatMessage } from '../../src/tokenizer/chatTemplate';
import { loadTokenizer, type Tokenizer, tokenizerFromModelFiles } from '../../src/tokenizer/tokenizer';
import { BASE, tokenizerJson } from '../helpers/tinyTokenizer';
import { REALWORLD } from '../helpers/tokenizerVectors';
import { FakeModel } from './fakeModel';

const FIXTURES = join(__dirname, '..', 'fixtures', 'chat-templates');
const readJson = (path: string): Record<string, unknown> | null =>
  existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>) : null;
const repoFile = (repo: string, file: string) => readJson(`${REALWORLD}${repo}/${file}`);

/** The repo's tokenizer as the engine loads a model folder. */
function repoTokenizer(repo: string): Tokenizer {
  return tokenizerFromModelFiles({
    source: repo,
    config: repoFile(repo, 'config.json'),
    tokenizer: repoFile(repo, 'tokenizer.json'),
    tokenizerConfig: repoFile(repo, 'tokenizer_config.json'),
    generationConfig: repoFile(repo, 'generation_config.json'),
  });
}

/** The tiny byte-level BPE with `specials` as added special tokens, and no BOS of its own (templates write it). */
function tinyTokenizer(specials: string[], tokenizerConfig: object): Tokenizer {
  const json = {
    ...tokenizerJson,
    added_tokens: specials.map((content, i) => ({
      id: BASE + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    post_processor: null,
  };
  return loadTokenizer(json, tokenizerConfig);
}

/** An engine over a GPU-free model; `prompt(req)` is what one chat request hands to generate(). */
function chatEngine(tokenizer: Tokenizer) {
  const model = new FakeModel({
    vocabSize: tokenizer.vocabSize,
    pageSize: 16,
    numPages: 256,
    maxTokens: 512,
    maxSeqs: 2,
    maxContext: 4096, // SmolLM3's default instructions are ~1300 ids on the tiny tokenizer
  });
  const engine = new Engine(model, tokenizer, { numPages: 256, bytesPerPage: 64 });
  const generate = vi.spyOn(engine, 'generate');
  return {
    tokenizer,
    /** The prompt ids of one chat request (its usage.prompt_tokens must count them). */
    async prompt(req: Omit<ChatCompletionRequest, 'max_tokens' | 'stream'>): Promise<number[]> {
      const reply = await engine.chat.completions.create({ ...req, stream: false, max_tokens: 1, temperature: 0 });
      const ids = [...(generate.mock.calls.at(-1)![0] as readonly number[])];
      expect(reply.usage.prompt_tokens).toBe(ids.length);
      return ids;
    },
  };
}

// The two-turn chat of transformers-renders.json's 'system and two turns' case.
const SYSTEM: ChatMessage = { role: 'system', content: 'You are terse.' };
const TURNS: ChatMessage[] = [
  { role: 'user', content: 'What is 2+2?' },
  { role: 'assistant', content: '4' },
  { role: 'user', content: 'And 3+3?  ' },
];

const renders = readJson(join(FIXTURES, 'transformers-renders.json')) as {
  templates: { id: string; cases: { case: string; text?: string; error?: string }[] }[];
};
/** transformers' render of `caseName` for the template file `id` (e.g. 'gemma-3-1b-it/tokenizer_config.json'). */
function transformersRender(id: string, caseName: string): { text?: string; error?: string } {
  const entry = renders.templates.find((t) => t.id === id);
  const found = entry?.cases.find((c) => c.case === caseName);
  if (!found) throw new Error(`transformers-renders.json has no ${caseName} for ${id}`);
  return found;
}

const count = (ids: number[], id: number | undefined) => ids.filter((x) => x === id).length;

describe.skipIf(!existsSync(REALWORLD))("each family's chat template through engine.chat.completions", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  describe('gemma', () => {
    const GEMMA_SPECIALS = ['<bos>', '<eos>', '<start_of_turn>', '<end_of_turn>', '<start_of_image>'];

    it('gemma-3-1b-it: the system turn is folded into the first user turn; matches transformers', async () => {
      const config = repoFile('gemma-3-1b-it', 'tokenizer_config.json')!;
      const chat = chatEngine(tinyTokenizer(GEMMA_SPECIALS, config));
      const ids = await chat.prompt({ messages: [SYSTEM, ...TURNS] });
      const want = transformersRender('gemma-3-1b-it/tokenizer_config.json', 'system and two turns').text!;
      expect(chat.tokenizer.decode(ids)).toBe(want);
      expect(want).toBe(
        '<bos><start_of_turn>user\nYou are terse.\n\nWhat is 2+2?<end_of_turn>\n' +
          '<start_of_turn>model\n4<end_of_turn>\n' +
          '<start_of_turn>user\nAnd 3+3?<end_of_turn>\n<start_of_turn>model\n',
      );
      const tok = chat.tokenizer;
      expect(ids[0]).toBe(tok.tokenToId('<bos>')); // written by the template, not added again
      expect(count(ids, tok.bosTokenId ?? undefined)).toBe(1);
      expect(count(ids, tok.tokenToId('<start_of_turn>'))).toBe(4); // user, model, user, and the generation prompt
      expect(count(ids, tok.tokenToId('<end_of_turn>'))).toBe(3);
      // gemma-3's content may be a list of parts (its template walks them); text-only parts render the same
      const parts = (m: ChatMessage): ChatMessage => ({ ...m, content: [{ type: 'text', text: m.content as string }] });
      expect(await chat.prompt({ messages: [SYSTEM, ...TURNS].map(parts) })).toEqual(ids);
      // roles must alternate: the template's raise_exception reaches the caller
      await expect(chat.prompt({ messages: [TURNS[0], TURNS[0]] })).rejects.toThrow(
        /Conversation roles must alternate/,
      );
    });

    it('gemma-2-2b-it: a system turn is refused (its template raises); two turns render', async () => {
      const config = repoFile('gemma-2-2b-it', 'tokenizer_config.json')!;
      const chat = chatEngine(tinyTokenizer(GEMMA_SPECIALS, config));
      expect(transformersRender('gemma-2-2b-it/tokenizer_config.json', 'system and two turns').error).toMatch(
        /System role not supported/,
      );
      await expect(chat.prompt({ messages: [SYSTEM, ...TURNS] })).rejects.toThrow(/System role not supported/);
      const ids = await chat.prompt({ messages: TURNS });
      expect(chat.tokenizer.decode(ids)).toBe(
        '<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n' +
          '<start_of_turn>user\nAnd 3+3?<end_of_turn>\n<start_of_turn>model\n',
      );
    });
  });

  describe('phi3', () => {
    it('Phi-3.5-mini-instruct (its tokenizer.json): <|system|> / <|user|> / <|assistant|> turns', async () => {
      const chat = chatEngine(repoTokenizer('Phi-3.5-mini-instruct'));
      const tok = chat.tokenizer;
      const ids = await chat.prompt({ messages: [SYSTEM, ...TURNS] });
      const want = transformersRender('Phi-3.5-mini-instruct/tokenizer_config.json', 'system and two turns').text!;
      expect(want).toBe(
        '<|system|>\nYou are terse.<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n4<|end|>\n' +
          '<|user|>\nAnd 3+3?  <|end|>\n<|assistant|>\n',
      );
      // The specials strip the whitespace after them (rstrip in tokenizer.json), as in transformers,
      // so the text does not round-trip: compare ids, and the turn markers.
      expect(ids).toEqual(tok.encode(want, { addSpecialTokens: false }));
      expect(ids[0]).toBe(tok.tokenToId('<|system|>')); // no BOS: neither the template nor add_bos_token adds one
      expect(ids.at(-1)).toBe(tok.tokenToId('<|assistant|>')); // the generation prompt
      expect(count(ids, tok.tokenToId('<|user|>'))).toBe(2);
      expect(count(ids, tok.tokenToId('<|end|>'))).toBe(4);
      // and it stops on <|end|>, which only generation_config.json names
      expect(tok.eosTokenIds).toContain(tok.tokenToId('<|end|>'));
    });

    it('Phi-4-mini-instruct: turns without newlines; tools given in the system message', async () => {
      const config = {
        bos_token: '<|endoftext|>',
        eos_token: '<|endoftext|>',
        chat_template: readFileSync(join(FIXTURES, 'Phi-4-mini-instruct.jinja'), 'utf8'),
      };
      const specials = ['<|endoftext|>', '<|system|>', '<|user|>', '<|assistant|>', '<|end|>', '<|tool|>', '<|/tool|>'];
      const chat = chatEngine(tinyTokenizer(specials, config));
      const ids = await chat.prompt({ messages: [SYSTEM, ...TURNS] });
      expect(chat.tokenizer.decode(ids)).toBe(
        '<|system|>You are terse.<|end|><|user|>What is 2+2?<|end|><|assistant|>4<|end|>' +
          '<|user|>And 3+3?  <|end|><|assistant|>',
      );
      const tools = '[{"name": "get_weather", "parameters": {"city": {"type": "str"}}}]';
      const withTools = await chat.prompt({ messages: [{ ...SYSTEM, tools }, TURNS[0]] });
      expect(chat.tokenizer.decode(withTools)).toBe(
        `<|system|>You are terse.<|tool|>${tools}<|/tool|><|end|><|user|>What is 2+2?<|end|><|assistant|>`,
      );
    });
  });

  it('MiniCPM3-4B (its tokenizer.json): ChatML turns; matches transformers', async () => {
    const chat = chatEngine(repoTokenizer('MiniCPM3-4B'));
    const tok = chat.tokenizer;
    const ids = await chat.prompt({ messages: [SYSTEM, ...TURNS] });
    const want = transformersRender('MiniCPM3-4B/tokenizer_config.json', 'system and two turns').text!;
    expect(want).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n' +
        '<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nAnd 3+3?  <|im_end|>\n<|im_start|>assistant\n',
    );
    expect(ids).toEqual(tok.encode(want, { addSpecialTokens: false }));
    // the template writes no BOS and the prompt is encoded without the <s> its post-processor would add
    expect(ids[0]).toBe(tok.tokenToId('<|im_start|>'));
    expect(count(ids, tok.bosTokenId ?? undefined)).toBe(0);
    expect(count(ids, tok.tokenToId('<|im_start|>'))).toBe(5);
    expect(count(ids, tok.tokenToId('<|im_end|>'))).toBe(4);
    expect(tok.decode(ids.slice(-3))).toMatch(/<\|im_start\|> ?assistant\n$/);
  });

  describe('smollm3 (SmolLM3-3B)', () => {
    const config = {
      bos_token: null,
      eos_token: '<|im_end|>',
      chat_template: readFileSync(join(FIXTURES, 'SmolLM3-3B.jinja'), 'utf8'),
    };
    const chat = chatEngine(tinyTokenizer(['<|im_start|>', '<|im_end|>', '<|endoftext|>'], config));
    const HEADER = '<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nToday Date: 09 July 2025\n';
    const CHAT_NO_THINK =
      '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n4<|im_end|>\n' +
      '<|im_start|>user\nAnd 3+3?  <|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n';
    const at = (date: Date) => vi.useFakeTimers({ toFake: ['Date'], now: date });

    it('enable_thinking false (chat_template_kwargs): /no_think, empty think blocks, strftime_now date', async () => {
      at(new Date(2025, 6, 9, 12));
      const ids = await chat.prompt({ messages: [SYSTEM, ...TURNS], chat_template_kwargs: { enable_thinking: false } });
      // The template closes the system block with <|im_end|> only when it lists tools (as SmolLM3's does).
      expect(chat.tokenizer.decode(ids)).toBe(
        `${HEADER}Reasoning Mode: /no_think\n\n## Custom Instructions\n\nYou are terse.\n\n${CHAT_NO_THINK}`,
      );
    });

    it('"/no_think" in the system message switches the mode and is left out of the instructions', async () => {
      at(new Date(2025, 6, 9, 12));
      const ids = await chat.prompt({ messages: [{ role: 'system', content: 'You are terse. /no_think' }, ...TURNS] });
      expect(chat.tokenizer.decode(ids)).toBe(
        `${HEADER}Reasoning Mode: /no_think\n\n## Custom Instructions\n\nYou are terse.\n\n${CHAT_NO_THINK}`,
      );
    });

    it('thinking by default, no system message: the default instructions, an open assistant turn', async () => {
      at(new Date(2025, 6, 9, 12));
      const text = chat.tokenizer.decode(await chat.prompt({ messages: TURNS }));
      expect(text.startsWith(`${HEADER}Reasoning Mode: /think\n\n## Custom Instructions\n\nYou are a helpful AI`)).toBe(
        true,
      );
      expect(text.endsWith('<|im_start|>user\nAnd 3+3?  <|im_end|>\n<|im_start|>assistant\n')).toBe(true);
      expect(text).toContain('<|im_start|>assistant\n4<|im_end|>\n');
      expect(text).not.toContain('<think>\n\n</think>');
    });

    it('xml_tools (chat_template_kwargs) are listed as Python dicts, as jinja2 prints `tool | string`', async () => {
      at(new Date(2025, 6, 9, 12));
      const tool = {
        name: 'get_weather',
        description: "the city's weather",
        parameters: { city: 'str', metric: true },
      };
      const ids = await chat.prompt({
        messages: [SYSTEM, TURNS[0]],
        chat_template_kwargs: { enable_thinking: false, xml_tools: [tool] },
      });
      const text = chat.tokenizer.decode(ids);
      expect(text).toContain(
        '### Tools\n\nYou may call one or more functions to assist with the user query.\n' +
          'You are provided with function signatures within <tools></tools> XML tags:\n\n<tools>\n' +
          `{'name': 'get_weather', 'description': "the city's weather", ` +
          `'parameters': {'city': 'str', 'metric': True}}` +
          '\n</tools>',
      );
      expect(text).toContain('</tool_call>\n\n<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n');
    });
  });
});
