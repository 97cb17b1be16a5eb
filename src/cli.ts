/**
 * The `webattn` command line (Node only; run through bin/webattn.js, which loads this file with
 * Vite's module runner so WGSL `?raw` imports work with no build step).
 *
 *   webattn <command> [options]      webattn --help      webattn <command> --help
 *
 * Exit codes: 0 ok, 1 runtime failure (no GPU, device lost, ...), 2 bad usage or malformed input
 * (always a single line on stderr naming the option or field).
 *
 * Commands live in the COMMANDS table below; each has a one-line summary, its usage text and a run
 * function. GPU code is imported lazily inside the command that needs it, so `--help` and input
 * validation never touch the GPU layer.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { AttentionArgs } from './api/attention';
import { CaseError, parseAttentionCase } from './cli/attentionCase';
import { parseSafetensors, SafetensorsError, writeSafetensors } from './sources/safetensors';

/** Bad usage or malformed input: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  attention: {
    summary: 'run attention on the GPU for a case file (q, k, v + shapes) and write out and lse',
    usage: `usage: webattn attention --in case.safetensors --out result.safetensors [--kv-dtype f32|f16] [--page-size N]

Runs attention(q, k, v) through the paged KV cache and the WGSL kernels on this machine's WebGPU
adapter (printed on stderr) and writes F32 tensors out [Tq, H, Dv] and lse [Tq, H] (natural log).

options:
  --in FILE         the case: F32 tensors q [Tq, H, Dqk], k [Tk, Hkv, Dqk], v [Tk, Hkv, Dv]
                    and __metadata__ strings:
                      numHeads, numKvHeads, headDimQK, headDimV   integers, numHeads % numKvHeads == 0
                      seqLensQ, seqLensKV   JSON arrays, e.g. "[3,1]" and "[5,6]" (Tq, Tk are their sums;
                                            query i of a sequence sits at its last seqLensQ positions)
                      causal                "1" or "0"
                      scale                 optional float, default 1/sqrt(headDimQK)
                      window                optional sliding window in tokens, "0" = none
  --out FILE        where to write the result (safetensors)
  --kv-dtype T      KV cache storage: f32 (default) or f16
  --page-size N     tokens per KV page (default 16)

exit codes: 0 ok, 1 runtime failure, 2 malformed input or usage`,
    run: attentionCommand,
  },
  logits: {
    summary: 'run token ids through a model and write the logits after every token',
    usage: `usage: webattn logits --model <folder|url|org/name> --ids 3,17,42 [--mode prefill|decode|chunked:N] --out logits.safetensors
       [--weight-dtype f16|f32] [--kv-dtype f16|f32]

Runs exactly these ids (no BOS added) through the model on the GPU and writes F32 logits
[T, vocab]: row t is the prediction after token t. prefill: all ids in one step; decode: one token
per step through the paged KV cache; chunked:N: N tokens per step. All three agree.
Only config.json and the weights are needed (no tokenizer).`,
    run: logitsCommand,
  },
  info: {
    summary: 'describe a model: family, attention variant, parameters, KV bytes per token',
    usage: `usage: webattn info --model <folder|url|org/name> [--context N]

Prints the family, the attention variant and head counts, the parameter count, KV bytes per token
(f16 and f32) and what --context tokens of KV cost (default: the config's max_position_embeddings).`,
    run: infoCommand,
  },
  generate: {
    summary: 'generate text from a prompt, streamed, then prefill / decode tokens/s',
    usage: `usage: webattn generate --model <folder|url|org/name> --prompt "..." [--prompt "..." ...] [--json] [--chat]
       [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--repetition-penalty R]
       [--seed S] [--weight-dtype f16|f32] [--kv-dtype f16|f32]

One --prompt without --json: streams the continuation to stdout and ends with prefill and decode
tokens/s and KV bytes used (stderr). Several --prompt flags, or --json: all prompts are served
together by the engine (continuous batching over the paged KV cache); --json prints one JSON
object per prompt, in order, one per line: { prompt, ids, text, finishReason, usage }; without
--json each continuation is printed after a '--- prompt N' line. --chat wraps each prompt in the
model's chat template as a user message. Temperature 0 is greedy.`,
    run: generateCommand,
  },
  bench: {
    summary: 'benchmark the attention kernels on this adapter (flash vs naive, decode vs copy bandwidth)',
    usage: `usage: webattn bench [--quick] [--reps N] [--json FILE] [--only NAME]
       webattn bench --engine [--model DIR] [--json FILE]

Runs the benchmark definitions of src/bench/attentionBench.ts (the demo's bench page runs the same
ones): GQA 32/8 heads, d 128, f16 KV; a copy kernel (bandwidth ceiling); split-KV decode at
1K/4K/16K context, batch 1 and 8; causal prefill at 512/1K/2K tokens; each against the naive
three-pass attention, checked before it is timed. Prints a markdown table.

options:
  --quick       small shapes (a minute on a software adapter)
  --reps N      timed repetitions per row (default 5, quick 3); the median is reported
  --json FILE   also write the report: { adapter, features, timing, date, rows, skipped }
  --only NAME   only the variants whose name contains NAME (e.g. mla, gqa); the copy row always runs

--engine: the serving engine instead (src/bench/engineBench.ts): decode tokens/s summed over
sequences at batch 1, 2, 4, 8, 16 and time to first token of a 200-token prompt with and without
its prefix cached, on --model (default models/kjv-gqa if present, else a random 4-layer llama).`,
    run: benchCommand,
  },
};

function mainUsage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: webattn <command> [options]

WebGPU attention runtime: paged KV cache and FlashAttention-style WGSL kernels.

commands:
${lines.join('\n')}

Run 'webattn <command> --help' for a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    console.error(mainUsage());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? rest[0] : undefined;
    if (topic !== undefined && !Object.prototype.hasOwnProperty.call(COMMANDS, topic)) {
      console.error(`webattn: unknown command '${topic}' (try 'webattn --help')`);
      return 2;
    }
    console.log(topic !== undefined ? COMMANDS[topic].usage : mainUsage());
    return 0;
  }
  if (!Object.prototype.hasOwnProperty.call(COMMANDS, name)) {
    console.error(`webattn: unknown command '${name}' (commands: ${Object.keys(COMMANDS).join(', ')}; try 'webattn --help')`);
    return 2;
  }
  const command = COMMANDS[name];
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    // Bad input (options, case files, checkpoints, prompts that do not fit) exits 2; the rest 1.
    const input =
      e instanceof UsageError || e instanceof CaseError || e instanceof SafetensorsError ||
      ['ModelConfigError', 'ModelSourceError', 'WeightError', 'ShapeError'].includes((e as Error)?.name);
    if (process.env.WEBATTN_DEBUG) console.error(e);
    else console.error(`webattn ${name}: ${oneLine(e)}`);
    return input ? 2 : 1;
  }
}

function oneLine(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return s.replace(/\s*\n\s*/g, ' ');
}

