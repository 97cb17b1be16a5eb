/**
 * A small SVG line chart for the bench page: log2 x axis (context lengths), linear or log10 y axis,
 * solid or dashed series with point markers (each with a <title> tooltip), horizontal reference
 * lines (the copy-bandwidth ceiling, 1x), and an HTML legend. The bench table holds the same
 * numbers for screen readers; the chart is labelled with its title.
 */
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

const SVG = 'http://www.w3.org/2000/svg';
const W = 560;
const H = 300;
const M = { left: 62, right: 16, top: 14, bottom: 44 };

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** 1, 2, 5 x 10^k steps covering [lo, hi] with about `n` ticks. */
function linearTicks(lo: number, hi: number, n = 5): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function formatNumber(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) return v.toExponential(0);
  if (a >= 1e4) return `${Number((v / 1000).toPrecision(3))}k`;
  return String(Number(v.toPrecision(3)));
}

/** Draws `spec` into `container` (replacing what was there). */
export function drawChart(container: HTMLElement, spec: ChartSpec): void {
  const series = spec.series.filter((s) => s.points.length > 0);
  const points = series.flatMap((s) => s.points).filter(([x, y]) => x > 0 && Number.isFinite(y) && (!spec.yLog || y > 0));
  const figure = document.createElement('figure');
  figure.className = 'chart';
  const caption = document.createElement('figcaption');
  caption.textContent = spec.title;
  figure.append(caption);
  if (points.length === 0) {
    const p = document.createElement('p');
    p.className = 'chart-empty';
    p.textContent = spec.emptyText ?? 'No data yet.';
    figure.append(p);
    container.replaceChildren(figure);
    return;
  }

  // Domains: x in log2, y linear from 0 (or log10), padded to include the reference lines.
  const xs = points.map(([x]) => Math.log2(x));
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (x1 - x0 < 1) {
    x0 -= 0.5;
    x1 += 0.5;
  }
  const ys = [...points.map(([, y]) => y), ...(spec.refLines ?? []).map((r) => r.y)].filter((y) => !spec.yLog || y > 0);
  const ty = (y: number) => (spec.yLog ? Math.log10(y) : y);
  let y0 = spec.yLog ? Math.floor(Math.min(...ys.map(ty))) : Math.min(0, ...ys);
  let y1 = spec.yLog ? Math.ceil(Math.max(...ys.map(ty))) : Math.max(...ys) * 1.08;
  if (y1 <= y0) y1 = y0 + 1;
  const px = (x: number) => M.left + ((Math.log2(x) - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - ((ty(y) - y0) / (y1 - y0)) * (H - M.top - M.bottom);

  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': spec.title, class: 'chart-svg' });
  const axes = svg('g', { class: 'axes' });
  // y grid and labels
  const yTicks = spec.yLog
    ? Array.from({ length: y1 - y0 + 1 }, (_, i) => 10 ** (y0 + i))
    : linearTicks(y0, y1);
  for (const t of yTicks) {
    const y = py(t);
    axes.append(svg('line', { x1: M.left, x2: W - M.right, y1: y, y2: y, class: 'grid' }));
    axes.append(svg('text', { x: M.left - 6, y: y + 4, 'text-anchor': 'end', class: 'tick' }, formatNumber(t)));
  }
  // x ticks at powers of two
  const fx = spec.formatX ?? formatNumber;
  for (let e = Math.ceil(x0); e <= Math.floor(x1); e++) {
    const x = px(2 ** e);
    axes.append(svg('line', { x1: x, x2: x, y1: M.top, y2: H - M.bottom, class: 'grid' }));
    axes.append(svg('text', { x, y: H - M.bottom + 16, 'text-anchor': 'middle', class: 'tick' }, fx(2 ** e)));
  }
  axes.append(svg('line', { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, class: 'axis' }));
  axes.append(svg('line', { x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom, class: 'axis' }));
  axes.append(svg('text', { x: (M.left + W - M.right) / 2, y: H - 6, 'text-anchor': 'middle', class: 'label' }, spec.xLabel));
  axes.append(svg('text', { x: 14, y: (M.top + H - M.bottom) / 2, 'text-anchor': 'middle', class: 'label', transform: `rotate(-90 14 ${(M.top + H - M.bottom) / 2})` }, spec.yLabel));
  root.append(axes);

  for (const r of spec.refLines ?? []) {
    if (spec.yLog && r.y <= 0) continue;
    const y = py(r.y);
    root.append(svg('line', { x1: M.left, x2: W - M.right, y1: y, y2: y, class: 'ref' }));
    root.append(svg('text', { x: W - M.right - 4, y: y - 5, 'text-anchor': 'end', class: 'ref-label' }, r.label));
  }

  for (const s of series) {
    const pts = s.points.filter(([x, y]) => x > 0 && Number.isFinite(y) && (!spec.yLog || y > 0)).sort((a, b) => a[0] - b[0]);
    const g = svg('g', { class: 'series' });
    if (pts.length > 1) {
      g.append(svg('polyline', {
        points: pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' '),
        fill: 'none', stroke: s.color, 'stroke-width': 2, ...(s.dashed ? { 'stroke-dasharray': '6 4' } : {}),
      }));
    }
    for (const [x, y] of pts) {
      const dot = svg('circle', { cx: px(x), cy: py(y), r: 3.5, fill: s.dashed ? 'var(--bg)' : s.color, stroke: s.color, 'stroke-width': 2 });
      dot.append(svg('title', {}, `${s.name}: ${fx(x)} → ${formatNumber(y)} ${spec.yLabel}`));
      g.append(dot);
    }
    root.append(g);
  }
  figure.append(root);

  const legend = document.createElement('ul');
  legend.className = 'legend';
  for (const s of series) {
    const li = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = `swatch${s.dashed ? ' dashed' : ''}`;
    swatch.style.borderColor = s.color;
    swatch.setAttribute('aria-hidden', 'true');
    li.append(swatch, s.name);
    legend.append(li);
  }
  figure.append(legend);
  container.replaceChildren(figure);
}
