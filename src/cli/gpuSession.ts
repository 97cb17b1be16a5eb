/**
 * The one create-context / load / dispose dance of the GPU commands:
 *
 *   return withGpu('logits', async (gpu) => {
 *     const model = await gpu.loadModel(files, { maxSeqs: 1 });   // destroyed when the command ends
 *     ...
 *   });
 *
 * withGpu creates the WebGPU context, prints `webattn <command>: adapter: ...` on stderr, runs the
 * command, then releases what the command loaded or handed to own(), newest first, and destroys
 * the context last, whether the command returned or threw. GPU code is imported lazily, so the
 * commands' option checks never load it.
 */
import type { GpuContext } from '../gpu/context';
import type { Transformer, TransformerOptions } from '../model/transformer';
import type { ModelFiles } from '../sources/modelSource';

/** Anything a command can hand to own(): an engine (dispose) or GPU objects (destroy). */
export type Releasable = { dispose(): void } | { destroy(): void };

export interface GpuSession {
  readonly ctx: GpuContext;
  /** Transformer.load on this context; the model is destroyed when the command ends. */
  loadModel(files: ModelFiles, options: TransformerOptions): Promise<Transformer>;
  /** Releases `resource` when the command ends (before whatever was owned earlier, and the context). */
  own<R extends Releasable>(resource: R): R;
}

export async function withGpu<T>(command: string, use: (gpu: GpuSession) => Promise<T>): Promise<T> {
  const { createContext } = await import('../gpu/context');
  const ctx = await createContext();
  console.error(`webattn ${command}: adapter: ${ctx.adapterDescription}`);
  const owned: Releasable[] = [];
  const own = <R extends Releasable>(resource: R): R => {
    owned.push(resource);
    return resource;
  };
  const session: GpuSession = {
    ctx,
    own,
    async loadModel(files, options) {
      const { Transformer } = await import('../model/transformer');
      return own(await Transformer.load(ctx, files, options));
    },
  };
  try {
    return await use(session);
  } finally {
    try {
      for (const r of owned.reverse()) {
        if ('dispose' in r) r.dispose();
        else r.destroy();
      }
    } finally {
      ctx.destroy();
    }
  }
}
