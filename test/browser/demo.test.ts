/**
 * The demo in a real browser: builds the static site (`vite build --mode demo`, into a temp dir),
 * serves it with `vite preview` (COOP/COEP headers from vite.config.ts), and drives Debian's Chromium
 * through playwright-core.
 *
 * 1. With WebGPU (headless Chromium hands out a SwiftShader adapter under --enable-unsafe-webgpu):
 *    the front page opens the GPU cross-origin isolated, "Check kernels" passes every case against the
 *    float64 reference, a lost device shows its notice; the bench page's Quick run streams rows and
 *    is stopped after the first attention rows, and its JSON download parses.
 * 2. Without WebGPU (--disable-webgpu: no adapter; and navigator.gpu deleted): a clear message, never
 *    a blank page, and the KV calculator still answers.
 * Screenshots go to test/artifacts/ (git-ignored).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const artifacts = path.join(repoRoot, 'test/artifacts');
const CHROMIUM = process.env.WEBATTN_CHROMIUM ?? '/usr/bin/chromium';

const COMMON_FLAGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
];
/** Headless Chromium with these gets Dawn on SwiftShader (Vulkan) when the machine has no GPU. */
export const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader'];

let outDir: string;
let server: PreviewServer;
let baseUrl: string;

function log(msg: string): void {
  console.log(`[browser] ${msg}`);
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the browser tests need Debian's chromium. Run .ci/run (it installs it), or apt-get install chromium`);
  }
  mkdirSync(artifacts, { recursive: true });
  const t0 = performance.now();
  outDir = mkdtempSync(path.join(tmpdir(), 'webattn-demo-'));
  const configFile = path.join(repoRoot, 'vite.config.ts');
  await build({ configFile, mode: 'demo', logLevel: 'warn', build: { outDir, emptyOutDir: true, sourcemap: false } });
  server = await preview({ configFile, mode: 'demo', logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0, open: false } });
  const { port } = server.httpServer.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}/`;
  log(`built and serving ${outDir} at ${baseUrl} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}, 120_000);

afterAll(async () => {
  await server?.close();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

async function launch(flags: string[]): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: [...COMMON_FLAGS, ...flags], timeout: 60_000 });
}

/** A page that fails the test on any uncaught error or console error. */
async function newPage(browser: Browser, errors: string[]): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) errors.push(`HTTP ${r.status()} ${r.url()}`);
  });
  return page;
}

async function gpuState(page: Page): Promise<string> {
  await page.waitForFunction(() => document.body.dataset.gpu !== 'pending', undefined, { timeout: 30_000 });
  return page.evaluate(() => document.body.dataset.gpu ?? '');
}

const seconds = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

