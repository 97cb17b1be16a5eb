/**
 * The engine: many requests served together over one model's paged KV cache.
 *
 * Requests enter a waiting queue; an async loop runs one step at a time while there is work:
 *   plan    running decodes first, then prefill chunks of running sequences, then new (or
 *           preempted) sequences, up to the token budget, maxSeqs and the free pages;
 *   forward ONE model step for the whole ragged batch (logits of each sequence's last new token);
 *   sample  each sequence whose fed tokens reached its end samples with its own seeded Sampler,
 *           streams the text through its own stream decoder and checks its stopping criteria.
 *
 * A sample is the unit of scheduling: `tokens` = prompt + generated so far, the cache holds the KV
 * of the first seqLen(seqId) of them, and each step feeds the next ones. So prefill, chunked
 * prefill, decode and recompute after preemption are one rule: feed what is missing, sample when
 * nothing is.
 *
 * Prefix reuse: a sequence is registered with cache.addSequence(seqId, tokens), which maps the
 * longest chain of cached full pages (never the last token). n > 1: the first sample is prefilled,
 * then cache.fork gives the others the same pages (copy-on-write when one writes a shared page).
 * Pool exhausted: the newest running sample newer than the one in need is preempted (pages
 * freed, requeued; its Sampler, decoder and stopping state are kept, so its output is unchanged).
 * Cancelling (AbortSignal, or leaving the `for await`) frees the request's pages at once.
 */
import { ShapeError, WebAttnError } from '../gpu/errors';
import type { GpuContext } from '../gpu/context';
import type { KvCacheManager } from '../kv/kvCacheManager';
import { Sampler, StoppingCriteria } from '../model/sampling';
import { Transformer, type StepSequence, type TransformerOptions } from '../model/transformer';
import type { ModelFiles } from '../sources/modelSource';
import { loadTokenizer, type StreamDecoder, type Tokenizer } from '../tokenizer/tokenizer';
import { Channel, yieldToEventLoop } from './channel';
import { chatCompletions } from './chat';
import { EngineRequestError } from './errors';
import type { ChatCompletions, EngineOptions, GenerateChunk, GenerateRequestOptions, KvSnapshot, StepInfo, Usage } from './types';

/** What the engine needs of a model: Transformer has it; tests use a fake with a real KvCacheManager. */
export interface EngineModel {
  readonly cache: KvCacheManager;
  readonly opts: Pick<Required<TransformerOptions>, 'pageSize' | 'maxTokens' | 'maxSeqs' | 'maxLogitRows' | 'maxContext' | 'numPages'>;
  readonly spec: { readonly vocabSize: number };
  readonly pool?: { readonly totalBytes: number };
  forward(seqs: readonly StepSequence[], opts?: { allRows?: boolean }): Promise<Float32Array>;
  destroy?(): void;
}

interface Request {
  id: number;
  label: string;
  promptIds: number[];
  maxTokens: number;
  n: number;
  stop: string[];
  ignoreEos: boolean;
  sampling: { temperature?: number; topK?: number; topP?: number; minP?: number; repetitionPenalty?: number; seed: number };
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

interface Sample {
  req: Request;
  index: number;
  seqId: number;
  /** prompt + generated so far. */
  tokens: number[];
  sampler: Sampler;
  stopping: StoppingCriteria;
  decoder: StreamDecoder;
  state: 'waiting' | 'running' | 'done';
  /** Was in a step that failed: runs alone until a step of its own succeeds. */
  suspect: boolean;
}

interface PlanItem {
  sample: Sample;
  take: number;
  pages: number;
}

const DEFAULT_MAX_TOKENS = 128;

/** Arrival order: older request first, then sample index. The newest is preempted first. */
const older = (a: Sample, b: Sample) => a.req.id - b.req.id || a.index - b.index;

function insertSorted(list: Sample[], s: Sample): void {
  let i = list.length;
  while (i > 0 && older(s, list[i - 1]) < 0) i--;
  list.splice(i, 0, s);
}

function remove(list: Sample[], s: Sample): boolean {
  const i = list.indexOf(s);
  if (i < 0) return false;
  list.splice(i, 1);
  return true;
}

export class Engine {
  readonly tokenizer: Tokenizer;
  readonly model: EngineModel;
  readonly chat: { completions: ChatCompletions };
  /** Called after every step (the demo's live view, the benchmark, tests counting prefill tokens). */
  onStep: ((s: StepInfo) => void) | null = null;
  /** Shown as `model` in chat completions. */
  readonly modelName: string;

