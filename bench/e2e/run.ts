/**
 * `npm run bench:e2e [-- --quick] [--models a,b] [--runtimes webattn,transformers.js,wllama]
 *                    [--formats f32,q8] [--prompts 128,1024] [--contexts 128,1024,4096]
 *                    [--decode-tokens N] [--reps N] [--check-tokens N] [--warmup-tokens N]
 *                    [--ort-subgroups] [--tjs-device webgpu|wasm]
 *                    [--tjs-graph gqa,plain] [--out base] [--profile model:tokens]`
 *
 * Prepares the model folders (bench/e2e/models.ts: safetensors, onnx/model.onnx, GGUF), serves
 * bench/e2e/ with the shared bench server (bench/chromium.ts) plus, byte for byte:
 *   /models/    bench/e2e/models
 *   /tjs/       @huggingface/transformers/dist (the self-contained transformers.js bundle)
 *   /tjs-ort/   the onnxruntime-web dist that bundle was built with (its .wasm / .mjs)
 *   /wllama/    @wllama/wllama/esm (index.js and wasm/wllama.wasm)
 * and runs e2eBench.ts in headless Chromium. Nothing is fetched from the network. Writes
 * <base>.json and <base>.md (a `## Notes` section already in the .md is kept); default base for a
 * full run: bench/results/e2e-<adapter>; a quick run writes nothing unless --out is given.
 * --profile kjv-mha:240 instead times every kernel of one prefill of that many tokens in webattn and
 * transformers.js (profile.ts; the graph of --tjs-graph, default gqa) and writes
 * bench/results/e2e-<adapter>-profile.{json,md}.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { adapterSlug, repoRoot, runInChromium } from '../chromium';
import type { E2eReport } from './e2eBench';
import { formatE2eTables } from './format';
import type { PageOptions } from './main';
import { E2E_MODELS, type E2eModel, modelsDir, prepareModel } from './models';
import { formatProfiles } from './profile';
import { RUNTIMES, type RuntimeName, type WeightFormat } from './runtimes';

const e2eDir = fileURLToPath(new URL('.', import.meta.url));
const tjsDir = path.join(repoRoot, 'node_modules/@huggingface/transformers');

/** The quick run: the small models, short prompts, one rep (a smoke test, minutes on SwiftShader). */
const QUICK: PageOptions = {
  models: ['kjv-gqa'],
  prompts: [128],
  contexts: [128],
  decodeTokens: 8,
  reps: 1,
};
/**
 * The full run, sized for SwiftShader on two shared cores (~15 minutes): the kjv models in f32 and
 * q8 at 128 and the 1024-token prompt clipped to their context (256), decode at 128 (1K / 4K do not
 * fit); the SmolLM2-shaped model in f32 at 128 only (a 135M-parameter prefill takes minutes per
 * runtime on SwiftShader: `--models smollm2-135m-random --prompts 128,1024 --contexts 128,1024,4096`
 * runs the rest where time allows).
 */
const FULL: PageOptions[] = [
  {
    models: ['kjv-gqa', 'kjv-mha'],
    formats: ['f32', 'q8'],
    prompts: [128, 1024],
    contexts: [128, 1024, 4096],
    decodeTokens: 16,
    reps: 2,
  },
  {
    models: ['smollm2-135m-random'],
    formats: ['f32'],
    prompts: [128],
    contexts: [128],
    decodeTokens: 8,
    reps: 1,
    tjsGraphs: ['plain'],
  },
];

export async function runE2eInChromium(opts: PageOptions, log = (m: string) => console.log(m)): Promise<E2eReport> {
  return inE2ePage(opts.models, log, (page) => page.evaluate((o) => window.runE2e(o), opts));
}

/** The page for `models` (prepared first) in headless Chromium, running `run` there. */
async function inE2ePage<T>(models: string[], log: (m: string) => void, run: (page: Page) => Promise<T>): Promise<T> {
  for (const m of models) await prepareModel(m as E2eModel, log);
  const tjsOrt = path.join(tjsDir, 'node_modules/onnxruntime-web/dist');
  for (const dir of [tjsDir, tjsOrt, path.join(repoRoot, 'node_modules/@wllama/wllama/esm')])
    if (!existsSync(dir)) throw new Error(`${dir} is missing: run npm ci`);
  return runInChromium(
    {
      root: e2eDir,
      mounts: {
        '/models/': modelsDir,
        '/tjs/': path.join(tjsDir, 'dist'),
        '/tjs-ort/': tjsOrt,
        '/wllama/': path.join(repoRoot, 'node_modules/@wllama/wllama/esm'),
      },
      cacheDir: path.join(repoRoot, 'node_modules/.vite-e2e'),
      // onnx-proto (CommonJS, for the in-page export: peerFiles.ts) must be pre-bundled to load as a module.
      include: ['onnx-proto'],
    },
    'the e2e bench',
    { tag: 'e2e', log, run },
  );
}

function writeResults(base: string, report: E2eReport): void {
  mkdirSync(path.dirname(base), { recursive: true });
  writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  const md = `${base}.md`;
  const old = existsSync(md) ? readFileSync(md, 'utf8') : '';
  const notes = old.includes('\n## Notes') ? old.slice(old.indexOf('\n## Notes')) : '';
  const day = report.date.slice(0, 10);
  const head = `# webattn end to end vs transformers.js and wllama (\`npm run bench:e2e\`, ${day})\n\n`;
  writeFileSync(md, `${head}${formatE2eTables(report)}\n${notes}`);
}

