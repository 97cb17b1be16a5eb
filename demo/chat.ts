/**
 * The chat page (the demo's front page): pick a model (a shipped tiny model, a hub repo id, or a
 * local folder), load it into the engine in a Web Worker with download progress, chat with streamed
 * replies through the chat template (or plain continuation), stop with Esc or the Stop button, and
 * watch the paged KV cache fill live (kvSnapshot() after every engine step).
 *
 * The "Precision and memory" menu prices the chosen model in every weight format and KV dtype from
 * its config.json (or a GGUF file's header) before anything downloads. A weight past the adapter's
 * binding limit loads split by rows (the note says into how many buffers); refused up front, with the
 * numbers, is only what cannot run (MLA's kv_b_proj past one binding: precision.ts). A model too big
 * for the device's memory fails at load with the runtime's message. A model with sliding-window layers
 * shows its second page pool, the window pages, as its own grid.
 *
 * ChatPage holds the page's state and runs its flows. The model form is modelPicker.ts, the model
 * card's views modelCard.ts, the conversation and how it is fitted to the context conversation.ts,
 * the log and the streamed reply replyView.ts.
 */
import type { GenerateChunk, StepInfo } from '../src/engine/types';
import { createWorkerEngine, type WorkerEngine } from '../src/engine/workerEngine';
import type { ChatMessage } from '../src/tokenizer/chatTemplate';
import { Conversation } from './conversation';
import {
  adviceFor,
  classifyError,
  clearModelCache,
  DEFAULT_MODEL,
  describeModel,
  forgetCached,
  formatRate,
  type ModelChoice,
  modelArg,
  modelName,
  ProgressTracker,
  readModelPlan,
  shippedModelUrl,
} from './engineClient';
import { drawKvGrid, localSnapshot, pagesAndBytes, renderKvLegend } from './kvGrid';
import { renderAdapter, renderModelFacts, showCacheUsage } from './modelCard';
import {
  engineWeightDtype,
  field,
  type LoadOptions,
  ModelPicker,
  renderPrecisionMenu,
  renderPrecisionNote,
} from './modelPicker';
import { fittingChoices, type ModelPlan, weightChoices, weightCost } from './precision';
import { addMessage, failureBox, ReplyView } from './replyView';
import { $, formatBytes, h, openGpu, showNotice } from './shell';

/** Sequences the engine runs at once: the chat's samples (n) share its pool. */
const MAX_SEQS = 4;

type EngineState = 'idle' | 'loading' | 'ready' | 'generating' | 'failed';
type Actions = [string, () => void][];

interface Loaded {
  engine: WorkerEngine;
  choice: ModelChoice;
  opts: LoadOptions;
  plan: ModelPlan | undefined;
}

/** The same model (files: the same pick). */
function sameChoice(a: ModelChoice, b: ModelChoice): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'shipped') return a.id === (b as typeof a).id;
  if (a.kind === 'hub') return a.repoId === (b as typeof a).repoId;
  if (a.kind === 'url') return a.url === (b as typeof a).url;
  return a.files === (b as typeof a).files;
}

interface Sampling {
  temperature: number;
  topP: number;
  maxTokens: number;
  seed: number | undefined;
  n: number;
  chat: boolean;
}

/** Prefill and decode tokens and milliseconds of the current reply, from the engine's steps. */
class StepTotals {
  prefillTokens = 0;
  prefillMs = 0;
  decodeTokens = 0;
  decodeMs = 0;

  add(s: StepInfo): void {
    if (s.prefillTokens > 0) {
      this.prefillTokens += s.prefillTokens;
      this.prefillMs += s.ms;
    } else {
      this.decodeTokens += s.decodeTokens;
      this.decodeMs += s.ms;
    }
  }

  reset(): void {
    Object.assign(this, { prefillTokens: 0, prefillMs: 0, decodeTokens: 0, decodeMs: 0 });
  }
}

