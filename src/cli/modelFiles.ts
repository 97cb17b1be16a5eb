/**
 * --model for the commands that load one: a folder, a URL or a Hugging Face repo id, or a `.gguf`
 * file (a path, a folder holding one, a URL, or --gguf-file NAME in a folder, URL or repo),
 * resolved and read (printing each file over 1 MiB once it has loaded). A GGUF model comes back as
 * the HF folder it was converted from (ggufModelFiles): config, tokenizer and tensors by HF names.
 * Source code is imported lazily, so `--help` and option checks load none of it.
 */
import type { ModelFiles } from '../sources/modelSource';
import { UsageError } from './options';

/** The --model / --gguf-file options of the commands that load a model. */
export const MODEL_OPTIONS = { model: { type: 'string' }, 'gguf-file': { type: 'string' } } as const;

/**
 * The files of --model `model` (--gguf-file `ggufFile`); `needTokenizer` false reads only
 * config.json and the weights.
 */
export async function openModel(
  model: string | undefined,
  needTokenizer: boolean,
  ggufFile?: string,
): Promise<ModelFiles> {
  if (model === undefined) {
    throw new UsageError('--model is required (a folder, a .gguf file, a URL or a Hugging Face repo id)');
  }
  const { resolveSource, loadModelFiles } = await import('../sources/modelSource');
  const { ggufModelFiles } = await import('../model/ggufModelFiles');
  const files = await loadModelFiles(await resolveSource(model, { ggufFile }), {
    needTokenizer,
    onProgress: (p) => {
      if (p.loadedBytes === p.totalBytes && p.totalBytes > 1 << 20) {
        console.error(`webattn: loaded ${p.file} (${(p.totalBytes / 2 ** 20).toFixed(1)} MiB)`);
      }
    },
  });
  const hf = ggufModelFiles(files);
  if (needTokenizer && hf.gguf && !hf.tokenizer) {
    throw new UsageError(`${hf.source}: the GGUF file has no tokenizer (no tokenizer.ggml.model key)`);
  }
  return hf;
}
