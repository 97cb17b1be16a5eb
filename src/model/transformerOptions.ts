/**
 * Checks of the sizes a Transformer is set up for (TransformerOptions), made before anything is
 * allocated, so a bad value is an error that names the option and its allowed range, not a raw
 * WebGPU message ("Invalid BindGroup") or a V8 one from a buffer sized by NaN.
 *
 * Two kinds of limit:
 *   fixed   each option is an integer in a range (OPTION_RANGES) no real use comes near;
 *   device  the step buffers that grow with an option must each fit one storage binding
 *           (maxStorageBufferBindingSize), so the largest value that fits is computed and named.
 * Worked example (SmolLM2-135M: hidden 576, intermediate 1536, vocab 49152; binding 128 MiB):
 *   maxTokens <= floor(128 Mi / (4 · 1536)) = 21845;  maxLogitRows <= floor(128 Mi / (4 · 49152)) = 682.
 */
import { ShapeError } from '../gpu/errors';
import type { ModelSpec } from './config';
import type { LoadDtype } from './weights';
import type { KvDtype } from '../gpu/dtype';

type SizeOption = 'pageSize' | 'maxTokens' | 'maxSeqs' | 'maxLogitRows' | 'maxContext';

/** Allowed values of each size option, inclusive. pageSize <= 128: the KV snapshot keeps a page's fill in a byte. */
export interface TransformerOptions {
  /** Default f16; q8 / q4 quantize the matrices on load (GGUF Q8_0 / Q4_0 blocks; weights.ts storedDtype). */
  weightDtype?: LoadDtype;
  kvDtype?: KvDtype; // default f16
  pageSize?: number; // default 16
  /** Tokens one step can carry (prefill chunk + decodes); buffers are sized for it. Default 256. */
  maxTokens?: number;
  /** Sequences one step can carry. Default 16. */
  maxSeqs?: number;
  /** Logit rows one step can return (a step returning every row needs one per token). Default maxSeqs. */
  maxLogitRows?: number;
  /** Longest sequence. Default min(config's max_position_embeddings, 4096). */
  maxContext?: number;
}

export const OPTION_RANGES: Readonly<Record<SizeOption, readonly [number, number]>> = {
  pageSize: [1, 128],
  maxTokens: [1, 65536],
  maxSeqs: [1, 4096],
  maxLogitRows: [1, 65536],
  maxContext: [1, 1 << 20],
};

const describe = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : String(v));

/** `value` is undefined or an integer in [min, max]; else a ShapeError naming `where` and `name`. */
export function checkIntegerOption(where: string, name: string, value: unknown, min: number, max: number): void {
  if (value === undefined) return;
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return;
  throw new ShapeError(`${where}: ${name} must be an integer in ${min}..${max}, got ${describe(value)}`);
}

/** The fixed ranges of the options given (undefined = the default, which is valid). */
export function checkTransformerOptions(options: TransformerOptions, where = 'Transformer.load'): void {
  for (const name of Object.keys(OPTION_RANGES) as SizeOption[]) {
    const [min, max] = OPTION_RANGES[name];
    checkIntegerOption(where, name, options[name], min, max);
  }
}

/**
 * The options as given and as resolved (defaults filled in) against the model and the device: the
 * fixed ranges, then every step buffer that grows with an option must fit one storage binding.
 * Called by Transformer.load before it allocates anything.
 */
export function checkTransformerSizes(
  given: TransformerOptions,
  opts: Required<TransformerOptions>,
  spec: ModelSpec,
  limits: { readonly maxStorageBufferBindingSize: number },
  where = 'Transformer.load',
): void {
  checkTransformerOptions(given, where);
  checkTransformerOptions(opts, where);
  const binding = limits.maxStorageBufferBindingSize;
  // f32 values per token of the widest per-token buffer (h, q, attn, gate/up/act, lse).
  const headDims = spec.mla
    ? spec.numHeads * (spec.mla.kvLoraRank + spec.mla.qkRopeHeadDim)
    : spec.numHeads * Math.max(spec.headDim, spec.headDimV);
  const perToken = Math.max(spec.hiddenSize, spec.intermediateSize, headDims);
  const fits: [SizeOption, number, string][] = [
    ['maxTokens', Math.floor(binding / (4 * perToken)), `${perToken} f32 values per token`],
    ['maxLogitRows', Math.floor(binding / (4 * spec.vocabSize)), `a logits row of ${spec.vocabSize} f32`],
    [
      'maxContext',
      Math.floor(binding / (4 * opts.maxSeqs)) * opts.pageSize,
      `a page-table row per sequence (maxSeqs ${opts.maxSeqs}, pageSize ${opts.pageSize})`,
    ],
  ];
  for (const [name, most, why] of fits) {
    if (opts[name] <= most) continue;
    throw new ShapeError(
      `${where}: ${name} ${opts[name]} is too large for this model on this device: at most ${most} ` +
        `(${why} must fit one storage binding of ${binding} bytes)`,
    );
  }
}
