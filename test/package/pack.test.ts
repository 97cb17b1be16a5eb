/**
 * The package as a user gets it: `npm run build`, `npm pack`, the tarball installed into a fresh
 * temporary folder (with `webgpu`, nothing from this repo), then
 *   1. Node: the kernel-only example on our own Dawn device and attention() against the float64
 *      reference; examples/node-generate.mjs on a tiny random checkpoint gives the reference's
 *      greedy text; the installed CLI runs without Vite; without `webgpu`, importing works and
 *      createContext() says in one line to install it;
 *   2. Chromium: a bare HTML page (an import map onto the installed dist files and the
 *      dependencies' ES modules, no bundler) runs the same checks and examples/browser-chat.js
 *      (the engine in the Web Worker that createWorkerEngine starts from dist/assets/);
 *   3. tsc: a consumer file type-checks against the published .d.ts (bundler and nodenext
 *      resolution), and a wrong argument type is an error (the types are not `any`).
 * The gzipped size of every entry (the entry and the chunks it imports) is printed.
 */
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, COMMON_FLAGS, WEBGPU_FLAGS } from '../../bench/chromium';
import { parseConfig } from '../../src/model/config';
import { referenceForward } from '../../src/reference/transformer';
import { f16ArrayToF32, f32ArrayToF16 } from '../../src/sources/halfFloat';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { configs, lookup, randomWeights, writeCheckpoint } from '../helpers/tinyModels';
import { ID, tokenizerConfig, tokenizerJson } from '../helpers/tinyTokenizer';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const here = fileURLToPath(new URL('.', import.meta.url));
const ICD = ['/usr/share/vulkan/icd.d/lvp_icd.json', '/usr/lib/chromium/vk_swiftshader_icd.json'].find((f) =>
  existsSync(f),
);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
/** Runs a command; a kill (timeout, crash) is code -1 with the signal at the end of stderr. */
function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
  timeout = 240_000,
): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd, env: { ...process.env, ...env }, timeout, maxBuffer: 32 << 20 },
      (err, stdout, stderr) => {
        const signal = err && typeof err.code !== 'number' ? `\n(killed: ${err.signal ?? err.message})` : '';
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr: stderr + signal });
      },
    );
  });
}
async function ok(cmd: string, args: string[], cwd: string, env?: Record<string, string>): Promise<string> {
  const r = await run(cmd, args, cwd, env);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}
const log = (m: string) => console.log(`[package] ${m}`);
const seconds = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

// The tiny model: llama-shaped, random weights stored in F16 (so f16 weights on the GPU are exact),
// vocabulary of the tiny BPE tokenizer, EOS <|im_end|>.
const tokenizer = loadTokenizer(tokenizerJson, tokenizerConfig);
const config = { ...configs.llama, vocab_size: tokenizer.vocabSize, eos_token_id: ID['<|im_end|>'] };
const spec = parseConfig(config);
const weights = randomWeights(spec);
const rounded = new Map([...weights].map(([n, w]) => [n, f16ArrayToF32(f32ArrayToF16(w))]));

/** The reference's greedy continuation as text (stops at EOS, like generate). */
function referenceGreedyText(prompt: number[], n: number): string {
  const ids = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const logits = referenceForward(spec, lookup(rounded), ids);
    const row = logits.subarray((ids.length - 1) * spec.vocabSize, ids.length * spec.vocabSize);
    let next = 0;
    for (let j = 1; j < row.length; j++) if (row[j] > row[next]) next = j;
    if (tokenizer.eosTokenIds.includes(next)) break;
    out.push(next);
    ids.push(next);
  }
  return tokenizer.decode(out, { skipSpecialTokens: true });
}

