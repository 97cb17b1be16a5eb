/**
 * `webattn bench`: the attention benchmark definitions of src/bench/attentionBench.ts (the demo's
 * bench page runs the same ones), or with --engine the serving engine (src/bench/engineBench.ts).
 */
import { writeFile } from 'node:fs/promises';
import { withGpu } from './gpuSession';
import { openModel } from './modelFiles';
import { type Command, options, positiveIntegerOption, UsageError } from './options';

export const benchCommand: Command = {
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
  run: bench,
};

async function bench(argv: string[]): Promise<number> {
  const opts = options(argv, {
    quick: { type: 'boolean' },
    reps: { type: 'string' },
    json: { type: 'string' },
    only: { type: 'string' },
    engine: { type: 'boolean' },
    model: { type: 'string' },
  });
  if (opts.engine) return engineBench(opts.model, opts.json);
  if (opts.model !== undefined) {
    throw new UsageError('--model goes with --engine (the attention benchmark needs no model)');
  }
  const reps = positiveIntegerOption('reps', opts.reps);
  const { runAttentionBench, formatBenchTable } = await import('../bench/attentionBench');
  return withGpu('bench', async ({ ctx }) => {
    const report = await runAttentionBench(ctx, {
      quick: opts.quick === true,
      reps,
      only: opts.only,
      onProgress: (m) => console.error(`webattn bench: ${m}`),
      onRow: (r) => {
        console.error(`webattn bench:   ${r.name}: ${r.medianMs.toFixed(3)} ms, ${r.gbPerSecond.toFixed(2)} GB/s`);
      },
    });
    console.log(formatBenchTable(report));
    if (opts.json !== undefined) {
      await writeFile(opts.json, JSON.stringify(report, null, 2) + '\n');
      console.error(`webattn bench: wrote ${opts.json}`);
    }
    return 0;
  });
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
