/**
 * webattn end to end against transformers.js (onnxruntime-web WebGPU) and wllama (llama.cpp wasm,
 * WebGPU where llama.cpp accepts the adapter), in one page, one model at a time.
 *
 * Per model and weight format, each runtime in turn (webattn first, its tokens are the reference):
 *   load       from bench/e2e/models/<name> (served at /models/), peak GPU bytes tracked from here
 *   check      greedy continuation of a fixed prompt by `checkTokens` tokens; a peer whose tokens
 *              differ from webattn's is reported ("disagrees: ...") and not timed
 *   time       for every prompt length L (prefill) and context C (decode), clipped to the model's
 *              context: one unmeasured warm-up at that length, then `reps` runs of a fresh prompt
 *              (seeded token ids, different every run, so no prefix / prompt cache can help) with
 *              `decodeTokens` new tokens; medians of TTFT (prefill tok/s = L / TTFT) and of the
 *              decode time per token
 *   dispose    the runtime frees its model before the next one loads
 *
 * Peak GPU bytes: device.createBuffer and GPUBuffer.destroy are wrapped in the page, and the peak of
 * live bytes above the level before the load is reported, the same measure for webattn and
 * transformers.js (ORT's WebGPU EP creates its buffers through the page's WebGPU). wllama runs in a
 * Worker the wrapper does not reach: n/a. JS heap: performance.memory.usedJSHeapSize of the page
 * (Chromium, --enable-precise-memory-info), the largest seen after load and after each run; again the
 * page only (wllama's wasm memory is in its worker).
 */
import { loadModelFiles, type ModelFiles, urlSource } from '../../src/sources/modelSource';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/tokenizer';
import { makePeerFile, type PeerFile } from './peerFiles';
import {
  BENCH_URLS,
  LOADERS,
  type Prompt,
  type Runtime,
  type RuntimeName,
  type RuntimeUrls,
  type WeightFormat,
} from './runtimes';

export interface E2eOptions {
  models: string[];
  runtimes?: readonly RuntimeName[];
  formats?: readonly WeightFormat[];
  /** Prefill lengths (TTFT rows). */
  prompts?: readonly number[];
  /** Decode contexts (decode rows). */
  contexts?: readonly number[];
  decodeTokens?: number;
  checkTokens?: number;
  reps?: number;
  /**
   * Prompt length of the unmeasured warm-up before each measured length (default 0: the measured
   * length itself). A short warm-up compiles every runtime's kernels at a fraction of the cost of a
   * second long prefill (the SmolLM2 shape at 1024 tokens on a software adapter); each runtime gets
   * the same one, so any shape-specific first-run cost it leaves lands on every runtime's row alike.
   */
  warmupTokens?: number;
  /** Give ORT's device `subgroups` (default false: see bench/peer/main.ts on SwiftShader). */
  ortSubgroups?: boolean;
  /** transformers.js's device: webgpu (default) or wasm (onnxruntime-web's CPU EP). */
  tjsDevice?: 'webgpu' | 'wasm';
  /**
   * transformers.js's ONNX graphs, each a runtime of its own: gqa (GroupQueryAttention) and plain
   * (MatMul / Softmax attention). Default both.
   */
  tjsGraphs?: readonly ('gqa' | 'plain')[];
  /** Where the model folders and the peers' packages are served (default BENCH_URLS, bench/e2e's server). */
  urls?: RuntimeUrls;
  /**
   * Make the peers' ONNX and GGUF files in the page from each model folder's checkpoint (peerFiles.ts,
   * the exporters models.ts runs in Node) instead of fetching them: the demo's folders hold the
   * checkpoint only. Default false.
   */
  exportInPage?: boolean;
  onProgress?: (msg: string) => void;
}

export type Metric = 'ttft' | 'decode';

/** One comparison: webattn and one peer on the same model, format and length. */
export interface E2eRow {
  model: string;
  format: WeightFormat;
  metric: Metric;
  /** Prompt tokens (ttft) or the context the decode starts from (decode). */
  tokens: number;
  peer: Exclude<RuntimeName, 'webattn'>;
  backend: string;
  /** ttft: time to first token; decode: per new token. Medians, ms. */
  webattnMs: number;
  peerMs: number;
  /** ttft: prefill tokens/s; decode: new tokens/s. */
  webattnTokS: number;
  peerTokS: number;
  /** peerMs / webattnMs: above 1, webattn is faster. */
  vsPeer: number;
}

