/**
 * The three runtimes of the e2e bench behind one small interface, each as its users run it:
 *
 *   webattn          Engine.load on the page's WebGPU adapter (its own device), the request loop
 *                    a chat app runs (engine.generate, greedy, ignoreEos).
 *   transformers.js  AutoModelForCausalLM.from_pretrained(name, { device: 'webgpu', dtype: 'fp32' })
 *                    on onnx/model.onnx, model.generate({ do_sample: false }) with a streamer; its
 *                    onnxruntime-web wasm files from /tjs-ort/, no remote models, no browser cache.
 *   wllama           new Wllama({ default: '/wllama/wasm/wllama.wasm' }), loadModel(blob of the GGUF),
 *                    createCompletion({ prompt: token ids, stream, temperature 0, ignore_eos }).
 *                    WebGPU when llama.cpp's backend accepts the adapter, else its wasm CPU path
 *                    (the backend it used is read from its load log).
 *
 * Every generate() is timed the same way: wall clock from the call to the first new token (TTFT,
 * the prefill) and from the first to the last token (decode). The prompt is token ids, so no
 * tokenizer takes part in any timing or comparison.
 */
import { createContext, type GpuContext } from '../../src/gpu/context';
import { Engine } from '../../src/engine/engine';
import { logitsForIds } from '../../src/engine/stepRunner';
import { Transformer } from '../../src/model/transformer';
import { tokenizerFromModelFiles } from '../../src/tokenizer/tokenizer';
import { loadModelFiles, urlSource } from '../../src/sources/modelSource';
import type { LoadDtype } from '../../src/model/weights';
import type { PeerFile } from './peerFiles';

export type RuntimeName = 'webattn' | 'transformers.js' | 'wllama';
export const RUNTIMES: readonly RuntimeName[] = ['webattn', 'transformers.js', 'wllama'];
/** f32: every runtime's f32 weights; q8: webattn q8 against wllama Q8_0 (no q8 ONNX is exported). */
export type WeightFormat = 'f32' | 'q8';

/** The same prompt as token ids and as text that tokenizes to them (e2eBench.ts makePrompt). */
export interface Prompt {
  ids: number[];
  text: string;
}

export interface GenerateResult {
  tokens: number[];
  /** wllama: the text of the new tokens (its streaming API gives text, one chunk per token, no ids). */
  text?: string;
  /** Prompt tokens the runtime saw (wllama tokenizes the text itself). */
  promptTokens: number;
  ttftMs: number;
  /** First token to last: tokens.length - 1 decode steps. */
  decodeMs: number;
}

