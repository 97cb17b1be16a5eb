/**
 * OpenAI-shaped chat completions over an engine's generate(): the messages go through the
 * checkpoint's chat template, the stream is re-shaped into `chat.completion.chunk` objects (a
 * final chunk with empty choices carries usage), and the non-streamed form is the stream collected.
 *
 * What reaches the template, as transformers' apply_chat_template and vLLM pass it:
 *   messages   as given, checked: content a string, a list of parts (gemma-3's
 *              [{ type: 'text', text }]; the template runtime joins text parts for text-only
 *              templates) or null / absent on an assistant turn that calls tools; `tool` messages
 *              with tool_call_id; assistant `tool_calls` whose OpenAI JSON-string `arguments` are
 *              parsed into a dict (templates print them with `| tojson`, as transformers expects).
 *   tools      the request's `tools`, as they are (OpenAI's { type: 'function', function } shape).
 *   kwargs     `chat_template_kwargs` as more template variables ({ enable_thinking: false } for
 *              Qwen3); messages, add_generation_prompt, bos_token and eos_token are the engine's.
 * Tool calls in the reply (toolCalls.ts: Hermes/Qwen `<tool_call>`, Llama 3.x JSON, Mistral
 * `[TOOL_CALLS]`) come back as message.tool_calls with finish_reason 'tool_calls' when the request
 * has tools; in a stream the reply's text streams as content and the parsed calls arrive whole in
 * the choice's last chunk.
 *
 * Rendering is synchronous and budgeted (steps, time, output: src/tokenizer/templateRuntime.ts), so
 * a hostile template ends with a ChatTemplateError; in the worker it runs on the worker's thread,
 * never the page's, and an abort posted meanwhile is handled as soon as it returns (before any step).
 */
import type { ChatMessage } from '../tokenizer/chatTemplate';
import type { Tokenizer } from '../tokenizer/tokenizer';
import { EngineRequestError } from './errors';
import { parseToolCalls } from './toolCalls';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionMessage,
  ChatCompletionRequest,
  ChatCompletions,
  ChatFinishReason,
  ChatTool,
  ChatToolCall,
  ChatToolCallDelta,
  ChatUsage,
  GenerateChunk,
  GenerateRequestOptions,
  Usage,
} from './types';

/** What chat completions need of an engine. */
export interface ChatBackend {
  readonly tokenizer: Tokenizer;
  readonly modelName: string;
  readonly model: { readonly opts: { readonly maxContext: number } };
  generate(prompt: readonly number[], opts: GenerateRequestOptions): AsyncIterable<GenerateChunk>;
}

/** What the template gets besides the messages. */
export interface ChatTemplateInputOptions {
  tools?: readonly ChatTool[] | null;
  chatTemplateKwargs?: Record<string, unknown> | null;
}

let nextCompletion = 1;
const WHERE = 'chat.completions.create';

export function chatUsage(u: Usage): ChatUsage {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedPromptTokens },
  };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function refuse(why: string): never {
  throw new EngineRequestError(`${WHERE}: ${why}`);
}

/** An assistant message's tool_calls for the template: each `arguments` JSON string parsed into a dict. */
function templateToolCalls(calls: unknown, at: string): unknown[] {
  if (!Array.isArray(calls)) refuse(`${at}.tool_calls must be a list`);
  return calls.map((c: unknown, j) => {
    const where = `${at}.tool_calls[${j}]`;
    if (!isPlainObject(c) || !isPlainObject(c.function) || typeof c.function.name !== 'string')
      refuse(`${where} needs a function with a string name`);
    const given = c.function.arguments ?? {};
    let args: unknown = given;
    if (typeof given === 'string') {
      try {
        args = JSON.parse(given === '' ? '{}' : given);
      } catch {
        refuse(`${where}.function.arguments is not JSON: ${JSON.stringify(given.slice(0, 80))}`);
      }
    }
    if (!isPlainObject(args)) refuse(`${where}.function.arguments must be a JSON object`);
    return { ...c, type: c.type ?? 'function', function: { ...c.function, arguments: args } };
  });
}

