/**
 * --model for the commands that load one: a folder, a URL or a Hugging Face repo id, resolved and
 * read (printing each file over 1 MiB once it has loaded). Source code is imported lazily, so
 * `--help` and option checks load none of it.
 */
import type { ModelFiles } from '../sources/modelSource';
import { UsageError } from './options';

/** The files of --model `model`; `needTokenizer` false reads only config.json and the weights. */
export async function openModel(model: string | undefined, needTokenizer: boolean): Promise<ModelFiles> {
  if (model === undefined) throw new UsageError('--model is required (a folder, a URL or a Hugging Face repo id)');
  const { resolveSource, loadModelFiles } = await import('../sources/modelSource');
  return loadModelFiles(await resolveSource(model), {
    needTokenizer,
    onProgress: (p) => {
      if (p.loadedBytes === p.totalBytes && p.totalBytes > 1 << 20) {
        console.error(`webattn: loaded ${p.file} (${(p.totalBytes / 2 ** 20).toFixed(1)} MiB)`);
      }
    },
  });
}
