/**
 * The KV page pool drawn as a grid on a canvas: one square per page (all layers, K and V), coloured
 * by the request that owns it and filled from the bottom as far as its tokens go, striped when shared
 * (refCount > 1: a cached prefix or a fork),
 * outlined when free but still holding a prefix-cache entry. The canvas carries the numbers in
 * data-* attributes and its aria-label; the legend lists each request's tokens and pages.
 * A model with sliding-window layers has a second pool (snapshot.local) that holds only the pages
 * their window still reads: its totals come with the grid's, and localSnapshot() draws it as a grid.
 */
import type { KvSnapshot } from '../src/engine/types';
import { formatBytes, h } from './shell';

const PALETTE = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#65a30d'];

export function requestColor(requestId: number): string {
  return PALETTE[((requestId % PALETTE.length) + PALETTE.length) % PALETTE.length];
}

export interface KvTotals {
  usedPages: number;
  freePages: number;
  cachedPages: number;
  sharedPages: number;
  usedBytes: number;
  freeBytes: number;
  cachedBytes: number;
  /** The sliding-window layers' pool (snapshot.local), when the model has one. */
  local?: { usedPages: number; numPages: number; usedBytes: number; window: number };
}

/** The sliding-window layers' pool as a snapshot of its own (drawKvGrid it), or null. */
export function localSnapshot(s: KvSnapshot): KvSnapshot | null {
  return s.local ? { ...s.local, pageSize: s.pageSize } : null;
}

export function kvTotals(s: KvSnapshot): KvTotals {
  let used = 0;
  let cached = 0;
  let shared = 0;
  for (let p = 0; p < s.numPages; p++) {
    if (s.owner[p] >= 0) used++;
    else if (s.cached[p]) cached++;
    if (s.refCount[p] > 1) shared++;
  }
  return {
    usedPages: used,
    freePages: s.numPages - used,
    cachedPages: cached,
    sharedPages: shared,
    usedBytes: used * s.bytesPerPage,
    freeBytes: (s.numPages - used) * s.bytesPerPage,
    cachedBytes: cached * s.bytesPerPage,
    local: s.local && {
      usedPages: s.local.owner.reduce((n, o) => n + (o >= 0 ? 1 : 0), 0),
      numPages: s.local.numPages,
      usedBytes: s.local.owner.reduce((n, o) => n + (o >= 0 ? 1 : 0), 0) * s.local.bytesPerPage,
      window: s.local.window,
    },
  };
}

