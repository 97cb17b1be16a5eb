/**
 * The worker side of a WorkerEngine: loads an Engine when asked, runs its requests and streams
 * their chunks back. Separate from worker.ts so tests can host an engine on a MessagePort.
 */
import type { GpuContext } from '../gpu/context';
import type { LoadProgress } from '../sources/modelSource';
import type { Engine } from './engine';
import { listen, readMessage, serializeError, type PortLike, type ToClient, type ToHost } from './workerProtocol';
import type { ChatCompletionChunk, EngineOptions, GenerateChunk } from './types';

export type EngineLoader = (
  model: string | File[],
  opts: EngineOptions | undefined,
  onProgress: (p: LoadProgress) => void,
) => Promise<{ engine: Engine; ctx?: GpuContext }>;

/**
 * Serves one engine at a time over `port`: a second load disposes the first engine (its requests
 * end with an error) before loading; a dispose message or the client's port closing disposes it.
 * Malformed messages are ignored (those with a request id get an error back), so a stray
 * postMessage cannot crash the worker.
 */
export function hostEngine(port: PortLike, load: EngineLoader): void {
  let loaded: { engine: Engine; ctx?: GpuContext } | undefined;
  let loads = 0; // the latest load; an older one that ends later is disposed at once
  const aborts = new Map<number, AbortController>();
  const send = (m: ToClient) => {
    try {
      port.postMessage(m);
    } catch {
      // the client is gone (or a value cannot be cloned): nobody to tell
    }
  };

  const unload = () => {
    for (const c of aborts.values()) c.abort();
    const old = loaded;
    loaded = undefined;
    if (!old) return;
    old.engine.onStep = null;
    old.engine.dispose();
    old.ctx?.destroy();
  };

  const stream = async (
    id: number,
    run: (signal: AbortSignal) => AsyncIterable<GenerateChunk | ChatCompletionChunk>,
  ) => {
    const controller = new AbortController();
    aborts.set(id, controller);
    try {
      for await (const chunk of run(controller.signal)) send({ t: 'chunk', id, chunk });
      send({ t: 'end', id });
    } catch (e) {
      send({ t: 'error', id, error: serializeError(e) });
    } finally {
      aborts.delete(id);
    }
  };

  const serve = (m: ToHost) => {
    switch (m.t) {
      case 'load': {
        unload();
        const mine = ++loads;
        void (async () => {
          try {
            const got = await load(m.model, m.engine, (p) => send({ t: 'progress', p }));
            if (mine !== loads) {
              // A later load (or a dispose) came while this one ran: its result is not wanted.
              got.engine.dispose();
              got.ctx?.destroy();
              return;
            }
            loaded = got;
            got.engine.onStep = (info) => send({ t: 'step', info });
            send({ t: 'loaded', name: got.engine.modelName });
          } catch (e) {
            if (mine === loads) send({ t: 'loadError', error: serializeError(e) });
          }
        })();
        return;
      }
      case 'generate': {
        const engine = loaded?.engine;
        void stream(m.id, (signal) => {
          if (!engine) throw new Error('no model is loaded');
          return engine.generate(m.prompt, { ...m.opts, signal });
        });
        return;
      }
      case 'chat': {
        const engine = loaded?.engine;
        // The template renders here, on the worker's thread, under its budget; bad messages and a
        // failing template end this request with an error. An abort posted meanwhile lands after it.
        void stream(m.id, async function* (signal) {
          if (!engine) throw new Error('no model is loaded');
          yield* await engine.chat.completions.create({ ...m.req, stream: true, signal });
        });
        return;
      }
      case 'call':
        try {
          if (!loaded) throw new Error('no model is loaded');
          const value =
            m.method === 'kvSnapshot'
              ? loaded.engine.kvSnapshot()
              : {
                  description: loaded.ctx?.adapterDescription ?? 'unknown adapter',
                  features: loaded.ctx?.features ?? null,
                };
          send({ t: 'result', id: m.id, value });
        } catch (e) {
          send({ t: 'error', id: m.id, error: serializeError(e) });
        }
        return;
      case 'abort':
        aborts.get(m.id)?.abort();
        return;
      case 'dispose':
        loads++; // a load still running is not wanted any more
        unload();
        return;
    }
  };

  listen(
    port,
    (data) => {
      const m = readMessage(data, 'host');
      if (!m) {
        const id = (data as { id?: unknown } | null)?.id;
        if (typeof id === 'number' && Number.isInteger(id))
          send({ t: 'error', id, error: { name: 'WorkerEngineError', message: 'the worker got a malformed message' } });
        return;
      }
      try {
        serve(m);
      } catch (e) {
        if ('id' in m) send({ t: 'error', id: m.id, error: serializeError(e) });
      }
    },
    () => {
      // The client is gone: nobody will read the results.
      loads++;
      unload();
    },
    'host',
  );
}
