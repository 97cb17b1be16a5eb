/**
 * The worker side of a WorkerEngine: loads an Engine when asked, runs its requests and streams
 * their chunks back. Separate from worker.ts so tests can host an engine on a MessagePort.
 */
import type { GpuContext } from '../gpu/context';
import type { LoadProgress } from '../sources/modelSource';
import type { Engine } from './engine';
import { chatPromptIds } from './chat';
import { listen, serializeError, type PortLike, type ToClient, type ToHost } from './workerProtocol';
import type { ChatCompletionChunk, EngineOptions, GenerateChunk } from './types';

export type EngineLoader = (
  model: string | File[],
  opts: EngineOptions | undefined,
  onProgress: (p: LoadProgress) => void,
) => Promise<{ engine: Engine; ctx?: GpuContext }>;

/** Serves one engine over `port` until a dispose message. */
export function hostEngine(port: PortLike, load: EngineLoader): void {
  let loaded: { engine: Engine; ctx?: GpuContext } | undefined;
  const aborts = new Map<number, AbortController>();
  const send = (m: ToClient) => port.postMessage(m);

  const stream = async (id: number, run: (signal: AbortSignal) => AsyncIterable<GenerateChunk | ChatCompletionChunk>) => {
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

  listen<ToHost>(port, (m) => {
    switch (m.t) {
      case 'load':
        void (async () => {
          try {
            loaded = await load(m.model, m.engine, (p) => send({ t: 'progress', p }));
            loaded.engine.onStep = (info) => send({ t: 'step', info });
            send({ t: 'loaded', name: loaded.engine.modelName });
          } catch (e) {
            send({ t: 'loadError', error: serializeError(e) });
          }
        })();
        return;
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
        void stream(m.id, async function* (signal) {
          if (!engine) throw new Error('no model is loaded');
          chatPromptIds(engine.tokenizer, m.req.messages); // bad messages fail here, before anything runs
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
              : { description: loaded.ctx?.adapterDescription ?? 'unknown adapter', features: loaded.ctx?.features ?? null };
          send({ t: 'result', id: m.id, value });
        } catch (e) {
          send({ t: 'error', id: m.id, error: serializeError(e) });
        }
        return;
      case 'abort':
        aborts.get(m.id)?.abort();
        return;
      case 'dispose':
        for (const c of aborts.values()) c.abort();
        loaded?.engine.dispose();
        loaded?.ctx?.destroy();
        loaded = undefined;
        return;
    }
  });
}
