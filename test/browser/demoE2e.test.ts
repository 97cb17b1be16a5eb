/**
 * The demo bench page's "end to end vs peers" section in Chromium (SwiftShader), on the static build
 * (`vite build --mode demo`, the bench page only, into a temp dir, served by `vite preview`): the
 * tiny size runs webattn, transformers.js (both ONNX graphs) and wllama on kjv-gqa with the ONNX and
 * GGUF files made in the page, every peer package served from the build (no request fails, none
 * leaves the origin). Each runtime names its backend; webattn is the reference; the plain-op graph
 * and wllama agree with it and get a TTFT and a decode row whose vsPeer is peer ms / webattn ms.
 * (The GroupQueryAttention graph may disagree on kjv-gqa, see bench/results/e2e-swiftshader.md: then
 * it must have no rows.) The report downloads with the page's JSON.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, COMMON_FLAGS, WEBGPU_FLAGS } from '../../bench/chromium';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
let outDir: string;
let server: PreviewServer;
let baseUrl: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: the browser tests need Debian's chromium`);
  outDir = mkdtempSync(path.join(tmpdir(), 'webattn-demo-e2e-'));
  const configFile = path.join(repoRoot, 'vite.config.ts');
  await build({
    configFile,
    mode: 'demo',
    logLevel: 'warn',
    build: {
      outDir,
      emptyOutDir: true,
      sourcemap: false,
      rolldownOptions: { input: { bench: path.join(repoRoot, 'demo/bench.html') } },
    },
  });
  server = await preview({
    configFile,
    mode: 'demo',
    logLevel: 'warn',
    build: { outDir },
    preview: { host: '127.0.0.1', port: 0, open: false },
  });
  baseUrl = `http://127.0.0.1:${(server.httpServer.address() as AddressInfo).port}/`;
}, 180_000);

afterAll(async () => {
  await server?.close();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

describe('demo bench page: end to end vs peers', () => {
  it('the tiny size runs every runtime, checks before timing, names backends, rows carry vsPeer', async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [...COMMON_FLAGS, ...WEBGPU_FLAGS],
      timeout: 60_000,
    });
    const errors: string[] = [];
    const foreign: string[] = [];
    try {
      const page = await browser.newPage({ acceptDownloads: true });
      page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
      // transformers.js probes for a chat template file the folder need not have: that 404 is expected.
      const probed = (url: string) => url.endsWith('/models/kjv-gqa/chat_template.jinja');
      page.on('console', (m) => {
        if (m.type() === 'error' && !probed(m.location().url)) errors.push(`console: ${m.text()}`);
      });
      page.on('request', (r) => {
        if (!r.url().startsWith(baseUrl) && !/^(data|blob):/.test(r.url())) foreign.push(r.url());
      });
      page.on('response', (r) => {
        if (r.status() >= 400 && !(r.status() === 404 && probed(r.url()))) errors.push(`HTTP ${r.status()} ${r.url()}`);
      });
      await page.goto(`${baseUrl}bench.html`);
      await page.waitForFunction(() => document.body.dataset.gpu !== 'pending', undefined, { timeout: 30_000 });
      expect(await page.evaluate(() => document.body.dataset.gpu)).toBe('ready');
      expect(await page.locator('#e2e-title').textContent()).toBe('End to end vs peers');
      await page.locator('#e2e-size').selectOption('tiny');
      const t0 = performance.now();
      await page.locator('#e2e-run').click();
      await page.waitForSelector('#e2e-status:is([data-state="done"], [data-state="failed"])', { timeout: 240_000 });
      const status = (await page.locator('#e2e-status').textContent()) ?? '';
      console.log(`[demo-e2e] ${status} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      const runtimes = await page.$$eval('#e2e-runtimes tbody tr', (trs) =>
        trs.map((tr) => [...tr.children].map((c) => c.textContent ?? '')),
      );
      const table = runtimes.map((r) => r.join(' | ')).join('\n');
      console.log(table);
      expect(await page.locator('#e2e-status').getAttribute('data-state'), `${status}\n${table}`).toBe('done');
      expect(runtimes.map((r) => r[0])).toEqual(['webattn', 'transformers.js', 'transformers.js', 'wllama']);
      const [webattn, tjsGqa, tjsPlain, wllama] = runtimes;
      expect(webattn[1]).toBe('webgpu');
      expect(webattn[4]).toBe('reference');
      expect(tjsGqa[1]).toMatch(/^webgpu \(GroupQueryAttention\)/);
      expect(tjsPlain[1]).toMatch(/^webgpu \(MatMul\/Softmax attention\)/);
      expect(tjsPlain[4]).toMatch(/^agrees/);
      expect(tjsGqa[4]).toMatch(/^(agrees|disagrees)/);
      expect(wllama[1]).toMatch(/^(webgpu|wasm \(CPU, \d+ threads?\))$/);
      expect(wllama[4]).toMatch(/^agrees/);

      const rows = await page.$$eval('#e2e-table tbody tr', (trs) =>
        trs.map((tr) => ({
          peer: tr.getAttribute('data-peer'),
          metric: tr.getAttribute('data-metric'),
          cells: [...tr.children].map((c) => c.textContent ?? ''),
        })),
      );
      const timedPeers = ['transformers.js', 'wllama'].flatMap((p) =>
        p === 'transformers.js' && tjsGqa[4].startsWith('disagrees') ? [p] : p === 'transformers.js' ? [p, p] : [p],
      );
      expect(rows.length).toBe(timedPeers.length * 2); // TTFT and decode at 16 tokens each
      expect(rows.filter((r) => r.metric === 'ttft').length).toBe(timedPeers.length);

      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: 'Download JSON' }).click(),
      ]);
      const json = JSON.parse(readFileSync((await download.path())!, 'utf8'));
      expect(json.e2e.plans[0].exportInPage).toBe(true);
      expect(json.e2e.rows.length).toBe(rows.length);
      json.e2e.rows.forEach(
        (r: { peer: string; backend: string; webattnMs: number; peerMs: number; vsPeer: number }, i: number) => {
          expect(r.webattnMs).toBeGreaterThan(0);
          expect(r.peerMs).toBeGreaterThan(0);
          expect(r.vsPeer).toBeCloseTo(r.peerMs / r.webattnMs, 9);
          const [, peer, backend, , , vs] = rows[i].cells;
          expect([peer, backend, vs]).toEqual([r.peer, r.backend, `${r.vsPeer.toFixed(2)}×`]);
          expect(backend.length).toBeGreaterThan(0);
        },
      );
    } finally {
      await browser.close();
    }
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
  }, 300_000);
});
