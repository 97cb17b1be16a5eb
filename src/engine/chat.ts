/**
 * OpenAI-shaped chat completions over an engine's generate(): the messages go through the
 * checkpoint's chat template, the stream is re-shaped into `chat.completion.chunk` objects (a
 * final chunk with empty choices carries usage), and the non-streamed form is the stream collected.
 */
import type { ChatMessage } from '../tokenizer/chatTemplate';
import type { Tokenizer } from '../tokenizer/tokenizer';
import { EngineRequestError } from './errors';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletions,
  ChatFinishReason,
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

let nextCompletion = 1;

export function chatUsage(u: Usage): ChatUsage {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedPromptTokens },
  };
}

/** The prompt ids of a chat request: the template with the assistant's turn opened (it holds its own BOS). */
export function chatPromptIds(tokenizer: Tokenizer, messages: readonly ChatMessage[]): number[] {
  if (!Array.isArray(messages) || messages.length === 0) throw new EngineRequestError('chat.completions.create: messages must be a non-empty array');
  for (const [i, m] of messages.entries()) {
    if (!m || typeof m.role !== 'string' || typeof m.content !== 'string') {
      throw new EngineRequestError(`chat.completions.create: messages[${i}] needs a string role and content`);
    }
  }
  const text = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
  return tokenizer.encode(text, { addSpecialTokens: false });
}

export function chatCompletions(engine: ChatBackend): ChatCompletions {
  async function create(req: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    const ids = chatPromptIds(engine.tokenizer, req.messages);
    const stop = req.stop === undefined ? undefined : typeof req.stop === 'string' ? [req.stop] : req.stop;
    const chunks = engine.generate(ids, {
      maxTokens: req.max_tokens ?? Math.max(1, engine.model.opts.maxContext - ids.length),
      temperature: req.temperature ?? 1,
      topP: req.top_p,
      n: req.n,
      seed: req.seed ?? Math.floor(Math.random() * 2 ** 32),
      stop,
      signal: req.signal,
      label: String(req.messages[req.messages.length - 1].content).slice(0, 32),
    });
    const stream = toChatChunks(chunks, `chatcmpl-${nextCompletion++}`, engine.modelName);
    return req.stream ? stream : collectChatCompletion(stream);
  }
  return { create } as ChatCompletions;
}

/** Re-shapes engine chunks into OpenAI stream chunks; the first chunk of each choice carries the role. */
export async function* toChatChunks(chunks: AsyncIterable<GenerateChunk>, id: string, model: string): AsyncGenerator<ChatCompletionChunk> {
  const created = Math.floor(Date.now() / 1000);
  const started = new Set<number>();
  const base = { id, object: 'chat.completion.chunk' as const, created, model };
  for await (const c of chunks) {
    if (c.text !== '' || c.finishReason !== null || !started.has(c.index)) {
      const delta: { role?: 'assistant'; content?: string } = {};
      if (!started.has(c.index)) {
        started.add(c.index);
        delta.role = 'assistant';
      }
      if (c.text !== '' || delta.role) delta.content = c.text;
      yield { ...base, choices: [{ index: c.index, delta, finish_reason: c.finishReason }] };
    }
    if (c.usage) yield { ...base, choices: [], usage: chatUsage(c.usage) };
  }
}

/** A whole chat.completion from its stream. */
export async function collectChatCompletion(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletion> {
  const content: string[] = [];
  const finish: ChatFinishReason[] = [];
  let usage: ChatUsage | undefined;
  let head: { id: string; created: number; model: string } | undefined;
  for await (const c of stream) {
    head ??= { id: c.id, created: c.created, model: c.model };
    for (const ch of c.choices) {
      content[ch.index] = (content[ch.index] ?? '') + (ch.delta.content ?? '');
      if (ch.finish_reason !== null) finish[ch.index] = ch.finish_reason;
    }
    if (c.usage) usage = c.usage;
  }
  if (!head || !usage) throw new EngineRequestError('chat completion: the stream ended without usage');
  return {
    ...head,
    object: 'chat.completion',
    choices: content.map((text, index) => ({ index, message: { role: 'assistant' as const, content: text ?? '' }, finish_reason: finish[index] ?? null })),
    usage,
  };
}
