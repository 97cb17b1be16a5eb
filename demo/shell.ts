/**
 * What every demo page shares: opening the GPU (with a clear message on the page when there is no
 * WebGPU, no adapter, or the device is lost later: never a blank page), the adapter summary, and
 * small DOM and formatting helpers. The demo uses only webattn's public module (src/index.ts).
 */
import { createContext, type GpuContext } from '../src/index';

export type GpuState =
  | { ok: true; ctx: GpuContext }
  | { ok: false; kind: 'no-webgpu' | 'no-adapter' | 'error'; message: string };

/** `document.querySelector` that throws naming the selector instead of returning null. */
export function $<T extends Element = HTMLElement>(selector: string, root: ParentNode = document): T {
  const el = root.querySelector<T>(selector);
  if (!el) throw new Error(`demo: no element ${selector}`);
  return el;
}

/** A new element with text and attributes; `children` may mix strings and nodes. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...children);
  return el;
}

/** The `role=alert` notice at the top of the page (used for missing WebGPU and a lost device). */
export function showNotice(
  kind: 'error' | 'warning',
  title: string,
  body: (Node | string)[],
  id = 'gpu-notice',
): HTMLElement {
  document.getElementById(id)?.remove();
  const notice = h(
    'section',
    { id, class: `notice ${kind}`, role: 'alert', 'aria-labelledby': `${id}-title` },
    h('h2', { id: `${id}-title` }, title),
    ...body,
  );
  $('main').prepend(notice);
  return notice;
}

const list = (items: (Node | string)[][]) => h('ul', {}, ...items.map((parts) => h('li', {}, ...parts)));
const code = (s: string) => h('code', {}, s);

/** The message for a browser with no usable WebGPU: what happened and what to do about it. */
function showNoGpu(state: Extract<GpuState, { ok: false }>, without: string): void {
  if (state.kind === 'no-webgpu') {
    const insecure = typeof isSecureContext !== 'undefined' && !isSecureContext;
    showNotice('error', 'This browser has no WebGPU', [
      h(
        'p',
        {},
        insecure
          ? 'This page was not opened from a secure origin, ' +
              'and browsers only offer WebGPU to pages served over https:// or from localhost.'
          : `navigator.gpu is missing, so nothing can run on the GPU here. ${without}`,
      ),
      h('p', {}, 'To run on the GPU:'),
      list([
        [
          'Use a browser with WebGPU: Chrome or Edge 113+ (Windows, macOS, ChromeOS), ' +
            'Chrome 121+ on Android, Safari 26+, or Firefox 141+ on Windows.',
        ],
        [
          'On Linux, Chrome needs ',
          code('chrome://flags/#enable-unsafe-webgpu'),
          ' (and often ',
          code('--enable-features=Vulkan'),
          ').',
        ],
        ['Open the page over ', code('https://'), ' or from ', code('localhost'), ' (', code('npm run demo'), ').'],
      ]),
    ]);
  } else if (state.kind === 'no-adapter') {
    showNotice('error', 'WebGPU is here, but no GPU adapter was returned', [
      h(
        'p',
        {},
        'The browser has WebGPU but did not hand out a GPU: it may be blocklisted, ' +
          `hardware acceleration may be off, or the driver may be too old. ${without}`,
      ),
      list([
        ['Turn on hardware acceleration in the browser settings and restart it.'],
        [
          'Check ',
          code('chrome://gpu'),
          ' (Chrome, Edge) for "WebGPU: Hardware accelerated" and update the GPU driver.',
        ],
        ['Try ', code('chrome://flags/#enable-unsafe-webgpu'), ' or another browser.'],
      ]),
    ]);
  } else {
    showNotice('error', 'Could not open the GPU', [
      h('p', {}, state.message),
      h('p', {}, 'Reload the page to try again.'),
    ]);
  }
}

