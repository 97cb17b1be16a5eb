/**
 * The chat page (the demo's front page): pick a model (a shipped tiny model, a hub repo id, or a
 * local folder), load it into the engine in a Web Worker with download progress, chat with streamed
 * replies through the chat template (or plain continuation), stop with Esc or the Stop button, and
 * watch the paged KV cache fill live (kvSnapshot() after every engine step).
 */
import { createWorkerEngine, type WorkerEngine } from '../src/engine/workerEngine';
import type { ChatMessage } from '../src/tokenizer/chatTemplate';
import type { GenerateChunk, StepInfo } from '../src/engine/types';
import {
  DEFAULT_MODEL,
  ProgressTracker,
  SHIPPED_MODELS,
  adviceFor,
  cacheUsage,
  classifyError,
  clearModelCache,
  forgetCached,
  describeModel,
  formatRate,
  modelArg,
  shippedModelUrl,
  preflight,
  modelName,
  type FailureKind,
  type ModelChoice,
} from './engineClient';
import { drawKvGrid, pagesAndBytes, renderKvLegend } from './kvGrid';
import { $, formatBytes, h, openGpu, renderAdapterSummary, showNotice } from './shell';

type Role = 'user' | 'assistant';

/** Sequences the engine runs at once: the chat's samples (n) share its pool. */
const MAX_SEQS = 4;

interface Loaded {
  engine: WorkerEngine;
  choice: ModelChoice;
  opts: LoadOptions;
}

interface LoadOptions {
  weightDtype: 'f16' | 'f32';
  kvDtype: 'f16' | 'f32';
  /** undefined: the model's max_position_embeddings, at most 4096 (the engine's default). */
  maxContext: number | undefined;
}

let loaded: Loaded | undefined;
/** The adapter's limits as the page's own device sees them (the worker's device gets the same). */
let gpuLimits: { maxStorageBufferBindingSize: number; maxBufferSize: number } | undefined;
let busy: AbortController | undefined;
let messages: ChatMessage[] = [];
let lastChoice: ModelChoice | undefined;
let pickedFiles: File[] = [];
let pickedName = '';

// ---------------------------------------------------------------- small helpers
const field = <T extends HTMLElement = HTMLInputElement>(form: HTMLFormElement, name: string) => form.elements.namedItem(name) as unknown as T;

function setEngineState(state: 'idle' | 'loading' | 'ready' | 'generating' | 'failed'): void {
  document.body.dataset.engine = state;
  const ready = state === 'ready';
  $<HTMLButtonElement>('#send').disabled = !ready;
  $<HTMLButtonElement>('#stop').disabled = state !== 'generating';
  $<HTMLButtonElement>('#clear').disabled = !ready || messages.length === 0;
  $<HTMLButtonElement>('#load').disabled = state === 'loading' || state === 'generating' || document.body.dataset.gpu !== 'ready';
  $<HTMLButtonElement>('#unload').hidden = !loaded;
  $<HTMLButtonElement>('#unload').disabled = state === 'loading' || state === 'generating';
}

function loadStatus(state: string, text: (Node | string)[], fraction?: number): void {
  const box = $('#load-status');
  box.dataset.state = state;
  const bar = $<HTMLProgressElement>('#load-progress');
  bar.hidden = fraction === undefined && state !== 'loading';
  if (fraction === undefined) bar.removeAttribute('value');
  else bar.value = fraction;
  $('#load-text').replaceChildren(...text);
  // The model card sits below the chat on a phone: the chat header says how loading goes, and links there.
  const short = $<HTMLAnchorElement>('#chat-load');
  short.hidden = state !== 'loading' && state !== 'failed';
  short.textContent = state === 'failed' ? 'could not load: see Model' : fraction !== undefined ? `loading ${Math.round(fraction * 100)}%` : 'loading…';
  short.className = state === 'failed' ? 'bad' : '';
}

/** The error box under the model card or in the log, with buttons that are the way on. */
function failureBox(kind: FailureKind, message: string, actions: [string, () => void][]): HTMLElement {
  const buttons = actions.map(([label, fn]) => {
    const b = h('button', { type: 'button' }, label);
    b.addEventListener('click', fn);
    return b;
  });
  return h('div', { class: 'failure', role: 'alert', 'data-kind': kind },
    h('p', {}, h('strong', {}, message)),
    h('p', { class: 'small' }, adviceFor(kind)),
    buttons.length ? h('p', { class: 'actions' }, ...buttons) : '',
  );
}

