/**
 * One config, three jobs:
 *
 *   npm run demo        vite                      dev server for the demo pages (root demo/)
 *   npm run build:demo  vite build --mode demo    static demo site in demo-dist/ (relative base)
 *   npm run preview     vite preview              serves demo-dist/ as a static host would
 *   npm run build       vite build --config vite.lib.config.ts, then the .d.ts files: the package
 *                                                 (webattn, webattn/kernels, webattn/worker, the CLI) in
 *                                                 dist/; a plain `vite build` gives the same (see below)
 *
 * The demo is served cross-origin isolated (COOP same-origin + COEP require-corp) in dev and preview:
 * threaded wasm (onnxruntime-web) needs SharedArrayBuffer, which only isolated pages get. A static host
 * must send the same two headers for that; the WebGPU pages work without them.
 *
 * Node-only code (src/gpu/node.ts, reached by a dynamic import behind a `process.versions.node` check,
 * which itself imports `webgpu` through a variable and `node:*` builtins) stays out of the browser's way:
 * `node:*` and `webgpu` are external in every build, so nothing Node-only is bundled or polyfilled.
 */
import { cpSync, createReadStream, existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin, type UserConfig } from 'vite';
import library from './vite.lib.config.ts';
import { e2ePeersForDemo } from './bench/e2e/demoPlugin.ts';

const repoRoot = fileURLToPath(new URL('.', import.meta.url));
const demoRoot = fileURLToPath(new URL('./demo/', import.meta.url));

/** Headers that make the page `crossOriginIsolated` (SharedArrayBuffer for threaded wasm). */
export const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/** Never bundled: Dawn's binding and Node builtins are reached only when running in Node. */
const external = (id: string) => id === 'webgpu' || id.startsWith('node:');

/** The demo's pages: chat is the front page (what `npm run demo` opens). */
const demoPages = {
  index: `${demoRoot}index.html`,
  compare: `${demoRoot}compare.html`,
  kernels: `${demoRoot}kernels.html`,
  bench: `${demoRoot}bench.html`,
};

/**
 * The shipped tiny models (models/<name>/, Hugging Face folders) at ./models/ of the demo: served
 * from the repo in dev, copied into the static site on build (only the files a model load reads).
 */
const modelsDir = `${repoRoot}models`;
const MODEL_FILE =
  /^(config|generation_config|tokenizer|tokenizer_config)\.json$|^model(-\d+-of-\d+)?\.safetensors(\.index\.json)?$/;
function shippedModels(): Plugin {
  let outDir = '';
  return {
    name: 'webattn-shipped-models',
    configResolved(config) {
      outDir = config.build.outDir;
    },
    configureServer(server) {
      server.middlewares.use('/models', (req, res, next) => {
        const rel = decodeURIComponent((req.url ?? '').split('?')[0]).replace(/^\/+/, '');
        const file = path.join(modelsDir, rel);
        if (
          !file.startsWith(modelsDir + path.sep) ||
          !MODEL_FILE.test(path.basename(file)) ||
          !existsSync(file) ||
          !statSync(file).isFile()
        )
          return next();
        res.setHeader('Content-Length', String(statSync(file).size));
        res.setHeader('Content-Type', file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
        res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
        createReadStream(file).pipe(res);
      });
    },
    writeBundle() {
      if (!existsSync(modelsDir)) return;
      cpSync(modelsDir, path.join(outDir, 'models'), {
        recursive: true,
        filter: (src) => statSync(src).isDirectory() || MODEL_FILE.test(path.basename(src)),
      });
    },
  };
}

/**
 * onnxruntime-web's WebGPU build for the bench page's ORT comparison (bench/peer/peerBench.ts), at
 * ./ort/ of the demo: ORT loads its .wasm from next to its .mjs. Served from node_modules in dev,
 * copied into the static build (the .wasm is 27 MB, fetched only when that benchmark runs).
 */
const ortDist = `${repoRoot}node_modules/onnxruntime-web/dist`;
const ORT_FILES = ['ort.webgpu.min.mjs', 'ort-wasm-simd-threaded.asyncify.mjs', 'ort-wasm-simd-threaded.asyncify.wasm'];
function ortForBench(): Plugin {
  let outDir = '';
  return {
    name: 'webattn-ort-for-bench',
    configResolved(config) {
      outDir = config.build.outDir;
    },
    configureServer(server) {
      server.middlewares.use('/ort', (req, res, next) => {
        const name = (req.url ?? '').split('?')[0].replace(/^\/+/, '');
        if (!ORT_FILES.includes(name)) return next();
        const file = path.join(ortDist, name);
        res.setHeader('Content-Type', name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript');
        res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
        createReadStream(file).pipe(res);
      });
    },
    writeBundle() {
      if (!existsSync(ortDist)) return;
      mkdirSync(path.join(outDir, 'ort'), { recursive: true });
      for (const f of ORT_FILES) cpSync(path.join(ortDist, f), path.join(outDir, 'ort', f));
    },
  };
}

const demo: UserConfig = {
  root: demoRoot,
  // Relative asset URLs: the built site works from any folder of any static host.
  base: './',
  publicDir: 'public',
  // Several pages, no SPA fallback: a missing file is a 404 (a model's optional files are probed).
  appType: 'mpa',
  plugins: [shippedModels(), ortForBench(), e2ePeersForDemo()],
  // The engine's worker imports modules: an ES-module worker, bundled like the pages.
  worker: { format: 'es', rolldownOptions: { external } },
  server: {
    headers: isolationHeaders,
    // The demo imports src/ and shaders/ from outside its root.
    fs: { allow: [repoRoot] },
  },
  preview: { headers: isolationHeaders },
  build: {
    outDir: `${repoRoot}demo-dist`,
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    rolldownOptions: { input: demoPages, external },
  },
};

// The package build lives in vite.lib.config.ts; a plain `vite build` runs it too.

export default defineConfig(({ command, mode, isPreview }) =>
  command === 'build' && mode !== 'demo' && !isPreview ? library : demo,
);
