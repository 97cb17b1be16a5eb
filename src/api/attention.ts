/**
 * attention(ctx, args): attention on host arrays, routed through the same paged cache and kernels
 * the model uses: the K/V rows are appended into pages of a KvPool by kvAppend (slots from the
 * KvCacheManager), the page table is built by buildPageTable, and the result comes from
 * flashPrefill, or split-KV decode + mergePartials when every sequence has one query token
 * (mlaDecode for MLA, splitKvDecode otherwise).
 * Not a hot path: it allocates its buffers per call (a model step never does).
 */
import type { GpuContext } from '../gpu/context';
import { readFloat32, uploadBuffer, UNIFORM, STORAGE } from '../gpu/buffers';
import { ShapeError } from '../gpu/errors';
import { KvCacheManager } from '../kv/kvCacheManager';
import { KvPool } from '../kernels/kvPool';
import { buildPageTable } from '../kernels/pageTable';
import { FlashPrefill, type FlashPrefillOptions } from '../kernels/flashPrefill';
import { SplitKvDecode } from '../kernels/splitKvDecode';
import { MlaDecode } from '../kernels/mlaDecode';
import { MergePartials } from '../kernels/mergePartials';
import { NaiveAttention } from '../kernels/naiveAttention';
import { KvAppend } from '../kernels/kvAppend';
import {
  attentionParams,
  DECODE_MAX_QUERY_TOKENS,
  decodeTakes,
  type AttentionSpec,
  type StepBuffers,
} from '../kernels/pagedAttention';
import { isKvDtype, type KvDtype } from '../gpu/dtype';

export interface AttentionArgs {
  q: Float32Array; // [Tq, H, Dqk]
  k?: Float32Array; // [Tk, Hkv, Dqk]  (not for MLA)
  v?: Float32Array; // [Tk, Hkv, Dv]   (not for MLA)
  numHeads: number;
  /** 1 for MQA and MLA (the default for MLA). */
  numKvHeads: number;
  /** MLA: latentDim + ropeDim (the default for MLA). */
  headDimQK: number;
  /** MLA: latentDim (the default for MLA). */
  headDimV: number;
  /**
   * 'mla': absorbed multi-head latent attention over one latent row per token, `kv`
   * [Tk, latentDim + ropeDim] = [c_kv | k_pe]; K is the whole row, V its first latentDim values.
   * 'mha', 'gqa', 'mqa' or nothing: the head counts decide, k and v are given.
   */
  variant?: 'mha' | 'gqa' | 'mqa' | 'mla';
  latentDim?: number;
  ropeDim?: number;
  kv?: Float32Array; // MLA: [Tk, latentDim + ropeDim]
  /** Query tokens per sequence: the last seqLensQ[i] positions of sequence i. */
  seqLensQ: number[];
  /** Keys per sequence (rows of k and v, concatenated in sequence order). */
  seqLensKV: number[];
  causal?: boolean; // default true
  scale?: number; // default 1 / sqrt(headDimQK)
  window?: number; // default 0 = none
  softcap?: number; // default 0 = off: tanh(s / softcap) * softcap of every scaled score (Gemma-2)
  pageSize?: number; // default 16
  kvDtype?: KvDtype; // default 'f32'
  /** Which kernel: 'auto' (decode when every seqLensQ is 1..16, MLA 1, else prefill: decodeTakes), or force one. */
  kernel?: 'auto' | 'prefill' | 'decode' | 'naive';
  /** flashPrefill's version and tiles (tests: e.g. the GPUs' subgroup path on a CPU driver); default its own. */
  prefill?: FlashPrefillOptions;
}

export interface AttentionResult {
  out: Float32Array; // [Tq, H, Dv]
  lse: Float32Array; // [Tq, H], natural log of sum exp of the scaled scores
}

const fail = (field: string, why: string): never => {
  throw new ShapeError(`attention: ${field}: ${why}`);
};

/**
 * MLA arguments in the general form: one KV head whose K is the latent row and whose V is its
 * first latentDim values (the kernels read V in place; `v` here is only for the reference).
 * Other variants are returned as they are.
 */