const list = (v: string) => v.split(',').filter(Boolean);
const ints = (a: string, v: string) =>
  list(v).map((t) => {
    const n = Number(t);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${a}: ${t} is not a positive integer`);
    return n;
  });

export async function main(argv: string[]): Promise<number> {
  const over: Partial<PageOptions> = {};
  let out: string | undefined;
  let quick = false;
  let profile: { model: string; tokens: number } | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') quick = true;
    else if (a === '--models') {
      over.models = list(value());
      for (const m of over.models)
        if (!E2E_MODELS.includes(m as E2eModel))
          throw new Error(`--models: ${m} is not one of ${E2E_MODELS.join(', ')}`);
    } else if (a === '--runtimes') {
      over.runtimes = list(value()) as RuntimeName[];
      for (const r of over.runtimes)
        if (!RUNTIMES.includes(r)) throw new Error(`--runtimes: ${r} is not one of ${RUNTIMES.join(', ')}`);
    } else if (a === '--formats') {
      over.formats = list(value()) as WeightFormat[];
      for (const f of over.formats) if (f !== 'f32' && f !== 'q8') throw new Error(`--formats: ${f} is not f32 or q8`);
    } else if (a === '--prompts') over.prompts = ints(a, value());
    else if (a === '--contexts') over.contexts = ints(a, value());
    else if (a === '--decode-tokens') [over.decodeTokens] = ints(a, value());
    else if (a === '--reps') [over.reps] = ints(a, value());
    else if (a === '--check-tokens') [over.checkTokens] = ints(a, value());
    else if (a === '--warmup-tokens') [over.warmupTokens] = ints(a, value());
    else if (a === '--ort-subgroups') over.ortSubgroups = true;
    else if (a === '--tjs-graph') {
      const graphs = list(value());
      for (const g of graphs)
        if (g !== 'gqa' && g !== 'plain') throw new Error(`--tjs-graph: ${g} is not gqa or plain`);
      over.tjsGraphs = graphs as ('gqa' | 'plain')[];
    } else if (a === '--tjs-device') {
      const d = value();
      if (d !== 'webgpu' && d !== 'wasm') throw new Error(`--tjs-device: ${d} is not webgpu or wasm`);
      over.tjsDevice = d;
    } else if (a === '--out') out = value();
    else if (a === '--profile') {
      const [model, tokens] = value().split(':');
      if (!E2E_MODELS.includes(model as E2eModel) || !(Number(tokens) > 0))
        throw new Error(`--profile: want model:tokens (a model of ${E2E_MODELS.join(', ')}), got ${model}:${tokens}`);
      profile = { model, tokens: Number(tokens) };
    } else
      throw new Error(
        `unknown option ${a} (--quick, --models a,b, --runtimes a,b, --formats f32,q8, --prompts 128,1024, ` +
          '--contexts 128,1024,4096, --decode-tokens N, --reps N, --check-tokens N, --warmup-tokens N, ' +
          '--ort-subgroups, --tjs-device webgpu|wasm, ' +
          '--tjs-graph gqa,plain, --out base, --profile model:tokens)',
      );
  }
  if (profile) {
    const p = profile;
    const graph = over.tjsGraphs?.[0] ?? 'gqa';
    const runtimes = (over.runtimes ?? ['webattn', 'transformers.js']).filter((r) => r !== 'wllama');
    const { adapter, profiles } = await inE2ePage(
      [p.model],
      (m) => console.log(m),
      (page) => page.evaluate((o) => window.profileE2e(o), { ...p, tjsGraph: graph, runtimes, reps: over.reps ?? 3 }),
    );
    const md = formatProfiles(adapter, profiles);
    console.log(`\n${md}`);
    const base = out ? path.resolve(out) : path.join(repoRoot, 'bench/results', `e2e-${adapterSlug(adapter)}-profile`);
    mkdirSync(path.dirname(base), { recursive: true });
    writeFileSync(
      `${base}.json`,
      `${JSON.stringify({ adapter, date: new Date().toISOString(), profiles }, null, 2)}\n`,
    );
    const old = existsSync(`${base}.md`) ? readFileSync(`${base}.md`, 'utf8') : '';
    const notes = old.includes('\n## Notes') ? old.slice(old.indexOf('\n## Notes')) : '';
    writeFileSync(
      `${base}.md`,
      `# webattn prefill kernel profile (\`npm run bench:e2e -- --profile\`)\n\n${md}\n${notes}`,
    );
    console.log(`wrote ${path.relative(process.cwd(), base)}.json and .md`);
    return 0;
  }
  const plans = (quick ? [QUICK] : FULL).map((p) => ({ ...p, ...over }));
  const t0 = performance.now();
  let report: E2eReport | null = null;
  for (const plan of over.models ? plans.slice(0, 1) : plans) {
    const r = await runE2eInChromium(plan);
    if (!report) report = r;
    else {
      report.runtimes.push(...r.runtimes);
      report.rows.push(...r.rows);
      report.skipped.push(...r.skipped);
      report.plans.push(...r.plans);
    }
  }
  if (!report) return 1;
  console.log(`\n${formatE2eTables(report)}\n(${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  const base = out
    ? path.resolve(out)
    : quick
      ? undefined
      : path.join(repoRoot, 'bench/results', `e2e-${adapterSlug(report.adapter)}`);
  if (base) {
    writeResults(base, report);
    console.log(`wrote ${path.relative(process.cwd(), base)}.json and .md`);
  }
  return 0;
}
