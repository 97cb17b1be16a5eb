/**
 * The Web Worker script of createWorkerEngine():
 *   new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' })
 * It opens WebGPU inside the worker, loads the model (a Hugging Face repo id, a URL to a folder, or
 * picked Files) and hosts an Engine on `self`.
 */
import { createContext } from '../gpu/context';
import { filesSource, loadModelFiles, resolveSource, urlSource } from '../sources/modelSource';
import { Engine } from './engine';
import { hostEngine } from './workerHost';
import type { PortLike } from './workerProtocol';

hostEngine(self as unknown as PortLike, async (model, opts, onProgress) => {
  const source =
    typeof model === 'string'
      ? /^https?:\/\//.test(model) || model.startsWith('/') || model.startsWith('.')
        ? urlSource(new URL(model, self.location.href).href)
        : await resolveSource(model)
      : filesSource(model);
  const files = await loadModelFiles(source, { needTokenizer: true, onProgress });
  const ctx = await createContext();
  try {
    return { engine: await Engine.load(ctx, files, opts), ctx };
  } catch (e) {
    ctx.destroy();
    throw e;
  }
});