/** Strict option parsing; every problem is a UsageError naming the option. */
function options<T extends Record<string, { type: 'string' | 'boolean' }>>(argv: string[], spec: T) {
  try {
    return parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split('\n')[0]} (see --help)`);
  }
}

async function attentionCommand(argv: string[]): Promise<number> {
  const opts = options(argv, {
    in: { type: 'string' },
    out: { type: 'string' },
    'kv-dtype': { type: 'string' },
    'page-size': { type: 'string' },
  });
  if (opts.in === undefined) throw new UsageError('--in is required (the case file; see --help)');
  if (opts.out === undefined) throw new UsageError('--out is required (where to write the result)');
  const kvDtype = opts['kv-dtype'] ?? 'f32';
  if (kvDtype !== 'f32' && kvDtype !== 'f16') throw new UsageError(`--kv-dtype must be f32 or f16, got '${kvDtype}'`);
  let pageSize: number | undefined;
  if (opts['page-size'] !== undefined) {
    pageSize = /^[1-9][0-9]*$/.test(opts['page-size']) ? Number(opts['page-size']) : NaN;
    if (!Number.isSafeInteger(pageSize)) throw new UsageError(`--page-size must be a positive integer, got '${opts['page-size']}'`);
  }

  let bytes: Uint8Array;
  try {
    bytes = await readFile(opts.in);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new UsageError(`--in ${opts.in}: ${why}`);
  }
  const file = parseSafetensors(bytes, opts.in);
  let args: AttentionArgs;
  try {
    args = { ...parseAttentionCase(file), kvDtype, ...(pageSize !== undefined ? { pageSize } : {}) };
  } catch (e) {
    if (e instanceof CaseError) throw new UsageError(`${opts.in}: ${e.message}`);
    throw e;
  }

  const { attention, checkAttentionArgs } = await import('./api/attention');
  try {
    checkAttentionArgs(args); // what the kernels can't take (e.g. head dims not a multiple of 4) is an input error too
  } catch (e) {
    throw new UsageError(`${opts.in}: ${(e as Error).message}`);
  }
  const { createContext } = await import('./gpu/context');
  const ctx = await createContext();
  console.error(`webattn attention: adapter: ${ctx.adapterDescription}`);
  try {
    const t0 = performance.now();
    const { out, lse } = await attention(ctx, args);
    const ms = performance.now() - t0;
    const Tq = args.seqLensQ.reduce((a, b) => a + b, 0);
    const H = args.numHeads;
    await writeFile(
      opts.out,
      writeSafetensors(
        {
          out: { dtype: 'F32', shape: [Tq, H, args.headDimV], data: out },
          lse: { dtype: 'F32', shape: [Tq, H], data: lse },
        },
        { adapter: ctx.adapterDescription, kvDtype, pageSize: String(args.pageSize ?? 16) },
      ),
    );
    console.log(`wrote out [${Tq}, ${H}, ${args.headDimV}] and lse [${Tq}, ${H}] to ${opts.out} (${ms.toFixed(1)} ms)`);
    return 0;
  } finally {
    ctx.destroy();
  }
}

async function benchCommand(argv: string[]): Promise<number> {
  const opts = options(argv, {
    quick: { type: 'boolean' }, reps: { type: 'string' }, json: { type: 'string' }, only: { type: 'string' }, engine: { type: 'boolean' }, model: { type: 'string' },
  });
  if (opts.engine) return engineBenchCommand(opts.model, opts.json);
  if (opts.model !== undefined) throw new UsageError('--model goes with --engine (the attention benchmark needs no model)');
  let reps: number | undefined;
  if (opts.reps !== undefined) {
    reps = /^[1-9][0-9]*$/.test(opts.reps) ? Number(opts.reps) : NaN;
    if (!Number.isSafeInteger(reps)) throw new UsageError(`--reps must be a positive integer, got '${opts.reps}'`);
  }
  const { createContext } = await import('./gpu/context');
  const { runAttentionBench, formatBenchTable } = await import('./bench/attentionBench');
  const ctx = await createContext();
  console.error(`webattn bench: adapter: ${ctx.adapterDescription}`);
  try {
    const report = await runAttentionBench(ctx, {
      quick: opts.quick === true,
      reps,
      only: opts.only,
      onProgress: (m) => console.error(`webattn bench: ${m}`),
      onRow: (r) => console.error(`webattn bench:   ${r.name}: ${r.medianMs.toFixed(3)} ms, ${r.gbPerSecond.toFixed(2)} GB/s`),
    });
    console.log(formatBenchTable(report));
    if (opts.json !== undefined) {
      await writeFile(opts.json, JSON.stringify(report, null, 2) + '\n');
      console.error(`webattn bench: wrote ${opts.json}`);
    }
    return 0;
  } finally {
    ctx.destroy();
  }
}

/** A non-negative number option, or undefined; a UsageError naming the option otherwise. */
function numberOption(name: string, text: string | undefined, integer = false): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be a non-negative ${integer ? 'integer' : 'number'}, got '${text}'`);
  }
  return n;
}

