/**
 * A model over a KV pool split across buffers (issue 17): kjv-gqa with a simulated limit of 4 pages
 * per buffer, so a pool of
 * 12 pages is 3 buffers of 4 per layer. Through StepRunner: logitsForIds of a 100-token context
 * (7 pages, crossing from buffer 0 into buffer 1) by prefill chunks and by decode steps, and a
 * fork whose copy-on-write page lands in another buffer than its source, each equal to the same
 * run over the pool in one buffer. A device of fewer than 16 storage buffers (SwiftShader: 12)
 * keeps one binding's pages, and a pool past it is refused with the numbers (KvPool, Engine, StepRunner).
 */
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { StepRunner } from '../../src/engine/stepRunner';
import { Engine } from '../../src/engine/engine';
import { KvPool, pageBufferBytes } from '../../src/kernels/kvPool';
import { Transformer } from '../../src/model/transformer';
import { relL2 } from '../../src/reference/attention';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { parseConfig } from '../../src/model/config';
import { randomIds, randomWeights, writeCheckpoint } from '../helpers/tinyModels';
import { familyConfigs } from '../helpers/familyModels';
import { gpu, rng } from './harness';

/**
 * ctx whose limits read through `lower`, set after load and the one-buffer run. The limit lowered is
 * maxBufferSize, which caps a pool's buffer as the binding size does (maxPagesPerLayer) but is not
 * checked when bindKv binds the weights (maxStorageBufferBindingSize is: 4 pages are 4 KiB here).
 */
function withLimits(ctx: GpuContext, lower: Partial<Record<keyof GPUSupportedLimits, number>>): GpuContext {
  const limits = new Proxy(ctx.limits, {
    get: (target, key) => (key in lower ? lower[key as keyof GPUSupportedLimits] : target[key as keyof typeof target]),
  });
  return Object.create(ctx, { limits: { get: () => limits } }) as GpuContext;
}

const PAGES_PER_BINDING = 4;
const NUM_PAGES = 12; // 3 buffers of 4
const canSplit = (await gpu()).limits.maxStorageBuffersPerShaderStage >= 16;

async function load(lower: Partial<Record<keyof GPUSupportedLimits, number>>) {
  const files = await loadModelFiles(folderSource(new URL('../../models/kjv-gqa', import.meta.url).pathname), {
    needTokenizer: true,
  });
  const model = await Transformer.load(withLimits(await gpu(), lower), files, {
    maxSeqs: 2,
    maxTokens: 32,
    maxLogitRows: 32,
    maxContext: 128,
  });
  const binding = PAGES_PER_BINDING * pageBufferBytes(model.attention, model.attention.headDimQK);
  return { model, files, binding };
}

describe.skipIf(!canSplit)('a model over a KV pool split across buffers', () => {
  it('logitsForIds (prefill, decode) and a fork across buffers equal the pool in one buffer', async () => {
    const lower: Partial<Record<keyof GPUSupportedLimits, number>> = {};
    const { model, binding } = await load(lower);
    const rand = rng(5);
    const V = model.spec.vocabSize;
    const ids = Array.from({ length: 100 }, () => Math.floor(rand() * V));
    const child = Array.from({ length: 12 }, () => Math.floor(rand() * V));
    const F = 24; // the parent's 2nd page is partial when forked
    /** Every logits row of each run, and the pages the fork's two sequences hold. */
    const run = async () => {
      const runner = await StepRunner.create(model, { numPages: NUM_PAGES });
      try {
        const prefill = await runner.logitsForIds(ids, 32);
        const decode = await runner.logitsForIds(ids, 1);
        for (let s = 0; s < F; s += 32) await runner.step([{ seqId: 1, tokenIds: ids.slice(s, Math.min(F, s + 32)) }]);
        runner.scheduler.forkSequence(1, 2);
        const fork = new Float32Array(2 * child.length * V);
        for (let t = 0; t < child.length; t++) {
          const rows = await runner.step([
            { seqId: 1, tokenIds: [ids[F + t]] },
            { seqId: 2, tokenIds: [child[t]] },
          ]);
          fork.set(rows, 2 * t * V);
        }
        const tables = [1, 2].map((s) => [...runner.cache.blockTable(s)]);
        return { prefill, decode, fork, tables, pool: runner.pool };
      } finally {
        runner.destroy();
      }
    };
    try {
      const one = await run();
      expect(one.pool.buffersPerLayer).toBe(1);
      lower.maxBufferSize = binding;
      expect(model.maxKvPages).toBe(4 * PAGES_PER_BINDING);
      const split = await run();
      expect(split.pool.buffersPerLayer).toBe(3);
      expect(split.pool.spec.pagesPerBuffer).toBe(PAGES_PER_BINDING);
      for (const r of [one.prefill, one.decode, one.fork]) expect(r.some(Number.isNaN)).toBe(false);
      expect(relL2(one.prefill, one.decode)).toBeLessThan(1e-2); // f16 pages, GEMM vs GEMV: the same logits
      expect(relL2(split.prefill, one.prefill)).toBeLessThan(1e-6);
      expect(relL2(split.decode, one.decode)).toBeLessThan(1e-6);
      expect(relL2(split.fork, one.fork)).toBeLessThan(1e-6);
      // The shared partial page (the 2nd) was copied into another buffer than its source's (the
      // free queue's order after logitsForIds' runs: the same in both runs).
      expect(split.tables).toEqual(one.tables);
      const buffer = (p: number) => Math.floor(p / PAGES_PER_BINDING);
      const [parent, forked] = split.tables;
      expect(parent[0]).toBe(forked[0]);
      expect(buffer(parent[1])).not.toBe(buffer(forked[1]));
      // Past 4 buffers: refused with the numbers.
      await expect(KvPool.create(model.ctx, model.kvPoolSpec(17))).rejects.toThrow(/17 pages .* need 5 buffers/);
      // StepRunner refuses an explicit numPages past model.maxKvPages, rather than capping it.
      await expect(StepRunner.create(model, { numPages: 17 })).rejects.toThrow(/numPages 17 passes the 16 pages/);
    } finally {
      model.destroy();
    }
  });
});

