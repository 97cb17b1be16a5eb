/**
 * webattn: the public ES module. Re-exports only; importing it runs nothing (no GPU access, no
 * globals touched): `createContext()` is where WebGPU is first reached.
 *
 *   import { createContext, attention } from 'webattn';
 *   const ctx = await createContext();               // browser: navigator.gpu; Node: Dawn (`webgpu`)
 *   const { out, lse } = await attention(ctx, { q, k, v, numHeads: 8, numKvHeads: 2, ... });
 *
 * @module webattn
 */

// GPU context and typed errors
export { createContext, contextFromDevice, GpuContext } from './gpu/context';
export type { ContextOptions, GpuFeatures } from './gpu/context';
export {
  WebAttnError,
  NoWebGpuError,
  ShaderCompileError,
  DeviceLostError,
  OutOfMemoryError,
  ShapeError,
} from './gpu/errors';

// Attention on host arrays, and its float64 reference
export { attention } from './api/attention';
export type { AttentionArgs, AttentionResult } from './api/attention';
export { referenceAttention, relL2 } from './reference/attention';
export type { ReferenceAttentionArgs } from './reference/attention';

// Kernel wrappers (specialise, bind, encode; the caller submits)
export { FlashPrefill } from './kernels/flashPrefill';
export { SplitKvDecode } from './kernels/splitKvDecode';
export type { DecodePlan } from './kernels/splitKvDecode';
export { MergePartials } from './kernels/mergePartials';
export { KvAppend } from './kernels/kvAppend';
export { NaiveAttention } from './kernels/naiveAttention';
export type { NaivePlan, NaiveBinding } from './kernels/naiveAttention';
export { CopyKernel } from './kernels/copy';
export { attentionParams, WORK_ITEM_U32 } from './kernels/pagedAttention';
export type { AttentionSpec, AttentionOptions, PagedKvBuffers, StepBuffers } from './kernels/pagedAttention';

// Paged KV cache: bookkeeping (no GPU), page table metadata, GPU page pool, accounting
export { buildPageTable } from './kernels/pageTable';
export type { PageTableSequence, PageTableMetadata } from './kernels/pageTable';
export { KvCacheManager } from './kv/kvCacheManager';
export type { KvCacheManagerOptions, AppendResult, NoRoom, PageCopy, KvCacheStats } from './kv/kvCacheManager';
export { KvPool } from './kernels/kvPool';
export type { KvPoolSpec } from './kernels/kvPool';
export { kvBytesPerToken, kvValuesPerTokenPerLayer, pageBytes, describeMemory } from './kv/accounting';
export type { AttentionVariant, KvDtype, KvSpec, KvMemory } from './kv/accounting';

// Benchmarks (the same definitions as `npm run bench` and the demo's bench page)
export { runAttentionBench, formatBenchTable } from './bench/attentionBench';
export type { BenchRow, BenchReport, BenchOptions } from './bench/attentionBench';

// Model runtime: sources (folder / URL / hub / picked files), tokenizer, forward pass, generation
export {
  resolveSource,
  loadModelFiles,
  folderSource,
  urlSource,
  hubSource,
  filesSource,
  browserCache,
  diskCache,
  ModelSourceError,
} from './sources/modelSource';
export type {
  ModelSource,
  ModelFiles,
  LoadProgress,
  FileCache,
  ReadFileOptions,
  UrlSourceOptions,
} from './sources/modelSource';
export { loadTokenizer, tokenizerFromModelFiles, Tokenizer } from './tokenizer/tokenizer';
export type {
  LoadTokenizerOptions,
  TokenizerConfig,
  EncodeOptions,
  DecodeOptions,
  StreamDecoder,
} from './tokenizer/tokenizer';
export { applyChatTemplate, ChatTemplateError, DEFAULT_RENDER_BUDGET } from './tokenizer/chatTemplate';
export type { ChatMessage, ChatTemplateOptions, RenderBudget } from './tokenizer/chatTemplate';
export { parseConfig, ModelConfigError, SUPPORTED_MODEL_TYPES } from './model/config';
export type { ModelSpec, ModelFamily } from './model/config';
export { Transformer } from './model/transformer';
export { ggufModelFiles } from './model/ggufModelFiles';
export type { TransformerOptions } from './model/transformer';
export type { StepBatch } from './kernels/stepBatch';
export type { SamplingParams } from './model/sampler';
export type { StopReason } from './model/stoppingCriteria';

// Engine: many requests at once over the paged KV cache (continuous batching, prefix reuse, forks,
// preemption), OpenAI-shaped chat completions, and the same API through a Web Worker
export {
  Engine,
  EngineRequestError,
  chatCompletions,
  collectChatCompletion,
  createWorkerEngine,
  WorkerEngine,
  hostEngine,
} from './engine';
// ... errors a request or the worker can end with, and tool calls read from a reply
export { NonFiniteLogitsError, WorkerEngineError, parseToolCalls } from './engine';
// ... the scheduler that owns the KV cache and emits each step's StepBatch; one-prompt generation
// and logits for given ids over it
export { Scheduler, StepRunner, bindKvPool, logitsForIds, generate, generateText } from './engine';
export type {
  SchedulerOptions,
  ScheduledSequence,
  ScheduledStep,
  StepSequence,
  StepRunnerOptions,
  GenerateOptions,
  GenerateStats,
  EngineKv,
  EngineSetup,
  EngineModel,
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
  WorkerEngineOptions,
  EngineLoader,
  PortLike,
} from './engine';
