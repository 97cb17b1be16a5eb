/**
 * `webattn generate`: text from one or more prompts. One prompt streams its continuation to stdout
 * and ends with prefill / decode tokens/s on stderr; several prompts, or --json, are served
 * together by the engine (continuous batching over the paged KV cache).
 */
import type { SamplingParams } from '../model/sampler';
import type { Tokenizer } from '../tokenizer/tokenizer';
import type { ModelFiles } from '../sources/modelSource';
import { withGpu } from './gpuSession';
import { MODEL_OPTIONS, openModel } from './modelFiles';
import {
  type Command,
  dtypeOption,
  type OptionRange,
  options,
  rangeOption,
  UsageError,
  weightDtypeOption,
} from './options';

export const generateCommand: Command = {
  summary: 'generate text from a prompt, streamed, then prefill / decode tokens/s',
  usage: `usage: webattn generate --model <folder|file.gguf|url|org/name> [--gguf-file NAME] --prompt "..."
       [--prompt "..." ...] [--json] [--chat]
       [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--repetition-penalty R]
       [--seed S] [--weight-dtype q4|q8|f16|f32] [--kv-dtype f16|f32|q8|q4]

One --prompt without --json: streams the continuation to stdout and ends with prefill and decode
tokens/s and KV bytes used (stderr). Several --prompt flags, or --json: all prompts are served
together by the engine (continuous batching over the paged KV cache); --json prints one JSON
object per prompt, in order, one per line: { prompt, ids, text, finishReason, usage }; without
--json each continuation is printed after a '--- prompt N' line. --chat wraps each prompt in the
model's chat template as a user message. Temperature 0 is greedy.
A GGUF model (a .gguf file, a folder holding one, a URL to one, or --gguf-file NAME inside a folder,
URL or Hugging Face repo) brings its own tokenizer and chat template, and keeps each tensor in its own
format (Q8_0, Q4_0, Q5_0, Q4_K, Q6_K blocks and F16 as in the file) unless --weight-dtype says otherwise.`,
  run: generateText,
};

/**
 * What each numeric option of generate takes, the ranges the Sampler and StoppingCriteria accept,
 * checked before any file is read (a Sampler would refuse them only after the model has loaded).
 * Seeds are 32-bit: the generator keeps seed >>> 0, so 2^32 would silently be 0.
 * max-new-tokens stops at 2^20: the KV cache is sized for prompt + max-new-tokens.
 */
const RANGES = {
  'max-new-tokens': { integer: true, min: 1, max: 2 ** 20 },
  temperature: { min: 0, note: '0 is greedy' },
  'top-k': { integer: true, min: 0, note: '0 = off' },
  'top-p': { min: 0, minExclusive: true, max: 1, note: '1 = off' },
  'min-p': { min: 0, max: 1, note: '0 = off' },
  'repetition-penalty': { min: 0, minExclusive: true, note: '1 = off' },
  seed: { integer: true, min: 0, max: 2 ** 32 - 1 },
} satisfies Record<string, OptionRange>;

/** What the generate options ask for, checked. */
interface GenerateSettings extends SamplingParams {
  maxNewTokens: number;
  weightDtype?: 'f32' | 'f16' | 'q8' | 'q4';
  kvDtype?: 'f16' | 'f32' | 'q8' | 'q4';
}

async function generateText(argv: string[]): Promise<number> {
  const opts = options(argv, {
    ...MODEL_OPTIONS,
    prompt: { type: 'string', multiple: true },
    json: { type: 'boolean' },
    chat: { type: 'boolean' },
    'max-new-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
    'min-p': { type: 'string' },
    'repetition-penalty': { type: 'string' },
    seed: { type: 'string' },
    'weight-dtype': { type: 'string' },
    'kv-dtype': { type: 'string' },
  });
  const prompts = ([] as string[]).concat(opts.prompt ?? []);
  if (prompts.length === 0) throw new UsageError('--prompt is required');
  const number = (name: keyof typeof RANGES) => rangeOption(name, opts[name], RANGES[name]);
  const maxNewTokens = number('max-new-tokens') ?? 128;
  const sampling: SamplingParams = {
    temperature: number('temperature'),
    topK: number('top-k'),
    topP: number('top-p'),
    minP: number('min-p'),
    repetitionPenalty: number('repetition-penalty'),
    seed: number('seed'),
  };
  const files = await openModel(opts.model, true, opts['gguf-file']);
  const { loadTokenizer } = await import('../tokenizer/tokenizer');
  const tokenizer = loadTokenizer(files.tokenizer as object, (files.tokenizerConfig ?? {}) as object, {
    eosSources: [
      files.generationConfig as { eos_token_id?: number | number[] } | null,
      files.config as { eos_token_id?: number | number[] },
    ],
  });
  const encodePrompt = (prompt: string) => {
    const text = opts.chat
      ? tokenizer.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true })
      : prompt;
    return tokenizer.encode(text, { addSpecialTokens: !opts.chat });
  };
  const settings: GenerateSettings = {
    ...sampling,
    maxNewTokens,
    weightDtype: weightDtypeOption(opts['weight-dtype']),
    kvDtype: dtypeOption('kv-dtype', opts['kv-dtype']),
  };
  if (prompts.length > 1 || opts.json) {
    return engineGenerate(files, tokenizer, prompts, prompts.map(encodePrompt), settings, opts.json === true);
  }
  return streamOne(files, tokenizer, encodePrompt(prompts[0]), sampling, settings);
}

