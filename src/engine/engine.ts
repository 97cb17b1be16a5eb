/**
 * The engine: many requests served together over one model's paged KV cache. It keeps the API and
 * the request lifecycle; the Scheduler (scheduler.ts) owns the KV cache and plans each step.
 *
 * Requests enter the scheduler's waiting queue; an async loop runs one step at a time while there
 * is work:
 *   schedule  the scheduler picks running decodes, then prefill chunks, then new (or preempted)
 *             sequences, up to the token budget, maxSeqs and the free pages, appends their slots
 *             and emits the step's StepBatch (one logits row per sequence);
 *   forward   ONE model step for the whole ragged batch;
 *   sample    each sequence whose tokens all have KV now samples with its own seeded Sampler,
 *             streams the text through its own stream decoder and checks its stopping criteria.
 *
 * A sample is the unit of scheduling (a ScheduledSequence): `tokens` = prompt + generated so far.
 * n > 1: the first sample is prefilled, then the scheduler forks it for the others (pages shared,
 * copy-on-write). A preempted sample keeps its Sampler, decoder and stopping state here, so its
 * output is unchanged when it is recomputed. Cancelling (AbortSignal, or leaving the `for await`)
 * frees the request's pages at once.
 *
 * The KV pages: Engine.load / Engine.forModel make the GPU pool from the model's spec, bind it to
 * the model and destroy it on dispose; `new Engine(model, tokenizer, kv)` takes any model that runs
 * a StepBatch (tests: a GPU-free fake) and just the number of pages to schedule.
 */
import { ShapeError, WebAttnError } from '../gpu/errors';
import type { GpuContext } from '../gpu/context';
import type { StepBatch } from '../kernels/stepBatch';
import { MAX_SEED, Sampler } from '../model/sampler';
import { StoppingCriteria } from '../model/stoppingCriteria';
import { Transformer, type TransformerOptions } from '../model/transformer';
import { ggufModelFiles } from '../model/ggufModelFiles';
import { checkIntegerOption, checkTransformerOptions } from '../model/transformerOptions';
import type { ModelFiles } from '../sources/modelSource';
import { loadTokenizer, type StreamDecoder, type Tokenizer } from '../tokenizer/tokenizer';
import { Channel, yieldToEventLoop } from './channel';
import { chatCompletions } from './chat';
import { EngineRequestError, NonFiniteLogitsError } from './errors';
import type { KvCacheManager } from '../kv/kvCacheManager';
import { Scheduler, type ScheduledSequence, type ScheduledStep } from './scheduler';
import { bindKvPools } from './stepRunner';
import type {
  ChatCompletions,
  EngineOptions,
  GenerateChunk,
  GenerateRequestOptions,
  KvSnapshot,
  StepInfo,
  Usage,
} from './types';

/** What the engine needs of a model: what it is sized for, its vocabulary, and a step. Transformer has it. */
export interface EngineModel {
  readonly opts: Pick<
    Required<TransformerOptions>,
    'pageSize' | 'maxTokens' | 'maxSeqs' | 'maxLogitRows' | 'maxContext'
  >;
  readonly spec: { readonly vocabSize: number };
  /** Logits of the batch's logit rows, [logitRows.length][vocab]. */
  forward(batch: StepBatch): Promise<Float32Array>;
  destroy?(): void;
}

/** The KV pages the engine schedules. */
export interface EngineKv {
  /** Pages in the pool. */
  numPages: number;
  /** Bytes of one page over all layers, K and V (kvSnapshot; 0 if unknown). */
  bytesPerPage: number;
  /** Called on dispose: frees the pool (Engine.forModel's GPU pages). */
  destroy?(): void;
  /**
   * The sliding-window layers' own pool (see SchedulerOptions.local): its pages (one pinned), the
   * window, bytes of one page over those layers. Absent: every layer's pages are the pool above.
   */
  local?: { numPages: number; window: number; bytesPerPage: number };
}

/** Engine options that are not the model's: how it was made and who frees the model. */
export interface EngineSetup extends EngineOptions {
  /** Shown as `model` in chat completions. */
  name?: string;
  /** Destroy the model on dispose (Engine.load does). */
  ownsModel?: boolean;
}

