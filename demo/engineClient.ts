/**
 * What the chat and variant pages share about the engine: where a model comes from (a shipped tiny
 * model, a hub repo id, a URL, picked files; a safetensors folder or one .gguf file), what it costs
 * before its weights download (readModelPlan), download progress with bytes, rate and ETA, and failures
 * sorted into kinds the page can offer a way on for (retry, fall back to f32, reload, free the cache).
 */
import { kvBytesPerToken } from '../src/kv/accounting';
import type { KvDtype } from '../src/gpu/dtype';
import { parseConfig } from '../src/model/config';
import { ggufModelSpec } from '../src/model/ggufConfig';
import { ggufStoredWeights } from '../src/model/weightFormats';
import {
  ModelSourceError,
  filesSource,
  hubSource,
  isGgufFileName,
  urlSource,
  type LoadProgress,
  type ModelSource,
} from '../src/sources/modelSource';
import { fileRangeReader, readGgufPrefix, type RangeReader, urlRangeReader } from './ggufHeader';
import { kvSpecOf } from './kvCost';
import { type ModelPlan, planFromSpec } from './precision';
import { formatBytes } from './shell';

/** The tiny models the demo ships (models/<id>/, trained by the project on the King James Bible). */
export const SHIPPED_MODELS = [
  { id: 'kjv-gqa', label: 'kjv-gqa · GQA (grouped KV heads)', variant: 'gqa' },
  { id: 'kjv-mha', label: 'kjv-mha · MHA (one KV head per query head)', variant: 'mha' },
  { id: 'kjv-mqa', label: 'kjv-mqa · MQA (one KV head)', variant: 'mqa' },
  { id: 'kjv-mla', label: 'kjv-mla · MLA (latent KV)', variant: 'mla' },
] as const;
export type ShippedId = (typeof SHIPPED_MODELS)[number]['id'];
export const DEFAULT_MODEL: ShippedId = 'kjv-gqa';

/** The URL of a shipped model's folder, next to the page (works from any static host folder). */
export function shippedModelUrl(id: string): string {
  return new URL(`./models/${id}/`, location.href).href;
}

/** What createWorkerEngine takes as `model`, and a name for it on the page. */
export type ModelChoice =
  | { kind: 'shipped'; id: string }
  | { kind: 'hub'; repoId: string }
  | { kind: 'url'; url: string }
  | { kind: 'files'; files: File[]; name: string };

export function modelArg(c: ModelChoice): string | File[] {
  if (c.kind === 'shipped') return shippedModelUrl(c.id);
  if (c.kind === 'url') return new URL(c.url, location.href).href;
  return c.kind === 'hub' ? c.repoId : c.files;
}

export function modelName(c: ModelChoice): string {
  return c.kind === 'shipped' ? c.id : c.kind === 'hub' ? c.repoId : c.kind === 'url' ? c.url : c.name;
}

/**
 * Sums per-file LoadProgress into "model.safetensors 3.2 MiB of 12 MiB · 1.1 MiB/s · 8 s left".
 * Files read from the Cache API arrive whole in one report and do not count toward the rate.
 */
export class ProgressTracker {
  private readonly files = new Map<string, { loaded: number; total: number | undefined; t0: number; first: number }>();
  private readonly t0 = performance.now();