export interface RuntimeReport {
  model: string;
  format: WeightFormat;
  runtime: RuntimeName;
  backend: string;
  version: string;
  loadMs: number;
  /** 'agrees (16/16 tokens)', 'disagrees: ...', 'failed: ...', or 'reference' for webattn. */
  check: string;
  peakGpuBytes: number | null;
  jsHeapBytes: number | null;
  /** The runtime's own words on its backend (wllama's load log), when it gives any. */
  notes?: string;
  /** Medians by metric and length, ms (per token for decode). */
  ms: Partial<Record<`${Metric}@${number}`, number>>;
}

export interface E2eReport {
  adapter: string;
  features: string[];
  date: string;
  /** The options of each run merged into this report (npm run bench:e2e runs one per model group). */
  plans: Required<Omit<E2eOptions, 'onProgress'>>[];
  runtimes: RuntimeReport[];
  rows: E2eRow[];
  skipped: string[];
}

// ---- GPU buffer accounting (page-wide) ----

const liveBuffers = new Map<GPUBuffer, number>();
let liveBytes = 0;
let peakBytes = 0;
let dropSubgroups = false;
/** Set when a device request lost `subgroups` to dropSubgroups (the report says so). */
let subgroupsDropped = false;

export function installGpuHooks(): void {
  const create = GPUDevice.prototype.createBuffer;
  GPUDevice.prototype.createBuffer = function (this: GPUDevice, desc: GPUBufferDescriptor) {
    const b = create.call(this, desc);
    liveBuffers.set(b, desc.size);
    liveBytes += desc.size;
    peakBytes = Math.max(peakBytes, liveBytes);
    return b;
  };
  const destroy = GPUBuffer.prototype.destroy;
  GPUBuffer.prototype.destroy = function (this: GPUBuffer) {
    const size = liveBuffers.get(this);
    if (size !== undefined) {
      liveBuffers.delete(this);
      liveBytes -= size;
    }
    return destroy.call(this);
  };
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = function (this: GPUAdapter, desc?: GPUDeviceDescriptor) {
    if (dropSubgroups && desc?.requiredFeatures && [...desc.requiredFeatures].includes('subgroups')) {
      desc = { ...desc, requiredFeatures: [...desc.requiredFeatures].filter((f) => f !== 'subgroups') };
      subgroupsDropped = true;
    }
    return requestDevice.call(this, desc);
  };
}

/**
 * Loads `load` with `subgroups` taken out of every device request made meanwhile (as the bench gives
 * ORT its device: see ortSubgroups); the backend note says so when it happened.
 */
export async function withoutSubgroups<T extends { backend: string }>(load: () => Promise<T>): Promise<T> {
  dropSubgroups = true;
  subgroupsDropped = false;
  try {
    const rt = await load();
    if (subgroupsDropped) rt.backend += ', device without subgroups';
    return rt;
  } finally {
    dropSubgroups = false;
    subgroupsDropped = false;
  }
}

type Heap = { usedJSHeapSize: number };
const heapNow = () => (performance as Performance & { memory?: Heap }).memory?.usedJSHeapSize ?? null;

// ---- prompts ----

/**
 * A prompt of exactly `len` tokens, as ids (webattn, transformers.js) and as its text (wllama: its
 * completion API takes a string, and llama.cpp tokenizes it). The text is words of the vocabulary
 * that are one token each (" word"), drawn from (seed, i), so the text tokenizes back to the same
 * ids; llama.cpp's prompt_n is checked against len.
 */
export function makePrompt(tok: Tokenizer, words: readonly string[], seed: number, len: number): Prompt {
  let x = Math.imul(seed + 1, 0x9e3779b1) >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return words[x % words.length];
  };
  const special = tok.encode('a').length - tok.encode('a', { addSpecialTokens: false }).length;
  const picked: string[] = [];
  for (let i = 0; i < len - special; i++) picked.push(next());
  for (let tries = 0; tries < 8; tries++) {
    const text = picked.join('');
    const ids = tok.encode(text);
    if (ids.length === len) return { ids, text };
    if (ids.length > len) picked.splice(picked.length - Math.max(1, Math.floor((ids.length - len) / 2)));
    else for (let i = ids.length; i < len; i++) picked.push(next());
  }
  const text = picked.join('');
  return { ids: tok.encode(text), text };
}