interface Request {
  id: number;
  label: string;
  promptIds: number[];
  maxTokens: number;
  n: number;
  stop: string[];
  ignoreEos: boolean;
  sampling: {
    temperature?: number;
    topK?: number;
    topP?: number;
    minP?: number;
    repetitionPenalty?: number;
    seed: number;
  };
  channel: Channel<GenerateChunk>;
  samples: Sample[];
  /** Samples not forked yet (n - 1 until the first sample's prefill ends). */
  pendingForks: number;
  finished: Set<number>;
  usage: Usage;
  cachedKnown: boolean;
  done: boolean;
  detach: () => void;
}

/** A sample: the scheduler's sequence plus what the engine keeps across preemption. */
interface Sample extends ScheduledSequence {
  req: Request;
  sampler: Sampler;
  stopping: StoppingCriteria;
  decoder: StreamDecoder;
}

const DEFAULT_MAX_TOKENS = 128;
/** Most pages an engine may be asked for (the binding limit usually caps it far lower: Transformer.maxKvPages). */
const MAX_PAGES = 1 << 24;

/** The engine's own options (the model's are checked by checkTransformerOptions): ranges named. */
function checkEngineOptions(opts: EngineOptions, where: string): void {
  checkIntegerOption(where, 'tokenBudget', opts.tokenBudget, 1, 1 << 20);
  checkIntegerOption(where, 'numPages', opts.numPages, 1, MAX_PAGES);
}

const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : String(v));

/** `stop` as OpenAI takes it: one string or a list of them (non-empty strings). */
function stopStrings(stop: unknown, where: string): string[] {
  if (stop === undefined || stop === null) return [];
  const list = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(list) || list.some((x) => typeof x !== 'string' || x === ''))
    throw new EngineRequestError(`${where}: stop must be a non-empty string or a list of them, got ${show(stop)}`);
  return list.slice();
}

/** The first value of `row` that is NaN or ±Infinity, or -1. */
function firstNonFinite(row: Float32Array): number {
  for (let i = 0; i < row.length; i++) if (!Number.isFinite(row[i])) return i;
  return -1;
}

export class Engine {
  readonly tokenizer: Tokenizer;
  readonly model: EngineModel;
  readonly chat: { completions: ChatCompletions };
  /** Called after every step (the demo's live view, the benchmark, tests counting prefill tokens). */
  onStep: ((s: StepInfo) => void) | null = null;
  /** Shown as `model` in chat completions. */
  readonly modelName: string;

  private readonly sched: Scheduler<Sample>;
  private readonly kv: EngineKv;
  private nextRequestId = 1;
  private nextSeqId = 1;
  private stepCount = 0;
  private looping = false;
  private disposed = false;
  private readonly ownsModel: boolean;

  constructor(model: EngineModel, tokenizer: Tokenizer, kv: EngineKv, opts: EngineSetup = {}) {
    this.model = model;
    this.tokenizer = tokenizer;
    this.kv = kv;
    this.modelName = opts.name ?? 'webattn';
    this.ownsModel = opts.ownsModel ?? false;
    checkEngineOptions(opts, 'Engine');
    if (!(Number.isInteger(kv.numPages) && kv.numPages >= 1))
      throw new ShapeError(`Engine: the KV pool must hold an integer >= 1 of pages, got ${kv.numPages}`);
    const budget = opts.tokenBudget ?? model.opts.maxTokens;
    const { pageSize, maxTokens, maxSeqs, maxLogitRows, maxContext } = model.opts;
    this.sched = new Scheduler<Sample>({
      numPages: kv.numPages,
      pageSize,
      maxTokens,
      maxSeqs,
      maxLogitRows,
      maxContext,
      tokenBudget: budget,
      vocabSize: model.spec.vocabSize,
      local: kv.local ? { numPages: kv.local.numPages, window: kv.local.window } : undefined,
    });
    this.chat = { completions: chatCompletions(this) };
  }