/** The messages as the template gets them, checked (see the header). */
export function templateMessages(messages: readonly ChatCompletionMessage[] | readonly ChatMessage[]): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) refuse('messages must be a non-empty array');
  return messages.map((m: unknown, i) => {
    const at = `messages[${i}]`;
    if (!isPlainObject(m) || typeof m.role !== 'string' || m.role === '') refuse(`${at} needs a string role`);
    const out: ChatMessage = { ...m, role: m.role, content: m.content ?? null };
    const c = m.content;
    if (Array.isArray(c)) {
      c.forEach((p: unknown, j) => {
        if (!isPlainObject(p) || typeof p.type !== 'string') refuse(`${at}.content[${j}] must be a part with a type`);
        if (p.type === 'text' && typeof p.text !== 'string') refuse(`${at}.content[${j}] is a text part without text`);
      });
    } else if (c === null || c === undefined) {
      if (m.role !== 'assistant') refuse(`${at} (${m.role}) needs a string content or a list of parts`);
    } else if (typeof c !== 'string') {
      refuse(`${at}.content must be a string, a list of parts or null, got ${typeof c}`);
    }
    // Absent, not null, when there are none: Llama 3's template tests `'tool_calls' in message`.
    if (m.tool_calls === undefined || m.tool_calls === null) delete out.tool_calls;
    else out.tool_calls = templateToolCalls(m.tool_calls, at);
    return out;
  });
}

/** The template's variables besides messages: tools and chat_template_kwargs, checked. */
export function templateExtra(o: ChatTemplateInputOptions): Record<string, unknown> {
  const extra: Record<string, unknown> = {};
  if (o.chatTemplateKwargs !== undefined && o.chatTemplateKwargs !== null) {
    if (!isPlainObject(o.chatTemplateKwargs)) refuse('chat_template_kwargs must be an object');
    Object.assign(extra, o.chatTemplateKwargs);
  }
  if (o.tools !== undefined && o.tools !== null) {
    if (!Array.isArray(o.tools)) refuse('tools must be a list');
    o.tools.forEach((t: unknown, i) => {
      if (!isPlainObject(t) || !isPlainObject(t.function) || typeof t.function.name !== 'string')
        refuse(`tools[${i}] needs a function with a string name ({ type: 'function', function: { name, ... } })`);
    });
    if (o.tools.length > 0) extra.tools = o.tools;
  }
  return extra;
}

/**
 * The prompt ids of a chat request: the template with the assistant's turn opened (it holds its own
 * BOS), given the tools and chat_template_kwargs.
 */
export function chatPromptIds(
  tokenizer: Tokenizer,
  messages: readonly ChatCompletionMessage[] | readonly ChatMessage[],
  opts: ChatTemplateInputOptions = {},
): number[] {
  const text = tokenizer.applyChatTemplate(templateMessages(messages), {
    addGenerationPrompt: true,
    extra: templateExtra(opts),
  });
  return tokenizer.encode(text, { addSpecialTokens: false });
}

/** The request's tool names, when calls are to be read from the reply; else null. */
function callableTools(req: ChatCompletionRequest): Set<string> | null {
  const choice = req.tool_choice ?? 'auto';
  if (choice !== 'auto' && choice !== 'none')
    refuse(`tool_choice ${JSON.stringify(choice)} is not supported (only 'auto' and 'none': no constrained decoding)`);
  if (choice === 'none' || !Array.isArray(req.tools) || req.tools.length === 0) return null;
  return new Set(req.tools.map((t) => t.function.name));
}

/** A short label for the KV view: the last message's text. */
function labelOf(m: ChatCompletionMessage | ChatMessage | undefined): string {
  const c = m?.content;
  if (typeof c === 'string') return c.slice(0, 32);
  if (Array.isArray(c)) {
    const text = (p: { type?: unknown; text?: unknown }) =>
      p?.type === 'text' ? String(p.text) : `[${String(p?.type)}]`;
    return c.map(text).join(' ').slice(0, 32);
  }
  return m?.role ?? '';
}

