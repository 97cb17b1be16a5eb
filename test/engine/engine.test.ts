/**
 * Engine scheduling on a GPU-free fake model (test/engine/fakeModel.ts, no KV bookkeeping) with the
 * engine's scheduler owning a real KvCacheManager: 1,000 random requests with random lengths, forks,
 * cancellations and refusals leave the pool exactly as it started; preemption under a tiny pool
 * changes no output; a failing step fails only its requests; the chat API's shapes.
 */
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import type { ChatUsage, GenerateChunk, GenerateRequestOptions, StepInfo } from '../../src/engine/types';
import { rng } from '../../src/reference/random';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { ID, tokenizerConfig, tokenizerJson } from '../helpers/tinyTokenizer';
import { FakeModel, type FakeOptions } from './fakeModel';

const tokenizer = loadTokenizer(tokenizerJson, tokenizerConfig);
const EOS = ID['<|im_end|>'];
const V = tokenizer.vocabSize;

function engineWith(o: Partial<FakeOptions> & { tokenBudget?: number } = {}) {
  const fo: FakeOptions = {
    vocabSize: V,
    pageSize: 4,
    numPages: 256,
    maxTokens: 32,
    maxSeqs: 8,
    maxContext: 128,
    boost: new Map([[EOS, 0.6]]),
    ...o,
  };
  const model = new FakeModel(fo);
  const engine = new Engine(
    model,
    tokenizer,
    { numPages: fo.numPages, bytesPerPage: 1024 },
    { tokenBudget: o.tokenBudget },
  );
  const steps: StepInfo[] = [];
  engine.onStep = (s) => steps.push(s);
  return { model, engine, steps };
}

interface Outcome {
  tokens: number[][];
  text: string[];
  finish: (string | null)[];
  usage?: GenerateChunk['usage'];
  error?: Error;
}

async function collect(
  it: AsyncIterable<GenerateChunk>,
  stopAfter = Infinity,
  onChunk?: (n: number) => void,
): Promise<Outcome> {
  const out: Outcome = { tokens: [], text: [], finish: [] };
  let n = 0;
  try {
    for await (const c of it) {
      out.tokens[c.index] ??= [];
      out.text[c.index] ??= '';
      if (c.tokenId >= 0) out.tokens[c.index].push(c.tokenId);
      out.text[c.index] += c.text;
      if (c.finishReason !== null) {
        expect(out.finish[c.index] ?? null).toBeNull(); // one finish per sample
        out.finish[c.index] = c.finishReason;
      }
      if (c.usage) out.usage = c.usage;
      onChunk?.(++n);
      if (n >= stopAfter) break;
    }
  } catch (e) {
    out.error = e as Error;
  }
  return out;
}

const randomPrompt = (r: () => number, len: number) => Array.from({ length: len }, () => Math.floor(r() * 260));