  /** Loads the tokenizer and the model (Transformer.load with these options) from one folder's files. */
  static async load(ctx: GpuContext, files: ModelFiles, opts: EngineOptions = {}): Promise<Engine> {
    checkTransformerOptions(opts, 'Engine.load');
    checkEngineOptions(opts, 'Engine.load');
    files = ggufModelFiles(files); // a GGUF file reads as the HF folder it was converted from
    if (!files.tokenizer) {
      const what = files.gguf ? 'the GGUF file has no tokenizer (tokenizer.ggml.model)' : 'tokenizer.json is missing';
      throw new EngineRequestError(`${files.source}: ${what}; the engine needs it`);
    }
    const tokenizer = loadTokenizer(files.tokenizer as object, (files.tokenizerConfig ?? {}) as object, {
      eosSources: [files.generationConfig as { eos_token_id?: number }, files.config as { eos_token_id?: number }],
    });
    const model = await Transformer.load(ctx, files, opts);
    try {
      const name = files.source.split('/').filter(Boolean).pop() ?? files.source;
      return await Engine.forModel(model, tokenizer, { ...opts, name, ownsModel: true });
    } catch (e) {
      model.destroy();
      throw e;
    }
  }

  /**
   * An engine over a loaded model: makes its KV pool (opts.numPages pages, by default what maxSeqs
   * sequences of maxContext tokens need, capped by the binding limit), binds it to the model and
   * destroys it on dispose. The model serves one owner at a time.
   */
  static async forModel(model: Transformer, tokenizer: Tokenizer, opts: EngineSetup = {}): Promise<Engine> {
    checkEngineOptions(opts, 'Engine.forModel');
    if (opts.numPages !== undefined && opts.numPages > model.maxKvPages) {
      throw new ShapeError(
        `Engine.forModel: numPages must be in 1..${model.maxKvPages} for this model on this device ` +
          `(a layer's K pages span at most 4 storage bindings, 1 where the device binds fewer than 16 storage ` +
          `buffers per stage), got ${opts.numPages}`,
      );
    }
    const pools = await bindKvPools(model, opts.numPages); // sliding-window layers: a pool of their own
    const kv: EngineKv = {
      numPages: pools.pool.spec.numPages,
      bytesPerPage: pools.bytesPerPage,
      destroy: pools.destroy,
      local: pools.local
        ? { numPages: pools.local.spec.numPages, window: pools.window, bytesPerPage: pools.localBytesPerPage }
        : undefined,
    };
    try {
      return new Engine(model, tokenizer, kv, opts);
    } catch (e) {
      kv.destroy!();
      throw e;
    }
  }

  /** The scheduler and its KV bookkeeping (read it: stats, validate; the engine changes it). */
  get scheduler(): Scheduler {
    return this.sched;
  }

  /** Bytes of one KV page over all layers, K and V. */
  get kvBytesPerPage(): number {
    return this.kv.bytesPerPage;
  }

  /**
   * Queues a request now and streams its chunks. A string prompt is encoded with the tokenizer's
   * special tokens (BOS); ids are taken as they are. A request that can never fit, or has bad
   * options, makes the iterator throw an EngineRequestError; other requests are not affected.
   */
  generate(prompt: string | readonly number[], opts: GenerateRequestOptions = {}): AsyncIterable<GenerateChunk> {
    const channel = new Channel<GenerateChunk>();
    const id = this.nextRequestId++;
    let req: Request;
    try {
      req = this.makeRequest(id, prompt, opts, channel);
    } catch (e) {
      channel.fail(
        e instanceof WebAttnError ? e : new EngineRequestError(`request ${id}: ${(e as Error).message}`, { cause: e }),
      );
      return channel;
    }
    channel.onReturn = () => this.cancel(req, false);
    if (opts.signal?.aborted) {
      this.cancel(req, true);
      return channel;
    }
    if (opts.signal) {
      const onAbort = () => this.cancel(req, true);
      opts.signal.addEventListener('abort', onAbort, { once: true });
      req.detach = () => opts.signal!.removeEventListener('abort', onAbort);
    }
    this.sched.enqueue(req.samples[0]);
    this.wake();
    return channel;
  }

  /**
   * Who holds which page now, for the demo's KV grid; with a sliding-window pool, its pages too
   * (`local`: there a sequence holds only the pages its window still reads).
   */
  kvSnapshot(): KvSnapshot {
    const snap = this.groupSnapshot(this.sched.cache, this.kv.bytesPerPage);
    const local = this.sched.localCache;
    if (local && this.kv.local) {
      const { owner, refCount, cached, fill, requests, numPages, bytesPerPage } = this.groupSnapshot(
        local,
        this.kv.local.bytesPerPage,
      );
      snap.local = { numPages, bytesPerPage, window: local.window!, owner, refCount, cached, fill: fill!, requests };
    }
    return snap;
  }

