/**
 * The engine's API through a Web Worker, so the page stays responsive while the model runs:
 *
 *   const engine = await createWorkerEngine({ model: 'HuggingFaceTB/SmolLM2-135M-Instruct' });
 *   for await (const c of engine.generate('Once upon', { maxTokens: 20 })) out.textContent += c.text;
 *   const reply = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }] });
 *
 * generate / chat.completions.create have the in-thread Engine's shapes; kvSnapshot and
 * adapterInfo become async. `port` (not in a browser page's usual use) hosts the client on any
 * message port, e.g. one end of a MessageChannel whose other end runs hostEngine().
 *
 * A dead worker (it crashed, was terminated, its port closed) fails everything pending at once with
 * a WorkerEngineError saying why, and every later call the same way; malformed messages from the
 * port are ignored. A second load() makes the worker dispose the first engine before loading.
 */
import type { GpuFeatures } from '../gpu/context';
import type { LoadProgress } from '../sources/modelSource';
import { Channel } from './channel';
import { collectChatCompletion } from './chat';
import { EngineRequestError, WorkerEngineError } from './errors';
import { deserializeError, listen, readMessage, type PortLike, type ToClient, type ToHost } from './workerProtocol';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletions,
  EngineOptions,
  GenerateChunk,
  GenerateRequestOptions,
  KvSnapshot,
  StepInfo,
} from './types';

export interface WorkerEngineOptions {
  /** A Hugging Face repo id, a URL of a model folder, or picked files. */
  model: string | File[];
  engine?: EngineOptions;
  /** A worker running src/engine/worker.ts; default: a new one. */
  worker?: Worker;
  /** Any message port with hostEngine() on its other end (instead of a worker). */
  port?: PortLike;
  onProgress?: (p: LoadProgress) => void;
}

export async function createWorkerEngine(opts: WorkerEngineOptions): Promise<WorkerEngine> {
  let created: Worker | undefined;
  let port = opts.port ?? (opts.worker as unknown as PortLike | undefined);
  if (!port) {
    created = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
    port = created as unknown as PortLike;
  }
  const engine = new WorkerEngine(port, () => created?.terminate(), opts.onProgress);
  try {
    await engine.load(opts.model, opts.engine);
  } catch (e) {
    engine.dispose();
    throw e;
  }
  return engine;
}

type Pending =
  | { kind: 'stream'; channel: Channel<GenerateChunk | ChatCompletionChunk> }
  | { kind: 'call'; resolve: (v: unknown) => void; reject: (e: unknown) => void };

export class WorkerEngine {
  onStep: ((s: StepInfo) => void) | null = null;
  readonly chat: { completions: ChatCompletions };
  modelName = '';

  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private loading: { resolve: () => void; reject: (e: unknown) => void } | null = null;
  private disposed = false;
  /** Set once the worker is gone: why, for every pending and later call. */
  private dead: WorkerEngineError | null = null;

