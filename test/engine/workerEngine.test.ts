/**
 * The worker engine when the worker is not well: killed (a real worker_threads Worker, terminated,
 * exiting, throwing), its port closed (a MessageChannel stand-in hosting an engine on the fake
 * model), sent null or malformed messages, or asked to load twice.
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import { WorkerEngineError } from '../../src/engine/errors';
import type { GenerateChunk } from '../../src/engine/types';
import { createWorkerEngine, type WorkerEngine } from '../../src/engine/workerEngine';
import { hostEngine } from '../../src/engine/workerHost';
import type { PortLike } from '../../src/engine/workerProtocol';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { ID, tokenizerConfig, tokenizerJson } from '../helpers/tinyTokenizer';
import { FakeModel } from './fakeModel';

const tokenizer = loadTokenizer(tokenizerJson, tokenizerConfig);

function fakeEngine(): { engine: Engine; model: FakeModel } {
  const model = new FakeModel({
    vocabSize: tokenizer.vocabSize,
    pageSize: 4,
    numPages: 64,
    maxTokens: 32,
    maxSeqs: 4,
    maxContext: 128,
    boost: new Map([[ID['<|im_end|>'], -100]]),
  });
  return { model, engine: new Engine(model, tokenizer, { numPages: 64, bytesPerPage: 64 }, { name: 'fake' }) };
}

async function drain(it: AsyncIterable<GenerateChunk>): Promise<{ chunks: GenerateChunk[]; error?: Error }> {
  const chunks: GenerateChunk[] = [];
  try {
    for await (const c of it) chunks.push(c);
  } catch (e) {
    return { chunks, error: e as Error };
  }
  return { chunks };
}

/** A stub worker in plain JS: loads at once, streams one chunk per generate and then never ends it. */
const STUB = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => {
  if (m === null || typeof m !== 'object') return;
  if (m.t === 'load') parentPort.postMessage({ t: 'loaded', name: 'stub' });
  if (m.t === 'generate') {
    const chunk = { requestId: 1, index: 0, tokenId: 5, text: 'a', finishReason: null };
    parentPort.postMessage({ t: 'chunk', id: m.id, chunk });
    if (m.prompt === 'exit') setTimeout(() => process.exit(3), 10);
    if (m.prompt === 'throw') setTimeout(() => { throw new Error('stub crashed'); }, 10);
  }
});
`;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('a killed worker', () => {
  it.each([
    ['terminated', 'hang', /the engine's worker is gone \(the worker exited \(code 1\)\)/],
    ['exits', 'exit', /the engine's worker is gone \(the worker exited \(code 3\)\)/],
    ['throws', 'throw', /the engine's worker is gone \(the worker failed: stub crashed\)/],
  ])('%s: the pending generate rejects, and so does every later call', async (_, prompt, why) => {
    const worker = new Worker(STUB, { eval: true });
    cleanups.push(() => worker.terminate());
    const engine = await createWorkerEngine({ model: 'stub', port: worker as unknown as PortLike });
    const it = engine.generate(prompt, { maxTokens: 10 })[Symbol.asyncIterator]();
    expect((await it.next()).value.text).toBe('a'); // the worker answered, then...
    if (prompt === 'hang') void worker.terminate();
    const rest = it.next();
    await expect(rest).rejects.toThrow(WorkerEngineError);
    await expect(rest).rejects.toThrow(why);
    await expect(drain(engine.generate('again'))).resolves.toMatchObject({ error: expect.any(WorkerEngineError) });
    await expect(engine.kvSnapshot()).rejects.toThrow(why);
    await expect(engine.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }] })).rejects.toThrow(why);
    engine.dispose(); // still fine
  });

  it('the port closes (MessageChannel stand-in): pending generate and calls reject at once', async () => {
    const { port1, port2 } = new MessageChannel();
    const { engine, model } = fakeEngine();
    let open!: () => void;
    model.gate = new Promise((resolve) => (open = resolve)); // the first step never ends by itself
    hostEngine(port1 as unknown as PortLike, async () => ({ engine }));
    const client = await createWorkerEngine({ model: 'fake', port: port2 as unknown as PortLike });
    cleanups.push(
      () => client.dispose(),
      () => port2.close(),
    );
    const pending = drain(client.generate([1, 2, 3], { maxTokens: 50 }));
    const snap = client.kvSnapshot();
    await new Promise((r) => setTimeout(r, 20));
    port1.close(); // the worker's end goes away
    const got = await pending;
    expect(got.error).toBeInstanceOf(WorkerEngineError);
    expect(got.error!.message).toMatch(
      /the engine's worker is gone \(the message port closed\); create a new worker engine/,
    );
    await expect(snap).resolves.toBeDefined(); // answered before the close
    await expect(client.kvSnapshot()).rejects.toThrow(/the message port closed/);
    open();
    // The host saw its client go: it disposed the engine, which freed the request's pages.
    await new Promise((r) => setTimeout(r, 20));
    expect(engine.scheduler.cache.stats().usedPages).toBe(0);
    expect((await drain(engine.generate([1, 2]))).error?.message).toMatch(/the engine was disposed/);
  });
});

describe('messages that are not the protocol', () => {
  it('null, numbers, unknown or incomplete messages crash neither side; requests still work', async () => {
    const { port1, port2 } = new MessageChannel();
    const { engine } = fakeEngine();
    hostEngine(port1 as unknown as PortLike, async () => ({ engine }));
    const client: WorkerEngine = await createWorkerEngine({ model: 'fake', port: port2 as unknown as PortLike });
    cleanups.push(
      () => client.dispose(),
      () => port1.close(),
      () => port2.close(),
    );
    const replies: unknown[] = [];
    port2.on('message', (m) => replies.push(m));
    for (const junk of [null, 7, 'load', { t: 'nope' }, { t: 'generate', id: 99 }, { t: 'chunk' }, { t: 'abort' }, []])
      port2.postMessage(junk); // to the host
    for (const junk of [null, 3, { t: 'chunk', id: 1 }, { t: 'end' }, { t: 'error', id: 'x' }, { t: 'loaded' }])
      port1.postMessage(junk); // to the client
    const got = await drain(client.generate([1, 2, 3], { maxTokens: 4, temperature: 0 }));
    expect(got.error).toBeUndefined();
    expect(got.chunks.filter((c) => c.tokenId >= 0)).toHaveLength(4);
    // The incomplete generate (it had an id) was answered with an error for that id.
    expect(replies).toContainEqual({
      t: 'error',
      id: 99,
      error: { name: 'WorkerEngineError', message: 'the worker got a malformed message' },
    });
  });
});

describe('load twice', () => {
  it('a second load disposes the first engine (its requests end) before the second is used', async () => {
    const { port1, port2 } = new MessageChannel();
    const made: { engine: Engine; model: FakeModel; destroyed: boolean }[] = [];
    hostEngine(port1 as unknown as PortLike, async () => {
      const e = { ...fakeEngine(), destroyed: false };
      made.push(e);
      return { engine: e.engine, ctx: { destroy: () => (e.destroyed = true) } as never };
    });
    const client = await createWorkerEngine({ model: 'first', port: port2 as unknown as PortLike });
    cleanups.push(
      () => client.dispose(),
      () => port1.close(),
      () => port2.close(),
    );
    let open!: () => void;
    made[0].model.gate = new Promise((resolve) => (open = resolve));
    const running = drain(client.generate([1, 2, 3], { maxTokens: 50 }));
    await new Promise((r) => setTimeout(r, 20));
    await client.load('second');
    open();
    const first = await running;
    expect(first.chunks.at(-1)?.finishReason).toBe('abort'); // the first engine's request was ended
    expect(made).toHaveLength(2);
    expect(made[0].destroyed).toBe(true);
    expect((await drain(made[0].engine.generate([1]))).error?.message).toMatch(/disposed/);
    const second = await drain(client.generate([1, 2, 3], { maxTokens: 3 }));
    expect(second.error).toBeUndefined();
    expect(made[1].model.steps).toBeGreaterThan(0);
    expect(made[0].engine.scheduler.cache.stats().usedPages).toBe(0);
  });
});