function showLost(reason: string, message: string): void {
  const reload = h('button', { type: 'button' }, 'Reload the page');
  reload.addEventListener('click', () => location.reload());
  showNotice('error', 'The GPU device was lost', [
    h(
      'p',
      {},
      `${reason === 'destroyed' ? 'The device was destroyed' : 'The browser took the GPU away'}` +
        `${message ? ` (${message.replace(/\.+$/, '')})` : ''}.`,
    ),
    h(
      'p',
      {},
      'This happens after a GPU driver reset, when the GPU runs out of memory, ' +
        'or after the tab spent a long time in the background. ' +
        'Results already shown stay valid; nothing more can run on this device.',
    ),
    h('p', {}, reload),
  ]);
  document.body.dataset.gpu = 'lost';
  for (const b of document.querySelectorAll<HTMLButtonElement>('[data-needs-gpu]')) b.disabled = true;
  reload.focus();
}

/**
 * Opens the GPU once per page. Failure never throws: it shows a notice and returns why.
 * Sets `body[data-gpu]` to ready / no-webgpu / no-adapter / error / lost (styling and tests read it).
 * Buttons marked `data-needs-gpu` stay disabled unless a device is ready.
 */
export async function openGpu(opts: { without?: string } = {}): Promise<GpuState> {
  const without = opts.without ?? 'The KV-cost calculator below still works.';
  let state: GpuState;
  if (typeof navigator === 'undefined' || !('gpu' in navigator) || !navigator.gpu) {
    state = { ok: false, kind: 'no-webgpu', message: 'navigator.gpu is missing' };
  } else {
    try {
      state = { ok: true, ctx: await createContext() };
    } catch (err) {
      const e = err as Error;
      state = { ok: false, kind: e.name === 'NoWebGpuError' ? 'no-adapter' : 'error', message: e.message };
    }
  }
  document.body.dataset.gpu = state.ok ? 'ready' : state.kind;
  if (!state.ok) {
    showNoGpu(state, without);
    return state;
  }
  const ctx = state.ctx;
  ctx.device.lost.then((info) => showLost(info.reason, info.message));
  for (const b of document.querySelectorAll<HTMLButtonElement>('[data-needs-gpu]')) b.disabled = false;
  // A handle for the console and the browser tests: `webattnDemo.loseDevice()` shows the lost-device path.
  (globalThis as { webattnDemo?: object }).webattnDemo = { ctx, loseDevice: () => ctx.device.destroy() };
  return state;
}

/** The adapter line and a feature list with yes/no marks, into `el`. */
export function renderAdapterSummary(el: HTMLElement, ctx: GpuContext): void {
  const f = ctx.features;
  const feature = (name: string, on: boolean, note: string) =>
    h(
      'li',
      { class: on ? 'yes' : 'no', 'data-feature': name },
      h('span', { class: 'mark', 'aria-hidden': 'true' }, on ? '✓' : '✗'),
      h('code', {}, name),
      ' ',
      h('span', { class: 'visually-hidden' }, on ? 'available' : 'not available'),
      h('span', { class: 'note' }, note),
    );
  el.replaceChildren(
    h('p', { class: 'adapter' }, 'Adapter: ', h('strong', { id: 'adapter-name' }, ctx.adapterDescription)),
    h(
      'ul',
      { class: 'features', 'aria-label': 'Optional WebGPU features' },
      feature('shader-f16', f.shaderF16, f.shaderF16 ? 'native f16 arithmetic' : 'f16 KV packed in u32 instead'),
      feature('subgroups', f.subgroups, 'subgroup operations'),
      feature(
        'timestamp-query',
        f.timestampQuery,
        f.timestampQuery ? 'GPU timestamps for timing' : 'wall-clock timing instead',
      ),
    ),
  );
}

/** 1536 -> "1.5 KiB"; binary units, as GPU memory is counted. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = i === 0 || Number.isInteger(v) ? 0 : v < 10 ? 2 : v < 100 ? 1 : 0;
  return `${v.toFixed(digits)} ${units[i]}`;
}

/** 4096 -> "4K", 1536 -> "1.5K", 131072 -> "128K" (context lengths). */
export function formatTokens(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / 1024 / 1024}M`;
  if (n >= 1024 && n % 512 === 0) return `${n / 1024}K`;
  return String(n);
}

/** Sets a `[data-clock]` element to a live "12.3 s" while `run` runs; returns what it returns. */
export async function withClock<T>(el: HTMLElement, run: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const tick = () => (el.textContent = `${((performance.now() - t0) / 1000).toFixed(1)} s`);
  tick();
  const id = setInterval(tick, 100);
  try {
    return await run();
  } finally {
    clearInterval(id);
    tick();
  }
}