  /** One page group's snapshot (a dropped page of a sliding-window group maps to its pinned page: skipped). */
  private groupSnapshot(cache: KvCacheManager, bytesPerPage: number): KvSnapshot {
    const { pageSize } = this.model.opts;
    const numPages = cache.numPages;
    const owner = new Int32Array(numPages).fill(-1);
    const refCount = new Uint8Array(numPages);
    const cached = new Uint8Array(numPages);
    const fill = new Uint8Array(numPages);
    const requests: KvSnapshot['requests'] = [];
    for (const s of this.sched.running) {
      if (!cache.has(s.seqId)) continue;
      const table = cache.blockTable(s.seqId);
      const len = cache.seqLen(s.seqId);
      table.forEach((p, i) => {
        if (p === cache.pinnedPage) return;
        if (owner[p] < 0) owner[p] = s.req.id;
        fill[p] = Math.max(fill[p], Math.min(pageSize, len - i * pageSize));
      });
      const pages = cache.livePages(s.seqId);
      requests.push({ requestId: s.req.id, index: s.index, label: s.req.label, tokens: len, pages });
    }
    for (let p = 0; p < numPages; p++) {
      const rc = p === cache.pinnedPage ? 0 : cache.pageRefCount(p);
      refCount[p] = Math.min(255, rc);
      cached[p] = rc === 0 && cache.isPageCached(p) ? 1 : 0;
    }
    return { pageSize, numPages, bytesPerPage, owner, refCount, cached, fill, requests };
  }

  /** Requests still queued or running. */
  get pendingRequests(): number {
    const ids = new Set<number>();
    for (const s of [...this.sched.running, ...this.sched.waiting]) ids.add(s.req.id);
    return ids.size;
  }

