// Chat templates: a list of messages → the prompt text a chat model was trained on, rendered by
// @huggingface/jinja exactly as transformers' `tokenizer.apply_chat_template(..., tokenize=False)`.
//
// Worked example (SmolLM2's template, one user message, addGenerationPrompt: true):
//   [{ role: 'user', content: 'Hi' }]
//   → '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n'
//     + '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n'
//
// The rendered text already holds the special tokens the template writes (often bos_token), so
// encode it with `addSpecialTokens: false`, as transformers does.

import { Template } from '@huggingface/jinja';

/** One chat turn. `content` is usually a string; extra fields (tool_calls, name, ...) reach the template. */
export interface ChatMessage {
  role: string;
  content: unknown;
  [field: string]: unknown;
}

/** One entry of tokenizer_config.json's list form: `"chat_template": [{ "name": "default", "template": "..." }, ...]`. */
export interface NamedChatTemplate {
  name: string;
  template: string;
}

/** What tokenizer_config.json's `chat_template` holds: one template, or a list of named ones. */
export type ChatTemplateSource = string | readonly NamedChatTemplate[];

export interface ChatTemplateOptions {
  /** End with the opening of an assistant turn (the model answers next). Default false. */
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
  /** More template variables: tools, documents, date_string, enable_thinking, ... */
  extra?: Record<string, unknown>;
  /** Which template of the list form to use. Default 'default'. Ignored for a single template. */
  templateName?: string;
}

/** A template that failed to parse or to render, or that called raise_exception. */
export class ChatTemplateError extends Error {
  constructor(
    readonly templateName: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`chat template "${templateName}" failed: ${reason}`, options);
    this.name = 'ChatTemplateError';
  }
}

/** The name a single-string template is reported under in errors. */
export const SINGLE_TEMPLATE_NAME = 'chat_template';

/**
 * Picks one template from a tokenizer_config.json `chat_template` value.
 * 'abc' → { name: 'chat_template', template: 'abc' };
 * [{ name: 'default', template: 'A' }, { name: 'tool_use', template: 'B' }] → { name: 'default', template: 'A' }.
 */
export function selectChatTemplate(source: ChatTemplateSource, name = 'default'): NamedChatTemplate {
  if (typeof source === 'string') return { name: SINGLE_TEMPLATE_NAME, template: source };
  if (!Array.isArray(source)) {
    throw new ChatTemplateError(String(name), 'chat_template must be a string or a list of {name, template}');
  }
  const found = source.find((t) => t && t.name === name);
  if (!found || typeof found.template !== 'string') {
    const names = source.map((t) => t?.name).filter((n) => typeof n === 'string');
    throw new ChatTemplateError(name, `no template named "${name}"; the list holds: ${names.join(', ') || '(none)'}`);
  }
  return { name: found.name, template: found.template };
}

// Parsed templates, keyed by source text: a chat session renders the same template every turn.
const parsedCache = new Map<string, Template>();
const PARSED_CACHE_LIMIT = 16;

function parse(name: string, text: string): Template {
  const hit = parsedCache.get(text);
  if (hit) return hit;
  let parsed: Template;
  try {
    parsed = new Template(text);
  } catch (err) {
    throw new ChatTemplateError(name, `could not be parsed: ${messageOf(err)}`, { cause: err });
  }
  if (parsedCache.size >= PARSED_CACHE_LIMIT) {
    const oldest = parsedCache.keys().next().value;
    if (oldest !== undefined) parsedCache.delete(oldest);
  }
  parsedCache.set(text, parsed);
  return parsed;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Renders `messages` through a chat template (a string, or the list form, from which
 * `opts.templateName` ?? 'default' is taken). Template variables: messages, add_generation_prompt,
 * bos_token, eos_token, everything in `opts.extra`.
 * Any failure is a ChatTemplateError naming the template; a template's raise_exception('msg')
 * gives `chat template "default" failed: msg`.
 */
export function applyChatTemplate(
  template: ChatTemplateSource,
  messages: readonly ChatMessage[],
  opts: ChatTemplateOptions = {},
): string {
  const chosen = selectChatTemplate(template, opts.templateName ?? 'default');
  const parsed = parse(chosen.name, chosen.template);
  const variables: Record<string, unknown> = {
    ...opts.extra,
    messages,
    add_generation_prompt: opts.addGenerationPrompt ?? false,
    bos_token: opts.bosToken ?? '',
    eos_token: opts.eosToken ?? '',
    // raise_exception(msg) is a jinja global: it throws Error(msg), reported below.
  };
  try {
    return parsed.render(variables);
  } catch (err) {
    throw new ChatTemplateError(chosen.name, messageOf(err), { cause: err });
  }
}
