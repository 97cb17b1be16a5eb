/**
 * The engine's public shapes: request options, streamed chunks, the OpenAI-style chat objects, the
 * KV snapshot for the demo's live view and per-step info. No code; engine.ts, chat.ts and the
 * worker client share these so the in-thread and worker APIs cannot drift apart.
 */
import type { StopReason } from '../model/stoppingCriteria';
import type { TransformerOptions } from '../model/transformer';
import type { ChatMessage } from '../tokenizer/chatTemplate';

export interface EngineOptions extends TransformerOptions {
  /** Tokens per step across all sequences (decodes + prefill chunks). Default model.opts.maxTokens. */
  tokenBudget?: number;
  /**
   * KV pages (per layer) the engine's pool holds and its scheduler hands out. Default: what maxSeqs
   * sequences of maxContext tokens need, capped by what one storage binding holds.
   */
  numPages?: number;
}

export interface GenerateRequestOptions {
  /** Most new tokens per sample. Default 128. */
  maxTokens?: number;
  /** 0 = greedy. Default 1. */
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
  /** Seed of sample 0, an integer in 0..2^32-1; sample i uses seed + i (mod 2^32). Default 0. */
  seed?: number;
  /** Stop strings: one or a list (as OpenAI's `stop`). */
  stop?: string | string[];
  /** Samples of the same prompt (prefilled once, then forked, pages shared copy-on-write). Default 1. */
  n?: number;
  signal?: AbortSignal;
  /** Shown in kvSnapshot().requests (default: the start of the prompt text). */
  label?: string;
  /** Keep going past EOS until maxTokens or a stop string (benchmarks). */
  ignoreEos?: boolean;
}

export interface Usage {
  promptTokens: number;
  /** Summed over the n samples. */
  completionTokens: number;
  /** Prompt tokens whose KV came from the prefix cache (at most promptTokens - 1). */
  cachedPromptTokens: number;
}

/**
 * One per new token of a sample; the sample's last chunk carries its finishReason, and the
 * request's very last chunk carries `usage`. A request that fails (refused, or an error while it
 * runs) makes its iterator throw instead; 'error' is only used by transports that cannot throw.
 */
export interface GenerateChunk {
  requestId: number;
  /** Which of the n samples. */
  index: number;
  /** -1 on a chunk that only ends a sample (abort). */
  tokenId: number;
  /** Text delta (may be '' mid-UTF-8 or while a possible stop string is held back). */
  text: string;
  finishReason: null | 'stop' | 'length' | 'abort' | 'error';
  /** On a sample's last chunk when it stopped by itself: why ('stop' is 'eos' or 'stop_string'). */
  stopReason?: StopReason;
  usage?: Usage;
}

/** For the demo's live KV grid. */
export interface KvSnapshot {
  pageSize: number;
  numPages: number;
  /** All layers, K+V. */
  bytesPerPage: number;
  /** (numPages) requestId owning the page (the first holder if shared), -1 when no sequence holds it. */
  owner: Int32Array;
  /** (numPages) sequences holding the page; > 1 = shared (prefix / fork). */
  refCount: Uint8Array;
  /** (numPages) 1 = free page still holding a prefix-cache entry. */
  cached: Uint8Array;
  /** (numPages) tokens written in a held page (its sequence's last page fills as tokens stream). */
  fill?: Uint8Array;
  /** One entry per live sequence (a request with n > 1 has n after its prefill). */
  requests: { requestId: number; index: number; label: string; tokens: number; pages: number }[];
  /**
   * The sliding-window layers' own pool (gemma2/3...), same fields over its pages: a sequence holds
   * only the pages its window still reads (requests[].pages: those live pages). Absent: one pool.
   */
  local?: Omit<KvSnapshot, 'pageSize' | 'local'> & { window: number; fill: Uint8Array };
}

export interface StepInfo {
  step: number;
  /** Tokens of prompts (and of preempted sequences being recomputed) in this step. */
  prefillTokens: number;
  /** Sequences that fed one sampled token. */
  decodeTokens: number;
  ms: number;
  /** Sequences holding pages after the step. */
  running: number;
  /** Requests / sequences waiting for admission after the step. */
  waiting: number;
  /** Sequences preempted while planning this step. */
  preempted: number;
}

// ---- OpenAI-shaped chat completions ----

/** A function the model may call: OpenAI's tool shape, passed to the chat template as it is. */
export interface ChatTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; [field: string]: unknown };
}

/** A call in an assistant message: `arguments` is a JSON string (parsed into a dict for the template). */
export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** One part of a list content (gemma-3, vision models); text parts are what a text model reads. */
export type ChatContentPart = { type: 'text'; text: string } | { type: string; [field: string]: unknown };

/**
 * One message. content: a string, a list of parts, or null / absent on an assistant turn that only
 * calls tools. Extra fields (name, reasoning_content, ...) reach the template as they are.
 */
export interface ChatCompletionMessage {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool' | (string & {});
  content?: string | ChatContentPart[] | null;
  tool_calls?: ChatToolCall[];
  /** On a `tool` message: the call it answers. */
  tool_call_id?: string;
  name?: string;
  [field: string]: unknown;
}

export interface ChatCompletionRequest {
  /** ChatMessage: the tokenizer's loose shape (content unknown), checked the same way. */
  messages: ChatCompletionMessage[] | ChatMessage[];
  stream?: boolean;
  max_tokens?: number;
  /** OpenAI's newer name for max_tokens. */
  max_completion_tokens?: number;
  /** OpenAI's default is 1. */
  temperature?: number;
  top_p?: number;
  /** vLLM extensions: the engine's sampling options. */
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
  n?: number;
  seed?: number;
  stop?: string | string[];
  /** Given to the chat template as `tools`; calls in the reply come back as message.tool_calls. */
  tools?: ChatTool[];
  /** 'auto' (default) reads calls from the reply; 'none' does not. Forcing a call is not supported. */
  tool_choice?: 'auto' | 'none';
  /**
   * More template variables, as transformers' apply_chat_template(**kwargs) and vLLM take them
   * (Qwen3: { enable_thinking: false }).
   */
  chat_template_kwargs?: Record<string, unknown>;
  /** Not OpenAI: cancels the request. */
  signal?: AbortSignal;
}

/** 'tool_calls': the reply stopped by itself and holds calls (message.tool_calls). */
export type ChatFinishReason = 'stop' | 'length' | 'tool_calls' | 'abort' | 'error' | null;

export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

/** A call in a stream chunk: `index` orders the calls of one choice. */
export interface ChatToolCallDelta extends ChatToolCall {
  index: number;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: {
    index: number;
    /** tool_calls: on the choice's last chunk, whole (the reply's text has streamed as content). */
    delta: { role?: 'assistant'; content?: string; tool_calls?: ChatToolCallDelta[] };
    finish_reason: ChatFinishReason;
  }[];
  /** Only on the last chunk (whose choices are empty). */
  usage?: ChatUsage;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: number;
    /** content: the reply without its tool-call markup; null when it holds only calls. */
    message: { role: 'assistant'; content: string | null; tool_calls?: ChatToolCall[] };
    finish_reason: ChatFinishReason;
  }[];
  usage: ChatUsage;
}

export interface ChatCompletions {
  create(req: ChatCompletionRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(req: ChatCompletionRequest & { stream?: false }): Promise<ChatCompletion>;
  create(req: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
}