  /**
   * Cancels everything (each iterator ends with finishReason 'abort'), frees the KV pool if the
   * engine made it, and the model if the engine loaded it.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const reqs = new Set<Request>([...this.sched.running, ...this.sched.waiting].map((s) => s.req));
    for (const r of reqs) this.cancel(r, true);
    this.kv.destroy?.();
    if (this.ownsModel) this.model.destroy?.();
  }

  // ---- requests ----

  private makeRequest(
    id: number,
    prompt: string | readonly number[],
    o: GenerateRequestOptions,
    channel: Channel<GenerateChunk>,
  ): Request {
    if (this.disposed) throw new EngineRequestError(`request ${id}: the engine was disposed`);
    const { opts, spec } = this.model;
    const where = `request ${id}`;
    const promptIds = typeof prompt === 'string' ? this.tokenizer.encode(prompt) : Array.from(prompt);
    if (promptIds.length === 0) throw new EngineRequestError(`${where}: the prompt has no tokens`);
    for (const t of promptIds) {
      if (!(Number.isInteger(t) && t >= 0 && t < spec.vocabSize))
        throw new EngineRequestError(`${where}: token id ${t} is outside the vocabulary (0..${spec.vocabSize - 1})`);
    }
    const maxTokens = o.maxTokens ?? DEFAULT_MAX_TOKENS;
    if (!(Number.isInteger(maxTokens) && maxTokens >= 1))
      throw new EngineRequestError(`${where}: maxTokens must be an integer >= 1, got ${show(maxTokens)}`);
    const n = o.n ?? 1;
    if (!(Number.isInteger(n) && n >= 1 && n <= 255))
      throw new EngineRequestError(`${where}: n must be an integer in 1..255, got ${show(n)}`);
    const total = promptIds.length + maxTokens;
    if (total > opts.maxContext) {
      throw new EngineRequestError(
        `${where}: ${promptIds.length} prompt tokens + ${maxTokens} max tokens = ${total} ` +
          `pass the context of ${opts.maxContext}`,
      );
    }
    // The last sampled token is never fed, so a sample holds at most total - 1 tokens of KV.
    const pages = Math.ceil((total - 1) / opts.pageSize);
    const numPages = this.sched.cache.numPages;
    if (pages > numPages) {
      throw new EngineRequestError(`${where}: ${total - 1} tokens need ${pages} KV pages, the pool has ${numPages}`);
    }
    const seed = o.seed ?? 0;
    if (!(Number.isInteger(seed) && seed >= 0 && seed <= MAX_SEED))
      throw new EngineRequestError(`${where}: seed must be an integer in 0..${MAX_SEED}, got ${show(seed)}`);
    for (const name of ['temperature', 'topK', 'topP', 'minP', 'repetitionPenalty'] as const) {
      const v: unknown = o[name];
      if (v !== undefined && typeof v !== 'number')
        throw new EngineRequestError(`${where}: ${name} must be a number, got ${show(v)}`);
    }
    const stop = stopStrings(o.stop, where);
    const sampling = {
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      minP: o.minP,
      repetitionPenalty: o.repetitionPenalty,
      seed,
    };
    const label = o.label ?? (typeof prompt === 'string' ? prompt.slice(0, 32) : `#${id}`);
    const req: Request = {
      id,
      label,
      promptIds,
      maxTokens,
      n,
      stop,
      ignoreEos: o.ignoreEos ?? false,
      sampling,
      channel,
      samples: [],
      pendingForks: n - 1,
      finished: new Set(),
      usage: { promptTokens: promptIds.length, completionTokens: 0, cachedPromptTokens: 0 },
      cachedKnown: false,
      done: false,
      detach: () => {},
    };
    req.samples.push(this.makeSample(req, 0)); // validates the sampling options
    return req;
  }

  private makeSample(req: Request, index: number): Sample {
    const sampler = new Sampler(this.model.spec.vocabSize, {
      ...req.sampling,
      seed: (req.sampling.seed + index) % (MAX_SEED + 1), // sample i: seed + i, wrapping at 2^32
    });
    const stopping = new StoppingCriteria({
      eosTokenIds: req.ignoreEos ? [] : this.tokenizer.eosTokenIds,
      maxNewTokens: req.maxTokens,
      stopStrings: req.stop,
    });
    const decoder = this.tokenizer.createStreamDecoder({ skipSpecialTokens: true });
    return {
      seqId: this.nextSeqId++,
      request: req.id,
      index,
      tokens: req.promptIds.slice(),
      promptLength: req.promptIds.length,
      state: 'waiting',
      suspect: false,
      req,
      sampler,
      stopping,
      decoder,
    };
  }

  /** Frees every sample's pages now; with `notify`, each unfinished sample ends with finishReason 'abort'. */
  private cancel(req: Request, notify: boolean): void {
    if (req.done) return;
    for (const s of req.samples) this.sched.release(s);
    if (notify) {
      for (let i = 0; i < req.n; i++) {
        if (req.finished.has(i)) continue;
        req.finished.add(i);
        this.emit(req, { requestId: req.id, index: i, tokenId: -1, text: '', finishReason: 'abort' });
      }
    }
    this.finish(req);
  }

  /** Ends the request with an error; `discardCached`: its pages leave the prefix cache (their K/V is suspect). */
  private fail(req: Request, e: unknown, { discardCached = false } = {}): void {
    if (req.done) return;
    for (const s of req.samples) {
      if (discardCached && s.state === 'running') this.sched.freeSequence(s.seqId, { discardCached: true });
      this.sched.release(s);
    }
    req.done = true;
    req.detach();
    const msg = e instanceof Error ? e.message : String(e);
    const failure =
      e instanceof NonFiniteLogitsError
        ? new NonFiniteLogitsError(`request ${req.id}: ${msg}`, { cause: e })
        : new EngineRequestError(`request ${req.id}: ${msg}`, { cause: e });
    req.channel.fail(failure);
  }

  private finish(req: Request): void {
    if (req.done) return;
    req.done = true;
    req.detach();
    req.channel.close();
  }

  /** Pushes a chunk; the request's last one carries usage. */
  private emit(req: Request, chunk: GenerateChunk): void {
    if (chunk.finishReason !== null && req.finished.size === req.n) chunk.usage = { ...req.usage };
    req.channel.push(chunk);
  }

  // ---- the step loop ----

