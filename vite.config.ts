/**
 * One config, three jobs:
 *
 *   npm run demo        vite                      dev server for the demo pages (root demo/)
 *   npm run build:demo  vite build --mode demo    static demo site in demo-dist/ (relative base)
 *   npm run preview     vite preview              serves demo-dist/ as a static host would
 *   npm run build       vite build && tsc -p tsconfig.build.json
 *                                                 library: src/index.ts -> dist/webattn.js (ES module,
 *                                                 WGSL `?raw` imports inlined) + dist/types/*.d.ts
 *
 * The demo is served cross-origin isolated (COOP same-origin + COEP require-corp) in dev and preview:
 * threaded wasm (onnxruntime-web) needs SharedArrayBuffer, which only isolated pages get. A static host
 * must send the same two headers for that; the WebGPU pages work without them.
 *
 * Node-only code (src/gpu/node.ts, reached by a dynamic import behind a `process.versions.node` check,
 * which itself imports `webgpu` through a variable and `node:*` builtins) stays out of the browser's way:
 * `node:*` and `webgpu` are external in every build, so nothing Node-only is bundled or polyfilled.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig, type UserConfig } from 'vite';

const repoRoot = fileURLToPath(new URL('.', import.meta.url));
const demoRoot = fileURLToPath(new URL('./demo/', import.meta.url));

/** Headers that make the page `crossOriginIsolated` (SharedArrayBuffer for threaded wasm). */
export const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/** Never bundled: Dawn's binding and Node builtins are reached only when running in Node. */
const external = (id: string) => id === 'webgpu' || id.startsWith('node:');

/** The demo's pages; a new page (the chat page, later) is one more entry here. */
const demoPages = {
  index: `${demoRoot}index.html`,
  bench: `${demoRoot}bench.html`,
};

const demo: UserConfig = {
  root: demoRoot,
  // Relative asset URLs: the built site works from any folder of any static host.
  base: './',
  publicDir: 'public',
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

const library: UserConfig = {
  publicDir: false,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    minify: false,
    lib: {
      entry: `${repoRoot}src/index.ts`,
      formats: ['es'],
      fileName: () => 'webattn.js',
    },
    rolldownOptions: {
      external,
      // One file: src/gpu/node.ts (a few lines, run only in Node) is inlined rather than split into
      // chunks, so dist/webattn.js can be copied or served on its own.
      output: { codeSplitting: false },
    },
  },
};

export default defineConfig(({ command, mode, isPreview }) =>
  command === 'build' && mode !== 'demo' && !isPreview ? library : demo,
);
