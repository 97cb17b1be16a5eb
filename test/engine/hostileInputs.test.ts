/**
 * What a user or an attacker can hand the engine, on the GPU-free fake model: logits that turn NaN
 * or Infinity (a clear error naming the request and the step, pages kept out of the prefix cache),
 * options out of range (named, with the range), seeds that would be coerced, `stop` as a string.
 */
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import { EngineRequestError, NonFiniteLogitsError } from '../../src/engine/errors';
import type { GenerateChunk, GenerateRequestOptions } from '../../src/engine/types';
import { ShapeError } from '../../src/gpu/errors';
import { parseConfig } from '../../src/model/config';
import { MAX_SEED, Sampler } from '../../src/model/sampler';
import { checkTransformerOptions, checkTransformerSizes, OPTION_RANGES } from '../../src/model/transformerOptions';
import { rng } from '../../src/reference/random';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { ID, tokenizerConfig, tokenizerJson } from '../helpers/tinyTokenizer';
import { configs } from '../helpers/tinyModels';
import { FakeModel } from './fakeModel';

const tokenizer = loadTokenizer(tokenizerJson, tokenizerConfig);
const V = tokenizer.vocabSize;

function engineWith(opts: { numPages?: number; tokenBudget?: number } = {}) {
  const model = new FakeModel({
    vocabSize: V,
    pageSize: 4,
    numPages: opts.numPages ?? 64,
    maxTokens: 32,
    maxSeqs: 8,
    maxContext: 128,
    boost: new Map([[ID['<|im_end|>'], -100]]), // never EOS: requests run to maxTokens
  });
  const engine = new Engine(model, tokenizer, { numPages: opts.numPages ?? 64, bytesPerPage: 64 }, opts);
  return { model, engine };
}

async function run(it: AsyncIterable<GenerateChunk>): Promise<{ chunks: GenerateChunk[]; error?: Error }> {
  const chunks: GenerateChunk[] = [];
  try {
    for await (const c of it) chunks.push(c);
  } catch (e) {
    return { chunks, error: e as Error };
  }
  return { chunks };
}

const prompt = (seed: number, n: number) => {
  const r = rng(seed);
  return Array.from({ length: n }, () => 1 + Math.floor(r() * 200));
};