let tmp: string;
let app: string;
let tarball: string;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'webattn-pack-'));
  app = path.join(tmp, 'app');
  let t0 = performance.now();
  await ok('npm', ['run', 'build'], repoRoot);
  log(`npm run build: ${seconds(t0)}`);
  t0 = performance.now();
  const packed = JSON.parse(await ok('npm', ['pack', '--json', '--pack-destination', tmp], repoRoot)) as {
    filename: string;
    files: { path: string }[];
  }[];
  tarball = path.join(tmp, packed[0].filename);
  const files = packed[0].files.map((f) => f.path);
  log(`npm pack: ${files.length} files, ${(readFileSync(tarball).length / 1024).toFixed(0)} KiB in ${seconds(t0)}`);
  expect(files).toEqual(
    expect.arrayContaining([
      'dist/webattn.js',
      'dist/kernels.js',
      'dist/worker.js',
      'dist/cli.js',
      'dist/types/index.d.ts',
      'dist/types/kernels/index.d.ts',
      'bin/webattn.js',
    ]),
  );
  expect(files.filter((f) => f.startsWith('src/') || f.startsWith('shaders/') || f.startsWith('test/'))).toEqual([]);

  t0 = performance.now();
  mkdirSync(app);
  writeFileSync(
    path.join(app, 'package.json'),
    JSON.stringify({ name: 'webattn-consumer', private: true, type: 'module' }),
  );
  const webgpuVersion = (
    JSON.parse(readFileSync(path.join(repoRoot, 'node_modules/webgpu/package.json'), 'utf8')) as { version: string }
  ).version;
  await ok('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, `webgpu@${webgpuVersion}`], app);
  log(`npm install (tarball + webgpu@${webgpuVersion}): ${seconds(t0)}`);

  cpSync(path.join(repoRoot, 'examples'), path.join(app, 'examples'), { recursive: true });
  for (const f of ['checks.mjs', 'check-node.mjs', 'browser-check.mjs']) cpSync(path.join(here, f), path.join(app, f));
  const model = writeCheckpoint(config, weights, 'F16');
  cpSync(model, path.join(app, 'model'), { recursive: true });
  rmSync(model, { recursive: true, force: true });
  writeFileSync(path.join(app, 'model/tokenizer.json'), JSON.stringify(tokenizerJson));
  writeFileSync(path.join(app, 'model/tokenizer_config.json'), JSON.stringify(tokenizerConfig));
}, 180_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Bytes of an entry as a browser loads it: the file and every chunk it imports statically, gzipped one by one. */
function entrySize(file: string, seen = new Set<string>()): { raw: number; gzip: number } {
  if (seen.has(file)) return { raw: 0, gzip: 0 };
  seen.add(file);
  const code = readFileSync(file);
  const total = { raw: code.length, gzip: gzipSync(code, { level: 9 }).length };
  for (const m of code.toString('utf8').matchAll(/^import\s[^'"]*['"](\.{1,2}\/[^'"]+)['"]/gm)) {
    const s = entrySize(path.resolve(path.dirname(file), m[1]), seen);
    total.raw += s.raw;
    total.gzip += s.gzip;
  }
  return total;
}

describe('the packed package', () => {
  it('reports the size of each entry', () => {
    const dist = path.join(app, 'node_modules/webattn/dist');
    for (const entry of ['webattn.js', 'kernels.js', 'worker.js', 'cli.js']) {
      if (!existsSync(path.join(dist, entry))) continue;
      const s = entrySize(path.join(dist, entry));
      log(
        `${entry}: ${(s.raw / 1024).toFixed(1)} KiB, ${(s.gzip / 1024).toFixed(1)} KiB gzipped ` +
          '(with its chunks; dependencies not counted)',
      );
      expect(s.gzip).toBeGreaterThan(0);
    }
    // The worker createWorkerEngine() starts: one file, dependencies inside.
    for (const f of readdirSync(path.join(dist, 'assets')).filter((n) => /^worker-.*\.js$/.test(n))) {
      const code = readFileSync(path.join(dist, 'assets', f));
      const gzipped = gzipSync(code, { level: 9 }).length;
      log(
        `assets/${f}: ${(code.length / 1024).toFixed(1)} KiB, ` +
          `${(gzipped / 1024).toFixed(1)} KiB gzipped (self-contained)`,
      );
    }
  });

  const nodeTitle =
    'Node: kernels on our own device and attention() match the reference; ' +
    'the example generates the reference text; the CLI needs no Vite';
  it(nodeTitle, async () => {
    expect(ICD, 'no software Vulkan driver: run .ci/run').toBeTruthy();
    let t0 = performance.now();
    const check = await ok('node', ['check-node.mjs'], app, { VK_ICD_FILENAMES: ICD! });
    const r = JSON.parse(check.trim().split('\n').at(-1)!) as {
      adapter: string;
      kernels: number;
      attention: { prefill: number; decode: number };
    };
    log(
      `node on ${r.adapter}: kernels-only relL2 ${r.kernels.toExponential(2)}, ` +
        `attention prefill ${r.attention.prefill.toExponential(2)}, decode ${r.attention.decode.toExponential(2)} ` +
        `(${seconds(t0)})`,
    );
    expect(r.kernels).toBeLessThan(1e-4); // f32 pages
    expect(r.attention.prefill).toBeLessThan(5e-3); // f16 KV
    expect(r.attention.decode).toBeLessThan(5e-3);

    t0 = performance.now();
    const prompt = 'Hello world';
    const gen = await run('node', ['examples/node-generate.mjs', './model', prompt, '8'], app, {
      WEBATTN_VK_ICD: ICD!,
    });
    expect(gen.code, gen.stderr).toBe(0);
    log(`node-generate.mjs: ${JSON.stringify(gen.stdout)}; ${gen.stderr.trim()} (${seconds(t0)})`);
    expect(gen.stdout).toBe(referenceGreedyText(tokenizer.encode(prompt), 8));

    const cli = await run('node', ['node_modules/.bin/webattn', 'info', '--model', './model'], app);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/llama, 2 layers/);
    expect(existsSync(path.join(app, 'node_modules/vite'))).toBe(false);

    // Without webgpu: the import touches nothing; createContext() says what to install, in one line.
    const dawn = path.join(app, 'node_modules/webgpu');
    renameSync(dawn, `${dawn}.off`);
    try {
      const script = `const before = Object.keys(globalThis).length;
        const m = await import('webattn'); await import('webattn/kernels');
        if (Object.keys(globalThis).length !== before) throw new Error('import changed globalThis');
        try { await m.createContext(); } catch (e) { console.log(e.name + ': ' + e.message); }`;
      const missing = await run('node', ['--input-type=module', '-e', script], app);
      expect(missing.stderr).toBe('');
      expect(missing.stdout.trim()).toBe(
        'NoWebGpuError: webattn in Node needs the `webgpu` package (Dawn): npm install webgpu',
      );
    } finally {
      renameSync(`${dawn}.off`, dawn);
    }
  });

  it('Chromium: a bare page with an import map runs attention, the kernels and the chat example', async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: run .ci/run`).toBe(true);
    // Import map from the installed packages' own metadata (the exports map for webattn).
    const nm = (p: string) => path.join(app, 'node_modules', p);
    const pkg = (name: string) =>
      JSON.parse(readFileSync(nm(`${name}/package.json`), 'utf8')) as { exports: Record<string, unknown> };
    const exportFile = (name: string, sub = '.') => {
      let e = pkg(name).exports[sub] as unknown;
      while (e && typeof e === 'object')
        e =
          (e as Record<string, unknown>).browser ??
          (e as Record<string, unknown>).import ??
          (e as Record<string, unknown>).default;
      return `/node_modules/${name}/${String(e).replace(/^\.\//, '')}`;
    };
    const imports = {
      webattn: exportFile('webattn'),
      'webattn/kernels': exportFile('webattn', './kernels'),
      '@huggingface/jinja': exportFile('@huggingface/jinja'),
      '@huggingface/tokenizers': exportFile('@huggingface/tokenizers'),
    };
    writeFileSync(
      path.join(app, 'index.html'),
      `<!doctype html><meta charset="utf-8"><title>webattn package</title>
<script type="importmap">${JSON.stringify({ imports })}</script>
<script type="module" src="./browser-check.mjs"></script>\n`,
    );
    const server = await serve(app);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [...COMMON_FLAGS, ...WEBGPU_FLAGS],
      timeout: 60_000,
    });
    try {
      const errors: string[] = [];
      const page = await browser.newPage();
      page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
      page.on('response', (r) => {
        // Optional files a model folder may lack (the loader asks, a 404 says no): generation_config.json
        // and the chat template files transformers >= 4.5x writes (chat_template.jinja / .json).
        const optional = ['generation_config.json', 'chat_template.jinja', 'chat_template.json'];
        if (r.status() >= 400 && !optional.some((f) => r.url().endsWith(`/model/${f}`)))
          errors.push(`HTTP ${r.status()} ${r.url()}`);
      });
      const question = 'Hello';
      const t0 = performance.now();
      const { port } = server.address() as AddressInfo;
      await page.goto(
        `http://127.0.0.1:${port}/index.html?model=./model/&question=${encodeURIComponent(question)}&max=8`,
      );
      await page.waitForFunction(() => '__result' in window || '__error' in window, undefined, { timeout: 240_000 });
      const error = await page.evaluate(() => (window as { __error?: string }).__error);
      expect(error, errors.join('\n')).toBeUndefined();
      const r = (await page.evaluate(() => (window as { __result?: unknown }).__result)) as {
        adapter: string;
        kernels: number;
        attention: { prefill: number; decode: number };
        pieces: string[];
      };
      log(
        `chromium on ${r.adapter}: kernels-only relL2 ${r.kernels.toExponential(2)}, ` +
          `attention prefill ${r.attention.prefill.toExponential(2)}, decode ${r.attention.decode.toExponential(2)}; ` +
          `chat ${JSON.stringify(r.pieces.join(''))} (${seconds(t0)})`,
      );
      expect(errors).toEqual([]);
      expect(r.kernels).toBeLessThan(1e-4);
      expect(r.attention.prefill).toBeLessThan(5e-3);
      expect(r.attention.decode).toBeLessThan(5e-3);
      const chatPrompt = tokenizer.applyChatTemplate([{ role: 'user', content: question }], {
        addGenerationPrompt: true,
      });
      expect(r.pieces.join('')).toBe(referenceGreedyText(tokenizer.encode(chatPrompt, { addSpecialTokens: false }), 8));
    } finally {
      await browser.close();
      server.close();
    }
  });

  it('tsc: a consumer type-checks against the published types (bundler and nodenext resolution)', async () => {
    writeFileSync(path.join(app, 'consumer.ts'), CONSUMER);
    const tsc = path.join(repoRoot, 'node_modules/typescript/bin/tsc');
    // nodenext skips the libraries' own checks: @huggingface/tokenizers 0.2's .d.ts files import
    // without extensions, which nodenext rejects in them (ours name their .js files).
    for (const [module, moduleResolution, skipLibCheck] of [
      ['ESNext', 'Bundler', false],
      ['NodeNext', 'NodeNext', true],
    ] as const) {
      const tsconfig = {
        compilerOptions: {
          target: 'ES2022',
          module,
          moduleResolution,
          lib: ['ES2022', 'DOM', 'DOM.Iterable'],
          types: ['@webgpu/types'],
          strict: true,
          noEmit: true,
          skipLibCheck,
        },
        files: ['consumer.ts'],
      };
      writeFileSync(path.join(app, `tsconfig.${moduleResolution}.json`), JSON.stringify(tsconfig));
      const r = await run('node', [tsc, '-p', `tsconfig.${moduleResolution}.json`], app);
      expect(r.stdout + r.stderr, `tsc with moduleResolution ${moduleResolution}`).toBe('');
      expect(r.code).toBe(0);
    }
  });
});