class ChatPage {
  private loaded: Loaded | undefined;
  /** The adapter's limits as the page's own device sees them (the worker's device gets the same). */
  private gpuLimits: { maxStorageBufferBindingSize: number; maxBufferSize: number } | undefined;
  /** The reply being generated, if any. */
  private busy: AbortController | undefined;
  private readonly conversation = new Conversation();
  private lastChoice: ModelChoice | undefined;
  private readonly steps = new StepTotals();
  private kvPending = false;
  private readonly picker = new ModelPicker();
  /** The plan of the model the form names (read before download), and which read is the latest. */
  private plan: { choice: ModelChoice; plan: Promise<ModelPlan> } | undefined;
  private planRead = 0;

  async start(): Promise<void> {
    this.setupModelForm();
    this.setupChat();
    this.setEngineState('idle');
    const gpu = await openGpu({
      without: 'Chat needs WebGPU. The Variants page still computes KV-cache bills without a GPU.',
    });
    if (!gpu.ok) {
      $('#adapter').replaceChildren(h('p', { class: 'muted' }, 'No GPU: see the message above.'));
      this.loadStatus('no-gpu', ['Loading a model needs WebGPU: see the message at the top of the page.']);
      this.setEngineState('idle');
      return;
    }
    const ctx = gpu.ctx;
    const binding = ctx.limits.maxStorageBufferBindingSize;
    this.gpuLimits = { maxStorageBufferBindingSize: binding, maxBufferSize: ctx.limits.maxBufferSize };
    // ?simulateMaxBinding=BYTES: price models against a smaller GPU's binding limit (a phone's 128 MiB,
    // say): which weights split into how many buffers, what is refused. The engine keeps the real limit.
    const simulated = Number(new URLSearchParams(location.search).get('simulateMaxBinding'));
    if (simulated > 0) this.gpuLimits.maxStorageBufferBindingSize = Math.min(binding, simulated);
    renderAdapter($('#adapter'), ctx);
    this.setEngineState('idle');
    void this.refreshPlan(); // the menu now says what splits or cannot run on this adapter
    const page = this;
    const global = globalThis as { webattnDemo?: object };
    global.webattnDemo = {
      ...(global.webattnDemo ?? {}),
      get engine() {
        return page.loaded?.engine;
      },
      load: (id: string) => this.load({ kind: 'shipped', id }, this.picker.loadOptions()),
    };
    // `npm run demo` opens on a working chat: the default tiny model loads at once (no download: it
    // ships with the page). ?autoload=0 turns that off.
    if (new URLSearchParams(location.search).get('autoload') !== '0') this.picker.form.requestSubmit();
  }

  // ---------------------------------------------------------------- page state
  private setEngineState(state: EngineState): void {
    document.body.dataset.engine = state;
    const ready = state === 'ready';
    const working = state === 'loading' || state === 'generating';
    $<HTMLButtonElement>('#send').disabled = !ready;
    $<HTMLButtonElement>('#stop').disabled = state !== 'generating';
    $<HTMLButtonElement>('#clear').disabled = !ready || this.conversation.length === 0;
    $<HTMLButtonElement>('#load').disabled = working || document.body.dataset.gpu !== 'ready';
    $<HTMLButtonElement>('#unload').hidden = !this.loaded;
    $<HTMLButtonElement>('#unload').disabled = working;
  }

  private loadStatus(state: string, text: (Node | string)[], fraction?: number): void {
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
    const percent = fraction !== undefined ? `loading ${Math.round(fraction * 100)}%` : 'loading…';
    short.textContent = state === 'failed' ? 'could not load: see Model' : percent;
    short.className = state === 'failed' ? 'bad' : '';
  }

  // ---------------------------------------------------------------- loading
  /** The plan of `choice`, read once per choice (config.json, or a GGUF header: no weights). */
  private planOf(choice: ModelChoice): Promise<ModelPlan> {
    if (this.plan && sameChoice(this.plan.choice, choice)) return this.plan.plan;
    const plan = readModelPlan(choice);
    // Whoever awaits it shows a failure; a failed read is not kept, so the next try reads again.
    plan.catch(() => {
      if (this.plan?.plan === plan) this.plan = undefined;
    });
    this.plan = { choice, plan };
    return plan;
  }

