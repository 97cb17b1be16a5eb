/**
 * The engine layer: the scheduler that owns the paged KV cache, continuous batching over it, one-prompt
 * generation, OpenAI-style chat, a Web Worker client.
 */
export { Engine } from './engine';
export type { EngineModel, EngineKv, EngineSetup } from './engine';
export { Scheduler } from './scheduler';
export type { SchedulerOptions, ScheduledSequence, ScheduledStep, StepSequence } from './scheduler';
export { StepRunner, bindKvPool, unbindKvPool, logitsForIds } from './stepRunner';
export type { StepRunnerOptions } from './stepRunner';
export { generate, generateText } from './generate';
export type { GenerateOptions, GenerateStats } from './generate';
export { EngineRequestError, NonFiniteLogitsError, WorkerEngineError } from './errors';
export {
  chatCompletions,
  collectChatCompletion,
  toChatChunks,
  chatPromptIds,
  chatUsage,
  templateMessages,
  templateExtra,
} from './chat';
export type { ChatBackend, ChatTemplateInputOptions } from './chat';
export { parseToolCalls } from './toolCalls';
export type { ParsedToolCall, ParsedReply } from './toolCalls';
export type {
  EngineOptions,
  GenerateRequestOptions,
  GenerateChunk,
  Usage,
  KvSnapshot,
  StepInfo,
  ChatCompletionRequest,
  ChatCompletionChunk,
  ChatCompletion,
  ChatCompletions,
  ChatUsage,
  ChatFinishReason,
  ChatTool,
  ChatToolCall,
  ChatToolCallDelta,
  ChatContentPart,
  ChatCompletionMessage,
} from './types';
export { createWorkerEngine, WorkerEngine } from './workerEngine';
export type { WorkerEngineOptions } from './workerEngine';
export { hostEngine } from './workerHost';
export type { EngineLoader } from './workerHost';
export type { PortLike } from './workerProtocol';
