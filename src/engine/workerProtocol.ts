/**
 * The messages between a WorkerEngine (the page) and the engine host (the worker). The transport
 * is anything with postMessage and onmessage / addEventListener('message'): a Worker, the
 * worker's `self`, or a MessagePort (tests use worker_threads' MessageChannel).
 *
 * page -> worker                                   worker -> page
 *   load { model, engine }                           progress { p }   loaded { name }   loadError { error }
 *   generate { id, prompt, opts }                    chunk { id, chunk } ... end { id }   (or error { id, error })
 *   chat { id, req }  (always streamed)              chunk { id, chunk } ... end { id }
 *   call { id, method: kvSnapshot | adapterInfo }    result { id, value }   (or error)
 *   abort { id }                                     step { info }   (after every engine step)
 *   dispose
 */
import type { LoadProgress } from '../sources/modelSource';
import type { ChatCompletionChunk, ChatCompletionRequest, EngineOptions, GenerateChunk, GenerateRequestOptions, StepInfo } from './types';

export interface PortLike {
  postMessage(message: unknown): void;
  addEventListener?(type: 'message', listener: (e: MessageEvent) => void): void;
  onmessage?: ((e: MessageEvent) => void) | null;
  /** MessagePorts deliver nothing until started (addEventListener does not start Node's). */
  start?(): void;
}

export interface SerializedError {
  name: string;
  message: string;
}

export type ToHost =
  | { t: 'load'; model: string | File[]; engine?: EngineOptions }
  | { t: 'generate'; id: number; prompt: string | number[]; opts: Omit<GenerateRequestOptions, 'signal'> }
  | { t: 'chat'; id: number; req: Omit<ChatCompletionRequest, 'signal' | 'stream'> }
  | { t: 'call'; id: number; method: 'kvSnapshot' | 'adapterInfo' }
  | { t: 'abort'; id: number }
  | { t: 'dispose' };

export type ToClient =
  | { t: 'progress'; p: LoadProgress }
  | { t: 'loaded'; name: string }
  | { t: 'loadError'; error: SerializedError }
  | { t: 'chunk'; id: number; chunk: GenerateChunk | ChatCompletionChunk }
  | { t: 'end'; id: number }
  | { t: 'error'; id: number; error: SerializedError }
  | { t: 'result'; id: number; value: unknown }
  | { t: 'step'; info: StepInfo };

export function listen<T>(port: PortLike, handler: (message: T) => void): void {
  const onEvent = (e: MessageEvent) => handler(e.data as T);
  if (typeof port.addEventListener === 'function') port.addEventListener('message', onEvent);
  else port.onmessage = onEvent;
  port.start?.();
}

export function serializeError(e: unknown): SerializedError {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
}

export function deserializeError(s: SerializedError): Error {
  const e = new Error(s.message);
  e.name = s.name;
  return e;
}