  private readonly tokenBudget: number;
  private readonly running: Sample[] = []; // arrival order; hold pages
  private readonly waiting: Sample[] = []; // arrival order; hold no pages
  private nextRequestId = 1;
  private nextSeqId = 1;
  private stepCount = 0;
  private looping = false;
  private disposed = false;
  private readonly ownsModel: boolean;

  constructor(model: EngineModel, tokenizer: Tokenizer, opts: EngineOptions & { name?: string; ownsModel?: boolean } = {}) {
    this.model = model;
    this.tokenizer = tokenizer;
    this.modelName = opts.name ?? 'webattn';
    this.ownsModel = opts.ownsModel ?? false;
    const budget = opts.tokenBudget ?? model.opts.maxTokens;
    if (!(Number.isInteger(budget) && budget >= 1)) throw new ShapeError(`Engine: tokenBudget must be a positive integer, got ${budget}`);
    this.tokenBudget = Math.min(budget, model.opts.maxTokens);
    this.chat = { completions: chatCompletions(this) };
  }

  /** Loads the tokenizer and the model (Transformer.load with these options) from one folder's files. */
  static async load(ctx: GpuContext, files: ModelFiles, opts: EngineOptions = {}): Promise<Engine> {
    if (!files.tokenizer) throw new EngineRequestError(`${files.source}: tokenizer.json is missing; the engine needs it`);
    const tokenizer = loadTokenizer(files.tokenizer as object, (files.tokenizerConfig ?? {}) as object, {
      eosSources: [files.generationConfig as { eos_token_id?: number }, files.config as { eos_token_id?: number }],
    });
    const model = await Transformer.load(ctx, files, opts);
    return new Engine(model, tokenizer, { ...opts, name: files.source.split('/').filter(Boolean).pop() ?? files.source, ownsModel: true });
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
      channel.fail(e instanceof WebAttnError ? e : new EngineRequestError(`request ${id}: ${(e as Error).message}`, { cause: e }));
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
    insertSorted(this.waiting, req.samples[0]);
    this.wake();
    return channel;
  }

  /** Who holds which page now, for the demo's KV grid. */
  kvSnapshot(): KvSnapshot {
    const { cache, opts } = this.model;
    const numPages = cache.numPages;
    const owner = new Int32Array(numPages).fill(-1);
    const refCount = new Uint8Array(numPages);
    const cached = new Uint8Array(numPages);
    const fill = new Uint8Array(numPages);
    const requests: KvSnapshot['requests'] = [];
    for (const s of this.running) {
      if (!cache.has(s.seqId)) continue;
      const table = cache.blockTable(s.seqId);
      const len = cache.seqLen(s.seqId);
      table.forEach((p, i) => {
        if (owner[p] < 0) owner[p] = s.req.id;
        fill[p] = Math.max(fill[p], Math.min(opts.pageSize, len - i * opts.pageSize));
      });
      requests.push({ requestId: s.req.id, index: s.index, label: s.req.label, tokens: cache.seqLen(s.seqId), pages: table.length });
    }
    for (let p = 0; p < numPages; p++) {
      const rc = cache.pageRefCount(p);
      refCount[p] = Math.min(255, rc);
      cached[p] = rc === 0 && cache.isPageCached(p) ? 1 : 0;
    }
    const bytesPerPage = this.model.pool ? this.model.pool.totalBytes / numPages : 0;
    return { pageSize: opts.pageSize, numPages, bytesPerPage, owner, refCount, cached, fill, requests };
  }

  /** Requests still queued or running. */
  get pendingRequests(): number {
    const ids = new Set<number>();
    for (const s of [...this.running, ...this.waiting]) ids.add(s.req.id);
    return ids.size;
  }