  /** Prices the model the form names in every format (the precision menu), before any download. */
  private async refreshPlan(): Promise<void> {
    const mine = ++this.planRead;
    const form = this.picker.form;
    const choice = this.picker.choice();
    if (typeof choice === 'string') {
      renderPrecisionMenu(form, null);
      return;
    }
    try {
      const plan = await this.planOf(choice);
      if (mine === this.planRead) renderPrecisionMenu(form, plan, this.gpuLimits);
    } catch (e) {
      if (mine !== this.planRead) return;
      renderPrecisionMenu(form, null);
      const why = `Cannot price ${modelName(choice)} yet: ${(e as Error).message}`;
      $('#precision-note').replaceChildren(h('span', { class: 'muted' }, why));
    }
  }

  private setupModelForm(): void {
    renderPrecisionMenu(this.picker.form, null); // every KV dtype the runtime has, before any model is read
    this.picker.onChoiceChange = () => void this.refreshPlan();
    $('#weight-dtype').addEventListener('change', () => {
      const current = this.plan;
      if (!current) return;
      void current.plan.then((plan) => renderPrecisionNote(this.picker.form, plan, this.gpuLimits)).catch(() => {});
    });
    void this.refreshPlan();
    this.picker.form.addEventListener('submit', (e) => {
      e.preventDefault();
      const choice = this.picker.choice();
      if (typeof choice === 'string') {
        this.loadStatus('invalid', [h('span', { class: 'bad' }, choice)]);
        return;
      }
      void this.load(choice, this.picker.loadOptions());
    });
    $('#unload').addEventListener('click', () => this.unload());
    $('#cache-clear').addEventListener('click', () => void clearModelCache().then(() => showCacheUsage()));
    void showCacheUsage();
  }

  private unload(): void {
    this.busy?.abort();
    this.loaded?.engine.dispose();
    this.loaded = undefined;
    $('#model-info').hidden = true;
    $('#chat-model').textContent = 'No model loaded';
    this.loadStatus('idle', []);
    this.setEngineState('idle');
  }