// ---------------------------------------------------------------- model choice
function readChoice(form: HTMLFormElement): ModelChoice | string {
  const kind = (form.querySelector<HTMLInputElement>('input[name="kind"]:checked')?.value ?? 'shipped') as ModelChoice['kind'];
  if (kind === 'shipped') return { kind, id: $<HTMLSelectElement>('#shipped-model').value };
  if (kind === 'hub') {
    const typed = $<HTMLInputElement>('#hub-id').value.trim();
    if (/^(https?:\/\/(?!huggingface\.co\/)|\.{0,2}\/)/.test(typed)) return { kind: 'url', url: typed }; // a folder URL
    const repoId = $<HTMLInputElement>('#hub-id').value.trim().replace(/^https:\/\/huggingface\.co\//, '').replace(/\/+$/, '');
    if (!/^[\w.-]+\/[\w.-]+$/.test(repoId)) return 'Type a Hugging Face repo id such as HuggingFaceTB/SmolLM2-135M-Instruct, or the URL of a model folder.';
    return { kind, repoId };
  }
  if (!pickedFiles.length) return 'Choose or drop a model folder first (config.json, model.safetensors, tokenizer.json).';
  if (!pickedFiles.some((f) => f.name === 'config.json')) return `No config.json among the ${pickedFiles.length} files picked.`;
  return { kind: 'files', files: pickedFiles, name: pickedName || 'local folder' };
}

function readLoadOptions(form: HTMLFormElement): LoadOptions {
  return {
    weightDtype: field<HTMLSelectElement>(form, 'weightDtype').value as 'f16' | 'f32',
    kvDtype: field<HTMLSelectElement>(form, 'kvDtype').value as 'f16' | 'f32',
    maxContext: field(form, 'maxContext').value === '' ? undefined : Math.max(64, Math.round(Number(field(form, 'maxContext').value) || 1024)),
  };
}

function setupModelForm(): void {
  const form = $<HTMLFormElement>('#model-form');
  const select = $<HTMLSelectElement>('#shipped-model');
  select.replaceChildren(...SHIPPED_MODELS.map((m) => h('option', { value: m.id, selected: m.id === DEFAULT_MODEL }, m.label)));
  const showKind = () => {
    const kind = form.querySelector<HTMLInputElement>('input[name="kind"]:checked')?.value;
    for (const el of form.querySelectorAll<HTMLElement>('[data-kind]')) el.hidden = el.dataset.kind !== kind;
  };
  for (const r of form.querySelectorAll<HTMLInputElement>('input[name="kind"]')) r.addEventListener('change', showKind);

  const pick = (files: File[], name: string) => {
    pickedFiles = files.filter((f) => /\.(json|safetensors)$/.test(f.name));
    pickedName = name;
    const total = pickedFiles.reduce((s, f) => s + f.size, 0);
    $('#picked').textContent = pickedFiles.length
      ? `${name}: ${pickedFiles.length} files, ${formatBytes(total)} (${pickedFiles.map((f) => f.name).slice(0, 6).join(', ')}${pickedFiles.length > 6 ? ', …' : ''})`
      : 'No .json or .safetensors files in what was picked.';
    (form.querySelector<HTMLInputElement>('input[name="kind"][value="files"]'))!.checked = true;
    showKind();
  };
  const folderName = (files: File[]) => files[0]?.webkitRelativePath?.split('/')[0] || 'picked files';
  for (const id of ['#folder-input', '#files-input']) {
    const input = $<HTMLInputElement>(id);
    input.addEventListener('change', () => pick([...(input.files ?? [])], folderName([...(input.files ?? [])])));
  }
  // Drop anywhere on the page: a folder (through the entries API) or loose files.
  const zone = $('#drop-zone');
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  document.addEventListener('dragleave', (e) => {
    if (e.relatedTarget === null) zone.classList.remove('over');
  });
  document.addEventListener('drop', async (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const items = [...(e.dataTransfer?.items ?? [])];
    const entries = items.map((i) => i.webkitGetAsEntry?.()).filter((x): x is FileSystemEntry => !!x);
    const files = entries.length ? (await Promise.all(entries.map(readEntry))).flat() : [...(e.dataTransfer?.files ?? [])];
    pick(files, entries.length === 1 && entries[0].isDirectory ? entries[0].name : 'dropped files');
  });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const choice = readChoice(form);
    if (typeof choice === 'string') {
      loadStatus('invalid', [h('span', { class: 'bad' }, choice)]);
      return;
    }
    void load(choice, readLoadOptions(form));
  });
  $('#unload').addEventListener('click', () => unload());
  $('#cache-clear').addEventListener('click', () => void clearModelCache().then(showCacheUsage));
  void showCacheUsage();
  // A link may name a model: index.html?model=HuggingFaceTB/SmolLM2-135M-Instruct
  const wanted = new URLSearchParams(location.search).get('model');
  if (wanted && SHIPPED_MODELS.some((m) => m.id === wanted)) select.value = wanted;
  else if (wanted) {
    (form.querySelector<HTMLInputElement>('input[name="kind"][value="hub"]'))!.checked = true;
    $<HTMLInputElement>('#hub-id').value = wanted;
    showKind();
  }
}