  /** Cancels everything (each iterator ends with finishReason 'abort') and frees the model if the engine loaded it. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const reqs = new Set<Request>([...this.running, ...this.waiting].map((s) => s.req));
    for (const r of reqs) this.cancel(r, true);
    if (this.ownsModel) this.model.destroy?.();
  }

  // ---- requests ----

  private makeRequest(id: number, prompt: string | readonly number[], o: GenerateRequestOptions, channel: Channel<GenerateChunk>): Request {
    if (this.disposed) throw new EngineRequestError(`request ${id}: the engine was disposed`);
    const { opts, spec } = this.model;
    const where = `request ${id}`;
    const promptIds = typeof prompt === 'string' ? this.tokenizer.encode(prompt) : Array.from(prompt);
    if (promptIds.length === 0) throw new EngineRequestError(`${where}: the prompt has no tokens`);
    for (const t of promptIds) {
      if (!(Number.isInteger(t) && t >= 0 && t < spec.vocabSize)) throw new EngineRequestError(`${where}: token id ${t} is outside the vocabulary (0..${spec.vocabSize - 1})`);
    }
    const maxTokens = o.maxTokens ?? DEFAULT_MAX_TOKENS;
    if (!(Number.isInteger(maxTokens) && maxTokens >= 1)) throw new EngineRequestError(`${where}: maxTokens must be an integer >= 1, got ${maxTokens}`);
    const n = o.n ?? 1;
    if (!(Number.isInteger(n) && n >= 1 && n <= 255)) throw new EngineRequestError(`${where}: n must be an integer in 1..255, got ${n}`);
    const total = promptIds.length + maxTokens;
    if (total > opts.maxContext) {
      throw new EngineRequestError(`${where}: ${promptIds.length} prompt tokens + ${maxTokens} max tokens = ${total} pass the context of ${opts.maxContext}`);
    }
    // The last sampled token is never fed, so a sample holds at most total - 1 tokens of KV.
    const pages = Math.ceil((total - 1) / opts.pageSize);
    if (pages > this.model.cache.numPages) {
      throw new EngineRequestError(`${where}: ${total - 1} tokens need ${pages} KV pages, the pool has ${this.model.cache.numPages}`);
    }
    const seed = o.seed ?? 0;
    const sampling = { temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP, repetitionPenalty: o.repetitionPenalty, seed };
    const label = o.label ?? (typeof prompt === 'string' ? prompt.slice(0, 32) : `#${id}`);
    const req: Request = {
      id, label, promptIds, maxTokens, n, stop: o.stop ?? [], ignoreEos: o.ignoreEos ?? false, sampling, channel, samples: [], pendingForks: n - 1,
      finished: new Set(), usage: { promptTokens: promptIds.length, completionTokens: 0, cachedPromptTokens: 0 },
      cachedKnown: false, done: false, detach: () => {},
    };
    req.samples.push(this.makeSample(req, 0, promptIds.slice())); // validates the sampling options
    return req;
  }

  private makeSample(req: Request, index: number, tokens: number[]): Sample {
    const sampler = new Sampler(this.model.spec.vocabSize, { ...req.sampling, seed: (req.sampling.seed + index) >>> 0 });
    const stopping = new StoppingCriteria({ eosTokenIds: req.ignoreEos ? [] : this.tokenizer.eosTokenIds, maxNewTokens: req.maxTokens, stopStrings: req.stop });
    const decoder = this.tokenizer.createStreamDecoder({ skipSpecialTokens: true });
    return { req, index, seqId: this.nextSeqId++, tokens, sampler, stopping, decoder, state: 'waiting', suspect: false };
  }

  /** Frees every sample's pages now; with `notify`, each unfinished sample ends with finishReason 'abort'. */
  private cancel(req: Request, notify: boolean): void {
    if (req.done) return;
    for (const s of req.samples) this.release(s);
    if (notify) {
      for (let i = 0; i < req.n; i++) {
        if (req.finished.has(i)) continue;
        req.finished.add(i);
        this.emit(req, { requestId: req.id, index: i, tokenId: -1, text: '', finishReason: 'abort' });
      }
    }
    this.finish(req);
  }

  private fail(req: Request, e: unknown): void {
    if (req.done) return;
    for (const s of req.samples) this.release(s);
    req.done = true;
    req.detach();
    const msg = e instanceof Error ? e.message : String(e);
    req.channel.fail(new EngineRequestError(`request ${req.id}: ${msg}`, { cause: e }));
  }

