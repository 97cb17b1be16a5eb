/**
 * `webattn bench`: the attention benchmark definitions of src/bench/attentionBench.ts (the demo's
 * bench page runs the same ones), then the decode GEMV rows (src/bench/matmulBench.ts, suite
 * 'gemv') and batch-1 decode of models/kjv-gqa at each weight format; with --gemv only those two;
 * with --engine the serving engine (src/bench/engineBench.ts).
 */
import { writeFile } from 'node:fs/promises';
import type { LoadDtype } from '../model/weights';
import { type GpuSession, withGpu } from './gpuSession';
import { openModel } from './modelFiles';
import { type Command, options, positiveIntegerOption, UsageError } from './options';

export const benchCommand: Command = {
  summary: 'benchmark the attention kernels on this adapter (flash vs naive, decode vs copy bandwidth)',
  usage: `usage: webattn bench [--quick] [--reps N] [--json FILE] [--only NAME] [--long] [--gemv]
       webattn bench --engine [--model DIR] [--json FILE]

Runs the benchmark definitions of src/bench/attentionBench.ts (the demo's bench page runs the same
ones): GQA 32/8 heads, d 128, f16 KV; a copy kernel (bandwidth ceiling); split-KV decode at
1K/4K/16K context, batch 1 and 8; causal prefill at 512/1K/2K tokens; each against the naive
three-pass attention, checked before it is timed; decode at 16K / 64K context with f16, q8 and q4
KV pages ('kv-dtype' rows, current kernel only, against copy; 128K with --long). Then (unless
--only is given) the decode GEMV rows (src/bench/matmulBench.ts): one token through W [2048, 8192]
(N 2048, K 8192) at f16, q8, q4, q4_K, q6_K, the transposed W [8192, 2048], and 8 tokens, each
with ms, weight GB/s and the copy kernel's GB/s timed alternately with it (vs copy); and batch-1
decode / prefill tokens/s of models/kjv-gqa loaded at f32, f16, q8 and q4 weights (skipped when
the folder is missing). Prints markdown tables.

options:
  --quick       small shapes (a minute on a software adapter)
  --reps N      timed repetitions per row (default 5, quick 3); the median is reported
  --json FILE   also write the report: { adapter, features, timing, date, rows, skipped, gemv,
                decodeByFormat }
  --only NAME   only the attention variants whose name contains NAME (e.g. mla, gqa, kv-dtype); the
                copy row always runs, the GEMV rows and per-format decode do not
  --long        also the 128K-context kv-dtype rows (minutes on a software adapter)
  --gemv        only the GEMV rows and the per-format decode (a minute or two on a software adapter)

--engine: the serving engine instead (src/bench/engineBench.ts): decode tokens/s summed over
sequences at batch 1, 2, 4, 8, 16 and time to first token of a 200-token prompt with and without
its prefix cached, on --model (default models/kjv-gqa if present, else a random 4-layer llama).`,
  run: bench,
};