/** Files of a dropped folder, recursively (the entries API: only way to read a dropped folder). */
async function readEntry(entry: FileSystemEntry): Promise<File[]> {
  if (entry.isFile) return [await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej))];
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const all: FileSystemEntry[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
    if (!batch.length) break;
    all.push(...batch);
  }
  return (await Promise.all(all.map(readEntry))).flat();
}

// ---------------------------------------------------------------- loading
function unload(): void {
  busy?.abort();
  loaded?.engine.dispose();
  loaded = undefined;
  $('#model-info').hidden = true;
  $('#chat-model').textContent = 'No model loaded';
  loadStatus('idle', []);
  setEngineState('idle');
}

async function load(choice: ModelChoice, opts: LoadOptions, checked = false): Promise<void> {
  if (loaded) unload();
  lastChoice = choice;
  setEngineState('loading');
  const name = modelName(choice);
  const tracker = new ProgressTracker();
  loadStatus('loading', [`Loading ${name}…`]);
  const t0 = performance.now();
  let engine: WorkerEngine | undefined;
  try {
    if (choice.kind === 'shipped') await forgetCached(shippedModelUrl(choice.id)).catch(() => undefined);
    if (!checked && gpuLimits) {
      const pre = await preflight(choice, opts.weightDtype, gpuLimits);
      if (pre.problem) {
        setEngineState('failed');
        const actions: [string, () => void][] = [];
        if (opts.weightDtype === 'f32') actions.push(['Load with f16 weights', () => void load(choice, { ...opts, weightDtype: 'f16' })]);
        actions.push(['Load anyway', () => void load(choice, opts, true)], ['Load the default tiny model', () => void load({ kind: 'shipped', id: DEFAULT_MODEL }, opts)]);
        loadStatus('failed', [failureBox('binding-limit', `${name} will not fit this GPU: ${pre.problem}.`, actions)]);
        return;
      }
      loadStatus('loading', [`Loading ${name} (${formatBytes(pre.weightBytes)} of ${opts.weightDtype} weights on the GPU)…`]);
    }
    engine = await createWorkerEngine({
      model: modelArg(choice),
      engine: { weightDtype: opts.weightDtype, kvDtype: opts.kvDtype, maxContext: opts.maxContext, maxSeqs: MAX_SEQS },
      onProgress: (p) => {
        const r = tracker.update(p);
        loadStatus('loading', [r.text], r.fraction);
      },
    });
    loaded = { engine, choice, opts };
    engine.onStep = onStep;
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    loadStatus('ready', [h('span', { class: 'ok' }, `${name} ready`), ` in ${secs} s`], 1);
    $('#chat-model').textContent = name;
    // The facts under the model card are a nicety: a failure there must not unload a working engine.
    await showModelInfo(choice, opts).catch((e: Error) => {
      $('#model-info').hidden = false;
      $('#model-info').replaceChildren(h('p', { class: 'muted' }, `(no model facts: ${e.message})`));
    });
    await refreshKv();
    void showCacheUsage();
    setEngineState('ready');
    $<HTMLTextAreaElement>('#prompt').focus();
  } catch (err) {
    engine?.dispose();
    loaded = undefined;
    setEngineState('failed');
    const { kind, message } = classifyError(err);
    const actions: [string, () => void][] = [['Retry', () => void load(choice, opts, checked)]];
    if ((kind === 'f16' || kind === 'other') && (opts.weightDtype === 'f16' || opts.kvDtype === 'f16')) {
      actions.push(['Retry with f32', () => {
        $<HTMLSelectElement>('#weight-dtype').value = 'f32';
        $<HTMLSelectElement>('#kv-dtype').value = 'f32';
        void load(choice, { ...opts, weightDtype: 'f32', kvDtype: 'f32' }, checked);
      }]);
    }
    if (kind === 'memory' || kind === 'binding-limit' || kind === 'kv-full') {
      actions.push(['Retry with a 512-token context', () => void load(choice, { ...opts, maxContext: 512 }, checked)]);
    }
    if (kind === 'storage-full') actions.unshift(['Clear downloaded models and retry', () => void clearModelCache().then(() => load(choice, opts, checked))]);
    if (choice.kind !== 'shipped') actions.push(['Load the default tiny model', () => void load({ kind: 'shipped', id: DEFAULT_MODEL }, opts)]);
    loadStatus('failed', [failureBox(kind, `Could not load ${name}: ${message}`, actions)]);
    if (kind === 'device-lost') document.body.dataset.gpu = 'lost';
  }
}

