/**
 * `npm run bench [-- --quick] [-- --json FILE] [-- --reps N]`: runs src/bench/attentionBench.ts on
 * this machine's adapter, prints a markdown table, and optionally writes the report as JSON
 * ({ adapter, features, timing, date, rows: [...], skipped }, every row also naming the adapter).
 */
import { writeFileSync } from 'node:fs';
import { createContext } from '../src/gpu/context';
import { formatBenchTable, runAttentionBench } from '../src/bench/attentionBench';

export async function main(argv: string[]): Promise<number> {
  let json: string | undefined;
  let quick = false;
  let reps: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') json = argv[++i];
    else if (a === '--quick') quick = true;
    else if (a === '--reps') reps = Number(argv[++i]);
    else {
      console.error(`bench: unknown argument ${a} (use --quick, --json FILE, --reps N)`);
      return 2;
    }
  }
  const ctx = await createContext();
  console.error(`bench: adapter ${ctx.adapterDescription}`);
  const report = await runAttentionBench(ctx, {
    quick,
    reps,
    onProgress: (m) => console.error(`bench: ${m}`),
    onRow: (r) => console.error(`bench:   ${r.name}: ${r.medianMs.toFixed(3)} ms, ${r.gbPerSecond.toFixed(2)} GB/s`),
  });
  console.log(formatBenchTable(report));
  if (json) {
    writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
    console.error(`bench: wrote ${json}`);
  }
  return 0;
}