  /** The sample leaves the queues and its pages go back to the pool (or the prefix cache). */
  private release(s: Sample): void {
    if (s.state === 'done') return;
    remove(this.running, s) || remove(this.waiting, s);
    if (this.model.cache.has(s.seqId)) this.model.cache.free(s.seqId);
    s.state = 'done';
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
        if (this.disposed || (this.running.length === 0 && this.waiting.length === 0)) break;
        await this.step();
      }
    } finally {
      this.looping = false;
    }
  }

  private async step(): Promise<void> {
    const t0 = performance.now();
    const { plan, preempted } = this.plan();
    if (plan.length === 0) {
      // Nothing can run: only possible if the head of the queue can never get its pages.
      const head = this.waiting[0] ?? this.running[0];
      if (head) this.fail(head.req, new Error('no KV pages can be found for it even with every other sequence preempted'));
      return;
    }
    const seqs: StepSequence[] = [];
    let prefillTokens = 0;
    let decodeTokens = 0;
    for (const p of plan) {
      const start = this.model.cache.seqLen(p.sample.seqId);
      seqs.push({ seqId: p.sample.seqId, tokenIds: p.sample.tokens.slice(start, start + p.take) });
      const isDecode = p.take === 1 && p.sample.tokens.length > p.sample.req.promptIds.length && start === p.sample.tokens.length - 1;
      if (isDecode) decodeTokens++;
      else prefillTokens += p.take;
    }
    let logits: Float32Array;
    try {
      logits = await this.model.forward(seqs);
    } catch (e) {
      // The step's K/V may be unwritten while its full pages already sit in the prefix cache:
      // drop them (and the sequences' pages) before anything can match them.
      for (const p of plan) if (this.model.cache.has(p.sample.seqId)) this.model.cache.free(p.sample.seqId, { discardCached: true });
      // Which sequence broke the step? Alone, it fails its request; together, every one of them
      // is requeued (recomputed from scratch) and then runs alone until a step of its own succeeds.
      if (plan.length === 1) this.fail(plan[0].sample.req, e);
      else {
        for (const p of plan) {
          if (p.sample.state !== 'running') continue;
          this.preempt(p.sample);
          p.sample.suspect = true;
        }
      }
      this.report(t0, prefillTokens, decodeTokens, preempted);
      return;
    }
    for (const p of plan) p.sample.suspect = false;
    const V = this.model.spec.vocabSize;
    plan.forEach((p, i) => {
      const s = p.sample;
      if (s.state !== 'running' || s.req.done) return; // cancelled while the step ran
      if (this.model.cache.seqLen(s.seqId) < s.tokens.length) return; // a prefill chunk, not the end yet
      try {
        this.sampleNext(s, logits.subarray(i * V, (i + 1) * V));
      } catch (e) {
        this.fail(s.req, e);
      }
    });
    this.report(t0, prefillTokens, decodeTokens, preempted);
  }

  private report(t0: number, prefillTokens: number, decodeTokens: number, preempted: number): void {
    const info: StepInfo = {
      step: this.stepCount++, prefillTokens, decodeTokens, ms: performance.now() - t0,
      running: this.running.length, waiting: this.waiting.length, preempted,
    };
    try {
      this.onStep?.(info);
    } catch {
      // a listener's bug must not stop the engine
    }
  }

  /**
   * This step's work. Pages are counted the way forward() counts them (the sum of each
   * sequence's pagesNeeded must not pass the free pages), so forward never refuses a plan.
   */
  private plan(): { plan: PlanItem[]; preempted: number } {
    const { cache, opts } = this.model;
    const plan: PlanItem[] = [];
    let budget = this.tokenBudget;
    let claimed = 0;
    let preempted = 0;
    const free = () => cache.stats().freePages - claimed;
    const unplan = (s: Sample) => {
      const i = plan.findIndex((p) => p.sample === s);
      if (i < 0) return;
      budget += plan[i].take;
      claimed -= plan[i].pages;
      plan.splice(i, 1);
    };
    const preempt = (s: Sample) => {
      unplan(s);
      this.preempt(s);
      preempted++;
    };
    /** Frees pages by preempting samples newer than s, newest first; false if still short. */
    const makeRoom = (s: Sample, pages: number): boolean => {
      while (pages > free()) {
        const victim = this.running[this.running.length - 1];
        if (victim === s || older(victim, s) < 0) return false;
        preempt(victim);
      }
      return true;
    };

    // 0. After a failed step: one suspect sequence at a time, alone.
    const suspect = this.waiting.find((s) => s.suspect);
    if (suspect) {
      while (this.running.length > 0) preempt(this.running[this.running.length - 1]);
      remove(this.waiting, suspect);
      cache.addSequence(suspect.seqId, suspect.tokens);
      suspect.state = 'running';
      insertSorted(this.running, suspect);
      const take = Math.min(suspect.tokens.length - cache.seqLen(suspect.seqId), budget);
      return { plan: [{ sample: suspect, take, pages: cache.pagesNeeded(suspect.seqId, take) }], preempted };
    }
    // 1. Decodes (one missing token), oldest first. A decode that cannot grow even with every
    //    newer sample preempted is itself preempted (it is then the newest).
    for (const s of [...this.running]) {
      if (s.state !== 'running' || plan.length >= opts.maxSeqs || budget === 0) continue;
      if (s.tokens.length - cache.seqLen(s.seqId) !== 1) continue;
      const pages = cache.pagesNeeded(s.seqId, 1);
      if (!makeRoom(s, pages)) {
        preempt(s);
        continue;
      }
      plan.push({ sample: s, take: 1, pages });
      budget -= 1;
      claimed += pages;
    }
    // 2. Prefill chunks of running samples; short of pages, newer samples make room, else it waits.
    for (const s of [...this.running]) {
      if (s.state !== 'running' || plan.length >= opts.maxSeqs || budget === 0) continue;
      const missing = s.tokens.length - cache.seqLen(s.seqId);
      if (missing <= 1) continue;
      const take = Math.min(missing, budget);
      const pages = cache.pagesNeeded(s.seqId, take);
      if (!makeRoom(s, pages)) continue;
      plan.push({ sample: s, take, pages });
      budget -= take;
      claimed += pages;
    }
    // 3. Admit waiting samples (preempted ones are older, so they come first) while pages last.
    while (this.waiting.length > 0 && plan.length < opts.maxSeqs && budget > 0) {
      const s = this.waiting[0];
      const { cachedTokens } = cache.addSequence(s.seqId, s.tokens);
      const take = Math.min(s.tokens.length - cachedTokens, budget);
      const pages = cache.pagesNeeded(s.seqId, take);
      if (pages > free()) {
        cache.free(s.seqId); // undo; wait for pages (admission never preempts)
        break;
      }
      this.waiting.shift();
      s.state = 'running';
      insertSorted(this.running, s);
      if (!s.req.cachedKnown) {
        s.req.cachedKnown = true;
        s.req.usage.cachedPromptTokens = cachedTokens;
      }
      plan.push({ sample: s, take, pages });
      budget -= take;
      claimed += pages;
    }
    return { plan, preempted };
  }

  /** Back to the waiting queue without pages; its sampler, decoder and stopping state are kept. */
  private preempt(s: Sample): void {
    remove(this.running, s);
    if (this.model.cache.has(s.seqId)) this.model.cache.free(s.seqId);
    s.state = 'waiting';
    insertSorted(this.waiting, s);
  }

  /** The sample's next token from its logits row; forks the other samples after the first prefill. */
  private sampleNext(s: Sample, row: Float32Array): void {
    const req = s.req;
    if (req.pendingForks > 0 && s.index === 0) {
      // The prompt is in the cache once: the other samples share its pages.
      for (let i = 1; i < req.n; i++) {
        const child = this.makeSample(req, i, req.promptIds.slice());
        this.model.cache.fork(s.seqId, child.seqId);
        child.state = 'running';
        req.samples.push(child);
        insertSorted(this.running, child);
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
    this.release(s);
    req.finished.add(s.index);
    this.emit(req, { requestId: req.id, index: s.index, tokenId: next, text: text + tail, finishReason: stop === 'max_tokens' ? 'length' : 'stop' });
    if (req.finished.size === req.n) this.finish(req);
  }
}
