/** The engine layer: continuous batching over the paged KV cache, OpenAI-style chat, a Web Worker client. */
export { Engine } from './engine';
export type { EngineModel } from './engine';
export { EngineRequestError } from './errors';
export { chatCompletions, collectChatCompletion, toChatChunks, chatPromptIds, chatUsage } from './chat';
export type { ChatBackend } from './chat';
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
} from './types';
export { createWorkerEngine, WorkerEngine } from './workerEngine';
export type { WorkerEngineOptions } from './workerEngine';
export { hostEngine } from './workerHost';
export type { EngineLoader } from './workerHost';
export type { PortLike } from './workerProtocol';
