/**
 * What the in-browser benchmarks (bench/peer, bench/e2e) share: one copy of the Chromium flags, a
 * Vite dev server for a bench folder (TypeScript and `?raw` WGSL as in the demo, cross-origin
 * isolated: threaded wasm needs SharedArrayBuffer) with package folders served byte for byte under
 * URL prefixes, and headless Chromium (Debian's, through playwright-core; SwiftShader's WebGPU
 * adapter when the machine has no GPU) opening the page and calling one of its functions.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { createServer, type Plugin, type ViteDevServer } from 'vite';

export const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
export const CHROMIUM = process.env.WEBATTN_CHROMIUM ?? '/usr/bin/chromium';

export const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** Flags every headless Chromium here runs with (benches and browser tests). */
export const COMMON_FLAGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
];
/** WebGPU in headless Chromium: Dawn on SwiftShader (Vulkan) when there is no GPU. */
export const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader'];

export const CHROMIUM_FLAGS = [
  ...COMMON_FLAGS,
  ...WEBGPU_FLAGS,
  // performance.memory with real (not bucketed) numbers, for the JS heap column.
  '--enable-precise-memory-info',
];

const TYPES: Record<string, string> = {
  '.mjs': 'text/javascript',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.json': 'application/json',
};

/**
 * `prefix/<path>` → `<dir>/<path>` for each mount, ahead of Vite's own middleware (no transform,
 * no pre-bundling: a library's dist files find their .wasm next to themselves as published).
 */
export function serveFolders(mounts: Readonly<Record<string, string>>): Plugin {
  return {
    name: 'webattn-bench-static',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const url = decodeURIComponent((req.url ?? '').split('?')[0]);
        const prefix = Object.keys(mounts).find((p) => url.startsWith(p));
        if (!prefix) return next();
        const dir = mounts[prefix];
        const file = path.join(dir, path.normalize(url.slice(prefix.length)));
        if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile()) {
          res.statusCode = 404;
          res.end(`no ${url.slice(prefix.length)} in ${path.relative(repoRoot, dir)}`);
          return;
        }
        res.setHeader('Content-Type', TYPES[path.extname(file)] ?? 'application/octet-stream');
        res.setHeader('Content-Length', String(statSync(file).size));
        for (const [k, v] of Object.entries(ISOLATION)) res.setHeader(k, v);
        createReadStream(file).pipe(res);
      });
    },
  };
}

export interface BenchServerOptions {
  /** The folder holding the page (index.html). */
  root: string;
  /** URL prefix (leading and trailing '/') → folder served as is. */
  mounts: Readonly<Record<string, string>>;
  /** Vite's dependency cache for this page (each page pre-bundles its own set). */
  cacheDir: string;
  /** Packages the page imports through Vite, pre-bundled at start-up (never discovered mid-run: that reloads). */
  include?: string[];
}

export async function startBenchServer(opts: BenchServerOptions): Promise<{ server: ViteDevServer; url: string }> {
  const server = await createServer({
    configFile: false,
    envDir: false,
    root: opts.root,
    logLevel: 'warn',
    clearScreen: false,
    cacheDir: opts.cacheDir,
    plugins: [serveFolders(opts.mounts)],
    optimizeDeps: { include: opts.include ?? [], noDiscovery: true },
    server: { host: '127.0.0.1', port: 0, headers: ISOLATION, fs: { allow: [repoRoot] }, hmr: false, watch: null },
  });
  await server.listen();
  const { port } = server.httpServer!.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/index.html` };
}

export async function launchChromium(what: string): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: ${what} needs Chromium (apt-get install chromium, or set WEBATTN_CHROMIUM)`,
    );
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, timeout: 60_000 });
}

export interface PageRun<T> {
  /** Console lines starting with `[tag] ` are progress, passed to log without the tag. */
  tag: string;
  log: (msg: string) => void;
  /** Runs in the page once `document.body.dataset.ready === '1'`. */
  run: (page: Page) => Promise<T>;
}

/**
 * Starts the server and Chromium, opens the page, checks it is cross-origin isolated, runs `run`
 * and closes both. A failure carries the page's console errors.
 */
export async function runInChromium<T>(server: BenchServerOptions, what: string, pageRun: PageRun<T>): Promise<T> {
  const { server: vite, url } = await startBenchServer(server);
  try {
    const browser = await launchChromium(what);
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      const prefix = `[${pageRun.tag}] `;
      page.on('console', (m) => {
        const text = m.text();
        if (text.startsWith(prefix)) pageRun.log(text.slice(prefix.length));
        else if (m.type() === 'error') errors.push(`${text} ${m.location().url}`);
      });
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(url);
      await page.waitForFunction(() => document.body.dataset.ready === '1', undefined, { timeout: 120_000 });
      if (!(await page.evaluate(() => crossOriginIsolated)))
        throw new Error(`the ${what} page is not cross-origin isolated`);
      try {
        return await pageRun.run(page);
      } catch (e) {
        throw new Error(`${(e as Error).message}${errors.length ? `\npage errors:\n${errors.join('\n')}` : ''}`);
      }
    } finally {
      await browser.close();
    }
  } finally {
    await vite.close();
  }
}

/** 'SwiftShader Device (Subzero) ...' → 'swiftshader'; other adapters → a short slug of their description. */
export function adapterSlug(adapter: string): string {
  const a = adapter.toLowerCase();
  if (a.includes('swiftshader')) return 'swiftshader';
  return a
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 40);
}
