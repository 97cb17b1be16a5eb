/**
 * Line charts for the bench page through uPlot: log2 x axis (context lengths), linear or log10 y,
 * solid or dashed series with points, and horizontal reference lines (the copy-bandwidth ceiling,
 * 1x naive) drawn as dashed constant series. The bench table holds the same numbers for screen
 * readers; each chart is a figure labelled by its title, and its container's data-* attributes
 * say what it drew (series, points, reference lines).
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { h } from './shell';

export interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  points: [x: number, y: number][];
}

export interface RefLine {
  y: number;
  label: string;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  yLog?: boolean;
  series: Series[];
  refLines?: RefLine[];
  formatX?: (x: number) => string;
  /** Shown instead of an empty plot. */
  emptyText?: string;
}

const REF_COLOR = '#cf222e';
const charts = new WeakMap<HTMLElement, uPlot>();

/** Width for a chart in `el`: its box, less padding, never below what a phone shows. */
function widthOf(el: HTMLElement): number {
  return Math.max(260, Math.floor(el.clientWidth || 480));
}

/** Replaces whatever `el` holds with a chart of `spec` (or the empty text when no series has a point). */
export function drawChart(el: HTMLElement, spec: ChartSpec): void {
  charts.get(el)?.destroy();
  charts.delete(el);
  const series = spec.series.filter((s) => s.points.length > 0);
  const refs = spec.refLines ?? [];
  el.dataset.series = String(series.length);
  el.dataset.points = String(series.reduce((n, s) => n + s.points.length, 0));
  el.dataset.refs = String(series.length ? refs.length : 0);
  const caption = h('figcaption', {}, spec.title);
  if (!series.length) {
    el.replaceChildren(
      h('figure', { class: 'chart' }, caption, h('p', { class: 'chart-empty' }, spec.emptyText ?? 'No data yet.')),
    );
    return;
  }
  // uPlot wants aligned columns: one x array, one y array per series with null where it has no point.
  const xs = [...new Set(series.flatMap((s) => s.points.map(([x]) => x)))].sort((a, b) => a - b);
  const column = (s: Series) => xs.map((x) => s.points.find(([px]) => px === x)?.[1] ?? null);
  const data: uPlot.AlignedData = [xs, ...series.map(column), ...refs.map((r) => xs.map(() => r.y))];
  // Axis and grid colours from the page's theme (light or dark).
  const css = getComputedStyle(document.documentElement);
  const ink = css.getPropertyValue('--muted').trim() || '#59636e';
  const grid = { stroke: css.getPropertyValue('--border').trim() || '#d1d9e0', width: 1 };
  // uPlot hands null for ticks it skips (log scales) and for missing points.
  const fmtY = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2));
  const opts: uPlot.Options = {
    width: widthOf(el),
    height: 280,
    scales: {
      x: { time: false, distr: 3, log: 2 },
      y: spec.yLog ? { distr: 3, log: 10 } : { range: (_u, min, max) => [Math.min(0, min), max * 1.1 || 1] },
    },
    axes: [
      {
        label: spec.xLabel,
        stroke: ink,
        grid,
        ticks: grid,
        values: (_u, ticks) => ticks.map((t) => (t == null ? '' : spec.formatX ? spec.formatX(t) : String(t))),
      },
      {
        label: spec.yLabel,
        stroke: ink,
        grid,
        ticks: grid,
        values: (_u, ticks) => ticks.map((t) => (t == null ? '' : fmtY(t))),
        size: 60,
      },
    ],
    series: [
      { label: spec.xLabel, value: (_u, v) => (v == null ? '' : spec.formatX ? spec.formatX(v) : String(v)) },
      ...series.map(
        (s): uPlot.Series => ({
          label: s.name,
          stroke: s.color,
          width: 2,
          dash: s.dashed ? [6, 4] : undefined,
          spanGaps: true,
          points: { show: true, size: 7, fill: s.dashed ? 'transparent' : s.color, width: 1.5 }, // naive: hollow
          value: (_u, v) => (v == null ? '' : fmtY(v)),
        }),
      ),
      ...refs.map(
        (r): uPlot.Series => ({
          label: r.label,
          stroke: REF_COLOR,
          width: 1.5,
          dash: [3, 3],
          points: { show: false },
          paths: () => null, // drawn edge to edge by the hook below, even over a single x
          value: () => fmtY(r.y),
        }),
      ),
    ],
    hooks: {
      draw: [
        (u) => {
          const g = u.ctx;
          const { left, top, width, height } = u.bbox;
          g.save();
          g.strokeStyle = REF_COLOR;
          g.lineWidth = 1.5 * devicePixelRatio;
          g.setLineDash([4 * devicePixelRatio, 4 * devicePixelRatio]);
          for (const r of refs) {
            const y = u.valToPos(r.y, 'y', true);
            if (y < top || y > top + height) continue;
            g.beginPath();
            g.moveTo(left, y);
            g.lineTo(left + width, y);
            g.stroke();
          }
          g.restore();
        },
      ],
    },
    legend: { live: true },
    cursor: { points: { size: 8 } },
  };
  const figure = h('figure', { class: 'chart', 'aria-label': spec.title }, caption);
  el.replaceChildren(figure);
  const chart = new uPlot(opts, data, figure);
  charts.set(el, chart);
}

/** Keeps the charts as wide as their boxes when the window changes. */
export function resizeCharts(els: HTMLElement[]): void {
  for (const el of els) charts.get(el)?.setSize({ width: widthOf(el), height: 280 });
}
