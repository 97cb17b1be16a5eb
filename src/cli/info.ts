/**
 * `webattn info`: a model's family, attention variant, parameter count, KV bytes per token and its
 * weights' GPU bytes in each format, from its config.json alone (no weights are read, no GPU is
 * touched); for a GGUF model, from its metadata (the file is read: sources read a file whole), with
 * the bytes of its tensors as the file stores them. `--json` prints the same as one object.
 */
import type { GgufHeader } from '../sources/gguf';
import type { ModelSource } from '../sources/modelSource';
import { MODEL_OPTIONS } from './modelFiles';
import { type Command, numberOption, options, UsageError } from './options';

export const infoCommand: Command = {
  summary: 'describe a model: family, attention variant, parameters, KV bytes per token, weight bytes',
  usage: `usage: webattn info --model <folder|file.gguf|url|org/name> [--gguf-file NAME] [--context N] [--json]

Prints the family, the attention variant and head counts, the parameter count, KV bytes per token
(per KV dtype), what --context tokens of KV cost (default: the config's max_position_embeddings),
and the weights' GPU bytes at each --weight-dtype (f32, f16, q8, q4); for a GGUF file also the
bytes of its tensors as stored. --json: one JSON object with the same numbers.`,
  run: info,
};

/** KV dtypes in the order info prints them: f16 (the default) first, then the rest of KV_DTYPES. */
function kvDtypesShown<T extends string>(all: readonly T[]): T[] {
  return [...all.filter((d) => d === 'f16'), ...all.filter((d) => d !== 'f16')];
}

