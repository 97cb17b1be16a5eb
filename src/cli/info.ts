/**
 * `webattn info`: a model's family, attention variant, parameter count and KV bytes per token,
 * from its config.json alone (no weights are read, no GPU is touched); for a GGUF model, from its
 * metadata (the file is read: sources read a file whole).
 */
import type { ModelSource } from '../sources/modelSource';
import { MODEL_OPTIONS } from './modelFiles';
import { type Command, numberOption, options, UsageError } from './options';

export const infoCommand: Command = {
  summary: 'describe a model: family, attention variant, parameters, KV bytes per token',
  usage: `usage: webattn info --model <folder|file.gguf|url|org/name> [--gguf-file NAME] [--context N]

Prints the family, the attention variant and head counts, the parameter count, KV bytes per token
(f16 and f32) and what --context tokens of KV cost (default: the config's max_position_embeddings).`,
  run: info,
};

async function info(argv: string[]): Promise<number> {
  const opts = options(argv, { ...MODEL_OPTIONS, context: { type: 'string' } });
  if (opts.model === undefined) {
    throw new UsageError('--model is required (a folder, a .gguf file, a URL or a Hugging Face repo id)');
  }
  const { resolveSource } = await import('../sources/modelSource');
  const source = await resolveSource(opts.model, { ggufFile: opts['gguf-file'] });
  const { parseConfig } = await import('../model/config');
  const { expectedTensors } = await import('../model/expectedTensors');
  const json = await configOf(source);
  const spec = parseConfig(json, `${source.name}: config.json`);
  const { kvBytesPerToken } = await import('../kv/accounting');
  const context = numberOption('context', opts.context, true) ?? spec.maxPositionEmbeddings;
  let params = 0;
  for (const shape of expectedTensors(spec).values()) params += shape.reduce((a, b) => a * b, 1);
  const kv = (dtype: 'f16' | 'f32') =>
    kvBytesPerToken({
      variant: spec.attention,
      numLayers: spec.numLayers,
      numKvHeads: spec.numKvHeads,
      headDimQK: spec.headDim,
      headDimV: spec.headDimV,
      latentDim: spec.mla?.kvLoraRank,
      ropeDim: spec.mla?.qkRopeHeadDim,
      dtype,
    });
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const heads =
    spec.attention === 'mla'
      ? `latent ${spec.mla!.kvLoraRank} + rope ${spec.mla!.qkRopeHeadDim}`
      : `${spec.numKvHeads} KV heads of ${spec.headDim}`;
  const sizes = `${spec.numLayers} layers, hidden ${spec.hiddenSize}, vocab ${spec.vocabSize}`;
  console.log(`${source.name}: ${spec.family}, ${sizes}`);
  console.log(`attention: ${spec.attention.toUpperCase()}, ${spec.numHeads} query heads, ${heads}`);
  console.log(`parameters: ${(params / 1e6).toFixed(1)} M`);
  console.log(`KV per token: ${kv('f16')} bytes in f16, ${kv('f32')} in f32`);
  console.log(`KV for ${context} tokens: ${mib(kv('f16') * context)} in f16, ${mib(kv('f32') * context)} in f32`);
  const { kvBill } = await import('../model/kvBill');
  const bill = kvBill(spec, context, 16, 'f16');
  if (bill.windowed < bill.allPages) {
    // The scheduler's sliding-window page group (pages of 16): what one sequence holds once it has
    // decoded its context-th token, next to every page and the window's bound (ceil(w / 16) + 1).
    const share = `${bill.slidingLayers} of ${spec.numLayers} layers slide over ${spec.slidingWindow} tokens`;
    const pages = `${bill.slidingPagesHeld} pages per sliding layer, ${bill.fullPagesHeld} per full layer`;
    console.log(`KV for ${context} tokens, every page kept: ${mib(bill.allPages)} in f16 (pages of 16)`);
    console.log(
      `KV for ${context} tokens, sliding-window pages freed: ${mib(bill.scheduled)} in f16, ` +
        `${(bill.scheduled / bill.allPages).toFixed(3)} of it (${share}; ${pages}; at most ${mib(bill.windowed)})`,
    );
  }
  return 0;
}

/** config.json of a folder, or the config a GGUF file's metadata stands for. */
async function configOf(source: ModelSource): Promise<unknown> {
  if (source.ggufFile !== undefined) {
    const { loadModelFiles } = await import('../sources/modelSource');
    const { ggufModelFiles } = await import('../model/ggufModelFiles');
    return ggufModelFiles(await loadModelFiles(source)).config;
  }
  const bytes = await source.readFile('config.json');
  if (!bytes) throw new UsageError(`${source.name}: config.json: missing`);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new UsageError(`${source.name}: config.json: not valid JSON (${(e as Error).message})`);
  }
}
