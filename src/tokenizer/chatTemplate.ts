// Chat templates: a list of messages → the prompt text a chat model was trained on, rendered by
// @huggingface/jinja as transformers' `tokenizer.apply_chat_template(..., tokenize=False)` renders it
// (366 of 378 real-repo cases byte-equal, test/tokenizer/templateConformance.test.ts; the rest and
// the workarounds: README, "Compatibility notes").
//
// Worked example (SmolLM2's template, one user message, addGenerationPrompt: true):
//   [{ role: 'user', content: 'Hi' }]
//   → '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n'
//     + '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n'
//
// The rendered text already holds the special tokens the template writes (often bos_token), so
// encode it with `addSpecialTokens: false`, as transformers does.
//
// A template is code from the model repo: rendering runs under a budget (steps, time, output
// length, range length; ./templateRuntime.ts) and always ends, with a ChatTemplateError naming the
// template when a limit is passed. It is synchronous and touches nothing outside its variables.

import { Template } from '@huggingface/jinja';
import { renderTemplate, TemplateBudgetError, type RenderBudget } from './templateRuntime';

export { DEFAULT_RENDER_BUDGET, TemplateBudgetError, type RenderBudget } from './templateRuntime';

/** One chat turn. `content` is usually a string; extra fields (tool_calls, name, ...) reach the template. */
export interface ChatMessage {
  role: string;
  content: unknown;
  [field: string]: unknown;
}

/** One entry of tokenizer_config.json's list form: `"chat_template": [{ "name": "default", "template": "..." }]`. */
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
  /** Limits on rendering; missing fields take DEFAULT_RENDER_BUDGET's. */
  budget?: RenderBudget;
  /** The clock `strftime_now` reads. Default: now. */
  now?: () => Date;
  /**
   * How a message whose content is a list of parts (`[{ type: 'text', text }]`) reaches the template.
   * 'parts': as it is. 'string': its text parts joined by '\n' (other parts are an error).
   * 'auto' (default): 'parts' for templates that look into content (loop over it, index it),
   * else 'string', as vLLM does: a text-only template would print the list or fail on it.
   */
  contentFormat?: 'auto' | 'string' | 'parts';
}

/**
 * A template that failed to parse or to render, called raise_exception, or passed its budget
 * (`budgetLimit` then names the limit: 'maxSteps', 'maxMillis', 'maxOutputChars', 'maxRange', 'maxItems').
 */
export class ChatTemplateError extends Error {
  readonly budgetLimit: keyof RenderBudget | null;
  constructor(
    readonly templateName: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`chat template "${templateName}" failed: ${reason}`, options);
    this.name = 'ChatTemplateError';
    this.budgetLimit = options?.cause instanceof TemplateBudgetError ? options.cause.limit : null;
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

// The longest real template collected (gpt-oss) is 16 KB; a template past this is not a chat template.
export const MAX_TEMPLATE_CHARS = 1024 * 1024;

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

// A template that reads content parts itself: loops over a content, indexes it, or filters its items.
// (A type test alone does not count: Llama-3.2 tests `content is iterable` for tool results only.)
const READS_CONTENT_PARTS = new RegExp(
  [
    String.raw`\bfor\s+\w+\s+in\s+[\w.\[\]'"]*?(\[['"]content['"]\]|\.content)\b`,
    String.raw`content(['"]\])?\s*\[\s*0\s*\]`,
    String.raw`content(['"]\])?\s*\|\s*(selectattr|rejectattr|map|first)\b`,
  ].join('|'),
);

/** 'parts' when a template reads list contents itself, else 'string'. See ChatTemplateOptions.contentFormat. */
export function detectContentFormat(template: string): 'string' | 'parts' {
  return READS_CONTENT_PARTS.test(template) ? 'parts' : 'string';
}

/** The message with list content as its text parts joined by '\n'; other messages as they are. */
function withStringContent(templateName: string, m: ChatMessage, index: number): ChatMessage {
  if (!Array.isArray(m.content)) return m;
  const texts = m.content.map((part: unknown) => {
    const p = part as { type?: unknown; text?: unknown } | null;
    if (typeof part === 'string') return part;
    if (p && p.type === 'text' && typeof p.text === 'string') return p.text;
    throw new ChatTemplateError(
      templateName,
      `messages[${index}].content has a part of type ${JSON.stringify(p?.type)}; this template takes text only`,
    );
  });
  return { ...m, content: texts.join('\n') };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Renders `messages` through a chat template (a string, or the list form, from which
 * `opts.templateName` ?? 'default' is taken). Template variables: messages, add_generation_prompt,
 * bos_token, eos_token, tools and documents (null unless given), everything in `opts.extra`.
 * Synchronous and bounded by `opts.budget`, so it can run on the thread that serves aborts.
 * Any failure is a ChatTemplateError naming the template; a template's raise_exception('msg')
 * gives `chat template "default" failed: msg`.
 */
export function applyChatTemplate(
  template: ChatTemplateSource,
  messages: readonly ChatMessage[],
  opts: ChatTemplateOptions = {},
): string {
  const chosen = selectChatTemplate(template, opts.templateName ?? 'default');
  if (chosen.template.length > MAX_TEMPLATE_CHARS) {
    const size = `${chosen.template.length} characters, more than the ${MAX_TEMPLATE_CHARS} a template may have`;
    throw new ChatTemplateError(chosen.name, `the template itself is ${size}`);
  }
  const parsed = parse(chosen.name, chosen.template);
  const asked = opts.contentFormat ?? 'auto';
  const format = asked === 'auto' ? detectContentFormat(chosen.template) : asked;
  if (format === 'string') messages = messages.map((m, i) => withStringContent(chosen.name, m, i));
  const variables: Record<string, unknown> = {
    // transformers always passes these two, None when absent: `tools is defined` is true there.
    tools: null,
    documents: null,
    ...opts.extra,
    messages,
    add_generation_prompt: opts.addGenerationPrompt ?? false,
    bos_token: opts.bosToken ?? '',
    eos_token: opts.eosToken ?? '',
    // raise_exception(msg) is a jinja global: it throws Error(msg), reported below.
  };
  try {
    return renderTemplate(parsed, variables, { budget: opts.budget, now: opts.now });
  } catch (err) {
    throw new ChatTemplateError(chosen.name, messageOf(err), { cause: err });
  }
}