function dtypeOption(name: string, text: string | undefined): 'f16' | 'f32' | undefined {
  if (text === undefined || text === 'f16' || text === 'f32') return text;
  throw new UsageError(`--${name} must be f16 or f32, got '${text}'`);
}

async function openModel(model: string | undefined, needTokenizer: boolean) {
  if (model === undefined) throw new UsageError('--model is required (a folder, a URL or a Hugging Face repo id)');
  const { resolveSource, loadModelFiles } = await import('./sources/modelSource');
  return loadModelFiles(await resolveSource(model), {
    needTokenizer,
    onProgress: (p) => {
      if (p.loadedBytes === p.totalBytes && p.totalBytes > 1 << 20) console.error(`webattn: loaded ${p.file} (${(p.totalBytes / 2 ** 20).toFixed(1)} MiB)`);
    },
  });
}

async function logitsCommand(argv: string[]): Promise<number> {
  const opts = options(argv, {
    model: { type: 'string' }, ids: { type: 'string' }, mode: { type: 'string' }, out: { type: 'string' },
    'weight-dtype': { type: 'string' }, 'kv-dtype': { type: 'string' },
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
  const weightDtype = dtypeOption('weight-dtype', opts['weight-dtype']) ?? 'f32';
  const kvDtype = dtypeOption('kv-dtype', opts['kv-dtype']) ?? 'f32';
  const files = await openModel(opts.model, false);
  const { parseConfig } = await import('./model/config');
  const spec = parseConfig(files.config, `${files.source}: config.json`);
  const bad = ids.find((i) => i >= spec.vocabSize);
  if (bad !== undefined) throw new UsageError(`--ids: ${bad} is outside the vocabulary (0..${spec.vocabSize - 1})`);
  const { createContext } = await import('./gpu/context');
  const { Transformer } = await import('./model/transformer');
  const ctx = await createContext();
  console.error(`webattn logits: adapter: ${ctx.adapterDescription}`);
  try {
    const model = await Transformer.load(ctx, files, {
      weightDtype, kvDtype, maxTokens: chunk, maxSeqs: 1, maxLogitRows: chunk, maxContext: ids.length, numPages: Math.ceil(ids.length / 16),
    });
    try {
      const logits = await model.logitsForIds(1, ids, chunk);
      await writeFile(opts.out, writeSafetensors({ logits: { dtype: 'F32', shape: [ids.length, spec.vocabSize], data: logits } }, { mode, adapter: ctx.adapterDescription }));
      console.log(`wrote logits [${ids.length}, ${spec.vocabSize}] to ${opts.out}`);
      return 0;
    } finally {
      model.destroy();
    }
  } finally {
    ctx.destroy();
  }
}

async function infoCommand(argv: string[]): Promise<number> {
  const opts = options(argv, { model: { type: 'string' }, context: { type: 'string' } });
  if (opts.model === undefined) throw new UsageError('--model is required (a folder, a URL or a Hugging Face repo id)');
  const { resolveSource } = await import('./sources/modelSource');
  const source = await resolveSource(opts.model);
  const bytes = await source.readFile('config.json');
  if (!bytes) throw new UsageError(`${source.name}: config.json: missing`);
  const { parseConfig, expectedTensors } = await import('./model/config');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new UsageError(`${source.name}: config.json: not valid JSON (${(e as Error).message})`);
  }
  const spec = parseConfig(json, `${source.name}: config.json`);
  const { kvBytesPerToken } = await import('./kv/accounting');
  const context = numberOption('context', opts.context, true) ?? spec.maxPositionEmbeddings;
  let params = 0;
  for (const shape of expectedTensors(spec).values()) params += shape.reduce((a, b) => a * b, 1);
  const kv = (dtype: 'f16' | 'f32') => kvBytesPerToken({
    variant: spec.attention, numLayers: spec.numLayers, numKvHeads: spec.numKvHeads, headDimQK: spec.headDim, headDimV: spec.headDimV,
    latentDim: spec.mla?.kvLoraRank, ropeDim: spec.mla?.qkRopeHeadDim, dtype,
  });
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  console.log(`${source.name}: ${spec.family}, ${spec.numLayers} layers, hidden ${spec.hiddenSize}, vocab ${spec.vocabSize}`);
  console.log(`attention: ${spec.attention.toUpperCase()}, ${spec.numHeads} query heads, ${spec.attention === 'mla' ? `latent ${spec.mla!.kvLoraRank} + rope ${spec.mla!.qkRopeHeadDim}` : `${spec.numKvHeads} KV heads of ${spec.headDim}`}`);
  console.log(`parameters: ${(params / 1e6).toFixed(1)} M`);
  console.log(`KV per token: ${kv('f16')} bytes in f16, ${kv('f32')} in f32`);
  console.log(`KV for ${context} tokens: ${mib(kv('f16') * context)} in f16, ${mib(kv('f32') * context)} in f32`);
  return 0;
}

async function generateCommand(argv: string[]): Promise<number> {
  const opts = options(argv, {
    model: { type: 'string' }, prompt: { type: 'string', multiple: true }, json: { type: 'boolean' }, chat: { type: 'boolean' }, 'max-new-tokens': { type: 'string' },
    temperature: { type: 'string' }, 'top-k': { type: 'string' }, 'top-p': { type: 'string' }, 'min-p': { type: 'string' },
    'repetition-penalty': { type: 'string' }, seed: { type: 'string' }, 'weight-dtype': { type: 'string' }, 'kv-dtype': { type: 'string' },
  });
  const prompts = ([] as string[]).concat(opts.prompt ?? []);
  if (prompts.length === 0) throw new UsageError('--prompt is required');
  const maxNewTokens = numberOption('max-new-tokens', opts['max-new-tokens'], true) ?? 128;
  const sampling = {
    temperature: numberOption('temperature', opts.temperature),
    topK: numberOption('top-k', opts['top-k'], true),
    topP: numberOption('top-p', opts['top-p']),
    minP: numberOption('min-p', opts['min-p']),
    repetitionPenalty: numberOption('repetition-penalty', opts['repetition-penalty']),
    seed: numberOption('seed', opts.seed, true),
  };
  const files = await openModel(opts.model, true);
  const { loadTokenizer } = await import('./tokenizer/tokenizer');
  const tokenizer = loadTokenizer(files.tokenizer as object, (files.tokenizerConfig ?? {}) as object, {
    eosSources: [files.generationConfig as { eos_token_id?: number | number[] } | null, files.config as { eos_token_id?: number | number[] }],
  });
  const encodePrompt = (prompt: string) => {
    const text = opts.chat ? tokenizer.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true }) : prompt;
    return tokenizer.encode(text, { addSpecialTokens: !opts.chat });
  };
  const weightDtype = dtypeOption('weight-dtype', opts['weight-dtype']);
  const kvDtype = dtypeOption('kv-dtype', opts['kv-dtype']);
  if (prompts.length > 1 || opts.json) {
    return engineGenerate(files, tokenizer, prompts, prompts.map(encodePrompt), { ...sampling, maxNewTokens, weightDtype, kvDtype, json: opts.json === true });
  }
  const ids = encodePrompt(prompts[0]);
  const { createContext } = await import('./gpu/context');
  const { Transformer } = await import('./model/transformer');
  const { generate } = await import('./model/generate');
  const ctx = await createContext();
  console.error(`webattn generate: adapter: ${ctx.adapterDescription}`);
  try {
    const model = await Transformer.load(ctx, files, {
      weightDtype,
      kvDtype,
      maxSeqs: 1,
      maxContext: ids.length + maxNewTokens,
    });
    try {
      const stats: Record<string, unknown> = {};
      for await (const piece of generate(model, tokenizer, ids, { ...sampling, maxNewTokens }, stats)) process.stdout.write(piece);
      process.stdout.write('\n');
      const s = stats as { promptTokens: number; generatedTokens: number; prefillMs: number; decodeMs: number; kvBytes: number; stop: string };
      const rate = (n: number, ms: number) => (ms > 0 ? (n / (ms / 1000)).toFixed(1) : '-');
      console.error(
        `webattn generate: prefill ${s.promptTokens} tokens at ${rate(s.promptTokens, s.prefillMs)} tok/s, decode ${s.generatedTokens} tokens at ${rate(s.generatedTokens - 1, s.decodeMs)} tok/s, KV ${(s.kvBytes / 1024).toFixed(1)} KiB, stop: ${s.stop}`,
      );
      return 0;
    } finally {
      model.destroy();
    }
  } finally {
    ctx.destroy();
  }
}