export function resolveVariant(a: AttentionArgs): AttentionArgs & { k: Float32Array; mla: boolean } {
  if (a.variant !== 'mla') {
    if (!(a.k instanceof Float32Array)) fail('k', 'must be a Float32Array');
    if (!(a.v instanceof Float32Array)) fail('v', 'must be a Float32Array');
    return { ...a, k: a.k!, mla: false };
  }
  for (const f of ['latentDim', 'ropeDim'] as const) {
    if (!Number.isInteger(a[f]) || a[f]! < 0 || (f === 'latentDim' && a[f]! < 1))
      fail(f, `must be a non-negative integer for MLA (got ${a[f]})`);
  }
  const width = a.latentDim! + a.ropeDim!;
  if (a.numKvHeads !== undefined && a.numKvHeads !== 1)
    fail('numKvHeads', `MLA has one latent row per token: must be 1 (got ${a.numKvHeads})`);
  if (a.headDimQK !== undefined && a.headDimQK !== width)
    fail('headDimQK', `MLA: must be latentDim + ropeDim = ${width} (got ${a.headDimQK})`);
  if (a.headDimV !== undefined && a.headDimV !== a.latentDim)
    fail('headDimV', `MLA: must be latentDim = ${a.latentDim} (got ${a.headDimV})`);
  if (!(a.kv instanceof Float32Array)) fail('kv', 'MLA needs kv: Float32Array [Tk, latentDim + ropeDim]');
  if (a.k !== undefined || a.v !== undefined) fail('k', 'MLA takes kv (the latent rows), not k and v');
  return { ...a, numKvHeads: 1, headDimQK: width, headDimV: a.latentDim!, k: a.kv!, mla: true };
}

/** Checks every field and throws a ShapeError naming the first one that is wrong. */
export function checkAttentionArgs(args: AttentionArgs): void {
  const a = resolveVariant(args);
  for (const f of ['numHeads', 'numKvHeads', 'headDimQK', 'headDimV'] as const) {
    if (!Number.isInteger(a[f]) || a[f] < 1) fail(f, `must be a positive integer (got ${a[f]})`);
  }
  if (a.numHeads % a.numKvHeads) fail('numKvHeads', `${a.numKvHeads} does not divide numHeads ${a.numHeads}`);
  if (a.headDimQK % 4) fail('headDimQK', `must be a multiple of 4 (got ${a.headDimQK})`);
  if (a.headDimV % 4) fail('headDimV', `must be a multiple of 4 (got ${a.headDimV})`);
  if (!Array.isArray(a.seqLensQ) || !Array.isArray(a.seqLensKV))
    fail('seqLensQ', 'seqLensQ and seqLensKV must be arrays');
  if (a.seqLensQ.length !== a.seqLensKV.length || a.seqLensQ.length === 0) {
    fail('seqLensQ', `${a.seqLensQ.length} sequences but seqLensKV has ${a.seqLensKV.length} (need the same, >= 1)`);
  }
  a.seqLensKV.forEach((n, i) => {
    if (!Number.isInteger(n) || n < 1) fail(`seqLensKV[${i}]`, `must be an integer >= 1 (got ${n})`);
  });
  a.seqLensQ.forEach((n, i) => {
    if (!Number.isInteger(n) || n < 0 || n > a.seqLensKV[i]) {
      fail(`seqLensQ[${i}]`, `must be an integer in 0..seqLensKV[${i}] = ${a.seqLensKV[i]} (got ${n})`);
    }
  });
  const tq = a.seqLensQ.reduce((x, y) => x + y, 0);
  const tk = a.seqLensKV.reduce((x, y) => x + y, 0);
  const want = (field: string, x: Float32Array | undefined, shape: number[]) => {
    const n = shape.reduce((p, y) => p * y, 1);
    if (!(x instanceof Float32Array)) fail(field, 'must be a Float32Array');
    if (x!.length !== n) fail(field, `has ${x!.length} values, shape [${shape}] needs ${n}`);
  };
  want('q', a.q, [tq, a.numHeads, a.headDimQK]);
  if (a.mla) {
    want('kv', a.kv, [tk, a.headDimQK]);
  } else {
    want('k', a.k, [tk, a.numKvHeads, a.headDimQK]);
    want('v', a.v, [tk, a.numKvHeads, a.headDimV]);
  }
  const pageSize = a.pageSize ?? 16;
  if (!Number.isInteger(pageSize) || pageSize < 1) fail('pageSize', `must be a positive integer (got ${pageSize})`);
  if (a.window !== undefined && (!Number.isInteger(a.window) || a.window < 0))
    fail('window', `must be an integer >= 0 (got ${a.window})`);
  if (a.scale !== undefined && !Number.isFinite(a.scale)) fail('scale', `must be finite (got ${a.scale})`);
  if (a.kvDtype !== undefined && !isKvDtype(a.kvDtype))
    fail('kvDtype', `must be f32, f16, q8 or q4 (got ${a.kvDtype})`);
}

