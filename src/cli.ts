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
  bench: {
    summary: 'benchmark the attention kernels on this adapter (flash vs naive, decode vs copy bandwidth)',
    usage: `usage: webattn bench [--quick] [--reps N] [--json FILE]

Runs the benchmark definitions of src/bench/attentionBench.ts (the demo's bench page runs the same
ones): GQA 32/8 heads, d 128, f16 KV; a copy kernel (bandwidth ceiling); split-KV decode at
1K/4K/16K context, batch 1 and 8; causal prefill at 512/1K/2K tokens; each against the naive
three-pass attention, checked before it is timed. Prints a markdown table.

options:
  --quick       small shapes (a minute on a software adapter)
  --reps N      timed repetitions per row (default 5, quick 3); the median is reported
  --json FILE   also write the report: { adapter, features, timing, date, rows, skipped }`,
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
    const input = e instanceof UsageError || e instanceof CaseError || e instanceof SafetensorsError;
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
  const opts = options(argv, { quick: { type: 'boolean' }, reps: { type: 'string' }, json: { type: 'string' } });
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