describe('non-finite logits', () => {
  it.each([
    ['NaN', Number.NaN],
    ['+Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
  ])('a step with %s logits fails its request, naming the step, and no other', async (_, value) => {
    const { model, engine } = engineWith();
    model.nonFiniteToken = 250;
    model.nonFiniteValue = value;
    const clean = prompt(1, 9);
    const bad = [...prompt(2, 9), 250]; // 10 tokens: 2 full pages enter the prefix cache on the step
    const [a, b] = await Promise.all([
      run(engine.generate(clean, { maxTokens: 4, temperature: 0 })),
      run(engine.generate(bad, { maxTokens: 4, temperature: 0 })),
    ]);
    expect(a.error).toBeUndefined();
    expect(a.chunks.filter((c) => c.tokenId >= 0)).toHaveLength(4);
    expect(b.error).toBeInstanceOf(NonFiniteLogitsError);
    expect(b.error).toBeInstanceOf(EngineRequestError);
    expect(b.error!.message).toMatch(/^request 2: step 0 gave non-finite logits for sample 0 \(logit of token \d+ is/);
    expect(b.error!.message).toContain(String(value));
    expect(b.chunks).toHaveLength(0); // nothing sampled from the bad row
    expect(engine.scheduler.cache.stats().usedPages).toBe(0);
    // The bad request's K/V is suspect: its pages left the prefix cache.
    model.nonFiniteToken = -1;
    const again = await run(engine.generate([...bad.slice(0, 9), 7], { maxTokens: 1, temperature: 0 }));
    expect(again.chunks.at(-1)!.usage!.cachedPromptTokens).toBe(0);
  });

  it('a NaN in the middle of a long generation names that step; forks of the request end with it', async () => {
    const { model, engine } = engineWith();
    const p = prompt(3, 6);
    const greedy = await run(engine.generate(p, { maxTokens: 6, temperature: 0 }));
    const tokens = greedy.chunks.map((c) => c.tokenId);
    model.nonFiniteToken = tokens[2]; // fed at the 3rd decode step
    let lastStep = -1;
    engine.onStep = (info) => {
      lastStep = info.step;
    };
    const got = await run(engine.generate(p, { maxTokens: 6, temperature: 0, n: 2 }));
    expect(got.error).toBeInstanceOf(NonFiniteLogitsError);
    const step = Number(/step (\d+)/.exec(got.error!.message)![1]);
    expect(step).toBe(lastStep); // the step that failed, numbered as onStep numbers it
    expect(got.chunks.filter((c) => c.index === 0).map((c) => c.tokenId)).toEqual(tokens.slice(0, 3));
    expect(engine.scheduler.cache.stats().usedPages).toBe(0);
  });
});

describe('options out of range are named with their range', () => {
  const bad = [0, -1, 1.5, Number.NaN, 1e12, '16'];
  it.each(Object.keys(OPTION_RANGES))('Transformer/Engine option %s', (name) => {
    const [min, max] = OPTION_RANGES[name as keyof typeof OPTION_RANGES];
    for (const v of bad) {
      if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) continue;
      const shown = typeof v === 'string' ? '"16"' : v;
      const msg = `Engine.load: ${name} must be an integer in ${min}..${max}, got ${shown}`;
      expect(() => checkTransformerOptions({ [name]: v } as never, 'Engine.load')).toThrow(msg);
    }
    expect(() => checkTransformerOptions({ [name]: min })).not.toThrow();
  });

  it('Engine.load refuses bad options before it reads a file or touches the GPU', async () => {
    const nothing = null as never;
    await expect(Engine.load(nothing, nothing, { maxSeqs: 0 })).rejects.toThrow(
      /Engine.load: maxSeqs must be an integer in 1\.\.4096, got 0/,
    );
    await expect(Engine.load(nothing, nothing, { numPages: Number.NaN })).rejects.toThrow(
      /numPages must be an integer in 1\.\.\d+, got NaN/,
    );
    await expect(Engine.load(nothing, nothing, { tokenBudget: -3 })).rejects.toThrow(
      /tokenBudget must be an integer in 1\.\.\d+, got -3/,
    );
    await expect(Engine.load(nothing, nothing, { maxContext: 1e9 })).rejects.toThrow(
      /maxContext must be an integer in 1\.\.1048576, got 1000000000/,
    );
    await expect(Engine.load(nothing, nothing, { maxTokens: 1e9 })).rejects.toThrow(ShapeError);
  });

  it('the Engine refuses a bad tokenBudget or pool', () => {
    for (const tokenBudget of [0, Number.NaN, 2.5, -1])
      expect(() => engineWith({ tokenBudget })).toThrow(/Engine: tokenBudget must be an integer in 1\.\./);
    expect(() => engineWith({ numPages: 0 })).toThrow(/numPages must be an integer in 1\.\./);
  });

  it('sizes past what one storage binding holds name the option and the largest value that fits', () => {
    const spec = parseConfig({ ...configs.llama, vocab_size: 1000 });
    const opts = {
      weightDtype: 'f32',
      kvDtype: 'f32',
      pageSize: 16,
      maxTokens: 64,
      maxSeqs: 4,
      maxLogitRows: 4,
      maxContext: 256,
    } as const;
    const limits = { maxStorageBufferBindingSize: 64 * 1024 };
    expect(() => checkTransformerSizes({}, opts, spec, limits)).not.toThrow();
    expect(() => checkTransformerSizes({}, { ...opts, maxTokens: 400 }, spec, limits)).toThrow(
      /maxTokens 400 is too large for this model on this device: at most 341 \(48 f32 values per token/,
    );
    expect(() => checkTransformerSizes({}, { ...opts, maxLogitRows: 17 }, spec, limits)).toThrow(
      /maxLogitRows 17 .* at most 16/,
    );
    expect(() => checkTransformerSizes({}, { ...opts, maxContext: 300000 }, spec, limits)).toThrow(
      /maxContext 300000 .* at most 65536/,
    );
    // As given, before the defaults hide it: maxLogitRows -5 would become maxSeqs.
    expect(() => checkTransformerSizes({ maxLogitRows: -5 }, opts, spec, limits)).toThrow(
      /maxLogitRows must be an integer/,
    );
  });

  it('num_hidden_layers: 1e8 is refused at once, with the range', () => {
    const t0 = performance.now();
    expect(() => parseConfig({ ...configs.llama, num_hidden_layers: 1e8 })).toThrow(
      /config\.json: num_hidden_layers: must be in 1\.\.1024 \(got 100000000\)/,
    );
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it('request options: seeds are not coerced, stop takes a string, sampling options must be numbers', async () => {
    const { engine } = engineWith();
    const p = prompt(4, 5);
    const refused = async (o: GenerateRequestOptions) =>
      (await run(engine.generate(p, { maxTokens: 4, ...o }))).error?.message;
    for (const seed of [Number.NaN, 'abc', 2 ** 32, -1, 1.5]) {
      const shown = typeof seed === 'string' ? '"abc"' : String(seed);
      expect(await refused({ seed: seed as number })).toMatch(
        new RegExp(`^request \\d+: seed must be an integer in 0\\.\\.${MAX_SEED}, got ${shown.replace('.', '\\.')}$`),
      );
    }
    expect(() => new Sampler(10, { seed: 2 ** 32 })).toThrow(
      `seed must be an integer in 0..${MAX_SEED}, got ${2 ** 32}`,
    );
    expect(() => new Sampler(10, { seed: Number.NaN })).toThrow(/got NaN/);
    // 2^32 - 1 is a seed; sample 1 of it wraps to 0 and equals a request seeded 0.
    const top = await run(engine.generate(p, { seed: MAX_SEED, n: 2, maxTokens: 5 }));
    const zero = await run(engine.generate(p, { seed: 0, maxTokens: 5 }));
    expect(top.chunks.filter((c) => c.index === 1).map((c) => c.tokenId)).toEqual(zero.chunks.map((c) => c.tokenId));

    expect(await refused({ temperature: '0.5' as never })).toMatch(/temperature must be a number, got "0.5"/);
    expect(await refused({ maxTokens: Number.NaN })).toMatch(/maxTokens must be an integer >= 1, got NaN/);
    expect(await refused({ maxTokens: 1e9 })).toMatch(
      /5 prompt tokens \+ 1000000000 max tokens = 1000000005 pass the context of 128/,
    );
    expect(await refused({ stop: 5 as never })).toMatch(/stop must be a non-empty string or a list of them, got 5/);
    expect(await refused({ stop: [''] })).toMatch(/stop must be a non-empty string/);

    // stop as one string, as OpenAI takes it: the greedy text cut where the string starts.
    const greedy = await run(engine.generate(p, { maxTokens: 8, temperature: 0 }));
    const text = greedy.chunks.map((c) => c.text).join('');
    const cut = text.slice(2, 4);
    expect(cut.length).toBe(2);
    const stopped = await run(engine.generate(p, { maxTokens: 8, temperature: 0, stop: cut }));
    expect(stopped.error).toBeUndefined();
    expect(stopped.chunks.at(-1)!.stopReason).toBe('stop_string');
    expect(stopped.chunks.map((c) => c.text).join('')).toBe(text.slice(0, text.indexOf(cut)));
    expect(engine.scheduler.cache.stats().usedPages).toBe(0);
  });
});