/** Draws the snapshot into `canvas`, sized to its CSS width; returns the totals it drew. */
export function drawKvGrid(canvas: HTMLCanvasElement, s: KvSnapshot): KvTotals {
  const t = kvTotals(s);
  const cssWidth = Math.max(120, canvas.clientWidth || canvas.parentElement?.clientWidth || 320);
  // Square cells, at most 22 px, at least 4 px, so a few thousand pages still fit on a phone.
  const gap = 2;
  let cell = Math.floor(Math.sqrt((cssWidth * 260) / Math.max(1, s.numPages))) - gap;
  cell = Math.max(4, Math.min(22, cell));
  const cols = Math.max(1, Math.floor((cssWidth + gap) / (cell + gap)));
  const rows = Math.ceil(s.numPages / cols);
  const cssHeight = rows * (cell + gap);
  const dpr = globalThis.devicePixelRatio || 1;
  canvas.width = Math.round(cssWidth * dpr);
  canvas.height = Math.round(cssHeight * dpr);
  canvas.style.height = `${cssHeight}px`;
  const g = canvas.getContext('2d');
  if (g) {
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, cssWidth, cssHeight);
    const styles = getComputedStyle(canvas);
    const freeColor = styles.getPropertyValue('--kv-free').trim() || '#d1d9e0';
    const cachedColor = styles.getPropertyValue('--kv-cached').trim() || '#59636e';
    for (let p = 0; p < s.numPages; p++) {
      const x = (p % cols) * (cell + gap);
      const y = Math.floor(p / cols) * (cell + gap);
      const owner = s.owner[p];
      if (owner >= 0) {
        // A page fills from the bottom as its tokens are written (the last page of a sequence is partial).
        const part = s.fill ? Math.max(1, s.fill[p]) / s.pageSize : 1;
        g.fillStyle = requestColor(owner);
        g.globalAlpha = 0.3;
        g.fillRect(x, y, cell, cell);
        g.globalAlpha = 1;
        const fh = Math.max(1, Math.round(cell * Math.min(1, part)));
        g.fillRect(x, y + cell - fh, cell, fh);
        if (s.refCount[p] > 1 && cell >= 6) {
          // Shared page: white diagonal stripes.
          g.save();
          g.beginPath();
          g.rect(x, y, cell, cell);
          g.clip();
          g.strokeStyle = 'rgba(255,255,255,0.75)';
          g.lineWidth = Math.max(1, cell / 8);
          for (let d = -cell; d < cell; d += Math.max(3, cell / 3)) {
            g.beginPath();
            g.moveTo(x + d, y + cell);
            g.lineTo(x + d + cell, y);
            g.stroke();
          }
          g.restore();
        }
      } else if (s.cached[p]) {
        g.strokeStyle = cachedColor;
        g.lineWidth = 1.5;
        g.strokeRect(x + 0.75, y + 0.75, cell - 1.5, cell - 1.5);
      } else {
        g.fillStyle = freeColor;
        g.globalAlpha = 0.45;
        g.fillRect(x, y, cell, cell);
        g.globalAlpha = 1;
      }
    }
  }
  canvas.dataset.numPages = String(s.numPages);
  canvas.dataset.usedPages = String(t.usedPages);
  canvas.dataset.sharedPages = String(t.sharedPages);
  canvas.dataset.cachedPages = String(t.cachedPages);
  if (t.local) canvas.dataset.localUsedPages = String(t.local.usedPages);
  const local = t.local
    ? `; sliding-window layers (window ${t.local.window}): ${t.local.usedPages} of ${t.local.numPages} pages in use`
    : '';
  const cachedNote = `${t.cachedPages} free pages hold a cached prefix`;
  canvas.setAttribute(
    'aria-label',
    `KV page grid: ${t.usedPages} of ${s.numPages} pages in use (${t.sharedPages} shared), ${cachedNote}${local}`,
  );
  return t;
}

/** One legend row per live request: colour, label, tokens and pages (and how full its last page is). */
export function renderKvLegend(ul: HTMLElement, s: KvSnapshot): void {
  const items = s.requests.map((r) => {
    const inLast = r.pages ? r.tokens - (r.pages - 1) * s.pageSize : 0;
    return h(
      'li',
      { 'data-request': r.requestId },
      h('span', { class: 'dot', style: `background:${requestColor(r.requestId)}`, 'aria-hidden': 'true' }),
      h('span', { class: 'label' }, r.label || `request ${r.requestId}`),
      s.requests.some((o) => o.requestId === r.requestId && o.index !== r.index) ? ` · sample ${r.index}` : '',
      ' ',
      h(
        'span',
        { class: 'muted' },
        `${r.tokens} tokens · ${r.pages} page${r.pages === 1 ? '' : 's'}` +
          (r.pages ? ` (last ${Math.max(0, inLast)}/${s.pageSize})` : ''),
      ),
      windowPages(s, r.requestId, r.index),
    );
  });
  ul.replaceChildren(...(items.length ? items : [h('li', { class: 'muted' }, 'No request holds pages right now.')]));
}

/** " · 33 window pages": what the request's sample holds in the sliding-window pool, if any. */
function windowPages(s: KvSnapshot, requestId: number, index: number): string {
  const r = s.local?.requests.find((o) => o.requestId === requestId && o.index === index);
  return r ? ` · ${r.pages} window page${r.pages === 1 ? '' : 's'}` : '';
}

/** "3.1 MiB (196 pages)" */
export function pagesAndBytes(pages: number, bytes: number): string {
  return `${formatBytes(bytes)} (${pages} page${pages === 1 ? '' : 's'})`;
}
