/**
 * The bench page's engine section: runEngineBench (src/bench/engineBench.ts, `webattn bench --engine`)
 * on a shipped tiny model in this page: decode tokens/s summed over a batch of sequences stepping
 * together (continuous batching: one forward for all of them), and time to first token for a prompt
 * with and without its prefix in the cache.
 */
import { Engine } from '../src/engine/engine';
import { runEngineBench, type EngineBenchReport } from '../src/bench/engineBench';
import type { GpuContext } from '../src/gpu/context';
import { loadModelFiles, urlSource } from '../src/sources/modelSource';
import { drawChart } from './charts';
import { DEFAULT_MODEL, classifyError, forgetCached, shippedModelUrl } from './engineClient';
import { $, h, withClock } from './shell';

export let lastEngineReport: EngineBenchReport | undefined;

export function drawEngineChart(r: EngineBenchReport | undefined): void {
  drawChart($('#chart-engine'), {
    title: 'Engine decode throughput vs batch (tokens/s summed over sequences)',
    xLabel: 'sequences decoding together',
    yLabel: 'tok/s',
    emptyText: 'Run the engine benchmark to see how batching scales.',
    series: r
      ? [{ name: `${r.model} decode`, color: '#059669', points: r.decode.map((d) => [d.batch, d.tokensPerSecond]) }]
      : [],
  });
}

export async function runEnginePanel(ctx: GpuContext, button: HTMLButtonElement): Promise<void> {
  const status = $('#engine-status');
  const tbody = $('#engine-table tbody');
  const quick = new URLSearchParams(location.search).get('engineQuick') === '1'; // tests: two small batches
  button.disabled = true;
  status.dataset.state = 'running';
  tbody.replaceChildren();
  const step = h('span', {}, 'loading the model');
  const clock = h('span', { class: 'clock' });
  status.replaceChildren(step, ' · ', clock);
  let engine: Engine | undefined;
  try {
    await withClock(clock, async () => {
      const url = shippedModelUrl(DEFAULT_MODEL);
      await forgetCached(url).catch(() => undefined);
      const files = await loadModelFiles(urlSource(url), { needTokenizer: true });
      engine = await Engine.load(ctx, files, { maxSeqs: quick ? 2 : 8 });
      lastEngineReport = await runEngineBench(engine, {
        batches: quick ? [1, 2] : [1, 2, 4, 8],
        promptTokens: 8,
        decodeTokens: quick ? 4 : 16,
        ttftPromptTokens: quick ? 40 : 120,
        reps: quick ? 1 : 2,
        onProgress: (m) => (step.textContent = m),
      });
    });
    const r = lastEngineReport!;
    const one = r.decode.find((d) => d.batch === 1)?.tokensPerSecond ?? 0;
    tbody.replaceChildren(
      ...r.decode.map((d) =>
        h(
          'tr',
          { 'data-batch': d.batch },
          h('th', { scope: 'row', class: 'num' }, String(d.batch)),
          h('td', { class: 'num' }, d.tokensPerSecond.toFixed(1)),
          h('td', { class: 'num' }, d.msPerStep.toFixed(1)),
          h('td', { class: 'num' }, one ? `${(d.tokensPerSecond / one).toFixed(2)}×` : ''),
        ),
      ),
    );
    drawEngineChart(r);
    $<HTMLButtonElement>('#bench-download').disabled = false; // the JSON carries these results too
    status.dataset.state = 'done';
    status.replaceChildren(
      h('strong', {}, 'Done'),
      ' in ',
      clock,
      ` · time to first token for ${r.ttft.promptTokens} tokens: ${r.ttft.coldMs.toFixed(0)} ms cold, `,
      `${r.ttft.cachedMs.toFixed(0)} ms with ${r.ttft.cachedTokens} of them from the prefix cache`,
    );
  } catch (err) {
    status.dataset.state = 'failed';
    status.replaceChildren(h('span', { class: 'bad' }, `Engine benchmark failed: ${classifyError(err).message}`));
  } finally {
    engine?.dispose();
    button.disabled = ctx.lostReason !== undefined;
  }
}