/** "Cache: 14 files, site storage 12 MiB of 10 GiB". */
async function showCacheUsage(): Promise<void> {
  try {
    const u = await cacheUsage();
    $('#cache-usage').textContent = `Downloaded files kept: ${u.files}${u.usage !== undefined ? ` · site storage ${formatBytes(u.usage)}${u.quota ? ` of ${formatBytes(u.quota)}` : ''}` : ''}.`;
  } catch {
    $('#cache-line').hidden = true; // no Cache API (an insecure origin): nothing is kept anyway
  }
}

async function showModelInfo(choice: ModelChoice, opts: LoadOptions): Promise<void> {
  const info = await describeModel(choice, opts.kvDtype);
  const el = $('#model-info');
  el.hidden = false;
  el.replaceChildren(
    h('dl', { class: 'facts' },
      h('dt', {}, 'Attention'), h('dd', { id: 'model-attention' }, `${info.attention.toUpperCase()} · ${info.numHeads} query heads, ${info.latent
        ? `one ${info.latent.dim} + ${info.latent.ropeDim} latent KV row`
        : `${info.numKvHeads} KV head${info.numKvHeads === 1 ? '' : 's'}`}`),
      h('dt', {}, 'Layers'), h('dd', {}, String(info.numLayers)),
      h('dt', {}, 'Weights'), h('dd', {}, `${(info.parameters / 1e6).toFixed(info.parameters < 1e7 ? 2 : 0)}M parameters · ${opts.weightDtype} · ${formatBytes(info.parameters * (opts.weightDtype === 'f16' ? 2 : 4))}`),
      h('dt', {}, 'KV'), h('dd', {}, `${opts.kvDtype} · ${formatBytes(info.kvBytesPerToken)} per token · up to ${opts.maxContext ?? Math.min(info.maxContext ?? 4096, 4096)} tokens per sequence`),
      h('dt', {}, 'Chat template'), h('dd', {}, info.hasChatTemplate ? 'yes' : 'none: replies continue the text'),
    ),
  );
  // A model without a chat template continues text; the checkbox follows the model.
  const box = field($<HTMLFormElement>('#sampling-form'), 'chatTemplate') as HTMLInputElement;
  box.checked = info.hasChatTemplate;
  box.disabled = !info.hasChatTemplate;
  $('#kv-per-token').textContent = formatBytes(info.kvBytesPerToken);
}

// ---------------------------------------------------------------- KV view and speed
let kvPending = false;
const stepTotals = { prefillTokens: 0, prefillMs: 0, decodeTokens: 0, decodeMs: 0 };

