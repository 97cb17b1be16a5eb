/** The e2e report as Markdown: the runtimes (backend, check, memory), then one row per comparison. */
import type { E2eReport } from './e2eBench';

const mib = (b: number | null) => (b === null ? 'n/a' : (b / 2 ** 20).toFixed(1));
/** One decimal; three significant digits below 10 (a 27 s/token decode is 0.0365 tok/s, not 0.0). */
const f = (x: number, d = 1) => (Math.abs(x) < 10 && d === 1 ? x.toPrecision(3) : x.toFixed(d));

export function formatE2eTables(r: E2eReport): string {
  const lines = [
    `Adapter: ${r.adapter} (features: ${r.features.join(', ') || 'none'}).`,
    ...r.plans.map(
      (p) =>
        `- ${p.models.join(', ')} (${p.formats.join(', ')}): wall-clock medians of ${p.reps} run(s) after a ` +
        `warm-up${p.warmupTokens ? ` (a ${p.warmupTokens}-token prompt)` : ''}, ${p.decodeTokens} new tokens per run` +
        `${p.checkTokens !== 16 ? `, ${p.checkTokens}-token agreement check` : ''}.`,
    ),
    '',
    'Greedy, EOS ignored; every run a fresh prompt (words of the vocabulary, the same ids for every ' +
      'runtime). vsPeer = peer time / webattn time (above 1: webattn is faster).',
    '',
    '| model | weights | runtime | backend | version | load ms | check | peak GPU MiB | JS heap MiB |',
    '|---|---|---|---|---|---:|---|---:|---:|',
  ];
  for (const x of r.runtimes) {
    const check = x.check.length > 80 ? `${x.check.slice(0, 77)}...` : x.check;
    lines.push(
      `| ${x.model} | ${x.format} | ${x.runtime} | ${x.backend} | ${x.version} | ${f(x.loadMs, 0)} | ${check} | ` +
        `${mib(x.peakGpuBytes)} | ${mib(x.jsHeapBytes)} |`,
    );
  }
  lines.push(
    '',
    '| model | weights | metric | tokens | peer | backend | webattn ms | peer ms | webattn tok/s | peer tok/s ' +
      '| vsPeer |',
    '|---|---|---|---:|---|---|---:|---:|---:|---:|---:|',
  );
  for (const x of r.rows) {
    const what = x.metric === 'ttft' ? 'TTFT (prefill)' : 'decode (per token)';
    lines.push(
      `| ${x.model} | ${x.format} | ${what} | ${x.tokens} | ${x.peer} | ${x.backend} | ${f(x.webattnMs)} | ` +
        `${f(x.peerMs)} | ${f(x.webattnTokS)} | ${f(x.peerTokS)} | ${f(x.vsPeer, 2)} |`,
    );
  }
  if (r.skipped.length) lines.push('', 'Skipped:', ...r.skipped.map((s) => `- ${s}`));
  return lines.join('\n');
}