describe('engine on a fake model', () => {
  it('1,000 random requests (lengths, forks, cancellations, refusals) leave the pool as it started', async () => {
    const { engine, steps } = engineWith({ numPages: 48, pageSize: 4, tokenBudget: 24 });
    const r = rng(1234);
    const before = engine.scheduler.cache.stats();
    const shared = randomPrompt(r, 24); // a common prefix for some requests
    const tasks: Promise<void>[] = [];
    let refused = 0;
    let aborted = 0;
    let finished = 0;
    for (let i = 0; i < 1000; i++) {
      const len = 1 + Math.floor(r() * 60);
      const prompt = r() < 0.3 ? [...shared, ...randomPrompt(r, len % 20)] : randomPrompt(r, len);
      const opts: GenerateRequestOptions = {
        maxTokens: 1 + Math.floor(r() * (r() < 0.05 ? 200 : 30)), // some pass the context: refused
        temperature: r() < 0.5 ? 0 : 0.9,
        seed: i,
        n: r() < 0.2 ? 2 + Math.floor(r() * 3) : 1,
      };
      const mode = r();
      const controller = new AbortController();
      if (mode < 0.1) opts.signal = controller.signal;
      const stopAfter = mode > 0.9 ? 1 + Math.floor(r() * 5) : Infinity; // leaves the loop early
      const abortAfter = mode < 0.1 ? Math.floor(r() * 6) : -1;
      if (abortAfter === 0) controller.abort();
      const delay = Math.floor(r() * 40);
      tasks.push(
        (async () => {
          for (let k = 0; k < delay; k++) await new Promise((res) => setImmediate(res));
          const o = await collect(engine.generate(prompt, opts), stopAfter, (n) => {
            if (n === abortAfter) controller.abort();
          });
          if (o.error) {
            expect(o.error.message).toMatch(/pass the context of 128/);
            refused++;
          } else if (o.finish.includes('abort') || stopAfter !== Infinity) aborted++;
          else {
            finished++;
            expect(o.finish.length).toBe(opts.n ?? 1);
            expect(o.usage!.completionTokens).toBe(o.tokens.reduce((a, t) => a + t.length, 0));
            expect(o.usage!.cachedPromptTokens).toBeLessThan(prompt.length);
          }
          engine.scheduler.cache.validate();
        })(),
      );
    }
    await Promise.all(tasks);
    for (let k = 0; k < 5; k++) await new Promise((res) => setImmediate(res));
    expect(engine.pendingRequests).toBe(0);
    engine.scheduler.cache.validate();
    const after = engine.scheduler.cache.stats();
    expect(after.usedPages).toBe(0);
    expect(after.freePages).toBe(before.freePages);
    expect(after.totalPages).toBe(before.totalPages);
    expect(refused).toBeGreaterThan(10);
    expect(aborted).toBeGreaterThan(50);
    expect(finished).toBeGreaterThan(500);
    expect(steps.some((s) => s.preempted > 0)).toBe(true); // the small pool forced preemption
    expect(steps.every((s) => s.prefillTokens + s.decodeTokens <= 24)).toBe(true);
  });

  it('preemption under a tiny pool gives the same tokens as a large pool (greedy, sampled, forks)', async () => {
    const r = rng(99);
    const reqs = Array.from({ length: 12 }, (_, i) => ({
      prompt: randomPrompt(r, 5 + Math.floor(r() * 30)),
      opts: {
        maxTokens: 20 + (i % 5),
        temperature: i % 2 ? 0 : 1,
        seed: 7 * i,
        n: i % 4 === 0 ? 3 : 1,
      } as GenerateRequestOptions,
    }));
    const run = async (numPages: number) => {
      const { engine, steps } = engineWith({ numPages, boost: new Map() });
      const outs = await Promise.all(reqs.map((q) => collect(engine.generate(q.prompt, q.opts))));
      expect(engine.scheduler.cache.stats().usedPages).toBe(0);
      return { outs, preempted: steps.reduce((a, s) => a + s.preempted, 0) };
    };
    const big = await run(512);
    const small = await run(14); // 56 tokens: two or three sequences at a time
    expect(big.preempted).toBe(0);
    expect(small.preempted).toBeGreaterThan(0);
    for (let i = 0; i < reqs.length; i++) {
      expect(small.outs[i].error).toBeUndefined();
      expect(small.outs[i].tokens).toEqual(big.outs[i].tokens);
      expect(small.outs[i].text).toEqual(big.outs[i].text);
    }
  });

  it('refuses what can never fit, per request, and a failing step fails only its requests', async () => {
    const { engine, model } = engineWith({ numPages: 8, pageSize: 4 });
    const tooLong = collect(engine.generate([1, 2, 3], { maxTokens: 126 }));
    const tooManyPages = collect(engine.generate(randomPrompt(rng(1), 20), { maxTokens: 20 }));
    const badId = collect(engine.generate([1, 99999]));
    const ok = collect(engine.generate([1, 2, 3], { maxTokens: 5, temperature: 0 }));
    expect((await tooLong).error?.message).toMatch(
      /request \d+: 3 prompt tokens \+ 126 max tokens = 129 pass the context of 128/,
    );
    expect((await tooManyPages).error?.message).toMatch(/need 10 KV pages, the pool has 8/);
    expect((await badId).error?.message).toMatch(/token id 99999 is outside the vocabulary/);
    expect((await ok).tokens[0].length).toBeGreaterThan(0);

    model.poisonToken = 200;
    const bad = collect(engine.generate([5, 6, 200, 7], { maxTokens: 4 }));
    const alone = await collect(engine.generate([5, 6], { maxTokens: 4, temperature: 0 }));
    expect((await bad).error?.message).toMatch(/poisoned step/);
    expect(alone.error).toBeUndefined();
    model.poisonToken = -1;
    const after = await collect(engine.generate([5, 6], { maxTokens: 4, temperature: 0 }));
    expect(after.tokens).toEqual(alone.tokens);
    expect(engine.scheduler.cache.stats().usedPages).toBe(0);
  });

  it('prefix reuse: a second request computes only its uncached suffix', async () => {
    const { engine, steps } = engineWith({ pageSize: 4 });
    const prefix = randomPrompt(rng(5), 30);
    const a = await collect(engine.generate([...prefix, 1, 2], { maxTokens: 3, temperature: 0 }));
    const n = steps.length;
    const b = await collect(engine.generate([...prefix, 3, 4, 5], { maxTokens: 3, temperature: 0 }));
    expect(a.usage!.cachedPromptTokens).toBe(0);
    expect(b.usage!.cachedPromptTokens).toBe(28); // 7 full pages of the 30-token prefix
    expect(steps.slice(n).reduce((t, s) => t + s.prefillTokens, 0)).toBe(33 - 28);
  });

  it('abort frees pages at once; chat completions in both shapes', async () => {
    const { engine } = engineWith({ boost: new Map() });
    const controller = new AbortController();
    const it = engine.generate([1, 2, 3, 4, 5], { maxTokens: 100, signal: controller.signal })[Symbol.asyncIterator]();
    await it.next();
    expect(engine.scheduler.cache.stats().usedPages).toBeGreaterThan(0);
    controller.abort();
    expect(engine.scheduler.cache.stats().usedPages).toBe(0);
    const rest: GenerateChunk[] = [];
    for (let c = await it.next(); !c.done; c = await it.next()) rest.push(c.value);
    expect(rest.at(-1)!.finishReason).toBe('abort');
    expect(rest.at(-1)!.usage).toBeDefined();

    const messages = [{ role: 'user', content: 'Hello world' }];
    const whole = await engine.chat.completions.create({ messages, max_tokens: 6, temperature: 0, n: 2 });
    expect(whole.object).toBe('chat.completion');
    expect(whole.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(whole.choices[0].message.content).toBe(whole.choices[1].message.content); // greedy: both samples agree
    expect(whole.usage.prompt_tokens).toBe(
      tokenizer.encode(tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }), {
        addSpecialTokens: false,
      }).length,
    );
    const stream = await engine.chat.completions.create({ messages, max_tokens: 6, temperature: 0, stream: true });
    let text = '';
    let usage: ChatUsage | undefined;
    for await (const c of stream) {
      expect(c.object).toBe('chat.completion.chunk');
      for (const ch of c.choices) text += ch.delta.content ?? '';
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe(whole.choices[0].message.content);
    expect(usage!.completion_tokens).toBe(whole.usage.completion_tokens / 2);
    expect(usage!.prompt_tokens_details.cached_tokens).toBeGreaterThan(0); // the same prompt again
    expect(engine.scheduler.cache.stats().usedPages).toBe(0);
  });
});
