/**
 * The peers of the demo bench page's "end to end vs peers" section (demo/e2ePanel.ts runs
 * e2eBench.ts there), served from node_modules like bench/e2e's server does, under ./e2e/ of the
 * demo: no CDN.
 *
 *   ./e2e/tjs/transformers.js   @huggingface/transformers/dist (its self-contained bundle)
 *   ./e2e/tjs-ort/              the onnxruntime-web that bundle was built with: the asyncify
 *                               .mjs / .wasm, the only build it loads (WebGPU and wasm alike)
 *   ./e2e/wllama/               @wllama/wllama/esm: index.js, wasm/wllama.wasm
 *
 * `npm run demo` serves the folders as they are; the static build copies just those files (about
 * 40 MB, fetched only when the section runs). The models are the demo's shipped ./models/ folders:
 * the section makes the ONNX and GGUF files in the page from them.
 */
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Plugin } from 'vite';
import { repoRoot, serveFolders } from '../chromium.ts';

const tjsDir = path.join(repoRoot, 'node_modules/@huggingface/transformers');
/** The prefixes of DEMO_URLS (runtimes.ts), as the dev server sees them (the demo's base is its root). */
const FOLDERS = {
  '/e2e/tjs/': path.join(tjsDir, 'dist'),
  '/e2e/tjs-ort/': path.join(tjsDir, 'node_modules/onnxruntime-web/dist'),
  '/e2e/wllama/': path.join(repoRoot, 'node_modules/@wllama/wllama/esm'),
};
/** What the page loads from each folder (the static build copies these). */
const FILES: Record<keyof typeof FOLDERS, string[]> = {
  '/e2e/tjs/': ['transformers.js'],
  '/e2e/tjs-ort/': ['ort-wasm-simd-threaded.asyncify.mjs', 'ort-wasm-simd-threaded.asyncify.wasm'],
  '/e2e/wllama/': ['index.js', 'wasm/wllama.wasm'],
};

export function e2ePeersForDemo(): Plugin {
  let outDir = '';
  const serve = serveFolders(FOLDERS);
  return {
    ...serve,
    name: 'webattn-e2e-peers',
    configResolved(config) {
      outDir = config.build.outDir;
    },
    writeBundle() {
      for (const [prefix, files] of Object.entries(FILES)) {
        const from = FOLDERS[prefix as keyof typeof FOLDERS];
        if (!existsSync(from)) continue; // the section reports the missing package when run
        for (const f of files) {
          const to = path.join(outDir, prefix, f);
          mkdirSync(path.dirname(to), { recursive: true });
          cpSync(path.join(from, f), to);
        }
      }
    },
  };
}