/** Vocabulary entries that decode to " word" (lower-case letters) and encode back to that one id. */
function singleTokenWords(tok: Tokenizer, vocab: number, lo: number): string[] {
  const words: string[] = [];
  for (let id = lo; id < vocab && words.length < 4000; id++) {
    const s = tok.decode([id]);
    if (!/^ [a-z]{2,}$/.test(s)) continue;
    const back = tok.encode(s, { addSpecialTokens: false });
    if (back.length === 1 && back[0] === id) words.push(s);
  }
  if (words.length < 50) throw new Error(`only ${words.length} single-token words in the vocabulary`);
  return words;
}

const median = (a: number[]) => {
  const s = [...a].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export interface ModelInfo {
  vocab: number;
  maxContext: number;
  tok: Tokenizer;
  words: string[];
}

export async function modelInfo(urls: RuntimeUrls, name: string): Promise<ModelInfo> {
  const json = async (f: string) => (await fetch(new URL(`${urls.models}${name}/${f}`, location.href))).json();
  const cfg = (await json('config.json')) as Record<string, number>;
  const tokJson = (await json('tokenizer.json')) as { added_tokens?: { id: number }[] };
  const tok = loadTokenizer(tokJson, (await json('tokenizer_config.json')) as object);
  // Past the special tokens.
  const lo = Math.max(2, ...(tokJson.added_tokens ?? []).map((t) => t.id + 1));
  return {
    vocab: cfg.vocab_size,
    maxContext: cfg.max_position_embeddings,
    tok,
    words: singleTokenWords(tok, cfg.vocab_size, lo),
  };
}

/** Logits within this rel L2 of webattn's (both f32, summed in different orders) are the same model. */
export const LOGITS_TOL = 1e-3;

function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

/**
 * 'agrees ...' or 'disagrees: ...'. Equal greedy tokens agree. Where they differ, a peer that gives
 * logits is held to webattn's on the same teacher-forced ids (prompt + webattn's tokens): within
 * LOGITS_TOL it agrees (the tokens parted where two logits were close), else it disagrees.
 */
async function compare(
  rt: Runtime,
  tokens: number[],
  reference: number[],
  promptIds: number[],
  refLogits: Float32Array | null,
): Promise<string> {
  const n = reference.length;
  let same = 0;
  while (same < n && tokens[same] === reference[same]) same++;
  if (same === n && tokens.length === n) return `agrees (${n}/${n} greedy tokens)`;
  const tokenNote = `first ${same}/${n} greedy tokens equal`;
  if (!rt.logits || !refLogits)
    return `disagrees: ${tokenNote}; webattn ${reference.join(',')}; ${rt.name} ${tokens.join(',')}`;
  const peer = await rt.logits([...promptIds, ...reference.slice(0, -1)]);
  if (peer.length !== refLogits.length)
    return `disagrees: logits of ${peer.length} values, webattn ${refLogits.length}`;
  const e = relL2(peer, refLogits);
  return e < LOGITS_TOL
    ? `agrees (logits rel L2 ${e.toExponential(1)}; ${tokenNote})`
    : `disagrees: logits rel L2 ${e.toExponential(1)} > ${LOGITS_TOL}; ${tokenNote}`;
}

/** wllama gives text: the same text from the same number of tokens agrees. */
function compareText(text: string, count: number, refText: string, refCount: number): string {
  if (text === refText && count === refCount) return `agrees (${count}/${refCount} greedy tokens, the same text)`;
  return `disagrees: ${count} tokens ${JSON.stringify(text)}; webattn ${refCount} tokens ${JSON.stringify(refText)}`;
}

export async function runE2e(adapter: string, features: string[], opts: E2eOptions): Promise<E2eReport> {
  const o: Required<Omit<E2eOptions, 'onProgress'>> = {
    models: opts.models,
    runtimes: opts.runtimes ?? ['webattn', 'transformers.js', 'wllama'],
    formats: opts.formats ?? ['f32'],
    prompts: opts.prompts ?? [128, 1024],
    contexts: opts.contexts ?? [128, 1024, 4096],
    decodeTokens: opts.decodeTokens ?? 16,
    checkTokens: opts.checkTokens ?? 16,
    reps: opts.reps ?? 2,
    warmupTokens: opts.warmupTokens ?? 0,
    ortSubgroups: opts.ortSubgroups ?? false,
    tjsDevice: opts.tjsDevice ?? 'webgpu',
    tjsGraphs: opts.tjsGraphs ?? ['gqa', 'plain'],
    urls: opts.urls ?? BENCH_URLS,
    exportInPage: opts.exportInPage ?? false,
  };
  const log = opts.onProgress ?? (() => {});
  const report: E2eReport = {
    adapter,
    features,
    date: new Date().toISOString(),
    plans: [o],
    runtimes: [],
    rows: [],
    skipped: [],
  };
  const N = o.decodeTokens;
  for (const model of o.models) {
    const info = await modelInfo(o.urls, model);
    let madeFile: ((file: PeerFile) => Promise<Uint8Array>) | undefined;
    if (o.exportInPage) {
      let checkpoint: Promise<ModelFiles> | undefined;
      const made = new Map<PeerFile, Uint8Array>();
      madeFile = async (file) => {
        const source = urlSource(new URL(`${o.urls.models}${model}/`, location.href).href, { cache: null });
        checkpoint ??= loadModelFiles(source, { needTokenizer: true });
        let bytes = made.get(file);
        if (!bytes) {
          const t0 = performance.now();
          made.set(file, (bytes = makePeerFile(await checkpoint, model, file)));
          log(
            `${model}: made ${file} in the page (${(bytes.length / 2 ** 20).toFixed(1)} MiB, ` +
              `${(performance.now() - t0).toFixed(0)} ms)`,
          );
        }
        return bytes;
      };
    }
    // Every run holds L prompt + N new tokens; lengths that do not fit the model's context are skipped.
    // Every run holds L prompt + N new tokens. A prompt longer than the model's context is clipped to
    // what fits (kjv: 1024 → 240); a decode context that does not fit is skipped.
    const fit = info.maxContext - N;
    const prompts = [...new Set(o.prompts.map((L) => Math.min(L, fit)))];
    for (const L of o.prompts)
      if (L > fit) report.skipped.push(`${model}: prompt ${L} clipped to ${fit} (context ${info.maxContext})`);
    const contexts = o.contexts.filter((C) => C <= fit);
    for (const C of o.contexts)
      if (C > fit) report.skipped.push(`${model}: decode at ${C} (${C} + ${N} tokens > context ${info.maxContext})`);
    const lengths = [...new Set([...prompts, ...contexts])].sort((a, b) => a - b);
    const maxContext = Math.min(info.maxContext, (lengths.at(-1) ?? 0) + N + 64);
    const prompt = (seed: number, len: number) => makePrompt(info.tok, info.words, seed, len);
    const checkPrompt = prompt(7, Math.min(32, info.maxContext - o.checkTokens));
    for (const format of o.formats) {
      let reference: number[] | null = null;
      let refLogits: Float32Array | null = null;
      const results: RuntimeReport[] = [];
      // transformers.js once per ONNX graph asked for
      type Entry = { name: RuntimeName; graph: 'gqa' | 'plain' };
      const entries = o.runtimes.flatMap((name): Entry[] =>
        name === 'transformers.js' ? o.tjsGraphs.map((graph) => ({ name, graph })) : [{ name, graph: o.tjsGraphs[0] }],
      );
      for (const { name, graph } of entries) {
        if (format === 'q8' && name === 'transformers.js') {
          if (graph === o.tjsGraphs[0]) report.skipped.push(`${model} q8: transformers.js (no q8 ONNX export here)`);
          continue;
        }
        const r: RuntimeReport = {
          model,
          format,
          runtime: name,
          backend: '?',
          version: '?',
          loadMs: 0,
          check: '',
          peakGpuBytes: null,
          jsHeapBytes: null,
          ms: {},
        };
        results.push(r);
        report.runtimes.push(r);
        const base = liveBytes;
        peakBytes = liveBytes;
        let heap = heapNow();
        const seeHeap = () => {
          const h = heapNow();
          if (h !== null) heap = Math.max(heap ?? 0, h);
        };
        let rt: Runtime | null = null;
        try {
          log(`${model} ${format} ${name}: loading`);
          const load = () =>
            LOADERS[name]({
              name: model,
              urls: o.urls,
              madeFile,
              maxContext,
              format,
              tjsDevice: o.tjsDevice,
              tjsGraph: graph,
              log,
            });
          rt = name === 'transformers.js' && !o.ortSubgroups ? await withoutSubgroups(load) : await load();
          Object.assign(r, { backend: rt.backend, version: rt.version, loadMs: rt.loadMs });
          if (rt.notes) r.notes = rt.notes;
          seeHeap();
          const chk = await rt.generate(checkPrompt, o.checkTokens);
          if (name === 'webattn') {
            reference = chk.tokens;
            r.check = 'reference';
            // Teacher-forced logits of prompt + webattn's tokens: what a peer's logits are held to.
            refLogits = rt.logits ? await rt.logits([...checkPrompt.ids, ...reference.slice(0, -1)]) : null;
          } else if (!reference) {
            r.check = 'no webattn reference (webattn not run or failed)';
          } else if (chk.promptTokens !== checkPrompt.ids.length) {
            r.check = `disagrees: its prompt is ${chk.promptTokens} tokens, webattn's ${checkPrompt.ids.length}`;
          } else {
            r.check =
              chk.text !== undefined
                ? compareText(chk.text, chk.tokens.length, info.tok.decode(reference), reference.length)
                : await compare(rt, chk.tokens, reference, checkPrompt.ids, refLogits);
          }
          log(`${model} ${format} ${name} (${rt.backend}): loaded in ${rt.loadMs.toFixed(0)} ms; check ${r.check}`);
          if (r.check.startsWith('disagrees') || r.check.startsWith('no webattn')) continue;
          let seed = 1000;
          for (const L of lengths) {
            await rt.generate(prompt(seed++, o.warmupTokens || L), Math.min(N, 4)); // warm-up
            const ttft: number[] = [];
            const perTok: number[] = [];
            for (let i = 0; i < o.reps; i++) {
              const g = await rt.generate(prompt(seed++, L), N);
              ttft.push(g.ttftMs);
              perTok.push(g.decodeMs / Math.max(1, g.tokens.length - 1));
              seeHeap();
            }
            if (prompts.includes(L)) r.ms[`ttft@${L}`] = median(ttft);
            if (contexts.includes(L)) r.ms[`decode@${L}`] = median(perTok);
            log(
              `${model} ${format} ${name} L=${L}: TTFT ${median(ttft).toFixed(1)} ms, ` +
                `decode ${median(perTok).toFixed(2)} ms/token`,
            );
          }
        } catch (e) {
          r.check = `failed: ${(e as Error).message}`;
          log(`${model} ${format} ${name}: ${r.check}\n${(e as Error).stack ?? ''}`);
        } finally {
          r.peakGpuBytes = name === 'wllama' ? null : peakBytes - base;
          r.jsHeapBytes = heap;
          await rt?.dispose().catch(() => {});
        }
      }
      const wa = results.find((r) => r.runtime === 'webattn');
      if (!wa) continue;
      for (const peer of results) {
        if (peer.runtime === 'webattn') continue;
        for (const [key, peerMs] of Object.entries(peer.ms)) {
          const webattnMs = wa.ms[key as keyof typeof wa.ms];
          if (webattnMs === undefined || peerMs === undefined) continue;
          const [metric, len] = key.split('@') as [Metric, string];
          const tokens = Number(len);
          const tokS = (ms: number) => (metric === 'ttft' ? (tokens / ms) * 1000 : 1000 / ms);
          report.rows.push({
            model,
            format,
            metric,
            tokens,
            peer: peer.runtime as E2eRow['peer'],
            backend: peer.backend,
            webattnMs,
            peerMs,
            webattnTokS: tokS(webattnMs),
            peerTokS: tokS(peerMs),
            vsPeer: peerMs / webattnMs,
          });
        }
      }
    }
  }
  return report;
}
