/**
 * The bench page: runAttentionBench (src/bench/attentionBench.ts, the definitions `npm run bench`
 * runs in Node) on this page's GPU. Rows stream into the table and the uPlot charts as they are measured;
 * the report (partial, if stopped) downloads as JSON or copies as the CLI's markdown table.
 */
import { formatBenchTable, runAttentionBench, type BenchReport, type BenchRow, type GpuContext } from '../src/index';
import { drawChart, resizeCharts, type Series } from './charts';
import { copyE2eMarkdown, lastE2eReport, runE2ePanel } from './e2ePanel';
import { drawEngineChart, lastEngineReport, runEnginePanel } from './engineBenchPanel';
import { lastPeerReport, runPeerPanel, stopPeerPanel } from './peerPanel';
import { $, formatTokens, h, openGpu, renderAdapterSummary, withClock } from './shell';

const PALETTE = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#65a30d'];

/** Rows that form one line in the plots: same model, phase and batch, varying context. */
const lineKey = (r: BenchRow) => (r.phase === 'decode' ? `${r.variant} decode b${r.batch}` : `${r.variant} ${r.phase}`);

interface Run {
  mode: 'quick' | 'full';
  rows: BenchRow[];
  report?: BenchReport;
  partial: boolean;
  controller: AbortController;
}

let current: Run | undefined;

function fmt(x: number | null | undefined, digits = 2): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '' : x.toFixed(digits);
}

function rowElement(r: BenchRow): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-phase': r.phase, 'data-kernel': r.kernel },
    h('th', { scope: 'row' }, r.name),
    h('td', {}, r.phase),
    h('td', {}, r.kernel),
    h('td', { class: 'num' }, String(r.batch)),
    h('td', { class: 'num' }, r.contextLength ? formatTokens(r.contextLength) : ''),
    h('td', { class: 'num' }, fmt(r.medianMs, 3)),
    h('td', { class: 'num' }, fmt(r.gbPerSecond)),
    h('td', { class: 'num' }, fmt(r.gflopPerSecond)),
    h('td', { class: 'num' }, r.kernel === 'flash' && r.vsNaive != null ? `${fmt(r.vsNaive)}×` : fmt(r.vsNaive)),
    h('td', { class: 'num' }, fmt(r.vsCopyBandwidth)),
    h('td', { class: 'num' }, r.checkRelL2 === null ? '' : r.checkRelL2.toExponential(1)),
  );
}

function drawPlots(rows: BenchRow[]): void {
  const attention = rows.filter((r) => r.phase !== 'copy' && r.phase !== 'matmul');
  const colors = new Map<string, string>();
  for (const r of attention) if (!colors.has(lineKey(r))) colors.set(lineKey(r), PALETTE[colors.size % PALETTE.length]);
  const group = (pick: (r: BenchRow) => boolean, y: (r: BenchRow) => number | null, withKernel: boolean): Series[] => {
    const m = new Map<string, Series>();
    for (const r of attention.filter(pick)) {
      const v = y(r);
      if (v === null) continue;
      const name = withKernel ? `${lineKey(r)} ${r.kernel}` : lineKey(r);
      let s = m.get(name);
      if (!s) m.set(name, (s = { name, color: colors.get(lineKey(r))!, dashed: r.kernel === 'naive', points: [] }));
      s.points.push([r.contextLength, v]);
    }
    return [...m.values()];
  };
  const copy = rows.find((r) => r.phase === 'copy');
  const empty = 'Rows appear here as they are measured.';
  drawChart($('#chart-time'), {
    title: 'Time vs context length (flash solid, naive dashed)',
    xLabel: 'context length (tokens)',
    yLabel: 'ms',
    yLog: true,
    formatX: formatTokens,
    emptyText: empty,
    series: group(
      () => true,
      (r) => r.medianMs,
      true,
    ),
  });
  drawChart($('#chart-bandwidth'), {
    title: 'Decode bandwidth vs the copy ceiling',
    xLabel: 'context length (tokens)',
    yLabel: 'GB/s',
    formatX: formatTokens,
    emptyText: empty,
    series: group(
      (r) => r.phase === 'decode',
      (r) => r.gbPerSecond,
      true,
    ),
    refLines: copy ? [{ y: copy.gbPerSecond, label: `copy kernel ${copy.gbPerSecond.toFixed(1)} GB/s` }] : [],
  });
  drawChart($('#chart-speedup'), {
    title: 'Flash speed-up over naive attention',
    xLabel: 'context length (tokens)',
    yLabel: '× naive',
    formatX: formatTokens,
    emptyText: empty,
    series: group(
      (r) => r.kernel === 'flash',
      (r) => r.vsNaive,
      false,
    ),
    refLines: [{ y: 1, label: '1× (naive)' }],
  });
}

/** The finished report, or what a stopped / failed run measured so far. */
function reportOf(ctx: GpuContext, run: Run): BenchReport & { partial?: boolean; mode: string } {
  const extra = {
    ...(lastEngineReport ? { engine: lastEngineReport } : {}),
    ...(lastPeerReport ? { peer: lastPeerReport } : {}),
    ...(lastE2eReport ? { e2e: lastE2eReport } : {}),
  };
  if (run.report) return { ...run.report, mode: run.mode, ...extra };
  return {
    adapter: ctx.adapterDescription,
    features: [...ctx.device.features].sort(),
    timing: ctx.features.timestampQuery ? 'timestamp-query' : 'wall-clock',
    date: new Date().toISOString(),
    rows: run.rows,
    skipped: [],
    partial: true,
    mode: run.mode,
    ...extra,
  };
}