  private async load(choice: ModelChoice, opts: LoadOptions, checked = false): Promise<void> {
    if (this.loaded) this.unload();
    this.lastChoice = choice;
    this.setEngineState('loading');
    const name = modelName(choice);
    const tracker = new ProgressTracker();
    this.loadStatus('loading', [`Loading ${name}…`]);
    const t0 = performance.now();
    const loadDefault = (): void => void this.load({ kind: 'shipped', id: DEFAULT_MODEL }, opts);
    let engine: WorkerEngine | undefined;
    let plan: ModelPlan | undefined;
    try {
      if (choice.kind === 'shipped') await forgetCached(shippedModelUrl(choice.id)).catch(() => undefined);
      // Before any weight downloads: config.json (or a GGUF header) prices the chosen format. A GGUF
      // file loads as it stores its weights; a folder cannot be loaded "as stored".
      plan = await this.planOf(choice);
      const offered = weightChoices(plan);
      if (!offered.includes(opts.weightDtype)) opts = { ...opts, weightDtype: plan.gguf ? 'stored' : 'f16' };
      if (!checked && this.gpuLimits) {
        const cost = weightCost(plan, opts.weightDtype, this.gpuLimits);
        if (cost.problem) {
          this.setEngineState('failed');
          const actions: Actions = [];
          // The widest format that can run, then the smallest: "Load with f16 weights (1.9 MiB)".
          const fits = fittingChoices(plan, this.gpuLimits);
          for (const c of new Set([fits.at(-1), fits[0]])) {
            if (!c || c.choice === opts.weightDtype) continue;
            const label = `Load with ${c.choice} weights (${formatBytes(c.bytes)})`;
            actions.push([label, () => this.reloadAs(choice, { ...opts, weightDtype: c.choice })]);
          }
          actions.push(['Load anyway', () => void this.load(choice, opts, true)]);
          actions.push(['Load the default tiny model', loadDefault]);
          const message = `${name} cannot run on this GPU: ${cost.problem}.`;
          this.loadStatus('failed', [failureBox('binding-limit', message, actions)]);
          return;
        }
        const as =
          opts.weightDtype === 'stored' ? 'weights as the GGUF file stores them' : `${opts.weightDtype} weights`;
        this.loadStatus('loading', [`Loading ${name} (${formatBytes(cost.bytes)} of ${as} on the GPU)…`]);
      }
      const { kvDtype, maxContext } = opts;
      const weightDtype = engineWeightDtype(opts.weightDtype);
      engine = await createWorkerEngine({
        model: modelArg(choice),
        engine: { weightDtype, kvDtype, maxContext, maxSeqs: MAX_SEQS },
        onProgress: (p) => {
          const r = tracker.update(p);
          this.loadStatus('loading', [r.text], r.fraction);
        },
      });
      this.loaded = { engine, choice, opts, plan };
      engine.onStep = (s) => this.onStep(s);
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      this.loadStatus('ready', [h('span', { class: 'ok' }, `${name} ready`), ` in ${secs} s`], 1);
      $('#chat-model').textContent = name;
      // The facts under the model card are a nicety: a failure there must not unload a working engine.
      await this.showModelInfo(choice, opts).catch((e: Error) => {
        $('#model-info').hidden = false;
        $('#model-info').replaceChildren(h('p', { class: 'muted' }, `(no model facts: ${e.message})`));
      });
      await this.refreshKv();
      void showCacheUsage();
      this.setEngineState('ready');
      $<HTMLTextAreaElement>('#prompt').focus();
    } catch (err) {
      engine?.dispose();
      this.loaded = undefined;
      this.setEngineState('failed');
      const { kind, message } = classifyError(err);
      const actions: Actions = [['Retry', () => void this.load(choice, opts, checked)]];
      if ((kind === 'f16' || kind === 'other') && (opts.weightDtype === 'f16' || opts.kvDtype === 'f16')) {
        // f16 weights become f32; block formats (q8, q4, a GGUF file's own) stay: then only the KV changes.
        const weightDtype = opts.weightDtype === 'f16' ? 'f32' : opts.weightDtype;
        actions.push([
          weightDtype === 'f32' ? 'Retry with f32' : 'Retry with f32 KV',
          () => this.reloadAs(choice, { ...opts, weightDtype, kvDtype: 'f32' }, checked),
        ]);
      }
      if (kind === 'memory' && plan && !plan.gguf && opts.weightDtype !== 'q4') {
        // The smallest format: the runtime's OutOfMemoryError says what did not fit at this one.
        const q4 = plan.formats.find((f) => f.dtype === 'q4');
        const retry = () => this.reloadAs(choice, { ...opts, weightDtype: 'q4' }, checked);
        actions.push([`Retry with q4 weights${q4 ? ` (${formatBytes(q4.bytes)})` : ''}`, retry]);
      }
      if (kind === 'memory' || kind === 'binding-limit' || kind === 'kv-full') {
        actions.push([
          'Retry with a 512-token context',
          () => void this.load(choice, { ...opts, maxContext: 512 }, checked),
        ]);
      }
      if (kind === 'storage-full') {
        const clearAndRetry = () => void clearModelCache().then(() => this.load(choice, opts, checked));
        actions.unshift(['Clear downloaded models and retry', clearAndRetry]);
      }
      if (choice.kind !== 'shipped') actions.push(['Load the default tiny model', loadDefault]);
      this.loadStatus('failed', [failureBox(kind, `Could not load ${name}: ${message}`, actions)]);
      if (kind === 'device-lost') document.body.dataset.gpu = 'lost';
    }
  }

  /** Loads again with other precision choices, and shows them in the menu. */
  private reloadAs(choice: ModelChoice, opts: LoadOptions, checked = false): void {
    $<HTMLSelectElement>('#weight-dtype').value = opts.weightDtype;
    $<HTMLSelectElement>('#kv-dtype').value = opts.kvDtype;
    const current = this.plan;
    if (current)
      void current.plan.then((p) => renderPrecisionNote(this.picker.form, p, this.gpuLimits)).catch(() => {});
    void this.load(choice, opts, checked);
  }