export interface Runtime {
  name: RuntimeName;
  /** 'webgpu' or 'wasm' (CPU), as the runtime reported it. */
  backend: string;
  version: string;
  loadMs: number;
  /** What the runtime said about its backend (wllama: llama.cpp's log lines about WebGPU and offload). */
  notes?: string;
  /** Greedy continuation of the prompt by `n` tokens, EOS ignored. */
  generate(prompt: Prompt, n: number): Promise<GenerateResult>;
  /** Logits [ids.length, vocab] after every token of `ids` (one prefill, no sampling), where the API gives them. */
  logits?(ids: readonly number[]): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/**
 * Where the page finds the model folders and the peers' packages (each resolved against the page's
 * URL). BENCH_URLS: bench/e2e's server (run.ts); the demo serves the same packages under its own base.
 */
export interface RuntimeUrls {
  /** The folder holding <name>/ model folders. */
  models: string;
  /** transformers.js's self-contained bundle (@huggingface/transformers/dist/transformers.js). */
  tjs: string;
  /** The onnxruntime-web dist that bundle was built with (its .mjs / .wasm). */
  tjsOrt: string;
  /** @wllama/wllama/esm (index.js, wasm/wllama.wasm). */
  wllama: string;
}

export const BENCH_URLS: RuntimeUrls = {
  models: '/models/',
  tjs: '/tjs/transformers.js',
  tjsOrt: '/tjs-ort/',
  wllama: '/wllama/',
};

/** The demo bench page's (demo/e2ePanel.ts): relative to the page, served by demoPlugin.ts. */
export const DEMO_URLS: RuntimeUrls = {
  models: './models/',
  tjs: './e2e/tjs/transformers.js',
  tjsOrt: './e2e/tjs-ort/',
  wllama: './e2e/wllama/',
};

const resolve = (url: string) => new URL(url, location.href).href;

export interface ModelRef {
  /** Folder name under urls.models (bench/e2e/models/<name>). */
  name: string;
  urls: RuntimeUrls;
  /**
   * A peer file (peerFiles.ts) made in the page, in place of fetching it from the model folder (the
   * demo's folders hold the checkpoint only); absent, or null for a file: fetched.
   */
  madeFile?: (file: PeerFile) => Promise<Uint8Array | null>;
  maxContext: number;
  format: WeightFormat;
  /** transformers.js's device (default webgpu; wasm is onnxruntime-web's CPU EP). */
  tjsDevice?: 'webgpu' | 'wasm';
  /** Which ONNX graph transformers.js loads: GroupQueryAttention (onnx/model.onnx, default) or plain ops. */
  tjsGraph?: 'gqa' | 'plain';
  log: (msg: string) => void;
}

// ---------------------------------------------------------------------------------------------
// webattn

/** Rows of logits one webattn step returns: the check's teacher-forced ids go through in steps of this many. */
const LOGIT_ROWS = 64;

export async function loadWebattn(m: ModelRef): Promise<Runtime> {
  const t0 = performance.now();
  const ctx: GpuContext = await createContext();
  const files = await loadModelFiles(urlSource(resolve(`${m.urls.models}${m.name}/`), { cache: null }), {
    needTokenizer: true,
  });
  const tokenizer = tokenizerFromModelFiles(files);
  const weightDtype: LoadDtype = m.format === 'q8' ? 'q8' : 'f32';
  const model = await Transformer.load(ctx, files, {
    weightDtype,
    kvDtype: 'f32',
    maxSeqs: 1,
    maxContext: m.maxContext,
    maxTokens: Math.min(1024, m.maxContext),
    maxLogitRows: LOGIT_ROWS,
  });
  // The model serves one owner at a time: the engine, or (for logits) a step runner of its own.
  let engine: Engine | null = await Engine.forModel(model, tokenizer, { name: m.name });
  const loadMs = performance.now() - t0;
  return {
    name: 'webattn',
    backend: 'webgpu',
    version: 'this tree',
    loadMs,
    async generate({ ids }, n) {
      engine ??= await Engine.forModel(model, tokenizer, { name: m.name });
      const t = performance.now();
      let tFirst = 0;
      let tLast = 0;
      const tokens: number[] = [];
      for await (const c of engine.generate([...ids], { maxTokens: n, temperature: 0, ignoreEos: true })) {
        if (c.tokenId < 0) continue;
        tLast = performance.now();
        if (tokens.length === 0) tFirst = tLast;
        tokens.push(c.tokenId);
      }
      return { tokens, promptTokens: ids.length, ttftMs: tFirst - t, decodeMs: tLast - tFirst };
    },
    async logits(ids) {
      engine?.dispose();
      engine = null;
      return logitsForIds(model, ids, LOGIT_ROWS);
    },
    async dispose() {
      engine?.dispose();
      model.destroy();
      ctx.destroy();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// transformers.js

interface TjsTensor {
  dims: number[];
  data: BigInt64Array;
}
interface TjsModel {
  (inputs: Record<string, TjsTensor>): Promise<{ logits: { data: Float32Array } }>;
  generate(args: Record<string, unknown>): Promise<TjsTensor>;
  dispose(): Promise<unknown>;
}
interface TjsModule {
  env: {
    allowRemoteModels: boolean;
    allowLocalModels: boolean;
    localModelPath: string;
    useBrowserCache: boolean;
    useCustomCache: boolean;
    customCache: { match(key: string): Promise<Response | undefined>; put(): Promise<void> } | null;
    version: string;
    backends: { onnx: { wasm: { wasmPaths?: string; numThreads?: number }; logLevel?: string } };
  };
  Tensor: new (type: string, data: BigInt64Array, dims: number[]) => TjsTensor;
  AutoModelForCausalLM: { from_pretrained(name: string, opts: Record<string, unknown>): Promise<TjsModel> };
}

export async function loadTransformersJs(m: ModelRef): Promise<Runtime> {
  if (m.format !== 'f32') throw new Error('transformers.js runs the f32 export only here');
  // A URL in a variable: Vite leaves the import alone and the browser fetches the package's own bundle.
  const tjs = (await import(/* @vite-ignore */ resolve(m.urls.tjs))) as TjsModule;
  tjs.env.allowRemoteModels = false;
  tjs.env.allowLocalModels = true;
  tjs.env.localModelPath = new URL(m.urls.models, location.href).pathname;
  tjs.env.useBrowserCache = false;
  tjs.env.backends.onnx.wasm.wasmPaths = resolve(m.urls.tjsOrt);
  const device = m.tjsDevice ?? 'webgpu';
  const graph = m.tjsGraph ?? 'gqa';
  const onnxFile: PeerFile = graph === 'plain' ? 'onnx/model_plain.onnx' : 'onnx/model.onnx';
  // A graph made in the page reaches from_pretrained through transformers.js's custom-cache hook
  // (looked up by the path it would fetch); every other file is fetched as usual.
  const made = await m.madeFile?.(onnxFile);
  tjs.env.useCustomCache = made != null;
  tjs.env.customCache = made
    ? {
        match: async (key) =>
          key.endsWith(`/${m.name}/${onnxFile}`) ? new Response(made as Uint8Array<ArrayBuffer>) : undefined,
        put: async () => {},
      }
    : null;
  const t0 = performance.now();
  const model = await tjs.AutoModelForCausalLM.from_pretrained(m.name, {
    device,
    dtype: 'fp32',
    model_file_name: graph === 'plain' ? 'model_plain' : 'model',
  });
  const loadMs = performance.now() - t0;
  return {
    name: 'transformers.js',
    backend: `${device} (${graph === 'plain' ? 'MatMul/Softmax attention' : 'GroupQueryAttention'})`,
    version: tjs.env.version,
    loadMs,
    async generate({ ids }, n) {
      const L = ids.length;
      const input = new tjs.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, L]);
      const mask = new tjs.Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]);
      const stamps: number[] = [];
      let puts = 0;
      // generate() puts the prompt first, then each new token.
      const streamer = { put: () => puts++ > 0 && stamps.push(performance.now()), end: () => {} };
      const t = performance.now();
      const out = await model.generate({
        input_ids: input,
        attention_mask: mask,
        max_new_tokens: n,
        do_sample: false,
        eos_token_id: null,
        streamer,
      });
      const tokens = Array.from(out.data.subarray(L), Number);
      return { tokens, promptTokens: L, ttftMs: stamps[0] - t, decodeMs: stamps[stamps.length - 1] - stamps[0] };
    },
    async logits(ids) {
      const L = ids.length;
      const out = await model({
        input_ids: new tjs.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, L]),
        attention_mask: new tjs.Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]),
      });
      return out.logits.data;
    },
    async dispose() {
      await model.dispose();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// wllama

interface WllamaChunk {
  choices: { text: string; finish_reason: string | null }[];
  timings?: { prompt_n: number; prompt_ms: number; predicted_ms: number; predicted_n: number };
}
interface WllamaInstance {
  loadModel(blobs: Blob[], params: Record<string, unknown>): Promise<void>;
  createCompletion(opts: Record<string, unknown>): Promise<AsyncIterable<WllamaChunk>>;
  exit(): Promise<void>;
  getNumThreads(): number;
}
interface WllamaModule {
  Wllama: {
    new (paths: { default: string }, cfg: Record<string, unknown>): WllamaInstance;
    getLibllamaVersion(): string;
  };
}

export async function loadWllama(m: ModelRef): Promise<Runtime> {
  const mod = (await import(/* @vite-ignore */ resolve(`${m.urls.wllama}index.js`))) as WllamaModule;
  const lines: string[] = [];
  const keep = (...a: unknown[]) => lines.push(a.map(String).join(' '));
  const logger = { debug: keep, log: keep, warn: keep, error: keep };
  const wllama = new mod.Wllama(
    { default: resolve(`${m.urls.wllama}wasm/wllama.wasm`) },
    { logger, allowOffline: true },
  );
  const file: PeerFile = m.format === 'q8' ? 'model-Q8_0.gguf' : 'model-F32.gguf';
  const made = await m.madeFile?.(file);
  const t0 = performance.now();
  const blob = made
    ? new Blob([made as Uint8Array<ArrayBuffer>])
    : await (await fetch(resolve(`${m.urls.models}${m.name}/${file}`))).blob();
  try {
    await wllama.loadModel([new File([blob], file)], {
      n_ctx: m.maxContext,
      n_batch: Math.min(1024, m.maxContext),
      n_parallel: 1,
    });
  } catch (e) {
    throw new Error(`${(e as Error).message}; wllama's log:\n${lines.slice(-40).join('\n')}`);
  }
  const loadMs = performance.now() - t0;
  const log = lines.join('\n');
  // llama.cpp's load log names the buffers it put the weights in ("WebGPU model buffer size" / "CPU ...").
  const onGpu = /WebGPU[^\n]*(model buffer|KV buffer)|offloaded [1-9]\d*\/\d+ layers to GPU/i.test(log);
  const threads = wllama.getNumThreads();
  const notes = lines
    .filter((l) => /webgpu|offload|shader-f16|CPU_REPACK|model buffer/i.test(l))
    .slice(0, 8)
    .map((l) => l.trim())
    .join(' | ');
  return {
    name: 'wllama',
    backend: onGpu ? 'webgpu' : `wasm (CPU, ${threads} thread${threads === 1 ? '' : 's'})`,
    version: mod.Wllama.getLibllamaVersion(),
    loadMs,
    notes,
    async generate({ text }, n) {
      const t = performance.now();
      let promptTokens = -1;
      const stamps: number[] = [];
      const stream = await wllama.createCompletion({
        prompt: text,
        max_tokens: n,
        temperature: 0,
        ignore_eos: true,
        cache_prompt: false,
        stream: true,
      });
      let out = '';
      for await (const c of stream) {
        if (c.timings) promptTokens = c.timings.prompt_n;
        if (c.choices.length === 0) continue;
        const { text: piece, finish_reason } = c.choices[0];
        if (piece === '' && finish_reason !== null) continue; // the closing chunk carries no token
        out += piece;
        stamps.push(performance.now());
      }
      // One chunk per token; ids stay unknown (-1), the text is what is compared.
      return {
        tokens: stamps.map(() => -1),
        text: out,
        promptTokens,
        ttftMs: stamps[0] - t,
        decodeMs: stamps[stamps.length - 1] - stamps[0],
      };
    },
    async dispose() {
      await wllama.exit();
    },
  };
}

/** wllama's own log lines of the last load (for the report's backend notes). */
export const LOADERS: Record<RuntimeName, (m: ModelRef) => Promise<Runtime>> = {
  webattn: loadWebattn,
  'transformers.js': loadTransformersJs,
  wllama: loadWllama,
};