/** One prompt, streamed to stdout; prefill and decode rates on stderr. */
async function streamOne(
  files: ModelFiles,
  tokenizer: Tokenizer,
  ids: number[],
  sampling: SamplingParams,
  { maxNewTokens, weightDtype, kvDtype }: GenerateSettings,
): Promise<number> {
  const { generate } = await import('../engine/generate');
  return withGpu('generate', async (gpu) => {
    const model = await gpu.loadModel(files, {
      weightDtype,
      kvDtype,
      maxSeqs: 1,
      maxContext: ids.length + maxNewTokens,
    });
    const stats: Record<string, unknown> = {};
    for await (const piece of generate(model, tokenizer, ids, { ...sampling, maxNewTokens }, stats)) {
      process.stdout.write(piece);
    }
    process.stdout.write('\n');
    const s = stats as {
      promptTokens: number;
      generatedTokens: number;
      prefillMs: number;
      decodeMs: number;
      kvBytes: number;
      stop: string;
    };
    const rate = (n: number, ms: number) => (ms > 0 ? (n / (ms / 1000)).toFixed(1) : '-');
    console.error(
      `webattn generate: prefill ${s.promptTokens} tokens at ${rate(s.promptTokens, s.prefillMs)} tok/s, ` +
        `decode ${s.generatedTokens} tokens at ${rate(s.generatedTokens - 1, s.decodeMs)} tok/s, ` +
        `KV ${(s.kvBytes / 1024).toFixed(1)} KiB, stop: ${s.stop}`,
    );
    return 0;
  });
}

/** Several prompts served together by the engine; --json: one object per prompt, in order. */
async function engineGenerate(
  files: ModelFiles,
  tokenizer: Tokenizer,
  prompts: string[],
  ids: number[][],
  o: GenerateSettings,
  json: boolean,
): Promise<number> {
  const longest = Math.max(...ids.map((p) => p.length));
  const { Engine } = await import('../engine/engine');
  return withGpu('generate', async (gpu) => {
    const maxSeqs = Math.min(16, prompts.length);
    const model = await gpu.loadModel(files, {
      weightDtype: o.weightDtype,
      kvDtype: o.kvDtype,
      maxSeqs,
      maxContext: longest + o.maxNewTokens,
    });
    // The session destroys the model after the engine is disposed.
    const engine = gpu.own(await Engine.forModel(model, tokenizer, { name: files.source }));
    let decodeTokens = 0;
    let decodeMs = 0;
    engine.onStep = (s) => {
      if (s.prefillTokens === 0) {
        decodeTokens += s.decodeTokens;
        decodeMs += s.ms;
      }
    };
    const sampling: SamplingParams = {
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      minP: o.minP,
      repetitionPenalty: o.repetitionPenalty,
      seed: o.seed,
    };
    const t0 = performance.now();
    const results = await Promise.all(
      ids.map(async (p, i) => {
        const out = {
          prompt: prompts[i],
          ids: [] as number[],
          text: '',
          finishReason: null as string | null,
          usage: undefined as unknown,
        };
        for await (const c of engine.generate(p, { ...sampling, maxTokens: o.maxNewTokens })) {
          if (c.tokenId >= 0) out.ids.push(c.tokenId);
          out.text += c.text;
          if (c.finishReason) out.finishReason = c.finishReason;
          if (c.usage) out.usage = c.usage;
        }
        return out;
      }),
    );
    const ms = performance.now() - t0;
    for (const [i, r] of results.entries()) {
      if (json) console.log(JSON.stringify(r));
      else console.log(`--- prompt ${i + 1}\n${r.text}`);
    }
    const total = results.reduce((n, r) => n + r.ids.length, 0);
    const rate = decodeMs > 0 ? (decodeTokens / (decodeMs / 1000)).toFixed(1) : '-';
    console.error(
      `webattn generate: ${prompts.length} prompts, ${total} tokens in ${(ms / 1000).toFixed(2)} s, ` +
        `batched decode ${rate} tok/s (summed over sequences)`,
    );
    return 0;
  });
}