/** Several prompts served together by the engine; --json: one object per prompt, in order. */
async function engineGenerate(
  files: import('./sources/modelSource').ModelFiles,
  tokenizer: import('./tokenizer/tokenizer').Tokenizer,
  prompts: string[],
  ids: number[][],
  o: { maxNewTokens: number; temperature?: number; topK?: number; topP?: number; minP?: number; repetitionPenalty?: number; seed?: number; weightDtype?: 'f16' | 'f32'; kvDtype?: 'f16' | 'f32'; json: boolean },
): Promise<number> {
  const longest = Math.max(...ids.map((p) => p.length));
  const { createContext } = await import('./gpu/context');
  const { Transformer } = await import('./model/transformer');
  const { Engine } = await import('./engine/engine');
  const ctx = await createContext();
  console.error(`webattn generate: adapter: ${ctx.adapterDescription}`);
  try {
    const maxSeqs = Math.min(16, prompts.length);
    const model = await Transformer.load(ctx, files, {
      weightDtype: o.weightDtype, kvDtype: o.kvDtype, maxSeqs, maxContext: longest + o.maxNewTokens,
    });
    const engine = new Engine(model, tokenizer, { ownsModel: true, name: files.source });
    let decodeTokens = 0;
    let decodeMs = 0;
    engine.onStep = (s) => {
      if (s.prefillTokens === 0) {
        decodeTokens += s.decodeTokens;
        decodeMs += s.ms;
      }
    };
    try {
      const sampling = { temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP, repetitionPenalty: o.repetitionPenalty, seed: o.seed };
      const t0 = performance.now();
      const results = await Promise.all(
        ids.map(async (p, i) => {
          const out = { prompt: prompts[i], ids: [] as number[], text: '', finishReason: null as string | null, usage: undefined as unknown };
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
        if (o.json) console.log(JSON.stringify(r));
        else console.log(`--- prompt ${i + 1}\n${r.text}`);
      }
      const total = results.reduce((n, r) => n + r.ids.length, 0);
      const rate = decodeMs > 0 ? (decodeTokens / (decodeMs / 1000)).toFixed(1) : '-';
      console.error(`webattn generate: ${prompts.length} prompts, ${total} tokens in ${(ms / 1000).toFixed(2)} s, batched decode ${rate} tok/s (summed over sequences)`);
      return 0;
    } finally {
      engine.dispose();
    }
  } finally {
    ctx.destroy();
  }
}

async function engineBenchCommand(model: string | undefined, json: string | undefined): Promise<number> {
  const { existsSync } = await import('node:fs');
  const { writeRandomBenchModel, runEngineBench, formatEngineBench } = await import('./bench/engineBench');
  const dir = model ?? (existsSync('models/kjv-gqa/config.json') ? 'models/kjv-gqa' : await writeRandomBenchModel());
  if (model === undefined) console.error(`webattn bench: model ${dir.startsWith('models/') ? dir : 'random 4-layer llama (no models/kjv-gqa)'}`);
  const files = await openModel(dir, true);
  const { createContext } = await import('./gpu/context');
  const { Engine } = await import('./engine/engine');
  const ctx = await createContext();
  console.error(`webattn bench: adapter: ${ctx.adapterDescription}`);
  try {
    const engine = await Engine.load(ctx, files, { maxSeqs: 16 });
    try {
      const report = await runEngineBench(engine, { onProgress: (m) => console.error(`webattn bench: ${m}`) });
      console.log(formatEngineBench(report, ctx.adapterDescription));
      if (json !== undefined) {
        await writeFile(json, JSON.stringify({ adapter: ctx.adapterDescription, ...report }, null, 2) + '\n');
        console.error(`webattn bench: wrote ${json}`);
      }
      return 0;
    } finally {
      engine.dispose();
    }
  } finally {
    ctx.destroy();
  }
}
