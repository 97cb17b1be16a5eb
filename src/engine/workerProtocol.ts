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
 *
 * Either side may die: the worker crashes or is terminated, the page goes away. listen() reports
 * it (the port's 'close', a Worker's 'error' / 'exit', a 'messageerror'), and messages that are
 * not one of these shapes (null, a number, an unknown `t`) are told apart from real ones by
 * readMessage, so a stray postMessage cannot crash either side.
 */
import type { LoadProgress } from '../sources/modelSource';
import type {
  ChatCompletionChunk,
  ChatCompletionRequest,
  EngineOptions,
  GenerateChunk,
  GenerateRequestOptions,
  StepInfo,
} from './types';

export interface PortLike {
  postMessage(message: unknown): void;
  /** 'message'; also 'error' and 'messageerror' (Worker, MessagePort) and 'close' (MessagePort). */
  addEventListener?(type: string, listener: (e: MessageEvent) => void): void;
  onmessage?: ((e: MessageEvent) => void) | null;
  /** Node's worker_threads Worker: an EventEmitter ('message' with the data itself, 'error', 'exit'). */
  on?(type: string, listener: (value: unknown) => void): void;
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

/**
 * Calls `handler` with every message's data and `onDead` (once) when the other side is gone.
 * The client (`side` 'client', on a Worker or a port to one) counts: the port closed, the worker
 * exited or failed, a message that could not be deserialized (one lost message would leave a
 * request pending forever). The host (on the worker's `self` or a port) counts only its port
 * closing: an 'error' on `self` is the worker's own uncaught error, not the page going away.
 */
export function listen(
  port: PortLike,
  handler: (data: unknown) => void,
  onDead?: (why: string) => void,
  side: 'client' | 'host' = 'client',
): void {
  let dead = false;
  const die = (why: string) => {
    if (dead) return;
    dead = true;
    onDead?.(why);
  };
  const errorText = (e: unknown) => {
    const err = (e as { error?: unknown; message?: unknown } | null) ?? {};
    const inner = err.error instanceof Error ? err.error.message : err.message;
    return typeof inner === 'string' && inner !== '' ? `: ${inner}` : e instanceof Error ? `: ${e.message}` : '';
  };
  const client = side === 'client';
  if (typeof port.addEventListener === 'function') {
    port.addEventListener('message', (e: MessageEvent) => handler(e.data));
    port.addEventListener('close', () => die('the message port closed'));
    if (client) {
      port.addEventListener('messageerror', () => die('a message could not be deserialized'));
      port.addEventListener('error', (e) => die(`the worker failed${errorText(e)}`));
    }
  } else if (typeof port.on === 'function') {
    port.on('message', (data) => handler(data));
    port.on('close', () => die('the message port closed'));
    if (client) {
      port.on('messageerror', () => die('a message could not be deserialized'));
      port.on('error', (e) => die(`the worker failed${errorText(e)}`));
      port.on('exit', (code) => die(`the worker exited (code ${String(code)})`));
    }
  } else {
    port.onmessage = (e: MessageEvent) => handler(e.data);
  }
  port.start?.();
}

const isId = (v: unknown) => typeof v === 'number' && Number.isInteger(v);

/** The message if it has the shape of one `to` accepts, else null (a stray or corrupt postMessage). */
export function readMessage(data: unknown, to: 'host'): ToHost | null;
export function readMessage(data: unknown, to: 'client'): ToClient | null;
export function readMessage(data: unknown, to: 'host' | 'client'): ToHost | ToClient | null {
  if (typeof data !== 'object' || data === null) return null;
  const m = data as Record<string, unknown>;
  const obj = (v: unknown) => typeof v === 'object' && v !== null;
  const ok =
    to === 'host'
      ? (m.t === 'load' && (typeof m.model === 'string' || Array.isArray(m.model))) ||
        (m.t === 'generate' &&
          isId(m.id) &&
          (typeof m.prompt === 'string' || Array.isArray(m.prompt)) &&
          obj(m.opts)) ||
        (m.t === 'chat' && isId(m.id) && obj(m.req)) ||
        (m.t === 'call' && isId(m.id) && (m.method === 'kvSnapshot' || m.method === 'adapterInfo')) ||
        (m.t === 'abort' && isId(m.id)) ||
        m.t === 'dispose'
      : (m.t === 'progress' && obj(m.p)) ||
        (m.t === 'loaded' && typeof m.name === 'string') ||
        (m.t === 'loadError' && obj(m.error)) ||
        (m.t === 'chunk' && isId(m.id) && obj(m.chunk)) ||
        (m.t === 'end' && isId(m.id)) ||
        (m.t === 'error' && isId(m.id) && obj(m.error)) ||
        (m.t === 'result' && isId(m.id)) ||
        (m.t === 'step' && obj(m.info));
  return ok ? (m as unknown as ToHost | ToClient) : null;
}

export function serializeError(e: unknown): SerializedError {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
}

export function deserializeError(s: SerializedError): Error {
  const e = new Error(typeof s?.message === 'string' ? s.message : 'the worker sent an error without a message');
  e.name = typeof s?.name === 'string' ? s.name : 'Error';
  return e;
}