function onStep(s: StepInfo): void {
  if (s.prefillTokens > 0) {
    stepTotals.prefillTokens += s.prefillTokens;
    stepTotals.prefillMs += s.ms;
  } else {
    stepTotals.decodeTokens += s.decodeTokens;
    stepTotals.decodeMs += s.ms;
  }
  showSpeed();
  if (!kvPending) {
    kvPending = true;
    requestAnimationFrame(() => void refreshKv().finally(() => (kvPending = false)));
  }
}

function showSpeed(): void {
  const prefill = $('#prefill-rate');
  const decode = $('#decode-rate');
  prefill.textContent = formatRate(stepTotals.prefillTokens, stepTotals.prefillMs);
  decode.textContent = formatRate(stepTotals.decodeTokens, stepTotals.decodeMs);
  prefill.dataset.tokens = String(stepTotals.prefillTokens);
  decode.dataset.tokens = String(stepTotals.decodeTokens);
}

async function refreshKv(): Promise<void> {
  if (!loaded) return;
  let snap;
  try {
    snap = await loaded.engine.kvSnapshot();
  } catch {
    return; // the engine is going away; the next load redraws
  }
  const canvas = $<HTMLCanvasElement>('#kv-grid');
  const t = drawKvGrid(canvas, snap);
  renderKvLegend($('#kv-legend'), snap);
  $('#kv-page-size').textContent = String(snap.pageSize);
  $('#kv-used').textContent = pagesAndBytes(t.usedPages, t.usedBytes);
  $('#kv-free').textContent = pagesAndBytes(t.freePages, t.freeBytes);
  $('#kv-cached').textContent = pagesAndBytes(t.cachedPages, t.cachedBytes);
  // The most pages seen in use during this page's life: the test reads it after a reply ends.
  canvas.dataset.peakUsedPages = String(Math.max(Number(canvas.dataset.peakUsedPages ?? 0), t.usedPages));
}

// ---------------------------------------------------------------- chat
function addMessage(role: Role | 'error', text = ''): HTMLElement {
  $('#log-empty').hidden = true;
  const body = h('div', { class: 'text' }, text);
  const el = h('article', { class: `msg ${role}`, 'data-role': role },
    h('h3', { class: 'who' }, role === 'user' ? 'You' : role === 'assistant' ? modelName(loaded!.choice) : 'Error'), body);
  $('#log').append(el);
  el.scrollIntoView({ block: 'end' });
  return body;
}

function readSampling(): { temperature: number; topP: number; maxTokens: number; seed: number | undefined; n: number; chat: boolean } {
  const form = $<HTMLFormElement>('#sampling-form');
  const num = (name: string, dflt: number) => {
    const v = Number(field(form, name).value);
    return field(form, name).value === '' || !Number.isFinite(v) ? dflt : v;
  };
  const seedText = field(form, 'seed').value;
  return {
    temperature: Math.max(0, num('temperature', 0.7)),
    topP: Math.min(1, Math.max(0.01, num('topP', 0.9))),
    maxTokens: Math.max(1, Math.round(num('maxTokens', 128))),
    n: Math.max(1, Math.min(MAX_SEQS, Math.round(num('n', 1)))),
    seed: seedText === '' ? undefined : Math.round(Number(seedText)),
    chat: (field(form, 'chatTemplate') as HTMLInputElement).checked,
  };
}