function download(ctx: GpuContext, run: Run): void {
  const report = reportOf(ctx, run);
  const slug =
    report.adapter
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 40) || 'gpu';
  const blob = new Blob([`${JSON.stringify(report, null, 2)}\n`], { type: 'application/json' });
  const a = h('a', {
    href: URL.createObjectURL(blob),
    download: `webattn-bench-${run.mode}-${slug}-${report.date.slice(0, 10)}.json`,
  });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

async function runBench(ctx: GpuContext, mode: 'quick' | 'full'): Promise<void> {
  const status = $('#bench-status');
  const buttons = {
    quick: $<HTMLButtonElement>('#bench-quick'),
    full: $<HTMLButtonElement>('#bench-full'),
    stop: $<HTMLButtonElement>('#bench-stop'),
    download: $<HTMLButtonElement>('#bench-download'),
    copy: $<HTMLButtonElement>('#bench-copy'),
  };
  const run: Run = { mode, rows: [], partial: true, controller: new AbortController() };
  current = run;
  const tbody = $('#bench-table tbody');
  tbody.replaceChildren();
  $('#bench-skipped').replaceChildren();
  drawPlots([]);
  buttons.quick.disabled = buttons.full.disabled = true;
  buttons.download.disabled = buttons.copy.disabled = true;
  buttons.stop.disabled = false;
  status.dataset.state = 'running';
  status.dataset.rows = '0';
  const clock = h('span', { class: 'clock' });
  const step = h('span', {}, 'starting');
  status.replaceChildren(`${mode === 'quick' ? 'Quick' : 'Full'} run: `, step, ' · ', clock);
  let outcome: string;
  try {
    run.report = await withClock(clock, () =>
      runAttentionBench(ctx, {
        quick: mode === 'quick',
        signal: run.controller.signal,
        onProgress: (msg) => (step.textContent = msg),
        onRow: (row) => {
          run.rows.push(row);
          tbody.append(rowElement(row));
          status.dataset.rows = String(run.rows.length);
          buttons.download.disabled = buttons.copy.disabled = false;
          drawPlots(run.rows);
        },
      }),
    );
    run.partial = false;
    for (const s of run.report.skipped ?? []) $('#bench-skipped').append(h('li', {}, `Skipped ${s}`));
    outcome = `Done: ${run.report.rows.length} rows`;
    status.dataset.state = 'done';
  } catch (err) {
    const aborted = run.controller.signal.aborted;
    outcome = aborted
      ? `Stopped after ${run.rows.length} rows`
      : `Failed after ${run.rows.length} rows: ${(err as Error).message}`;
    status.dataset.state = aborted ? 'stopped' : 'failed';
  } finally {
    if (current === run) current = undefined;
    buttons.stop.disabled = true;
    buttons.quick.disabled = buttons.full.disabled = ctx.lostReason !== undefined;
    buttons.download.disabled = buttons.copy.disabled = run.rows.length === 0;
  }
  status.replaceChildren(h('strong', {}, outcome), ' in ', clock, ` (timing: ${reportOf(ctx, run).timing})`);
  lastRun = run;
}

let lastRun: Run | undefined;

async function start(): Promise<void> {
  drawPlots([]);
  drawEngineChart(undefined);
  let resizeTimer: ReturnType<typeof setTimeout> | undefined;
  addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(
      () => resizeCharts([$('#chart-time'), $('#chart-bandwidth'), $('#chart-speedup'), $('#chart-engine')]),
      150,
    );
  });
  const gpu = await openGpu();
  if (!gpu.ok) {
    $('#adapter').replaceChildren(h('p', { class: 'muted' }, 'No GPU: see the message above.'));
    return;
  }
  const ctx = gpu.ctx;
  renderAdapterSummary($('#adapter'), ctx);
  $('#bench-quick').addEventListener('click', () => void runBench(ctx, 'quick'));
  const engineButton = $<HTMLButtonElement>('#engine-run');
  engineButton.addEventListener('click', () => void runEnginePanel(ctx, engineButton));
  const peerButton = $<HTMLButtonElement>('#peer-run');
  const peerStop = $<HTMLButtonElement>('#peer-stop');
  peerButton.addEventListener('click', () => void runPeerPanel(peerButton, peerStop));
  peerStop.addEventListener('click', () => stopPeerPanel());
  const e2eButton = $<HTMLButtonElement>('#e2e-run');
  e2eButton.addEventListener('click', () => void runE2ePanel(e2eButton));
  const e2eCopy = $<HTMLButtonElement>('#e2e-copy');
  e2eCopy.addEventListener('click', () => void copyE2eMarkdown(e2eCopy));
  $('#bench-full').addEventListener('click', () => void runBench(ctx, 'full'));
  $('#bench-stop').addEventListener('click', () => {
    current?.controller.abort();
    $('#bench-status span').textContent = 'stopping after the current measurement…';
  });
  const runForExport = () => current ?? lastRun;
  $('#bench-download').addEventListener('click', () => {
    // Engine results alone download too (an empty kernel run carries them).
    const run =
      runForExport() ??
      (lastEngineReport || lastPeerReport || lastE2eReport
        ? { mode: 'engine' as never, rows: [], partial: true, controller: new AbortController() }
        : undefined);
    if (run) download(ctx, run);
  });
  $('#bench-copy').addEventListener('click', async () => {
    const run = runForExport();
    if (!run) return;
    const button = $<HTMLButtonElement>('#bench-copy');
    try {
      await navigator.clipboard.writeText(formatBenchTable(reportOf(ctx, run)));
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Copy failed';
    }
    setTimeout(() => (button.textContent = 'Copy markdown'), 1500);
  });
}

void start();