/** A static file server for the temp folder (the page, its import map targets, the model). */
function serve(root: string): Promise<Server> {
  const types: Record<string, string> = {
    '.html': 'text/html',
    '.js': 'text/javascript',
    '.mjs': 'text/javascript',
    '.json': 'application/json',
    '.map': 'application/json',
  };
  const server = createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = path.join(root, rel);
    if (!file.startsWith(root + path.sep) || !existsSync(file) || !file.includes('.')) {
      res.writeHead(404).end();
      return;
    }
    const body = readFileSync(file);
    res.writeHead(200, {
      'Content-Type': types[path.extname(file)] ?? 'application/octet-stream',
      'Content-Length': body.length,
    });
    res.end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** What a TypeScript user writes: both entries, the model runtime, and one deliberate type error. */
const CONSUMER = `import { attention, contextFromDevice, createContext, generate, loadModelFiles, loadTokenizer,
  NoWebGpuError, referenceAttention, relL2, resolveSource, Transformer, type AttentionArgs, type GenerateStats,
  type ModelFiles } from 'webattn';
import { attentionParams, buildPageTable, FlashPrefill, type AttentionSpec, type PageTableMetadata,
  type StepBuffers } from 'webattn/kernels';

export async function kernels(device: GPUDevice, step: StepBuffers, q: GPUBuffer, kPages: GPUBuffer, vPages: GPUBuffer,
  work: GPUBuffer, out: GPUBuffer, lse: GPUBuffer, pass: GPUComputePassEncoder): Promise<number> {
  const ctx = contextFromDevice(device);
  const spec: AttentionSpec = { numKvHeads: 2, groupSize: 4, headDimQK: 64, headDimV: 64, pageSize: 16,
    kvDtype: 'f16' };
  const prefill = await FlashPrefill.create(ctx, spec);
  const meta: PageTableMetadata = buildPageTable([{ blockTable: [3, 1], kvLen: 20, qLen: 20 }], 16);
  const items: Uint32Array = prefill.plan(meta).work;
  const params: ArrayBuffer = attentionParams(meta.numSeqs, { scale: 0.125, causal: true, window: 0 });
  prefill.encode(pass, prefill.bind({ q, pages: { kPages, vPages }, step, work, out, lse }), items.length / 5);
  return params.byteLength;
}

export async function runtime(): Promise<string> {
  let ctx;
  try {
    ctx = await createContext();
  } catch (e) {
    if (e instanceof NoWebGpuError) return e.message;
    throw e;
  }
  const args: AttentionArgs = { q: new Float32Array(64), k: new Float32Array(64), v: new Float32Array(64), numHeads: 1,
    numKvHeads: 1, headDimQK: 64, headDimV: 64, seqLensQ: [1], seqLensKV: [1] };
  const { out, lse } = await attention(ctx, args);
  const err: number = relL2(out, referenceAttention({ ...args, k: args.k!, v: args.v! }).out) + lse.length;
  // @ts-expect-error numHeads is a number: the published types are real types, not any
  const wrong: AttentionArgs = { ...args, numHeads: '1' };
  const files: ModelFiles = await loadModelFiles(await resolveSource('org/name'), { needTokenizer: true });
  const tokenizer = loadTokenizer(files.tokenizer as object, (files.tokenizerConfig ?? {}) as object);
  const model = await Transformer.load(ctx, files, { kvDtype: 'f16', maxSeqs: 1 });
  const stats: Partial<GenerateStats> = {};
  let text = '';
  for await (const piece of generate(model, tokenizer, tokenizer.encode('hi'), { maxNewTokens: 4 }, stats)) {
    text += piece;
  }
  model.destroy();
  ctx.destroy();
  return text + err + String(wrong) + stats.generatedTokens;
}
`;