export async function attention(ctx: GpuContext, input: AttentionArgs): Promise<AttentionResult> {
  checkAttentionArgs(input);
  const args = resolveVariant(input);
  ctx.assertAlive();
  const H = args.numHeads;
  const numSeqs = args.seqLensQ.length;
  const spec: AttentionSpec = {
    numKvHeads: args.numKvHeads,
    groupSize: H / args.numKvHeads,
    headDimQK: args.headDimQK,
    headDimV: args.headDimV,
    pageSize: args.pageSize ?? 16,
    kvDtype: args.kvDtype ?? 'f32',
    vAliasesK: args.mla,
    softcap: args.softcap ?? 0,
  };
  const tq = args.seqLensQ.reduce((x, y) => x + y, 0);
  const tk = args.seqLensKV.reduce((x, y) => x + y, 0);
  let kernel = args.kernel ?? 'auto';
  // The routing of the model's forward (decodeTakes): MLA's decode kernel takes one token per sequence.
  const maxDecodeTokens = args.mla ? 1 : DECODE_MAX_QUERY_TOKENS;
  if (kernel === 'auto') kernel = decodeTakes(args.seqLensQ, maxDecodeTokens) ? 'decode' : 'prefill';

  // Pages and slots from the same bookkeeping the engine uses.
  const numPages = args.seqLensKV.reduce((s, n) => s + Math.ceil(n / spec.pageSize), 0);
  const cache = new KvCacheManager({ numPages, pageSize: spec.pageSize, enablePrefixCache: false });
  const slotMapping = new Int32Array(tk);
  let row = 0;
  for (let i = 0; i < numSeqs; i++) {
    cache.addSequence(i);
    const r = cache.appendSlots(i, args.seqLensKV[i]);
    if (!r.ok) throw new ShapeError(`attention: sequence ${i}: ${r.reason}`); // cannot happen: pool sized exactly
    slotMapping.set(r.slots, row);
    row += args.seqLensKV[i];
  }
  const meta = buildPageTable(
    args.seqLensKV.map((kvLen, i) => ({ blockTable: cache.blockTable(i), kvLen, qLen: args.seqLensQ[i] })),
    spec.pageSize,
  );

  const owned: { destroy(): void }[] = [];
  const upload = async (label: string, data: ArrayBufferView, usage = STORAGE) => {
    const b = await uploadBuffer(ctx, `attention.${label}`, data, usage);
    owned.push(b);
    return b;
  };
  const poisoned = (n: number) => new Float32Array(n).fill(NaN); // an unwritten output shows as NaN
  try {
    const pool = await KvPool.create(ctx, { ...spec, numLayers: 1, numPages });
    owned.push(pool);
    const kv = pool.layers[0];
    const kernelSpec = pool.spec; // a pool split across buffers (pagesPerBuffer) takes its split kernels
    const append = await KvAppend.create(ctx, kernelSpec);
    const step: StepBuffers = {
      qoIndptr: await upload('qoIndptr', meta.qoIndptr),
      kvIndptr: await upload('kvIndptr', meta.kvIndptr),
      kvPageIndices: await upload('kvPageIndices', meta.kvPageIndices),
      kvLastPageLen: await upload('kvLastPageLen', meta.kvLastPageLen),
      params: await upload(
        'params',
        new Uint8Array(
          attentionParams(numSeqs, {
            scale: args.scale ?? 1 / Math.sqrt(args.headDimQK),
            causal: args.causal ?? true,
            window: args.window ?? 0,
          }),
        ),
        UNIFORM,
      ),
    };
    const q = await upload('q', args.q);
    const out = await upload('out', poisoned(tq * H * args.headDimV));
    const lse = await upload('lse', poisoned(tq * H));
    const appendBind = append.bind({
      newK: await upload('k', args.k),
      newV: args.mla ? undefined : await upload('v', args.v!),
      slotMapping: await upload('slotMapping', slotMapping),
      pages: kv,
      params: await upload('appendParams', new Uint32Array([tk, 0, 0, 0]), UNIFORM),
    });

    // Where the decode kernel takes one token per sequence (splitKvDecode v2 on an adapter without one
    // fixed subgroup size), 'auto' sends a few-token step to flashPrefill, as the model's forward does.
    const auto = (args.kernel ?? 'auto') === 'auto';
    if (auto && kernel === 'decode' && !args.mla && !(await SplitKvDecode.create(ctx, kernelSpec)).takes(meta)) {
      kernel = 'prefill';
    }
    await ctx.validated(`attention (${kernel})`, async () => {
      const encoder = ctx.device.createCommandEncoder({ label: 'attention' });
      let pass = encoder.beginComputePass({ label: 'attention.kvAppend' });
      append.encode(pass, appendBind, tk);
      pass.end();
      if (kernel === 'prefill') {
        const prefill = await FlashPrefill.create(ctx, kernelSpec, args.prefill);
        const plan = prefill.plan(meta);
        const bind = prefill.bind({ q, pages: kv, step, work: await upload('work', plan.work), out, lse });
        pass = encoder.beginComputePass({ label: 'attention.flashPrefill' });
        prefill.encode(pass, bind, plan.numWorkItems);
        pass.end();
      } else if (kernel === 'decode') {
        // Same plan / bind / encode and partial layout: MLA takes its head-blocked kernel.
        const decode = args.mla ? await MlaDecode.create(ctx, kernelSpec) : await SplitKvDecode.create(ctx, kernelSpec);
        const merge = await MergePartials.create(ctx, H, args.headDimV);
        const plan = decode.plan(meta);
        const bytes = decode.partialBytes(plan.numSlots);
        const partialO = await upload('partialO', poisoned(bytes.o / 4));
        const partialML = await upload('partialML', poisoned(bytes.ml / 4));
        const decodeBind = decode.bind({
          q,
          pages: kv,
          step,
          work: await upload('work', plan.work),
          partialO,
          partialML,
        });
        const slotIndptr = await upload('slotIndptr', plan.slotIndptr);
        const mergeBind = merge.bind({ partialO, partialML, slotIndptr, qoIndptr: step.qoIndptr, out, lse });
        pass = encoder.beginComputePass({ label: args.mla ? 'attention.mlaDecode' : 'attention.splitKvDecode' });
        decode.encode(pass, decodeBind, plan.numWorkItems);
        merge.encode(pass, mergeBind, numSeqs);
        pass.end();
      } else {
        const naive = await NaiveAttention.create(ctx, kernelSpec);
        const plan = naive.plan(meta);
        const scores = await upload('scores', poisoned(plan.scoresBytes / 4));
        const tokenSeq = await upload('tokenSeq', plan.tokenSeq);
        const binding = await naive.bind(plan, { q, pages: kv, step, tokenSeq, scores, out, lse });
        owned.push(...binding.chunks.map((c) => c.uniform));
        pass = encoder.beginComputePass({ label: 'attention.naive' });
        naive.encode(pass, binding);
        pass.end();
      }
      ctx.device.queue.submit([encoder.finish()]);
    });
    return { out: await readFloat32(ctx, out, tq * H * args.headDimV), lse: await readFloat32(ctx, lse, tq * H) };
  } finally {
    for (const b of owned) b.destroy();
  }
}