  private wake(): void {
    if (this.looping || this.disposed) return;
    this.looping = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        await yieldToEventLoop(); // requests queued in the same tick join the first step; aborts land between steps
        if (this.disposed || (this.sched.running.length === 0 && this.sched.waiting.length === 0)) break;
        await this.step();
      }
    } finally {
      this.looping = false;
    }
  }

  private async step(): Promise<void> {
    const t0 = performance.now();
    const step = this.sched.schedule();
    if (step.batch === null) {
      // Nothing can run: only possible if the head of the queue can never get its pages.
      const head = this.sched.waiting[0] ?? this.sched.running[0];
      if (head)
        this.fail(head.req, new Error('no KV pages can be found for it even with every other sequence preempted'));
      return;
    }
    for (const { seq, start } of step.items) {
      // A request's first item is its first sample's admission: it starts where the prefix cache ended.
      if (seq.req.cachedKnown) continue;
      seq.req.cachedKnown = true;
      seq.req.usage.cachedPromptTokens = start;
    }
    let logits: Float32Array;
    try {
      logits = await this.model.forward(step.batch);
    } catch (e) {
      // Which sequence broke the step? Alone, it fails its request; together, every one of them is
      // requeued (recomputed from scratch) and then runs alone until a step of its own succeeds.
      const culprit = this.sched.stepFailed(step);
      if (culprit) this.fail(culprit.req, e);
      this.report(t0, step);
      return;
    }
    this.sched.stepSucceeded(step);
    const V = this.model.spec.vocabSize;
    step.items.forEach(({ seq: s }, i) => {
      if (s.state !== 'running' || s.req.done) return; // cancelled while the step ran
      const row = logits.subarray(i * V, (i + 1) * V);
      // NaN / Inf logits (NaN weights, an overflow) would be sampled into fluent-looking text, and the
      // K/V this step wrote is as bad: fail the request and keep its pages out of the prefix cache.
      const bad = firstNonFinite(row);
      if (bad >= 0) {
        const why =
          `step ${this.stepCount} gave non-finite logits for sample ${s.index} ` +
          `(logit of token ${bad} is ${row[bad]}); the model's weights or a kernel produced NaN or Infinity`;
        this.fail(s.req, new NonFiniteLogitsError(why), { discardCached: true });
        return;
      }
      if (!this.sched.fedAll(s)) return; // a prefill chunk, not the end yet
      try {
        this.sampleNext(s, row);
      } catch (e) {
        this.fail(s.req, e);
      }
    });
    this.report(t0, step);
  }

  private report(t0: number, step: ScheduledStep<Sample>): void {
    const info: StepInfo = {
      step: this.stepCount++,
      prefillTokens: step.prefillTokens,
      decodeTokens: step.decodeTokens,
      ms: performance.now() - t0,
      running: this.sched.running.length,
      waiting: this.sched.waiting.length,
      preempted: step.preempted,
    };
    try {
      this.onStep?.(info);
    } catch {
      // a listener's bug must not stop the engine
    }
  }

  /** The sample's next token from its logits row; forks the other samples after the first prefill. */
  private sampleNext(s: Sample, row: Float32Array): void {
    const req = s.req;
    if (req.pendingForks > 0 && s.index === 0) {
      // The prompt is in the cache once: the other samples share its pages.
      for (let i = 1; i < req.n; i++) {
        const child = this.makeSample(req, i);
        req.samples.push(child);
        this.sched.fork(s, child);
      }
      req.pendingForks = 0;
      for (const c of req.samples) this.emitNext(c, row);
      return;
    }
    this.emitNext(s, row);
  }

  private emitNext(s: Sample, row: Float32Array): void {
    const req = s.req;
    const next = s.sampler.sample(row, s.tokens);
    s.tokens.push(next);
    req.usage.completionTokens++;
    const { text, stop } = s.stopping.step(next, s.decoder.push(next));
    if (stop === null) {
      this.emit(req, { requestId: req.id, index: s.index, tokenId: next, text, finishReason: null });
      return;
    }
    // Text held back (a possible stop-string prefix, an incomplete character) ends the stream
    // unless a stop string cut it.
    const tail = stop === 'stop_string' ? '' : s.stopping.flush() + s.decoder.flush();
    this.sched.release(s);
    req.finished.add(s.index);
    const finishReason = stop === 'max_tokens' ? 'length' : 'stop';
    this.emit(req, {
      requestId: req.id,
      index: s.index,
      tokenId: next,
      text: text + tail,
      finishReason,
      stopReason: stop,
    });
    if (req.finished.size === req.n) this.finish(req);
  }
}