async function send(): Promise<void> {
  const promptEl = $<HTMLTextAreaElement>('#prompt');
  const text = promptEl.value.trim();
  if (!loaded || busy || !text) return;
  const engine = loaded.engine;
  const s = readSampling();
  promptEl.value = '';
  addMessage('user', text);
  const out = addMessage('assistant');
  out.parentElement!.dataset.state = 'streaming';
  out.parentElement!.setAttribute('aria-busy', 'true'); // screen readers read the reply once, not per token
  const controller = new AbortController();
  busy = controller;
  setEngineState('generating');
  Object.assign(stepTotals, { prefillTokens: 0, prefillMs: 0, decodeTokens: 0, decodeMs: 0 });
  showSpeed();
  const seed = s.seed ?? Math.floor(Math.random() * 2 ** 31);
  let reply = '';
  let finish: string | null = null;
  let completionTokens = 0;
  let cached = 0;
  let promptTokens = 0;
  let dropped = 0;
  const t0 = performance.now();
  let firstTokenMs: number | undefined;
  // n > 1: one column per sample (forked after one prefill: their prompt pages are shared).
  const outs = [out];
  if (s.n > 1) {
    out.parentElement!.classList.add('samples');
    for (let i = 1; i < s.n; i++) {
      const more = h('div', { class: 'text', 'data-sample': i });
      outs.push(more);
      out.parentElement!.append(more);
    }
  }
  const texts = outs.map(() => '');
  const append = (delta: string, index = 0) => {
    if (!delta || !outs[index]) return;
    firstTokenMs ??= performance.now() - t0;
    texts[index] += delta;
    outs[index].textContent = texts[index];
    reply = texts[0];
    out.parentElement!.scrollIntoView({ block: 'end' });
  };
  try {
    if (s.chat) {
      // The conversation so far, less its oldest turns when it no longer fits the model's context
      // (the tiny models know 256 positions): the engine refuses such a request before any token.
      let history = messages;
      let turn: ChatMessage[];
      for (;;) {
        turn = [...history, { role: 'user', content: text }];
        try {
          const stream = await engine.chat.completions.create({
            messages: turn, stream: true, max_tokens: s.maxTokens, temperature: s.temperature, top_p: s.topP, seed, n: s.n, signal: controller.signal,
          });
          for await (const chunk of stream) {
            for (const c of chunk.choices) {
              append(c.delta.content ?? '', c.index);
              if (c.finish_reason) finish = c.finish_reason;
            }
            if (chunk.usage) {
              completionTokens = chunk.usage.completion_tokens;
              promptTokens = chunk.usage.prompt_tokens;
              cached = chunk.usage.prompt_tokens_details.cached_tokens;
            }
          }
          break;
        } catch (err) {
          if (reply || history.length === 0 || classifyError(err).kind !== 'kv-full') throw err;
          history = history.slice(2); // drop the oldest user + assistant pair and try again
          dropped += 2;
        }
      }
      messages = [...turn, { role: 'assistant', content: reply }];
    } else {
      const stream: AsyncIterable<GenerateChunk> = engine.generate(text, {
        maxTokens: s.maxTokens, temperature: s.temperature, topP: s.topP, seed, n: s.n, signal: controller.signal, label: text.slice(0, 24),
      });
      for await (const c of stream) {
        append(c.text, c.index);
        if (c.finishReason) finish = c.finishReason;
        if (c.usage) {
          completionTokens = c.usage.completionTokens;
          promptTokens = c.usage.promptTokens;
          cached = c.usage.cachedPromptTokens;
        }
      }
      messages = [];
    }
    out.parentElement!.dataset.state = 'done';
  } catch (err) {
    const { kind, message } = classifyError(err);
    if (kind === 'abort' || controller.signal.aborted) {
      finish = 'abort';
      out.parentElement!.dataset.state = 'done';
    } else {
      out.parentElement!.dataset.state = 'failed';
      const actions: [string, () => void][] = [];
      if (kind === 'kv-full') actions.push(['New chat', () => newChat()]);
      if (kind === 'device-lost' && lastChoice) actions.push(['Reload the model', () => void load(lastChoice!, loaded?.opts ?? readLoadOptions($<HTMLFormElement>('#model-form')))]);
      actions.push(['Try again', () => {
        promptEl.value = text;
        void send();
      }]);
      out.parentElement!.after(failureBox(kind, message, actions));
      if (kind === 'device-lost') {
        document.body.dataset.gpu = 'lost';
        showNotice('error', 'The GPU device was lost', [h('p', {}, `${message}. ${adviceFor('device-lost')}`)]);
      }
    }
  } finally {
    busy = undefined;
    if (loaded) setEngineState('ready');
  }
  const meta = [
    `${completionTokens} token${completionTokens === 1 ? '' : 's'}`,
    finish === 'length' ? 'stopped at max tokens' : finish === 'abort' ? 'stopped' : finish === 'stop' ? 'finished' : '',
    promptTokens ? `prompt ${promptTokens} tokens${cached ? ` (${cached} from the prefix cache)` : ''}` : '',
    firstTokenMs !== undefined ? `first token after ${(firstTokenMs / 1000).toFixed(2)} s` : '',
    dropped ? `${dropped / 2} oldest turn${dropped === 2 ? '' : 's'} left out to fit the context` : '',
  ].filter(Boolean);
  out.parentElement!.append(h('p', { class: 'meta muted small' }, meta.join(' · ')));
  out.parentElement!.dataset.tokens = String(completionTokens);
  out.parentElement!.removeAttribute('aria-busy');
  $('#token-count').textContent = `${promptTokens} in · ${completionTokens} out`;
  if (!reply && finish !== 'abort' && out.parentElement!.dataset.state === 'done') out.textContent = '(empty reply)';
  void refreshKv();
  $<HTMLButtonElement>('#clear').disabled = false;
  if (document.activeElement === document.body || document.activeElement === $('#stop')) promptEl.focus();
}

