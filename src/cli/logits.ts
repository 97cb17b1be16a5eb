/**
 * `webattn logits`: exactly these token ids through a model on the GPU (prefill, decode or chunked
 * steps); writes the F32 logits after every token as safetensors. Needs config.json and the
 * weights only.
 */
import { writeFile } from 'node:fs/promises';
import { writeSafetensors } from '../sources/safetensors';
import { withGpu } from './gpuSession';
import { MODEL_OPTIONS, openModel } from './modelFiles';
import { type Command, dtypeOption, options, UsageError, weightDtypeOption } from './options';

export const logitsCommand: Command = {
  summary: 'run token ids through a model and write the logits after every token',
  usage:
    'usage: webattn logits --model <folder|file.gguf|url|org/name> [--gguf-file NAME] --ids 3,17,42 ' +
    `[--mode prefill|decode|chunked:N] --out logits.safetensors
       [--weight-dtype q4|q8|f16|f32] [--kv-dtype f16|f32|q8|q4]

Runs exactly these ids (no BOS added) through the model on the GPU and writes F32 logits
[T, vocab]: row t is the prediction after token t. prefill: all ids in one step; decode: one token
per step through the paged KV cache; chunked:N: N tokens per step. All three agree.
Only config.json and the weights are needed (no tokenizer); or one GGUF file (as for generate).`,
  run: logits,
};

async function logits(argv: string[]): Promise<number> {
  const opts = options(argv, {
    ...MODEL_OPTIONS,
    ids: { type: 'string' },
    mode: { type: 'string' },
    out: { type: 'string' },
    'weight-dtype': { type: 'string' },
    'kv-dtype': { type: 'string' },
  });
  if (opts.ids === undefined) throw new UsageError('--ids is required, e.g. --ids 3,17,42');
  if (opts.out === undefined) throw new UsageError('--out is required (where to write logits.safetensors)');
  const ids = opts.ids.split(',').map((t) => {
    const n = Number(t.trim());
    if (t.trim() === '' || !Number.isInteger(n) || n < 0) throw new UsageError(`--ids: '${t}' is not a token id`);
    return n;
  });
  const mode = opts.mode ?? 'prefill';
  let chunk: number;
  if (mode === 'prefill') chunk = ids.length;
  else if (mode === 'decode') chunk = 1;
  else if (/^chunked:[1-9][0-9]*$/.test(mode)) chunk = Number(mode.slice(8));
  else throw new UsageError(`--mode must be prefill, decode or chunked:N, got '${mode}'`);
  const weightDtype = weightDtypeOption(opts['weight-dtype']) ?? 'f32';
  const kvDtype = dtypeOption('kv-dtype', opts['kv-dtype']) ?? 'f32';
  const files = await openModel(opts.model, false, opts['gguf-file']);
  const { parseConfig } = await import('../model/config');
  const spec = parseConfig(files.config, `${files.source}: config.json`);
  const bad = ids.find((i) => i >= spec.vocabSize);
  if (bad !== undefined) throw new UsageError(`--ids: ${bad} is outside the vocabulary (0..${spec.vocabSize - 1})`);
  const outFile = opts.out;
  return withGpu('logits', async (gpu) => {
    const model = await gpu.loadModel(files, {
      weightDtype,
      kvDtype,
      maxTokens: chunk,
      maxSeqs: 1,
      maxLogitRows: chunk,
      maxContext: ids.length,
    });
    const { logitsForIds } = await import('../engine/stepRunner');
    const logits = await logitsForIds(model, ids, chunk); // a KV pool of ceil(ids / pageSize) pages
    const tensors = { logits: { dtype: 'F32' as const, shape: [ids.length, spec.vocabSize], data: logits } };
    await writeFile(outFile, writeSafetensors(tensors, { mode, adapter: gpu.ctx.adapterDescription }));
    console.log(`wrote logits [${ids.length}, ${spec.vocabSize}] to ${outFile}`);
    return 0;
  });
}
