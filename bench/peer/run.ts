/**
 * `npm run bench:peer [-- --quick] [--reps N] [--max-context N] [--modes ort-static,ort-tjs]
 *                     [--shapes phase:batch:len,...] [--subgroups] [--out base]`
 *
 * Serves bench/peer/ with Vite's dev server (TypeScript and `?raw` WGSL as in the demo) plus
 * onnxruntime-web's dist folder as is under /ort/, cross-origin isolated (COOP + COEP: ORT's threaded
 * wasm needs SharedArrayBuffer), opens the page in headless Chromium (Debian's, through
 * playwright-core; SwiftShader when the machine has no GPU) and runs the comparison there
 * (peerBench.ts). Writes <base>.json (`npm run bench`'s JSON shape plus vsOrt) and <base>.md (the
 * table; a `## Notes` section already in the file is kept). Default base for a full run:
 * bench/results/peer-<adapter>; a quick run writes nothing unless --out is given.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { adapterSlug, repoRoot, runInChromium } from '../chromium';
import { formatPeerTable, ORT_MODES, type OrtMode, type PeerReport } from './peerBench';
import type { PageOptions } from './main';

const peerDir = fileURLToPath(new URL('.', import.meta.url));
const ortDist = path.join(repoRoot, 'node_modules/onnxruntime-web/dist');

export interface ChromiumRunOptions extends PageOptions {
  log?: (msg: string) => void;
}

/** Starts the server and Chromium, runs the comparison in the page, and closes both. */
export async function runPeerInChromium(opts: ChromiumRunOptions = {}): Promise<PeerReport> {
  const log = opts.log ?? ((m: string) => console.log(m));
  if (!existsSync(ortDist)) throw new Error(`${ortDist} is missing: run npm ci`);
  const { log: _log, ...pageOpts } = opts;
  return runInChromium(
    {
      root: peerDir,
      // onnxruntime-web's dist files, byte for byte (ORT finds its .wasm next to itself)
      mounts: { '/ort/': ortDist },
      // Its own dependency cache: the demo's dev server pre-bundles a different set into node_modules/.vite.
      cacheDir: path.join(repoRoot, 'node_modules/.vite-peer'),
      include: ['onnx-proto'],
    },
    'the peer bench',
    { tag: 'peer', log, run: (page) => page.evaluate((o) => window.runPeer(o), pageOpts) },
  );
}

function resultBase(report: PeerReport): string {
  return path.join(repoRoot, 'bench/results', `peer-${adapterSlug(report.adapter)}`);
}

function writeResults(base: string, report: PeerReport): void {
  mkdirSync(path.dirname(base), { recursive: true });
  writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  const md = `${base}.md`;
  const old = existsSync(md) ? readFileSync(md, 'utf8') : '';
  const notes = old.includes('\n## Notes') ? old.slice(old.indexOf('\n## Notes')) : '';
  const day = report.date.slice(0, 10);
  const head = `# webattn vs onnxruntime-web GroupQueryAttention (\`npm run bench:peer\`, ${day})\n\n`;
  writeFileSync(md, `${head}${formatPeerTable(report)}\n${notes}`);
}

export async function main(argv: string[]): Promise<number> {
  const opts: ChromiumRunOptions = {};
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const int = () => {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) throw new Error(`${a} needs a positive integer`);
      return n;
    };
    if (a === '--quick') opts.quick = true;
    else if (a === '--subgroups') opts.subgroups = true;
    else if (a === '--reps') opts.reps = int();
    else if (a === '--max-context') opts.maxContext = int();
    else if (a === '--modes') {
      const modes = value().split(',') as OrtMode[];
      for (const m of modes)
        if (!ORT_MODES.includes(m)) throw new Error(`--modes: ${m} is not one of ${ORT_MODES.join(', ')}`);
      opts.modes = modes;
    } else if (a === '--out') out = value();
    else if (a === '--shapes') {
      // e.g. decode:1:4096,prefill:1:512 (phase:batch:len)
      opts.shapes = value()
        .split(',')
        .map((t) => {
          const [phase, batch, len] = t.split(':');
          if ((phase !== 'decode' && phase !== 'prefill') || !(Number(batch) >= 1) || !(Number(len) >= 1))
            throw new Error(`--shapes: ${t} is not phase:batch:len`);
          return { phase, batch: Number(batch), len: Number(len) };
        });
    } else
      throw new Error(
        `unknown option ${a} (--quick, --reps N, --max-context N, --modes a,b, ` +
          '--shapes decode:1:4096,prefill:1:512, --subgroups, --out base)',
      );
  }
  const t0 = performance.now();
  const report = await runPeerInChromium(opts);
  console.log(`\n${formatPeerTable(report)}\n\n(${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  const base = out ? path.resolve(out) : opts.quick ? undefined : resultBase(report);
  if (base) {
    writeResults(base, report);
    console.log(`wrote ${path.relative(process.cwd(), base)}.json and .md`);
  }
  return 0;
}