describe('demo in Chromium', () => {
  it('with WebGPU: kernels pass, the bench streams rows, a lost device is reported', async () => {
    const browser = await launch(WEBGPU_FLAGS);
    const errors: string[] = [];
    try {
      const page = await newPage(browser, errors);
      let t0 = performance.now();
      const res = await page.goto(`${baseUrl}kernels.html`);
      expect(res?.headers()['cross-origin-opener-policy']).toBe('same-origin');
      expect(res?.headers()['cross-origin-embedder-policy']).toBe('require-corp');
      expect(await page.title()).toBe('Kernels · webattn');
      expect(await gpuState(page), 'navigator.gpu.requestAdapter() gave nothing: check the Chromium flags').toBe('ready');
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      const adapter = await page.locator('#adapter-name').textContent();
      log(`adapter "${adapter}" ready in ${seconds(t0)}`);
      expect(adapter).toBeTruthy();
      await expect.poll(() => page.locator('[data-feature="timestamp-query"]').count()).toBe(1);

      // The KV calculator's default: Llama-3-8B, f16, 8K context, one sequence = 128 KiB x 8192 = 1 GiB.
      expect(await page.locator('#kv-result').getAttribute('data-bytes')).toBe(String(2 ** 30));
      await page.locator('#kv-preset').selectOption('llama-2-7b');
      await expect.poll(() => page.locator('#kv-per-token').textContent()).toContain('512 KiB');

      t0 = performance.now();
      await page.getByRole('button', { name: 'Check kernels' }).click();
      await page.waitForSelector('#check-summary[data-state="done"]', { timeout: 120_000 });
      const rows = await page.$$eval('#check-table tbody tr', (trs) =>
        trs.map((tr) => `${tr.getAttribute('data-status')} | ${[...tr.children].map((c) => c.textContent?.trim()).join(' | ')}`));
      log(`check kernels in ${seconds(t0)}:\n  ${rows.join('\n  ')}`);
      expect(rows.length).toBeGreaterThanOrEqual(4);
      for (const r of rows) expect(r).toMatch(/^pass \|/);
      const summary = page.locator('#check-summary');
      expect(await summary.getAttribute('data-passed')).toBe(await summary.getAttribute('data-total'));
      await page.screenshot({ path: path.join(artifacts, 'demo-index.png'), fullPage: true });

      await page.evaluate(() => (globalThis as unknown as { webattnDemo: { loseDevice(): void } }).webattnDemo.loseDevice());
      await page.getByRole('alert').filter({ hasText: 'The GPU device was lost' }).waitFor({ timeout: 10_000 });
      expect(await page.getByRole('button', { name: 'Check again' }).isDisabled()).toBe(true);
      await page.screenshot({ path: path.join(artifacts, 'demo-device-lost.png') });

      // Bench page: a Quick run, stopped once the first attention rows (flash and naive) are in.
      const bench = await newPage(browser, errors);
      await bench.goto(`${baseUrl}bench.html`);
      expect(await gpuState(bench)).toBe('ready');
      t0 = performance.now();
      await bench.getByRole('button', { name: 'Quick run' }).click();
      await bench.waitForSelector('#bench-table tbody tr[data-kernel="naive"]', { timeout: 120_000 });
      log(`bench: first attention rows in ${seconds(t0)}`);
      await bench.getByRole('button', { name: 'Stop' }).click();
      await bench.waitForSelector('#bench-status:is([data-state="stopped"], [data-state="done"])', { timeout: 120_000 });
      log(`bench: ${await bench.locator('#bench-status').textContent()}`);
      const tableRows = await bench.locator('#bench-table tbody tr').count();
      expect(tableRows).toBeGreaterThanOrEqual(3); // copy, flash, naive
      // uPlot charts: the time chart has flash and naive points, the bandwidth chart the copy ceiling.
      expect(Number(await bench.locator('#chart-time').getAttribute('data-points'))).toBeGreaterThanOrEqual(2);
      expect(await bench.locator('#chart-time canvas').count()).toBeGreaterThanOrEqual(1);
      expect(await bench.locator('#chart-bandwidth').getAttribute('data-refs')).toBe('1');

      const [download] = await Promise.all([
        bench.waitForEvent('download'),
        bench.getByRole('button', { name: 'Download JSON' }).click(),
      ]);
      const report = JSON.parse(readFileSync((await download.path())!, 'utf8'));
      expect(report.rows.length).toBe(tableRows);
      expect(report.rows[0].phase).toBe('copy');
      expect(report.adapter).toBe(adapter);
      await bench.screenshot({ path: path.join(artifacts, 'demo-bench.png'), fullPage: true });

      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 240_000);

  it('without WebGPU: a clear message, never a blank page', async () => {
    const browser = await launch(['--disable-webgpu']);
    const errors: string[] = [];
    try {
      // No adapter: WebGPU disabled in the browser.
      const page = await newPage(browser, errors);
      await page.goto(`${baseUrl}kernels.html`);
      expect(await gpuState(page)).toBe('no-adapter');
      await expect.poll(() => page.getByRole('alert').textContent()).toContain('no GPU adapter');
      expect(await page.getByRole('button', { name: 'Check kernels' }).isDisabled()).toBe(true);
      expect(await page.locator('#kv-result').getAttribute('data-bytes')).toBe(String(2 ** 30)); // still works
      await page.screenshot({ path: path.join(artifacts, 'demo-no-adapter.png') });

      // No navigator.gpu at all (an older browser).
      const old = await newPage(browser, errors);
      await old.addInitScript(() => {
        delete (Navigator.prototype as { gpu?: unknown }).gpu;
      });
      for (const file of ['kernels.html', 'bench.html']) {
        await old.goto(`${baseUrl}${file}`);
        expect(await gpuState(old)).toBe('no-webgpu');
        const alert = old.getByRole('alert');
        await expect.poll(() => alert.textContent()).toContain('This browser has no WebGPU');
        expect(await alert.textContent()).toContain('enable-unsafe-webgpu');
      }
      await old.screenshot({ path: path.join(artifacts, 'demo-no-webgpu.png') });
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 90_000);
});
