/**
 * The package build (`npm run build` = `vite build --config vite.lib.config.ts` + the .d.ts files):
 *
 *   dist/webattn.js   `webattn`          the runtime (src/index.ts)
 *   dist/kernels.js   `webattn/kernels`  the kernels alone, on the caller's GPUDevice (src/kernels/index.ts)
 *   dist/worker.js    `webattn/worker`   the engine's Web Worker script (src/engine/worker.ts), for apps
 *                                        that bundle and start the worker themselves
 *   dist/assets/      the same worker as one self-contained file, which createWorkerEngine() starts
 *   dist/cli.js       the `webattn` command (src/cli/main.ts), which bin/webattn.js loads when it exists
 *   dist/chunks/      code the entries share (one copy of GpuContext, the kernels, ...)
 *   dist/types/       .d.ts files (tsc -p tsconfig.build.json)
 *
 * WGSL is imported with `?raw` and so ends up as strings inside the chunks: nothing is fetched at
 * import time. The package's dependencies (@huggingface/*), `webgpu` (Dawn, Node only, an optional
 * peer) and `node:*` builtins stay imports: a bundler or an import map resolves them once for the
 * whole app. Node-only code is reached by dynamic import only (src/gpu/node.ts, the disk cache), so
 * a browser never loads it. Not minified: apps minify their own bundle.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const repoRoot = fileURLToPath(new URL('.', import.meta.url));
const pkg = JSON.parse(readFileSync(`${repoRoot}package.json`, 'utf8')) as {
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
};

/** Bare imports of these packages (and their subpaths) are left to the app's resolver. */
const externalPackages = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})];
const external = (id: string) =>
  id.startsWith('node:') || externalPackages.some((p) => id === p || id.startsWith(`${p}/`));

const entries: Record<string, string> = {
  webattn: `${repoRoot}src/index.ts`,
  kernels: `${repoRoot}src/kernels/index.ts`,
  cli: `${repoRoot}src/cli/main.ts`,
};
const worker = `${repoRoot}src/engine/worker.ts`;
if (existsSync(worker)) entries.worker = worker;

export default defineConfig({
  publicDir: false,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    minify: false,
    lib: { entry: entries, formats: ['es'], fileName: (_format, name) => `${name}.js` },
    rolldownOptions: {
      external,
      output: { chunkFileNames: 'chunks/[name]-[hash].js' },
    },
  },
  // The worker createWorkerEngine() starts by itself (new Worker(new URL(...), { type: 'module' }))
  // becomes dist/assets/worker-*.js: one ES module with its dependencies inside, because a worker
  // does not see the page's import map; only Node-only imports stay out. The relative base makes
  // its URL relative to dist/webattn.js, wherever the package is served from.
  base: './',
  worker: { format: 'es', rolldownOptions: { external: (id: string) => id === 'webgpu' || id.startsWith('node:') } },
});