  private async showModelInfo(choice: ModelChoice, opts: LoadOptions): Promise<void> {
    const info = await describeModel(choice, opts.kvDtype, this.loaded?.plan);
    renderModelFacts($('#model-info'), info, opts);
    // A model without a chat template continues text; the checkbox follows the model.
    const box = field($<HTMLFormElement>('#sampling-form'), 'chatTemplate') as HTMLInputElement;
    box.checked = info.hasChatTemplate;
    box.disabled = !info.hasChatTemplate;
    $('#kv-per-token').textContent = formatBytes(info.kvBytesPerToken);
  }

  // ---------------------------------------------------------------- KV view and speed
  private onStep(s: StepInfo): void {
    this.steps.add(s);
    this.showSpeed();
    if (!this.kvPending) {
      this.kvPending = true;
      requestAnimationFrame(() => void this.refreshKv().finally(() => (this.kvPending = false)));
    }
  }

  private showSpeed(): void {
    const prefill = $('#prefill-rate');
    const decode = $('#decode-rate');
    prefill.textContent = formatRate(this.steps.prefillTokens, this.steps.prefillMs);
    decode.textContent = formatRate(this.steps.decodeTokens, this.steps.decodeMs);
    prefill.dataset.tokens = String(this.steps.prefillTokens);
    decode.dataset.tokens = String(this.steps.decodeTokens);
  }

  private async refreshKv(): Promise<void> {
    if (!this.loaded) return;
    let snap: Awaited<ReturnType<WorkerEngine['kvSnapshot']>>;
    try {
      snap = await this.loaded.engine.kvSnapshot();
    } catch {
      return; // the engine is going away; the next load redraws
    }
    const canvas = $<HTMLCanvasElement>('#kv-grid');
    const t = drawKvGrid(canvas, snap);
    // The sliding-window layers' pool (gemma2/3, mistral): its own grid, pages freed as they leave the window.
    const local = localSnapshot(snap);
    $('#kv-local').hidden = !local;
    $('#kv-local-used-row').hidden = !local;
    if (local && snap.local) {
      const localCanvas = $<HTMLCanvasElement>('#kv-grid-local');
      const lt = drawKvGrid(localCanvas, local);
      const peak = Math.max(Number(localCanvas.dataset.peakUsedPages ?? 0), lt.usedPages);
      localCanvas.dataset.peakUsedPages = String(peak);
      $('#kv-window').textContent = String(snap.local.window);
      $('#kv-local-used').textContent = `${pagesAndBytes(lt.usedPages, lt.usedBytes)} of ${snap.local.numPages}`;
    }
    renderKvLegend($('#kv-legend'), snap);
    $('#kv-page-size').textContent = String(snap.pageSize);
    $('#kv-used').textContent = pagesAndBytes(t.usedPages, t.usedBytes);
    $('#kv-free').textContent = pagesAndBytes(t.freePages, t.freeBytes);
    $('#kv-cached').textContent = pagesAndBytes(t.cachedPages, t.cachedBytes);
    // The most pages seen in use during this page's life: the test reads it after a reply ends.
    canvas.dataset.peakUsedPages = String(Math.max(Number(canvas.dataset.peakUsedPages ?? 0), t.usedPages));
  }