export function chatCompletions(engine: ChatBackend): ChatCompletions {
  async function create(req: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    if (!isPlainObject(req)) refuse('the request must be an object');
    const tools = callableTools(req);
    const ids = chatPromptIds(engine.tokenizer, req.messages, {
      tools: req.tools,
      chatTemplateKwargs: req.chat_template_kwargs,
    });
    const chunks = engine.generate(ids, {
      maxTokens: req.max_completion_tokens ?? req.max_tokens ?? Math.max(1, engine.model.opts.maxContext - ids.length),
      temperature: req.temperature ?? 1,
      topP: req.top_p,
      topK: req.top_k,
      minP: req.min_p,
      repetitionPenalty: req.repetition_penalty,
      n: req.n,
      seed: req.seed ?? Math.floor(Math.random() * 2 ** 32),
      stop: req.stop,
      signal: req.signal,
      label: labelOf(req.messages[req.messages.length - 1]),
    });
    const id = `chatcmpl-${nextCompletion++}`;
    const stream = toChatChunks(chunks, id, engine.modelName, tools);
    return req.stream ? stream : collectChatCompletion(stream);
  }
  return { create } as ChatCompletions;
}

/**
 * Re-shapes engine chunks into OpenAI stream chunks; the first chunk of each choice carries the role.
 * `tools`: the names calls are read for (null: none); a choice whose reply holds calls gets them in
 * its last chunk, and finish_reason 'tool_calls' when it stopped by itself.
 */
export async function* toChatChunks(
  chunks: AsyncIterable<GenerateChunk>,
  id: string,
  model: string,
  tools: ReadonlySet<string> | null = null,
): AsyncGenerator<ChatCompletionChunk> {
  const created = Math.floor(Date.now() / 1000);
  const started = new Set<number>();
  const texts: string[] = [];
  const base = { id, object: 'chat.completion.chunk' as const, created, model };
  for await (const c of chunks) {
    texts[c.index] = (texts[c.index] ?? '') + c.text;
    if (c.text !== '' || c.finishReason !== null || !started.has(c.index)) {
      const delta: ChatCompletionChunk['choices'][number]['delta'] = {};
      if (!started.has(c.index)) {
        started.add(c.index);
        delta.role = 'assistant';
      }
      if (c.text !== '' || delta.role) delta.content = c.text;
      let finish: ChatFinishReason = c.finishReason;
      if (tools && (finish === 'stop' || finish === 'length')) {
        const { calls } = parseToolCalls(texts[c.index], tools);
        if (calls.length) {
          delta.tool_calls = calls.map(
            (call, k): ChatToolCallDelta => ({
              index: k,
              id: `call_${id.replace(/^chatcmpl-/, '')}_${c.index}_${k}`,
              type: 'function',
              function: { name: call.name, arguments: call.arguments },
            }),
          );
          if (finish === 'stop') finish = 'tool_calls';
        }
      }
      yield { ...base, choices: [{ index: c.index, delta, finish_reason: finish }] };
    }
    if (c.usage) yield { ...base, choices: [], usage: chatUsage(c.usage) };
  }
}

/** A whole chat.completion from its stream; a choice with calls has its content without their markup. */
export async function collectChatCompletion(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletion> {
  const content: string[] = [];
  const calls: ChatToolCall[][] = [];
  const finish: ChatFinishReason[] = [];
  let usage: ChatUsage | undefined;
  let head: { id: string; created: number; model: string } | undefined;
  for await (const c of stream) {
    head ??= { id: c.id, created: c.created, model: c.model };
    for (const ch of c.choices) {
      content[ch.index] = (content[ch.index] ?? '') + (ch.delta.content ?? '');
      for (const { index: _, ...call } of ch.delta.tool_calls ?? []) (calls[ch.index] ??= []).push(call);
      if (ch.finish_reason !== null) finish[ch.index] = ch.finish_reason;
    }
    if (c.usage) usage = c.usage;
  }
  if (!head || !usage) throw new EngineRequestError('chat completion: the stream ended without usage');
  return {
    ...head,
    object: 'chat.completion',
    choices: Array.from(content, (text = '', index) => {
      const toolCalls = calls[index];
      const message: ChatCompletion['choices'][number]['message'] = toolCalls
        ? { role: 'assistant', content: parseToolCalls(text, null).content, tool_calls: toolCalls }
        : { role: 'assistant', content: text };
      return { index, message, finish_reason: finish[index] ?? null };
    }),
    usage,
  };
}