function newChat(): void {
  busy?.abort();
  messages = [];
  $('#log').replaceChildren($('#log-empty'));
  $('#log-empty').hidden = false;
  setEngineState(loaded ? 'ready' : 'idle');
  $<HTMLTextAreaElement>('#prompt').focus();
}

function setupChat(): void {
  const form = $<HTMLFormElement>('#prompt-form');
  const prompt = $<HTMLTextAreaElement>('#prompt');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void send();
  });
  prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void send();
    }
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && busy) busy.abort();
  });
  $('#stop').addEventListener('click', () => busy?.abort());
  $('#clear').addEventListener('click', () => newChat());
  $('#sampling-form').addEventListener('submit', (e) => e.preventDefault());
  addEventListener('resize', () => void refreshKv());
}

// ---------------------------------------------------------------- start
async function start(): Promise<void> {
  setupModelForm();
  setupChat();
  setEngineState('idle');
  const gpu = await openGpu({ without: 'Chat needs WebGPU. The Variants page still computes KV-cache bills without a GPU.' });
  if (!gpu.ok) {
    $('#adapter').replaceChildren(h('p', { class: 'muted' }, 'No GPU: see the message above.'));
    loadStatus('no-gpu', ['Loading a model needs WebGPU: see the message at the top of the page.']);
    setEngineState('idle');
    return;
  }
  const ctx = gpu.ctx;
  gpuLimits = { maxStorageBufferBindingSize: ctx.limits.maxStorageBufferBindingSize, maxBufferSize: ctx.limits.maxBufferSize };
  // ?simulateMaxBinding=BYTES: check models against a smaller GPU's binding limit (a phone's 128 MiB, say).
  const simulated = Number(new URLSearchParams(location.search).get('simulateMaxBinding'));
  if (simulated > 0) gpuLimits.maxStorageBufferBindingSize = Math.min(gpuLimits.maxStorageBufferBindingSize, simulated);
  renderAdapterSummary($('#adapter'), ctx);
  const binding = ctx.limits.maxStorageBufferBindingSize;
  $('#adapter').append(h('p', { class: 'small muted' }, `One buffer binding may span ${formatBytes(binding)} (maxStorageBufferBindingSize).`));
  if (!ctx.features.shaderF16) {
    $('#adapter').append(h('p', { class: 'small', id: 'f16-note' },
      'No shader-f16: f16 weights and KV are unpacked from 32-bit words (works, a little slower). Choose f32 under "Precision and memory" if a load fails.'));
  }
  if (binding < 256 * 1024 * 1024) {
    $('#adapter').append(h('p', { class: 'small warn', id: 'binding-note' },
      `This GPU binds at most ${formatBytes(binding)} at once: models whose embedding table is larger (most above ~100M parameters in f16) will not load here. The tiny models fit.`));
  }
  setEngineState('idle');
  (globalThis as { webattnDemo?: object }).webattnDemo = {
    ...((globalThis as { webattnDemo?: object }).webattnDemo ?? {}),
    get engine() {
      return loaded?.engine;
    },
    load: (id: string) => load({ kind: 'shipped', id }, readLoadOptions($<HTMLFormElement>('#model-form'))),
  };
  // `npm run demo` opens on a working chat: the default tiny model loads at once (no download: it
  // ships with the page). ?autoload=0 turns that off.
  if (new URLSearchParams(location.search).get('autoload') !== '0') $<HTMLFormElement>('#model-form').requestSubmit();
}

void start();