async function info(argv: string[]): Promise<number> {
  const opts = options(argv, { ...MODEL_OPTIONS, context: { type: 'string' }, json: { type: 'boolean' } });
  if (opts.model === undefined) {
    throw new UsageError('--model is required (a folder, a .gguf file, a URL or a Hugging Face repo id)');
  }
  const { resolveSource } = await import('../sources/modelSource');
  const source = await resolveSource(opts.model, { ggufFile: opts['gguf-file'] });
  const { parseConfig } = await import('../model/config');
  const { ggufStoredWeights, parameterCount, weightBytesByFormat, formatTypeCounts } = await import(
    '../model/weightFormats'
  );
  const { KV_DTYPES } = await import('../gpu/dtype');
  const { kvBytesPerToken, kvDtypeProblem } = await import('../kv/accounting');
  const { kvBill } = await import('../model/kvBill');
  const { config, gguf } = await configOf(source);
  const spec = parseConfig(config, `${source.name}: config.json`);
  const context = numberOption('context', opts.context, true) ?? spec.maxPositionEmbeddings;
  const params = parameterCount(spec);
  const kvDtypes = kvDtypesShown(KV_DTYPES);
  const kvSpec = (dtype: (typeof KV_DTYPES)[number]) => ({
    variant: spec.attention,
    numLayers: spec.numLayers,
    numKvHeads: spec.numKvHeads,
    headDimQK: spec.headDim,
    headDimV: spec.headDimV,
    latentDim: spec.mla?.kvLoraRank,
    ropeDim: spec.mla?.qkRopeHeadDim,
    dtype,
  });
  const kv = (dtype: (typeof KV_DTYPES)[number]) => kvBytesPerToken(kvSpec(dtype));
  // KV dtypes this model cannot use (q4 on heads too small for it), with the reason Transformer.load gives.
  const kvRefused = Object.fromEntries(
    kvDtypes.flatMap((d) => {
      const problem = kvDtypeProblem(kvSpec(d));
      return problem ? [[d, problem]] : [];
    }),
  );
  const perToken = Object.fromEntries(kvDtypes.map((d) => [d, kv(d)]));
  const formats = weightBytesByFormat(spec);
  const stored = gguf ? ggufStoredWeights(gguf) : null;
  const bill = kvBill(spec, context, 16, 'f16');
  const windowed = bill.windowed < bill.allPages;

  if (opts.json) {
    const report = {
      model: source.name,
      family: spec.family,
      layers: spec.numLayers,
      hiddenSize: spec.hiddenSize,
      vocabSize: spec.vocabSize,
      attention: spec.attention,
      queryHeads: spec.numHeads,
      kvHeads: spec.numKvHeads,
      headDim: spec.headDim,
      ...(spec.mla ? { latent: { dim: spec.mla.kvLoraRank, ropeDim: spec.mla.qkRopeHeadDim } } : {}),
      parameters: params,
      context,
      kvBytesPerToken: perToken,
      kvBytes: Object.fromEntries(kvDtypes.map((d) => [d, perToken[d] * context])),
      ...(Object.keys(kvRefused).length ? { kvRefused } : {}),
      ...(windowed
        ? {
            slidingWindow: {
              window: spec.slidingWindow,
              slidingLayers: bill.slidingLayers,
              pageSize: 16,
              kvDtype: 'f16',
              allPagesBytes: bill.allPages,
              scheduledBytes: bill.scheduled,
              windowedBytes: bill.windowed,
              slidingPagesHeld: bill.slidingPagesHeld,
              fullPagesHeld: bill.fullPagesHeld,
            },
          }
        : {}),
      weightBytes: Object.fromEntries(formats.map((f) => [f.dtype, f.bytes])),
      largestWeight: Object.fromEntries(formats.map((f) => [f.dtype, f.largest])),
      ...(stored ? { ggufStored: stored } : {}),
    };
    console.log(JSON.stringify(report, null, 2));
    return 0;
  }

  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const heads =
    spec.attention === 'mla'
      ? `latent ${spec.mla!.kvLoraRank} + rope ${spec.mla!.qkRopeHeadDim}`
      : `${spec.numKvHeads} KV heads of ${spec.headDim}`;
  const sizes = `${spec.numLayers} layers, hidden ${spec.hiddenSize}, vocab ${spec.vocabSize}`;
  const inEach = (value: (d: (typeof kvDtypes)[number]) => string) =>
    kvDtypes.map((d, i) => `${value(d)} ${i === 0 ? 'bytes ' : ''}in ${d}`).join(', ');
  console.log(`${source.name}: ${spec.family}, ${sizes}`);
  console.log(`attention: ${spec.attention.toUpperCase()}, ${spec.numHeads} query heads, ${heads}`);
  console.log(`parameters: ${(params / 1e6).toFixed(1)} M`);
  console.log(`KV per token: ${inEach((d) => String(perToken[d]))}`);
  console.log(`KV for ${context} tokens: ${kvDtypes.map((d) => `${mib(perToken[d] * context)} in ${d}`).join(', ')}`);
  for (const [d, why] of Object.entries(kvRefused)) console.log(`KV in ${d}: refused for this model (${why})`);
  if (windowed) {
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
  console.log(`weights on the GPU: ${formats.map((f) => `${mib(f.bytes)} in ${f.dtype}`).join(', ')}`);
  if (stored) {
    console.log(`weights as the GGUF file stores them: ${mib(stored.bytes)} (${formatTypeCounts(stored.types)})`);
  }
  return 0;
}

/** config.json of a folder, or the config a GGUF file's metadata stands for (and its header). */
async function configOf(source: ModelSource): Promise<{ config: unknown; gguf: GgufHeader | null }> {
  if (source.ggufFile !== undefined) {
    const { loadModelFiles } = await import('../sources/modelSource');
    const { ggufModelFiles } = await import('../model/ggufModelFiles');
    const files = ggufModelFiles(await loadModelFiles(source));
    return { config: files.config, gguf: files.gguf ?? null };
  }
  const bytes = await source.readFile('config.json');
  if (!bytes) throw new UsageError(`${source.name}: config.json: missing`);
  try {
    return { config: JSON.parse(new TextDecoder().decode(bytes)), gguf: null };
  } catch (e) {
    throw new UsageError(`${source.name}: config.json: not valid JSON (${(e as Error).message})`);
  }
}
