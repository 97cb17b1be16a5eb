/**
 * The engine on a real tiny model (random llama, f32, the tiny BPE tokenizer): batch invariance,
 * prefix reuse, preemption, forks, and the worker API over a MessageChannel == the in-thread engine.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import type { EngineOptions, GenerateChunk, GenerateRequestOptions, StepInfo } from '../../src/engine/types';
import { createWorkerEngine } from '../../src/engine/workerEngine';
import { hostEngine } from '../../src/engine/workerHost';
import type { PortLike } from '../../src/engine/workerProtocol';
import { parseConfig } from '../../src/model/config';
import { rng } from '../../src/reference/random';
import { folderSource, loadModelFiles, type ModelFiles } from '../../src/sources/modelSource';
import { configs, randomWeights, writeCheckpoint } from '../helpers/tinyModels';
import { ID, tokenizerConfig, tokenizerJson } from '../helpers/tinyTokenizer';
import { gpu } from './harness';

const vocab = 272; // the tiny tokenizer's ids
const config = { ...configs.llama, vocab_size: vocab, eos_token_id: ID['<|im_end|>'], max_position_embeddings: 512 };
const dir = writeCheckpoint(config, randomWeights(parseConfig(config)));
writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
const base: EngineOptions = {
  weightDtype: 'f32',
  kvDtype: 'f32',
  maxSeqs: 8,
  maxTokens: 64,
  maxContext: 192,
  pageSize: 16,
};

let files: ModelFiles;
let engine: Engine;
const steps: StepInfo[] = [];
beforeAll(async () => {
  files = await loadModelFiles(folderSource(dir), { needTokenizer: true });
  engine = await Engine.load(await gpu(), files, { ...base, numPages: 64 });
  engine.onStep = (s) => steps.push(s);
});
afterAll(() => engine?.dispose());

interface Out {
  tokens: number[][];
  text: string;
  usage?: GenerateChunk['usage'];
}
async function collect(it: AsyncIterable<GenerateChunk>): Promise<Out> {
  const out: Out = { tokens: [], text: '' };
  for await (const c of it) {
    (out.tokens[c.index] ??= []).push(c.tokenId);
    if (c.index === 0) out.text += c.text;
    if (c.usage) out.usage = c.usage;
  }
  return out;
}
const prompt = (r: () => number, n: number) => Array.from({ length: n }, () => 1 + Math.floor(r() * 260));

describe('engine on a tiny llama', () => {
  it('batch invariance: 8 greedy requests of different lengths together == each alone', async () => {
    const r = rng(11);
    const prompts = [3, 17, 40, 1, 64, 9, 33, 90].map((n) => prompt(r, n));
    const opts: GenerateRequestOptions = { temperature: 0, maxTokens: 4 };
    const alone: Out[] = [];
    for (const p of prompts) alone.push(await collect(engine.generate(p, opts)));
    steps.length = 0;
    const together = await Promise.all(prompts.map((p) => collect(engine.generate(p, opts))));
    expect(together.map((o) => o.tokens)).toEqual(alone.map((o) => o.tokens));
    expect(Math.max(...steps.map((s) => s.decodeTokens))).toBeGreaterThan(4); // decodes really were batched
    expect(engine.scheduler.cache.stats().usedPages).toBe(0);
  });

  it('prefix reuse: a second request sharing a 100-token prefix computes only its suffix, same tokens', async () => {
    const r = rng(12);
    const prefix = prompt(r, 100);
    const a = [...prefix, ...prompt(r, 7)];
    const b = [...prefix, ...prompt(r, 5)];
    const opts: GenerateRequestOptions = { temperature: 0, maxTokens: 8 };
    const fresh = await Engine.load(await gpu(), files, { ...base, numPages: 32 });
    let wantB: Out;
    try {
      wantB = await collect(fresh.generate(b, opts)); // nothing cached
    } finally {
      fresh.dispose();
    }
    await collect(engine.generate(a, opts));
    steps.length = 0;
    const gotB = await collect(engine.generate(b, opts));
    expect(gotB.usage!.cachedPromptTokens).toBe(96); // 6 full pages of 16
    expect(steps.reduce((t, s) => t + s.prefillTokens, 0)).toBe(b.length - 96);
    expect(gotB.tokens).toEqual(wantB.tokens);
  });

  it('preemption under a small pool gives the same tokens as the large pool; forks share the prefill', async () => {
    const r = rng(13);
    const reqs = Array.from({ length: 4 }, (_, i) => ({
      p: prompt(r, 10 + 10 * i),
      // full length: the pool must run dry
      o: { maxTokens: 12, temperature: i % 2 ? 0 : 0.8, seed: i, ignoreEos: true } as GenerateRequestOptions,
    }));
    const large = await Promise.all(reqs.map((q) => collect(engine.generate(q.p, q.o))));
    const small = await Engine.load(await gpu(), files, { ...base, numPages: 5 }); // 80 tokens for ~150 wanted
    const smallSteps: StepInfo[] = [];
    small.onStep = (s) => smallSteps.push(s);
    try {
      const got = await Promise.all(reqs.map((q) => collect(small.generate(q.p, q.o))));
      expect(smallSteps.reduce((t, s) => t + s.preempted, 0)).toBeGreaterThan(0);
      expect(got.map((o) => o.tokens)).toEqual(large.map((o) => o.tokens));
      expect(small.scheduler.cache.stats().usedPages).toBe(0);
    } finally {
      small.dispose();
    }

    // n = 3 samples: sample i equals a lone request seeded seed + i (fork + copy-on-write pages).
    const p = prompt(r, 21); // partial last page: the forks' first decode copies it
    const forked = await collect(engine.generate(p, { n: 3, temperature: 1, seed: 40, maxTokens: 4 }));
    for (let i = 0; i < 3; i++) {
      const lone = await collect(engine.generate(p, { temperature: 1, seed: 40 + i, maxTokens: 4 }));
      expect(forked.tokens[i]).toEqual(lone.tokens[0]);
    }
    expect(forked.usage!.completionTokens).toBe(forked.tokens.flat().length);
    expect(engine.scheduler.cache.stats().usedPages).toBe(0);
  });

  it('the worker API (over a MessageChannel) streams the same text as the in-thread engine', async () => {
    const { port1, port2 } = new MessageChannel();
    const ctx = await gpu();
    let asked: unknown;
    hostEngine(port1 as unknown as PortLike, async (model, opts) => {
      asked = { model, opts };
      // The host serves this file's engine (one model load less on SwiftShader); disposing the
      // worker engine ends it, so this test comes last. The shared context outlives it.
      return { engine, ctx: Object.assign(Object.create(ctx), { destroy() {} }) };
    });
    const worker = await createWorkerEngine({
      model: dir,
      engine: { ...base, numPages: 64 },
      port: port2 as unknown as PortLike,
    });
    expect(asked).toEqual({ model: dir, opts: { ...base, numPages: 64 } });
    try {
      const req: GenerateRequestOptions = { temperature: 0.7, seed: 5, maxTokens: 8 };
      const want = await collect(engine.generate('Hello world', req));
      const got = await collect(worker.generate('Hello world', req));
      expect(got.text).toBe(want.text);
      expect(got.tokens).toEqual(want.tokens);
      const messages = [{ role: 'user', content: 'Hello' }];
      const a = await engine.chat.completions.create({ messages, max_tokens: 5, temperature: 0 });
      const b = await worker.chat.completions.create({ messages, max_tokens: 5, temperature: 0 });
      expect(b.choices[0].message.content).toBe(a.choices[0].message.content);
      // Refusals and aborts cross the worker boundary too.
      await expect(collect(worker.generate([1, 2, 3], { maxTokens: 500 }))).rejects.toThrow(
        /request \d+: 3 prompt tokens \+ 500 max tokens = 503 pass the context of 192/,
      );
      const controller = new AbortController();
      const chunks: GenerateChunk[] = [];
      for await (const c of worker.generate('Hello', { maxTokens: 100, signal: controller.signal })) {
        chunks.push(c);
        controller.abort();
      }
      expect(chunks.at(-1)!.finishReason).toBe('abort');
      expect(chunks.length).toBeLessThan(10);
      const snap = await worker.kvSnapshot();
      expect(snap.owner.every((o) => o === -1)).toBe(true); // every page free again
      expect(snap.numPages).toBe(64);
      expect(snap.bytesPerPage).toBe(2 * 2 * 2 * 16 * 8 * 4); // layers x K,V x heads x page x dim x f32
      expect((await worker.adapterInfo()).description).toBe(ctx.adapterDescription);
    } finally {
      worker.dispose();
      port1.close();
    }
  });
});