  constructor(
    private readonly port: PortLike,
    private readonly terminate: () => void,
    private readonly onProgress?: (p: LoadProgress) => void,
  ) {
    listen(
      port,
      (data) => {
        const m = readMessage(data, 'client');
        if (m) this.receive(m); // anything else is not from a host: ignored
      },
      (why) => this.died(why),
    );
    const create = async (req: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> => {
      const { signal, stream, ...rest } = req;
      const chunks = this.open<ChatCompletionChunk>({ t: 'chat', id: 0, req: rest }, signal);
      return stream ? chunks : collectChatCompletion(chunks);
    };
    this.chat = { completions: { create } as ChatCompletions };
  }

  /** Sent by createWorkerEngine. Loading again replaces the model: the worker disposes the first engine. */
  load(model: string | File[], engine?: EngineOptions): Promise<void> {
    const gone = this.gone();
    if (gone) return Promise.reject(gone);
    this.loading?.reject(new EngineRequestError('the load was replaced by a later load()'));
    return new Promise((resolve, reject) => {
      this.loading = { resolve, reject };
      try {
        this.post({ t: 'load', model, engine });
      } catch (e) {
        this.loading = null;
        reject(e);
      }
    });
  }

  /** Why calls fail now (disposed, or the worker died), or null while it serves. */
  private gone(): Error | null {
    return this.dead ?? (this.disposed ? new EngineRequestError('the worker engine was disposed') : null);
  }

  /** The worker is gone: everything pending fails with why, and so does every later call. */
  private died(why: string): void {
    if (this.dead || this.disposed) return;
    this.dead = new WorkerEngineError(`the engine's worker is gone (${why}); create a new worker engine`);
    this.failPending(this.dead);
    this.terminate();
  }

  private failPending(e: Error): void {
    for (const p of this.pending.values()) {
      if (p.kind === 'stream') p.channel.fail(e);
      else p.reject(e);
    }
    this.pending.clear();
    this.loading?.reject(e);
    this.loading = null;
  }

  generate(prompt: string | readonly number[], opts: GenerateRequestOptions = {}): AsyncIterable<GenerateChunk> {
    const { signal, ...rest } = opts;
    return this.open<GenerateChunk>(
      { t: 'generate', id: 0, prompt: typeof prompt === 'string' ? prompt : Array.from(prompt), opts: rest },
      signal,
    );
  }

  kvSnapshot(): Promise<KvSnapshot> {
    return this.call('kvSnapshot') as Promise<KvSnapshot>;
  }

  adapterInfo(): Promise<{ description: string; features: GpuFeatures | null }> {
    return this.call('adapterInfo') as Promise<{ description: string; features: GpuFeatures | null }>;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (!this.dead) this.postQuietly({ t: 'dispose' });
    this.failPending(this.dead ?? new EngineRequestError('the worker engine was disposed'));
    this.terminate();
  }

  private open<C extends GenerateChunk | ChatCompletionChunk>(
    message: ToHost & { id: number },
    signal?: AbortSignal,
  ): AsyncIterable<C> {
    const id = this.nextId++;
    const channel = new Channel<GenerateChunk | ChatCompletionChunk>();
    const gone = this.gone();
    if (gone) {
      channel.fail(gone);
      return channel as AsyncIterable<C>;
    }
    this.pending.set(id, { kind: 'stream', channel });
    const abort = () => this.postQuietly({ t: 'abort', id });
    channel.onReturn = () => {
      abort();
      this.pending.delete(id);
    };
    signal?.addEventListener('abort', abort, { once: true });
    try {
      this.post({ ...message, id } as ToHost);
    } catch (e) {
      this.pending.delete(id);
      channel.fail(e);
      return channel as AsyncIterable<C>;
    }
    if (signal?.aborted) abort();
    return channel as AsyncIterable<C>;
  }

  private call(method: 'kvSnapshot' | 'adapterInfo'): Promise<unknown> {
    const gone = this.gone();
    if (gone) return Promise.reject(gone);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { kind: 'call', resolve, reject });
      try {
        this.post({ t: 'call', id, method });
      } catch (e) {
        this.pending.delete(id);
        reject(e);
      }
    });
  }

  /** Posts; a message that cannot be sent (data that cannot be cloned, a closed port) throws a WorkerEngineError. */
  private post(m: ToHost): void {
    try {
      this.port.postMessage(m);
    } catch (e) {
      throw new WorkerEngineError(`the worker engine could not send "${m.t}": ${(e as Error).message}`, { cause: e });
    }
  }

  /** Posts what needs no answer (abort, dispose): a port that cannot take it is already gone. */
  private postQuietly(m: ToHost): void {
    try {
      this.port.postMessage(m);
    } catch {
      // nothing to tell: the worker cannot run the request either
    }
  }

  private receive(m: ToClient): void {
    switch (m.t) {
      case 'progress':
        this.onProgress?.(m.p);
        return;
      case 'loaded':
        this.modelName = m.name;
        this.loading?.resolve();
        this.loading = null;
        return;
      case 'loadError':
        this.loading?.reject(deserializeError(m.error));
        this.loading = null;
        return;
      case 'step':
        try {
          this.onStep?.(m.info);
        } catch {
          // a listener's bug must not break the client
        }
        return;
      case 'chunk': {
        const p = this.pending.get(m.id);
        if (p?.kind === 'stream') p.channel.push(m.chunk);
        return;
      }
      case 'end':
      case 'error': {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (!p) return;
        if (m.t === 'end') {
          if (p.kind === 'stream') p.channel.close();
          return;
        }
        const e = deserializeError(m.error);
        if (p.kind === 'stream') p.channel.fail(e);
        else p.reject(e);
        return;
      }
      case 'result': {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (p?.kind === 'call') p.resolve(m.value);
        return;
      }
    }
  }
}