  // ---------------------------------------------------------------- chat
  private setupChat(): void {
    const form = $<HTMLFormElement>('#prompt-form');
    const prompt = $<HTMLTextAreaElement>('#prompt');
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.send();
    });
    prompt.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        void this.send();
      }
    });
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.busy) this.busy.abort();
    });
    $('#stop').addEventListener('click', () => this.busy?.abort());
    $('#clear').addEventListener('click', () => this.newChat());
    $('#sampling-form').addEventListener('submit', (e) => e.preventDefault());
    field($<HTMLFormElement>('#sampling-form'), 'n').title =
      'Several replies to one prompt: prefilled once, then forked; watch their shared prompt pages in the KV grid';
    addEventListener('resize', () => void this.refreshKv());
  }

  private readSampling(): Sampling {
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

  private async send(): Promise<void> {
    const promptEl = $<HTMLTextAreaElement>('#prompt');
    const text = promptEl.value.trim();
    if (!this.loaded || this.busy || !text) return;
    const { engine, choice } = this.loaded;
    const s = this.readSampling();
    promptEl.value = '';
    addMessage('user', 'You', text);
    const view = new ReplyView(modelName(choice), s.n);
    const controller = new AbortController();
    this.busy = controller;
    this.setEngineState('generating');
    this.steps.reset();
    this.showSpeed();
    const seed = s.seed ?? Math.floor(Math.random() * 2 ** 31);
    let finish: string | null = null;
    const usage = { completionTokens: 0, promptTokens: 0, cachedTokens: 0 };
    let droppedTurns = 0;
    try {
      if (s.chat) {
        // The conversation so far, less its oldest turns when it no longer fits the model's context
        // (the tiny models know 256 positions): the engine refuses such a request before any token.
        const request = async (messages: ChatMessage[]) => {
          const stream = await engine.chat.completions.create({
            messages,
            stream: true,
            max_tokens: s.maxTokens,
            temperature: s.temperature,
            top_p: s.topP,
            seed,
            n: s.n,
            signal: controller.signal,
          });
          for await (const chunk of stream) {
            for (const c of chunk.choices) {
              view.append(c.delta.content ?? '', c.index);
              if (c.finish_reason) finish = c.finish_reason;
            }
            if (chunk.usage) {
              usage.completionTokens = chunk.usage.completion_tokens;
              usage.promptTokens = chunk.usage.prompt_tokens;
              usage.cachedTokens = chunk.usage.prompt_tokens_details.cached_tokens;
            }
          }
          return view.text;
        };
        const tooLong = (err: unknown) => !view.text && classifyError(err).kind === 'kv-full';
        ({ droppedTurns } = await this.conversation.send(text, request, tooLong));
      } else {
        const stream: AsyncIterable<GenerateChunk> = engine.generate(text, {
          maxTokens: s.maxTokens,
          temperature: s.temperature,
          topP: s.topP,
          seed,
          n: s.n,
          signal: controller.signal,
          label: text.slice(0, 24),
        });
        for await (const c of stream) {
          view.append(c.text, c.index);
          if (c.finishReason) finish = c.finishReason;
          if (c.usage) {
            usage.completionTokens = c.usage.completionTokens;
            usage.promptTokens = c.usage.promptTokens;
            usage.cachedTokens = c.usage.cachedPromptTokens;
          }
        }
        this.conversation.clear();
      }
      view.done();
    } catch (err) {
      const { kind, message } = classifyError(err);
      if (kind === 'abort' || controller.signal.aborted) {
        finish = 'abort';
        view.done();
      } else {
        view.fail(failureBox(kind, message, this.replyFailureActions(kind, text)));
        if (kind === 'device-lost') {
          document.body.dataset.gpu = 'lost';
          showNotice('error', 'The GPU device was lost', [h('p', {}, `${message}. ${adviceFor('device-lost')}`)]);
        }
      }
    } finally {
      this.busy = undefined;
      if (this.loaded) this.setEngineState('ready');
    }
    view.finish({ ...usage, finish, droppedTurns });
    $('#token-count').textContent = `${usage.promptTokens} in · ${usage.completionTokens} out`;
    void this.refreshKv();
    $<HTMLButtonElement>('#clear').disabled = false;
    if (document.activeElement === document.body || document.activeElement === $('#stop')) promptEl.focus();
  }

  /** The buttons under a failed reply. */
  private replyFailureActions(kind: ReturnType<typeof classifyError>['kind'], text: string): Actions {
    const actions: Actions = [];
    if (kind === 'kv-full') actions.push(['New chat', () => this.newChat()]);
    const last = this.lastChoice;
    if (kind === 'device-lost' && last) {
      actions.push(['Reload the model', () => void this.load(last, this.loaded?.opts ?? this.picker.loadOptions())]);
    }
    actions.push([
      'Try again',
      () => {
        $<HTMLTextAreaElement>('#prompt').value = text;
        void this.send();
      },
    ]);
    return actions;
  }

  private newChat(): void {
    this.busy?.abort();
    this.conversation.clear();
    $('#log').replaceChildren($('#log-empty'));
    $('#log-empty').hidden = false;
    this.setEngineState(this.loaded ? 'ready' : 'idle');
    $<HTMLTextAreaElement>('#prompt').focus();
  }
}

void new ChatPage().start();