async function bench(argv: string[]): Promise<number> {
  const opts = options(argv, {
    quick: { type: 'boolean' },
    reps: { type: 'string' },
    json: { type: 'string' },
    only: { type: 'string' },
    long: { type: 'boolean' },
    engine: { type: 'boolean' },
    model: { type: 'string' },
    gemv: { type: 'boolean' },
  });
  if (opts.engine) return engineBench(opts.model, opts.json);
  if (opts.model !== undefined) {
    throw new UsageError('--model goes with --engine (the attention benchmark needs no model)');
  }
  const reps = positiveIntegerOption('reps', opts.reps);
  const progress = (m: string) => console.error(`webattn bench: ${m}`);
  return withGpu('bench', async (gpu) => {
    const { ctx } = gpu;
    let report: object = { adapter: ctx.adapterDescription, date: new Date().toISOString() };
    if (opts.gemv !== true) {
      const { runAttentionBench, formatBenchTable } = await import('../bench/attentionBench');
      const attention = await runAttentionBench(ctx, {
        quick: opts.quick === true,
        reps,
        only: opts.only,
        long: opts.long === true,
        onProgress: progress,
        onRow: (r) => progress(`  ${r.name}: ${r.medianMs.toFixed(3)} ms, ${r.gbPerSecond.toFixed(2)} GB/s`),
      });
      console.log(formatBenchTable(attention));
      report = attention;
    }
    if (opts.only !== undefined && opts.gemv !== true) return writeReport(opts.json, report, progress);
    const { runMatmulBench, formatMatmulTable } = await import('../bench/matmulBench');
    progress('decode GEMV rows');
    const gemv = await runMatmulBench(ctx, {
      suite: 'gemv',
      reps,
      onRow: (r) => {
        const rate = `${r.weightGbPerSecond.toFixed(2)} GB/s, vs copy ${r.vsCopy?.toFixed(2)}`;
        progress(`  ${r.name}: ${r.medianMs.toFixed(3)} ms, ${rate}`);
      },
    });
    console.log(`\nDecode GEMV (adapter: ${ctx.adapterDescription})\n\n${formatMatmulTable(gemv)}`);
    const decodeByFormat = await formatDecode(gpu, progress);
    return writeReport(opts.json, { ...report, gemv, ...(decodeByFormat ? { decodeByFormat } : {}) }, progress);
  });
}

async function writeReport(json: string | undefined, report: object, progress: (m: string) => void): Promise<number> {
  if (json !== undefined) {
    await writeFile(json, JSON.stringify(report, null, 2) + '\n');
    progress(`wrote ${json}`);
  }
  return 0;
}

/** Weight formats the per-format decode rows load the shipped model at. */
const DECODE_FORMATS = ['f32', 'f16', 'q8', 'q4'] as const;
const DECODE_MODEL = 'models/kjv-gqa';

/** Batch-1 decode and prefill of models/kjv-gqa at each weight format; undefined when it is missing. */
async function formatDecode(gpu: GpuSession, progress: (m: string) => void) {
  const { existsSync } = await import('node:fs');
  if (!existsSync(`${DECODE_MODEL}/config.json`)) {
    progress(`no ${DECODE_MODEL}: per-format decode skipped`);
    return undefined;
  }
  const files = await openModel(DECODE_MODEL, true);
  const { Engine } = await import('../engine/engine');
  const { runFormatDecodeBench, formatFormatDecode } = await import('../bench/engineBench');
  const rows = await runFormatDecodeBench(
    (weightDtype) => Engine.load(gpu.ctx, files, { maxSeqs: 1, weightDtype: weightDtype as LoadDtype }),
    DECODE_FORMATS,
    { onProgress: progress },
  );
  console.log(`\n${formatFormatDecode(rows, `${DECODE_MODEL} on ${gpu.ctx.adapterDescription}`)}`);
  return { model: DECODE_MODEL, rows };
}

async function engineBench(model: string | undefined, json: string | undefined): Promise<number> {
  const { existsSync } = await import('node:fs');
  const { writeRandomBenchModel, runEngineBench, formatEngineBench } = await import('../bench/engineBench');
  const dir = model ?? (existsSync('models/kjv-gqa/config.json') ? 'models/kjv-gqa' : await writeRandomBenchModel());
  if (model === undefined) {
    const which = dir.startsWith('models/') ? dir : 'random 4-layer llama (no models/kjv-gqa)';
    console.error(`webattn bench: model ${which}`);
  }
  const files = await openModel(dir, true);
  const { Engine } = await import('../engine/engine');
  return withGpu('bench', async (gpu) => {
    const engine = gpu.own(await Engine.load(gpu.ctx, files, { maxSeqs: 16 }));
    const report = await runEngineBench(engine, { onProgress: (m) => console.error(`webattn bench: ${m}`) });
    console.log(formatEngineBench(report, gpu.ctx.adapterDescription));
    if (json !== undefined) {
      await writeFile(json, JSON.stringify({ adapter: gpu.ctx.adapterDescription, ...report }, null, 2) + '\n');
      console.error(`webattn bench: wrote ${json}`);
    }
    return 0;
  });
}