  update(p: LoadProgress): {
    fraction: number | undefined;
    text: string;
    loadedBytes: number;
    totalBytes: number | undefined;
  } {
    const now = performance.now();
    let f = this.files.get(p.file);
    if (!f) this.files.set(p.file, (f = { loaded: 0, total: p.totalBytes, t0: now, first: p.loadedBytes }));
    f.loaded = p.loadedBytes;
    f.total = p.totalBytes;
    let loaded = 0;
    let total: number | undefined = 0;
    for (const x of this.files.values()) {
      loaded += x.loaded;
      total = total === undefined || x.total === undefined ? undefined : total + x.total;
    }
    const secs = (now - f.t0) / 1000;
    const rate = secs > 0.3 ? (f.loaded - f.first) / secs : 0; // bytes/s of this file's download
    const parts = [`${p.file} ${formatBytes(p.loadedBytes)}${p.totalBytes ? ` of ${formatBytes(p.totalBytes)}` : ''}`];
    if (rate > 0 && p.totalBytes && p.loadedBytes < p.totalBytes) {
      parts.push(`${formatBytes(rate)}/s`, `${formatSeconds((p.totalBytes - p.loadedBytes) / rate)} left`);
    }
    parts.push(`total ${formatBytes(loaded)} in ${formatSeconds((now - this.t0) / 1000)}`);
    return {
      fraction: total ? loaded / total : undefined,
      text: parts.join(' · '),
      loadedBytes: loaded,
      totalBytes: total,
    };
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

export function formatRate(tokens: number, ms: number): string {
  if (tokens <= 0 || ms <= 0) return '–';
  const r = (tokens * 1000) / ms;
  return `${r < 10 ? r.toFixed(2) : r < 100 ? r.toFixed(1) : Math.round(r)} tok/s`;
}

export type FailureKind =
  | 'storage-full'
  | 'download'
  | 'memory'
  | 'binding-limit'
  | 'f16'
  | 'device-lost'
  | 'kv-full'
  | 'unsupported'
  | 'abort'
  | 'other';

/** Sorts an error (from the worker, where only name and message survive) into what the page does next. */
export function classifyError(err: unknown): { kind: FailureKind; message: string } {
  const e = err as { name?: string; message?: string };
  const name = e?.name ?? '';
  const message = e?.message ?? String(err);
  const m = message.toLowerCase();
  if (name === 'AbortError' || m.includes('aborted')) return { kind: 'abort', message };
  if (name === 'QuotaExceededError' || m.includes('quota')) return { kind: 'storage-full', message };
  if (name === 'DeviceLostError' || m.includes('device was lost') || m.includes('device lost'))
    return { kind: 'device-lost', message };
  if (name === 'ModelSourceError' || m.includes('download') || m.includes('failed to fetch') || m.includes('http '))
    return { kind: 'download', message };
  // The weights' OutOfMemoryError (weights.ts) names the tensor and the model's bytes: memory, even
  // where the adapter's message it quotes names a limit.
  if (m.includes("does not fit this device's memory")) return { kind: 'memory', message };
  // What must fit one binding whole: MLA's kv_b_proj, a step buffer (weights past one are split by rows).
  if (m.includes('maxstoragebufferbindingsize') || m.includes('maxbuffersize'))
    return { kind: 'binding-limit', message };
  if (name === 'OutOfMemoryError' || m.includes('out of memory')) return { kind: 'memory', message };
  if (m.includes('shader-f16') || m.includes(' f16')) return { kind: 'f16', message };
  if (m.includes('pass the context') || m.includes('kv pages') || m.includes('kv cache') || m.includes('no free page'))
    return { kind: 'kv-full', message };
  if (
    name === 'ModelConfigError' ||
    m.includes('model_type') ||
    m.includes('do not run') ||
    m.includes('not supported')
  )
    return { kind: 'unsupported', message };
  return { kind: 'other', message };
}

/** A sentence saying what to do about a failure of this kind. */
export function adviceFor(kind: FailureKind): string {
  switch (kind) {
    case 'storage-full':
      return (
        "The browser's storage for this site is full, so the download cannot be kept. " +
        'Clear the downloaded models (they download again when needed) and retry.'
      );
    case 'download':
      return (
        'The download stopped. Files that finished are kept in the browser cache, ' +
        'so Retry continues from the file that failed.'
      );
    case 'memory':
      return (
        'The GPU ran out of memory: the model does not fit this device (the message names the tensor and the ' +
        'bytes). Try q4 or q8 weights under "Precision and memory", a shorter context, or a smaller model.'
      );
    case 'binding-limit':
      return (
        'A buffer this model needs in one piece is larger than this GPU lets a shader see at once ' +
        "(maxStorageBufferBindingSize): MLA's kv_b_proj, or a step buffer such as the logits (weights past " +
        'the limit are split by rows and load). Try a shorter context, a smaller model, or another GPU.'
      );
    case 'f16':
      return (
        'This GPU has trouble with f16 values. ' + 'Retry with f32 weights and KV (twice the memory, works everywhere).'
      );
    case 'device-lost':
      return (
        'The GPU device was lost (a driver reset, memory pressure, or a long time in a background tab). ' +
        'Reload the model to get a new device.'
      );
    case 'kv-full':
      return (
        "This request does not fit: the prompt plus max tokens pass the model's context, " +
        'or need more KV pages than the pool has. ' +
        'Start a new chat, lower max tokens, or load the model with a longer context.'
      );
    case 'unsupported':
      return (
        'webattn cannot run this model: see the message. ' +
        'The shipped tiny models and llama / mistral / qwen2 / qwen3 / gemma checkpoints work.'
      );
    case 'abort':
      return '';
    default:
      return 'Something went wrong; the message says where. Retry, or reload the page.';
  }
}

/** What the page shows about a loaded model, read from its config.json and tokenizer_config.json. */
export interface ModelInfo {
  family: string;
  attention: 'mha' | 'gqa' | 'mqa' | 'mla';
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** MLA: the cached latent row, c_kv width + roped key width. */
  latent?: { dim: number; ropeDim: number };
  parameters: number;
  /** max_position_embeddings */
  maxContext: number;
  hasChatTemplate: boolean;
  /** KV bytes one token costs over all layers at this KV dtype (webattn's own accounting). */
  kvBytesPerToken: number;
  /** The weights' bytes per format (or a GGUF file's as stored). */
  plan: ModelPlan;
}

/** The source a choice names (what the worker reads it through). */
function sourceOf(c: ModelChoice): ModelSource {
  return c.kind === 'shipped' || c.kind === 'url'
    ? urlSource(modelArg(c) as string)
    : c.kind === 'hub'
      ? hubSource(c.repoId)
      : filesSource(c.files, c.name);
}

/** `org/name/x.gguf` (or `org/name/folder/x.gguf`): a GGUF file of a hub repo, as hubSource reads it. */
const HUB_GGUF = /^([\w.-]+\/[\w.-]+)\/(.+\.gguf)$/i;

/**
 * The GGUF file a choice names, with a reader of its byte ranges, or null (a safetensors folder),
 * as the sources decide: picked files without config.json holding exactly one .gguf, a URL whose
 * path ends in .gguf, a hub repo id followed by a .gguf path.
 */
export function ggufOf(c: ModelChoice, base = globalThis.location?.href): { name: string; read: RangeReader } | null {
  if (c.kind === 'files') {
    const ggufs = c.files.filter((f) => isGgufFileName(f.name));
    if (c.files.some((f) => f.name === 'config.json') || ggufs.length !== 1) return null;
    return { name: ggufs[0].name, read: fileRangeReader(ggufs[0]) };
  }
  if (c.kind === 'url') {
    const u = new URL(c.url, base);
    if (!isGgufFileName(u.pathname)) return null;
    return { name: decodeURIComponent(u.pathname.split('/').pop()!), read: urlRangeReader(u.href) };
  }
  if (c.kind === 'hub') {
    const m = HUB_GGUF.exec(c.repoId);
    if (!m) return null;
    return {
      name: m[2].split('/').pop()!,
      read: urlRangeReader(`https://huggingface.co/${m[1]}/resolve/main/${m[2]}`),
    };
  }
  return null;
}

/**
 * What a model costs, read before any weight is downloaded: config.json (a few KB), or a GGUF
 * file's header (its first bytes; the tensors are not read). An unsupported model fails here
 * (ModelConfigError naming the field) instead of after gigabytes.
 */
export async function readModelPlan(c: ModelChoice): Promise<ModelPlan> {
  const gguf = ggufOf(c);
  if (gguf) {
    const { header, ropeFreqs } = await readGgufPrefix(gguf.read, gguf.name);
    const stored = ggufStoredWeights(header);
    const hasChatTemplate = header.metadata.has('tokenizer.chat_template');
    const tensors = [...header.tensors.values()].map((t) => ({ name: t.name, type: t.type, shape: t.shape }));
    const file = { ...stored, fileName: gguf.name, hasChatTemplate, tensors };
    return planFromSpec(ggufModelSpec(header, { ropeFreqs }), file);
  }
  const source = sourceOf(c);
  const bytes = await source.readFile('config.json');
  if (!bytes) throw new ModelSourceError(`${source.name}: config.json: missing`);
  return planFromSpec(parseConfig(JSON.parse(new TextDecoder().decode(bytes)), `${source.name}: config.json`));
}

/**
 * Reads the model's small files again through the same source (a cache hit after the engine
 * loaded it: the URL and hub sources keep what they downloaded in the Cache API); a GGUF model is
 * described by its header (`plan`, or read again: its first bytes only).
 */
export async function describeModel(c: ModelChoice, kvDtype: KvDtype, plan?: ModelPlan): Promise<ModelInfo> {
  plan ??= await readModelPlan(c);
  const spec = plan.spec;
  let hasChatTemplate: boolean;
  if (plan.gguf) hasChatTemplate = plan.gguf.hasChatTemplate;
  else {
    const source = sourceOf(c);
    const file = await source.readFile('tokenizer_config.json').catch(() => null);
    const config = file ? (JSON.parse(new TextDecoder().decode(file)) as { chat_template?: unknown } | null) : null;
    hasChatTemplate = !!config?.chat_template;
  }
  return {
    family: spec.family,
    attention: spec.attention,
    numLayers: spec.numLayers,
    numHeads: spec.numHeads,
    numKvHeads: spec.numKvHeads,
    headDim: spec.headDim,
    latent: spec.mla ? { dim: spec.mla.kvLoraRank, ropeDim: spec.mla.qkRopeHeadDim } : undefined,
    parameters: plan.parameters,
    maxContext: spec.maxPositionEmbeddings,
    hasChatTemplate,
    kvBytesPerToken: kvBytesPerToken(kvSpecOf(spec, kvDtype)),
    plan,
  };
}

/** The Cache API store the model sources keep downloads in (src/sources/modelSource.ts browserCache). */
export const MODEL_CACHE = 'webattn-models';

/** Files kept in the model cache and the site's storage use and quota (where the browser says). */
export async function cacheUsage(): Promise<{ files: number; usage?: number; quota?: number }> {
  const files = typeof caches === 'undefined' ? 0 : (await (await caches.open(MODEL_CACHE)).keys()).length;
  const est = await navigator.storage?.estimate?.().catch(() => undefined);
  return { files, usage: est?.usage, quota: est?.quota };
}

export async function clearModelCache(): Promise<void> {
  if (typeof caches !== 'undefined') await caches.delete(MODEL_CACHE);
}

/**
 * Drops cached files under a URL prefix. The shipped models are served next to the page, so caching
 * them buys nothing, and a cached copy would outlive a retrained model under the same URL.
 */
export async function forgetCached(prefix: string): Promise<void> {
  if (typeof caches === 'undefined') return;
  const cache = await caches.open(MODEL_CACHE);
  for (const req of await cache.keys()) if (req.url.startsWith(prefix)) await cache.delete(req);
}