describe.skipIf(!canSplit)('a sliding-window model over two split pools', () => {
  it("gemma3: the full and the sliding layers' pools split; logits equal one buffer each", async () => {
    const config = { ...familyConfigs.gemma3, sliding_window: 6 };
    const spec = parseConfig(config);
    const dir = writeCheckpoint(config, randomWeights(spec), 'F32');
    const lower: Partial<Record<keyof GPUSupportedLimits, number>> = {};
    const model = await Transformer.load(withLimits(await gpu(), lower), await loadModelFiles(folderSource(dir)), {
      weightDtype: 'f32',
      kvDtype: 'f32',
      pageSize: 4,
      maxTokens: 8,
      maxSeqs: 2,
      maxLogitRows: 8,
      maxContext: 48,
    });
    const ids = randomIds(40, spec.vocabSize); // 10 pages of 4: past 2 buffers of the full layers' pool
    const run = async () => {
      const runner = await StepRunner.create(model, { numPages: NUM_PAGES });
      try {
        const buffers = [runner.pool.buffersPerLayer, model.kvPoolLocal!.buffersPerLayer];
        return { logits: await runner.logitsForIds(ids, 7), buffers };
      } finally {
        runner.destroy();
      }
    };
    try {
      const one = await run();
      expect(one.buffers).toEqual([1, 1]);
      lower.maxBufferSize = PAGES_PER_BINDING * pageBufferBytes(model.attention, model.attention.headDimQK);
      const split = await run();
      // 12 full-layer pages: 3 buffers; 13 sliding-layer pages (localPagesFor, the pinned one too): 4.
      expect(split.buffers).toEqual([3, 4]);
      expect(one.logits.some(Number.isNaN)).toBe(false);
      expect(relL2(split.logits, one.logits)).toBeLessThan(1e-6);
    } finally {
      model.destroy();
    }
  });
});

describe.skipIf(canSplit)('a model on a device that cannot split its KV pool', () => {
  it('keeps one binding of pages; more are refused with the numbers', async () => {
    const lower: Partial<Record<keyof GPUSupportedLimits, number>> = {};
    const { model, files, binding } = await load(lower);
    try {
      lower.maxBufferSize = binding;
      expect(model.maxKvPages).toBe(PAGES_PER_BINDING);
      await expect(KvPool.create(model.ctx, model.kvPoolSpec(NUM_PAGES))).rejects.toThrow(
        /bind 16 storage buffers; this device allows \d+\. At most 4 pages per layer/,
      );
      const tokenizer = loadTokenizer(files.tokenizer as object, files.tokenizerConfig as object);
      await expect(Engine.forModel(model, tokenizer, { numPages: NUM_PAGES })).rejects.toThrow(
        /numPages must be in 1\.\.4 .* got 12/,
      );
      await expect(StepRunner.create(model, { numPages: NUM_PAGES })).rejects.toThrow(/numPages 12 passes the 4 pages/);
    } finally {
      model.destroy();
    }
  });
});
