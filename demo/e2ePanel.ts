/**
 * The bench page's "end to end vs peers" section: bench/e2e/e2eBench.ts (what `npm run bench:e2e`
 * runs in headless Chromium) in this page, on the shipped kjv-gqa, against transformers.js (its
 * GroupQueryAttention and plain-op ONNX graphs) and wllama. The same drivers (bench/e2e/runtimes.ts)
 * and the same rule: every peer's greedy output is checked against webattn's before anything is
 * timed, and one that disagrees is shown, not timed. Each peer's row names the backend it used.
 *
 * The peers' packages come from node_modules through Vite (bench/e2e/demoPlugin.ts, at ./e2e/), and
 * the ONNX and GGUF files are made in the page from ./models/kjv-gqa/ by the project's exporters
 * (bench/e2e/peerFiles.ts): nothing is fetched from anywhere else. Each runtime opens its own WebGPU
 * device; the bench page's own context is not used.
 */
import type { E2eOptions, E2eReport, E2eRow } from '../bench/e2e/e2eBench';
import { formatE2eTables } from '../bench/e2e/format';
import { $, h, withClock } from './shell';

// The bench and its drivers (with onnx-proto for the export) load when the section first runs.
const loadBench = () => Promise.all([import('../bench/e2e/e2eBench'), import('../bench/e2e/runtimes')]);

export let lastE2eReport: E2eReport | undefined;

/** Sizes the section offers. small: the e2e bench's small shapes; tiny: a smoke test (seconds on a GPU). */
export const E2E_SIZES = {
  small: { prompts: [32, 128], contexts: [32, 128], decodeTokens: 8, checkTokens: 8, reps: 2 },
  tiny: { prompts: [16], contexts: [16], decodeTokens: 4, checkTokens: 4, reps: 1 },
} satisfies Record<string, Partial<E2eOptions>>;
export type E2eSize = keyof typeof E2E_SIZES;

let hooked = false;

const ms = (x: number | undefined) => (x === undefined ? '' : x < 10 ? x.toFixed(2) : x.toFixed(1));

function rowElement(r: E2eRow): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-peer': r.peer, 'data-metric': r.metric },
    h('th', { scope: 'row' }, `${r.metric === 'ttft' ? 'TTFT, prompt' : 'decode, context'} ${r.tokens}`),
    h('td', {}, r.peer),
    h('td', {}, r.backend),
    h('td', { class: 'num' }, ms(r.webattnMs)),
    h('td', { class: 'num' }, ms(r.peerMs)),
    h('td', { class: 'num' }, `${r.vsPeer.toFixed(2)}×`),
  );
}

export async function runE2ePanel(button: HTMLButtonElement): Promise<void> {
  const size = ($<HTMLSelectElement>('#e2e-size').value || 'small') as E2eSize;
  const status = $('#e2e-status');
  const runtimesBody = $('#e2e-runtimes tbody');
  const rowsBody = $('#e2e-table tbody');
  runtimesBody.replaceChildren();
  rowsBody.replaceChildren();
  button.disabled = true;
  status.dataset.state = 'running';
  const step = h('span', {}, 'loading the runtimes');
  const clock = h('span', { class: 'clock' });
  status.replaceChildren(step, ' · ', clock);
  try {
    const [{ installGpuHooks, runE2e }, { DEMO_URLS }] = await loadBench();
    // The buffer accounting wraps GPUDevice.prototype for this page: installed once, before the
    // runtimes open their devices (a buffer made before it is not counted, nor its destroy).
    if (!hooked) installGpuHooks();
    hooked = true;
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw new Error('no WebGPU adapter');
    const info = adapter.info;
    const name = [info.vendor, info.architecture, info.description || info.device].filter(Boolean).join(' ');
    const report = await withClock(clock, () =>
      runE2e(name, [...adapter.features].sort(), {
        models: ['kjv-gqa'],
        formats: ['f32'],
        urls: DEMO_URLS,
        exportInPage: true,
        ...E2E_SIZES[size],
        onProgress: (m) => (step.textContent = m),
      }),
    );
    lastE2eReport = report;
    for (const r of report.runtimes)
      runtimesBody.append(
        h(
          'tr',
          { 'data-runtime': r.runtime, 'data-check': r.check.split(/[ :]/)[0] },
          h('th', { scope: 'row' }, r.runtime),
          h('td', {}, r.backend),
          h('td', {}, r.version),
          h('td', { class: 'num' }, r.loadMs.toFixed(0)),
          h('td', {}, r.check),
        ),
      );
    for (const r of report.rows) rowsBody.append(rowElement(r));
    const failed = report.runtimes.filter((r) => r.check.startsWith('failed'));
    status.dataset.state = failed.length ? 'failed' : 'done';
    status.dataset.rows = String(report.rows.length);
    status.replaceChildren(
      h('strong', {}, failed.length ? `Failed: ${failed.map((r) => r.runtime).join(', ')}` : 'Done'),
      ' in ',
      clock,
      ` · ${report.rows.length} comparisons, wall clock, median of ${E2E_SIZES[size].reps} run(s) after a warm-up`,
    );
    $<HTMLButtonElement>('#e2e-copy').disabled = false;
    $<HTMLButtonElement>('#bench-download').disabled = false;
  } catch (err) {
    status.dataset.state = 'failed';
    status.replaceChildren(h('span', { class: 'bad' }, `End-to-end comparison failed: ${(err as Error).message}`));
  } finally {
    button.disabled = false;
  }
}

export async function copyE2eMarkdown(button: HTMLButtonElement): Promise<void> {
  if (!lastE2eReport) return;
  try {
    await navigator.clipboard.writeText(formatE2eTables(lastE2eReport));
    button.textContent = 'Copied';
  } catch {
    button.textContent = 'Copy failed';
  }
  setTimeout(() => (button.textContent = 'Copy markdown'), 1500);
}
