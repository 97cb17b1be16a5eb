/**
 * webattn against onnxruntime-web's WebGPU GroupQueryAttention, in one page, on one GPUDevice.
 *
 * Shapes are `npm run bench`'s GQA rows (32 query heads over 8 KV heads, d 128; decode at 1K/4K/16K
 * context, batch 1 and 8; causal prefill at 512/1K/2K), in f32 on both sides: ORT's operator is f32
 * here (f16 needs `shader-f16`, which SwiftShader lacks), so webattn's pages are f32 too.
 *
 * One step, as each side runs it:
 *   webattn     kvAppend of the step's new K/V rows into their page slots, then splitKvDecode +
 *               mergePartials (decode) or flashPrefill (prefill), one command buffer.
 *   ort-static  ORT's best GPU-resident setup (onnxruntime-genai's "static KV cache"): past_key and
 *               present_key are one GPU buffer [B, Hkv, ctx, D] (present aliases past, so the
 *               operator appends in place), q/k/v inputs and the output are GPU buffers. The fair
 *               kernel comparison.
 *   ort-gpu     past K/V GPU-resident, present K/V and the output as new GPU buffers
 *               (`preferredOutputLocation: 'gpu-buffer'`): the operator copies past into present.
 *   ort-tjs     what transformers.js does on WebGPU: past K/V are last step's present GPU buffers,
 *               present comes back as new GPU buffers (copying past), q/k/v go in as CPU tensors and
 *               the output comes back to the CPU. Its per-step cost for one layer's attention.
 * Every timing is the wall clock from the call to the queue being idle (`onSubmittedWorkDone`),
 * the same measure for both libraries; reps are interleaved (the order rotates every rep) and the
 * medians reported.
 *
 * Before timing, every mode's output is checked against webattn's on the same inputs (rel L2 <
 * 1e-3). K/V come from a counter-based hash of (token, head, dim), so each layout — webattn's pages
 * (filled through kvAppend, pages handed out shuffled) and ORT's BNSH cache — is written from the
 * same values without ever holding a whole cache on the host.
 */
import type * as Ort from 'onnxruntime-web';
import type { GpuContext } from '../../src/gpu/context';
import { readFloat32, STORAGE, UNIFORM, uploadBuffer } from '../../src/gpu/buffers';
import { median } from '../../src/gpu/timer';
import { shuffled } from '../../src/bench/attentionBench';
import { buildPageTable, type PageTableMetadata } from '../../src/kernels/pageTable';
import { KvPool, maxPagesPerLayer } from '../../src/kernels/kvPool';
import { attentionParams, type AttentionSpec, type StepBuffers } from '../../src/kernels/pagedAttention';
import { KvAppend } from '../../src/kernels/kvAppend';
import { FlashPrefill } from '../../src/kernels/flashPrefill';
import { SplitKvDecode } from '../../src/kernels/splitKvDecode';
import { MergePartials } from '../../src/kernels/mergePartials';
import { relL2 } from '../../src/reference/attention';
import type { BenchRow } from '../../src/bench/attentionBench';
import { gqaModelBytes } from './gqaModel';

export type OrtModule = typeof Ort;
export type OrtMode = 'ort-static' | 'ort-gpu' | 'ort-tjs';
export const ORT_MODES: readonly OrtMode[] = ['ort-static', 'ort-gpu', 'ort-tjs'];

/** A row of `npm run bench`'s JSON, plus vsOrt. */
export interface PeerRow extends Omit<BenchRow, 'kernel' | 'phase'> {
  phase: 'decode' | 'prefill';
  kernel: 'webattn' | OrtMode;
  /**
   * ORT time / webattn time for this shape: on an ORT row, that row's mode; on the webattn row,
   * ort-static's (the kernel comparison; the first mode timed if ort-static was not). Above 1:
   * webattn is faster.
   */
  vsOrt: number;
}

export interface PeerReport {
  adapter: string;
  features: string[];
  timing: 'wall-clock';
  date: string;
  ortVersion: string;
  reps: number;
  rows: PeerRow[];
  skipped: string[];
}

export interface PeerOptions {
  quick?: boolean;
  reps?: number;
  /** Skip shapes whose context (decode) or length (prefill) is above this. */
  maxContext?: number;
  /** Shapes to run instead of the suite's. */
  shapes?: readonly PeerShape[];
  /** ORT modes to time (default all three). */
  modes?: readonly OrtMode[];
  onProgress?: (msg: string) => void;
  onRow?: (row: PeerRow) => void;
  signal?: AbortSignal;
}

const VARIANT = 'gqa32/8 d128 f32';
const H = 32;
const SPEC: AttentionSpec = {
  numKvHeads: 8,
  groupSize: 4,
  headDimQK: 128,
  headDimV: 128,
  pageSize: 16,
  kvDtype: 'f32',
};
const HKV = SPEC.numKvHeads;
const D = SPEC.headDimQK;
const KV_BYTES_PER_TOKEN = HKV * (D + D) * 4;
/** Two f32 implementations of the same softmax(QK^T)V, summed in different orders. */
const CHECK_TOL = 1e-3;
const SEED_Q = 0x51;
const SEED_K = 0x4b;
const SEED_V = 0x56;

/** decode: `batch` sequences of `len` keys, one new token each; prefill: one sequence of `len` tokens. */
export interface PeerShape {
  phase: 'decode' | 'prefill';
  batch: number;
  len: number;
}
type Shape = PeerShape;

const FULL: Shape[] = [
  ...[1, 8].flatMap((batch) => [1024, 4096, 16384].map((len) => ({ phase: 'decode' as const, batch, len }))),
  ...[512, 1024, 2048].map((len) => ({ phase: 'prefill' as const, batch: 1, len })),
];
const QUICK: Shape[] = [
  { phase: 'decode', batch: 1, len: 256 },
  { phase: 'decode', batch: 2, len: 256 },
  { phase: 'prefill', batch: 1, len: 64 },
];

/** A value in [-1, 1) from (seed, index): the same K/V for every layout, no host copy of a cache. */
function hashUnit(seed: number, i: number): number {
  let x = Math.imul((i ^ Math.imul(seed, 0x27d4eb2d)) >>> 0, 0x9e3779b1);
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return (x >>> 0) / 2 ** 31 - 1;
}

function hashed(seed: number, start: number, n: number): Float32Array<ArrayBuffer> {
  const a = new Float32Array(n);
  for (let j = 0; j < n; j++) a[j] = hashUnit(seed, start + j);
  return a;
}

export async function runPeerBench(ctx: GpuContext, ort: OrtModule, opts: PeerOptions = {}): Promise<PeerReport> {
  const reps = opts.reps ?? (opts.quick ? 3 : 5);
  const modes = opts.modes ?? ORT_MODES;
  const progress = opts.onProgress ?? (() => {});
  const report: PeerReport = {
    adapter: ctx.adapterDescription,
    features: [...ctx.device.features].sort(),
    timing: 'wall-clock',
    date: new Date().toISOString(),
    ortVersion: ort.env.versions?.web ?? 'unknown',
    reps,
    rows: [],
    skipped: [],
  };
  progress(`creating ORT sessions (onnxruntime-web ${report.ortVersion}) on this page's device`);
  const sessions = await createSessions(ctx, ort);
  try {
    for (const shape of opts.shapes ?? (opts.quick ? QUICK : FULL)) {
      opts.signal?.throwIfAborted();
      const name = `${VARIANT} ${shape.phase} b${shape.batch} ${shape.phase === 'decode' ? 'ctx' : 'len'}${shape.len}`;
      if (opts.maxContext !== undefined && shape.len > opts.maxContext) {
        report.skipped.push(`${name}: above --max-context ${opts.maxContext}`);
        continue;
      }
      const tooBig = bindingProblem(ctx, shape);
      if (tooBig) {
        report.skipped.push(`${name}: ${tooBig}`);
        continue;
      }
      progress(name);
      const r = await benchShape(ctx, ort, sessions, shape, modes, reps, opts.signal, progress);
      const pairs = shape.phase === 'decode' ? shape.batch * shape.len : (shape.len * (shape.len + 1)) / 2;
      const tq = shape.phase === 'decode' ? shape.batch : shape.len;
      const bytes = shape.batch * shape.len * KV_BYTES_PER_TOKEN + tq * H * 2 * D * 4;
      const flop = 2 * pairs * H * 2 * D;
      const emit = (kernel: PeerRow['kernel'], ms: number, vsOrt: number, check: number | null) => {
        const row: PeerRow = {
          name: `${name} ${kernel}`,
          variant: VARIANT,
          phase: shape.phase,
          kernel,
          batch: shape.batch,
          contextLength: shape.len,
          kvBytesPerToken: KV_BYTES_PER_TOKEN,
          medianMs: ms,
          gbPerSecond: bytes / (ms * 1e6),
          gflopPerSecond: flop / (ms * 1e6),
          vsNaive: null,
          vsCopyBandwidth: null,
          vsOrt,
          checkRelL2: check,
          adapter: report.adapter,
        };
        report.rows.push(row);
        opts.onRow?.(row);
      };
      report.skipped.push(...r.disagree.map((d) => `${name} ${d}`));
      const timed = modes.filter((m) => r.ms[m] !== undefined);
      if (!timed.length) continue;
      const headline = r.ms['ort-static'] ?? r.ms[timed[0]]!;
      emit('webattn', r.webattnMs, headline / r.webattnMs, null);
      for (const m of timed) emit(m, r.ms[m]!, r.ms[m]! / r.webattnMs, r.check[m]!);
      const perMode = timed.map((m) => `${m} ${r.ms[m]!.toFixed(1)} ms (vsOrt ${(r.ms[m]! / r.webattnMs).toFixed(2)})`);
      progress(`  webattn ${r.webattnMs.toFixed(1)} ms; ${perMode.join(', ')}`);
    }
  } finally {
    for (const s of Object.values(sessions)) await s.release();
  }
  return report;
}

interface Sessions {
  static: Ort.InferenceSession;
  gpu: Ort.InferenceSession;
  tjs: Ort.InferenceSession;
}

async function createSessions(ctx: GpuContext, ort: OrtModule): Promise<Sessions> {
  const model = gqaModelBytes({ numHeads: H, kvNumHeads: HKV, headDim: D });
  // ORT runs on webattn's device (an external device is an EP option the typings do not list yet).
  const ep = { name: 'webgpu', device: ctx.device } as unknown as Ort.InferenceSession.ExecutionProviderConfig;
  const create = (preferredOutputLocation: Ort.InferenceSession.SessionOptions['preferredOutputLocation']) =>
    ort.InferenceSession.create(model, { executionProviders: [ep], preferredOutputLocation });
  // One at a time: ORT refuses to create two WebGPU sessions concurrently.
  const s = await create('gpu-buffer');
  const g = await create('gpu-buffer');
  const t = await create({ output: 'cpu', present_key: 'gpu-buffer', present_value: 'gpu-buffer' });
  return { static: s, gpu: g, tjs: t };
}

/** Why this shape cannot run on this device (a cache buffer past the binding limit), or ''. */
function bindingProblem(ctx: GpuContext, s: Shape): string {
  const pages = s.batch * Math.ceil(s.len / SPEC.pageSize);
  const limit = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
  const cacheBytes = s.batch * HKV * s.len * D * 4;
  if (pages > maxPagesPerLayer(ctx, SPEC) || cacheBytes > limit) {
    return `a ${cacheBytes}-byte K cache passes this adapter's storage binding limit (${limit} bytes) on both sides`;
  }
  return '';
}

interface ShapeResult {
  webattnMs: number;
  /** Medians of the modes whose output agreed with webattn's. */
  ms: Partial<Record<OrtMode, number>>;
  check: Partial<Record<OrtMode, number>>;
  /** Modes not timed because their output disagreed, with the rel L2. */
  disagree: string[];
}

async function benchShape(
  ctx: GpuContext,
  ort: OrtModule,
  sessions: Sessions,
  shape: Shape,
  modes: readonly OrtMode[],
  reps: number,
  signal: AbortSignal | undefined,
  progress: (msg: string) => void,
): Promise<ShapeResult> {
  const { batch: B, len } = shape;
  const decode = shape.phase === 'decode';
  const qLen = decode ? 1 : len;
  const tq = B * qLen;
  const owned: { destroy(): void }[] = [];
  const buffer = async (label: string, bytes: number, usage = STORAGE) => {
    const b = await ctx.createBuffer(`peer.${label}`, bytes, usage);
    owned.push(b);
    return b;
  };
  const up = async (label: string, data: ArrayBufferView, usage = STORAGE) => {
    const b = await uploadBuffer(ctx, `peer.${label}`, data, usage);
    owned.push(b);
    return b;
  };
  try {
    // The step's inputs, one layout for both libraries: q [B*qLen, H*D], new K/V [B*qLen, Hkv*D]
    // (token-major; decode: the last token of each sequence, prefill: all of them).
    const hostQ = hashed(SEED_Q, 0, tq * H * D);
    const newRow = (seed: number) => {
      if (!decode) return hashed(seed, 0, len * HKV * D);
      const a = new Float32Array(B * HKV * D);
      for (let b = 0; b < B; b++) a.set(hashed(seed, (b * len + len - 1) * HKV * D, HKV * D), b * HKV * D);
      return a;
    };
    const hostK = newRow(SEED_K);
    const hostV = newRow(SEED_V);
    const q = await up('q', hostQ);
    const kNew = await up('kNew', hostK);
    const vNew = await up('vNew', hostV);

    // webattn: a pool holding each sequence's pages (handed out shuffled), past rows appended now.
    const pagesPer = Math.ceil(len / SPEC.pageSize);
    const pool = await KvPool.create(ctx, { ...SPEC, numLayers: 1, numPages: B * pagesPer });
    owned.push(pool);
    const kv = pool.layers[0];
    const order = shuffled(B * pagesPer, 11);
    const blockTables = Array.from({ length: B }, (_, b) => order.slice(b * pagesPer, (b + 1) * pagesPer));
    const slot = (b: number, t: number) =>
      blockTables[b][Math.floor(t / SPEC.pageSize)] * SPEC.pageSize + (t % SPEC.pageSize);
    const append = await KvAppend.create(ctx, SPEC);
    if (decode) await appendPast(ctx, append, kv, B, len, slot, buffer);
    const meta: PageTableMetadata = buildPageTable(
      blockTables.map((blockTable) => ({ kvLen: len, qLen, blockTable })),
      SPEC.pageSize,
    );
    const step: StepBuffers = {
      qoIndptr: await up('qoIndptr', meta.qoIndptr),
      kvIndptr: await up('kvIndptr', meta.kvIndptr),
      kvPageIndices: await up('kvPageIndices', meta.kvPageIndices),
      kvLastPageLen: await up('kvLastPageLen', meta.kvLastPageLen),
      params: await up(
        'params',
        new Uint8Array(attentionParams(B, { scale: 1 / Math.sqrt(D), causal: true, window: 0 })),
        UNIFORM,
      ),
    };
    const newSlots = new Int32Array(tq);
    for (let b = 0; b < B; b++) for (let j = 0; j < qLen; j++) newSlots[b * qLen + j] = slot(b, len - qLen + j);
    const slotMapping = await up('newSlots', newSlots);
    const appendParams = await up('appendParams', new Uint32Array([tq, 0, 0, 0]), UNIFORM);
    const appendBind = append.bind({ newK: kNew, newV: vNew, slotMapping, pages: kv, params: appendParams });
    const out = await up('out', new Float32Array(tq * H * D).fill(NaN));
    const lse = await buffer('lse', tq * H * 4);
    let attend: (pass: GPUComputePassEncoder) => void;
    if (decode) {
      const k = await SplitKvDecode.create(ctx, SPEC);
      const merge = await MergePartials.create(ctx, H, D);
      const plan = k.plan(meta);
      const bytes = k.partialBytes(plan.numSlots);
      const po = await buffer('partialO', bytes.o);
      const pml = await buffer('partialML', bytes.ml);
      const bind = k.bind({ q, pages: kv, step, work: await up('work', plan.work), partialO: po, partialML: pml });
      const slotIndptr = await up('slotIndptr', plan.slotIndptr);
      const mergeBind = merge.bind({ partialO: po, partialML: pml, slotIndptr, qoIndptr: step.qoIndptr, out, lse });
      attend = (pass) => {
        k.encode(pass, bind, plan.numWorkItems);
        merge.encode(pass, mergeBind, B);
      };
    } else {
      const k = await FlashPrefill.create(ctx, SPEC);
      const plan = k.plan(meta);
      const bind = k.bind({ q, pages: kv, step, work: await up('work', plan.work), out, lse });
      attend = (pass) => k.encode(pass, bind, plan.numWorkItems);
    }
    const webattnStep = async () => {
      const t0 = performance.now();
      const encoder = ctx.device.createCommandEncoder({ label: 'peer.webattn' });
      let pass = encoder.beginComputePass({ label: 'peer.kvAppend' });
      append.encode(pass, appendBind, tq);
      pass.end();
      pass = encoder.beginComputePass({ label: 'peer.attention' });
      attend(pass);
      pass.end();
      ctx.device.queue.submit([encoder.finish()]);
      await ctx.device.queue.onSubmittedWorkDone();
      return performance.now() - t0;
    };

    // ORT: the static cache [B, Hkv, len, D] (its last slot is written by the step itself), and for
    // the other modes a past of len - qLen tokens copied out of it.
    const cacheDims = [B, HKV, len, D];
    const cacheBytes = B * HKV * len * D * 4;
    const staticK = await buffer('ort.staticK', cacheBytes);
    const staticV = await buffer('ort.staticV', cacheBytes);
    if (decode) {
      await fillBnsh(ctx, staticK, SEED_K, B, len);
      await fillBnsh(ctx, staticV, SEED_V, B, len);
    }
    const pastLen = len - qLen;
    const pastDims = [B, HKV, pastLen, D];
    let pastK: Ort.Tensor;
    let pastV: Ort.Tensor;
    if (pastLen > 0) {
      const pk = await buffer('ort.pastK', B * HKV * pastLen * D * 4);
      const pv = await buffer('ort.pastV', B * HKV * pastLen * D * 4);
      const encoder = ctx.device.createCommandEncoder({ label: 'peer.ort.past' });
      for (let bh = 0; bh < B * HKV; bh++) {
        encoder.copyBufferToBuffer(staticK, bh * len * D * 4, pk, bh * pastLen * D * 4, pastLen * D * 4);
        encoder.copyBufferToBuffer(staticV, bh * len * D * 4, pv, bh * pastLen * D * 4, pastLen * D * 4);
      }
      ctx.device.queue.submit([encoder.finish()]);
      await ctx.device.queue.onSubmittedWorkDone();
      pastK = ort.Tensor.fromGpuBuffer(pk, { dataType: 'float32', dims: pastDims });
      pastV = ort.Tensor.fromGpuBuffer(pv, { dataType: 'float32', dims: pastDims });
    } else {
      pastK = new ort.Tensor('float32', new Float32Array(0), pastDims);
      pastV = new ort.Tensor('float32', new Float32Array(0), pastDims);
    }
    const gpuTensor = (b: GPUBuffer, dims: number[]) => ort.Tensor.fromGpuBuffer(b, { dataType: 'float32', dims });
    const lengths = {
      seqlens_k: new ort.Tensor('int32', new Int32Array(B).fill(len - 1), [B]),
      total_sequence_length: new ort.Tensor('int32', new Int32Array([len]), []),
    };
    const qDims = [B, qLen, H * D];
    const kvDims = [B, qLen, HKV * D];
    const gpuInputs = {
      query: gpuTensor(q, qDims),
      key: gpuTensor(kNew, kvDims),
      value: gpuTensor(vNew, kvDims),
      ...lengths,
    };
    const cpuInputs = {
      query: new ort.Tensor('float32', hostQ, qDims),
      key: new ort.Tensor('float32', hostK, kvDims),
      value: new ort.Tensor('float32', hostV, kvDims),
      ...lengths,
    };
    const outStatic = await up('ort.outStatic', new Float32Array(tq * H * D).fill(NaN));
    const staticFetches = {
      output: gpuTensor(outStatic, qDims),
      present_key: gpuTensor(staticK, cacheDims),
      present_value: gpuTensor(staticV, cacheDims),
    };
    const staticFeeds = {
      ...gpuInputs,
      past_key: gpuTensor(staticK, cacheDims),
      past_value: gpuTensor(staticV, cacheDims),
    };

    /** One ORT step in `mode`; returns its milliseconds, and the output when `read`. */
    const ortStep = async (mode: OrtMode, read: boolean): Promise<{ ms: number; out?: Float32Array }> => {
      const t0 = performance.now();
      let result: Ort.InferenceSession.ReturnType;
      if (mode === 'ort-static') {
        result = await sessions.static.run(staticFeeds, staticFetches);
      } else if (mode === 'ort-gpu') {
        result = await sessions.gpu.run({ ...gpuInputs, past_key: pastK, past_value: pastV });
      } else {
        result = await sessions.tjs.run({ ...cpuInputs, past_key: pastK, past_value: pastV });
      }
      await ctx.device.queue.onSubmittedWorkDone();
      const ms = performance.now() - t0;
      let outData: Float32Array | undefined;
      if (read) {
        outData =
          mode === 'ort-static'
            ? await readFloat32(ctx, outStatic, tq * H * D)
            : ((await result.output.getData()) as Float32Array);
      }
      // ORT-allocated outputs go back to its buffer cache, as transformers.js disposes last step's.
      if (mode !== 'ort-static') for (const t of Object.values(result)) t.dispose();
      return { ms, out: outData };
    };

    // Check before timing (these first runs also compile every pipeline).
    await ctx.validated('peer.webattn', webattnStep);
    const ours = await readFloat32(ctx, out, tq * H * D);
    const check: ShapeResult['check'] = {};
    for (const m of modes) check[m] = relL2((await ortStep(m, true)).out!, ours);
    const timed = modes.filter((m) => check[m]! < CHECK_TOL);
    const disagree = modes
      .filter((m) => !timed.includes(m))
      .map((m) => `${m} disagrees with webattn (rel L2 ${check[m]!.toExponential(2)}): not timed`);
    for (const d of disagree) progress(`  ${d}`);
    const agree = timed.map((m) => `${m} rel L2 ${check[m]!.toExponential(1)}`).join(', ');
    progress(`  ${timed.length ? `agree: ${agree}; ` : ''}timing ${reps} reps`);

    const runners: [string, () => Promise<number>][] = [
      ['webattn', webattnStep],
      ...timed.map((m) => [m, async () => (await ortStep(m, false)).ms] as [string, () => Promise<number>]),
    ];
    const times = new Map<string, number[]>(runners.map(([n]) => [n, []]));
    for (let rep = 0; rep < reps; rep++) {
      for (let i = 0; i < runners.length; i++) {
        signal?.throwIfAborted();
        const [n, run] = runners[(rep + i) % runners.length];
        times.get(n)!.push(await run());
      }
    }
    const ms: ShapeResult['ms'] = {};
    for (const m of timed) ms[m] = median(times.get(m)!);
    return { webattnMs: median(times.get('webattn')!), ms, check, disagree };
  } finally {
    for (const b of owned) b.destroy();
  }
}

/** Appends tokens 0..len-2 of every sequence into the pages, in chunks (set-up, not timed). */
async function appendPast(
  ctx: GpuContext,
  append: KvAppend,
  kv: { kPages: GPUBuffer; vPages: GPUBuffer },
  B: number,
  len: number,
  slot: (b: number, t: number) => number,
  buffer: (label: string, bytes: number, usage?: number) => Promise<GPUBuffer>,
): Promise<void> {
  const CHUNK = 2048;
  const row = HKV * D;
  const k = await buffer('fill.k', CHUNK * row * 4);
  const v = await buffer('fill.v', CHUNK * row * 4);
  const slots = await buffer('fill.slots', CHUNK * 4);
  const params = await buffer('fill.params', 16, UNIFORM);
  const bind = append.bind({ newK: k, newV: v, slotMapping: slots, pages: kv, params });
  for (let b = 0; b < B; b++) {
    for (let t0 = 0; t0 < len - 1; t0 += CHUNK) {
      const n = Math.min(CHUNK, len - 1 - t0);
      const s = new Int32Array(n);
      for (let j = 0; j < n; j++) s[j] = slot(b, t0 + j);
      ctx.device.queue.writeBuffer(k, 0, hashed(SEED_K, (b * len + t0) * row, n * row));
      ctx.device.queue.writeBuffer(v, 0, hashed(SEED_V, (b * len + t0) * row, n * row));
      ctx.device.queue.writeBuffer(slots, 0, s);
      ctx.device.queue.writeBuffer(params, 0, new Uint32Array([n, 0, 0, 0]));
      const encoder = ctx.device.createCommandEncoder({ label: 'peer.fill' });
      const pass = encoder.beginComputePass();
      append.encode(pass, bind, n);
      pass.end();
      ctx.device.queue.submit([encoder.finish()]);
      await ctx.device.queue.onSubmittedWorkDone();
    }
  }
}

/** Writes the BNSH cache [B, Hkv, len, D] from the same hash as the pages (set-up, not timed). */
async function fillBnsh(ctx: GpuContext, target: GPUBuffer, seed: number, B: number, len: number): Promise<void> {
  const block = new Float32Array(len * D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < HKV; h++) {
      for (let t = 0; t < len; t++) {
        const base = ((b * len + t) * HKV + h) * D;
        for (let d = 0; d < D; d++) block[t * D + d] = hashUnit(seed, base + d);
      }
      ctx.device.queue.writeBuffer(target, (b * HKV + h) * len * D * 4, block);
    }
    await ctx.device.queue.onSubmittedWorkDone();
  }
}

/** One line per shape: each side's median and the ratios (README table). */
export function formatPeerTable(report: PeerReport): string {
  const f = (x: number | undefined, d = 2) => (x === undefined ? '' : x.toFixed(d));
  const shapes = new Map<string, PeerRow[]>();
  for (const r of report.rows) {
    const key = r.name.slice(0, r.name.lastIndexOf(' '));
    shapes.set(key, [...(shapes.get(key) ?? []), r]);
  }
  const modes = ORT_MODES.filter((m) => report.rows.some((r) => r.kernel === m));
  const lines = [
    `Adapter: ${report.adapter}; onnxruntime-web ${report.ortVersion}; ` +
      `timing: ${report.timing}, median of ${report.reps} interleaved reps`,
    '',
    `| shape | webattn ms | ${modes.map((m) => `${m} ms`).join(' | ')} | ` +
      `${modes.map((m) => `vsOrt ${m}`).join(' | ')} | check rel L2 |`,
    `|---|---:|${modes.map(() => '---:').join('|')}|${modes.map(() => '---:').join('|')}|---:|`,
  ];
  for (const [key, rows] of shapes) {
    const by = (k: PeerRow['kernel']) => rows.find((r) => r.kernel === k);
    const checks = modes.map((m) => by(m)?.checkRelL2 ?? 0);
    const cells = [
      key.replace(`${VARIANT} `, ''),
      f(by('webattn')?.medianMs, 1),
      ...modes.map((m) => f(by(m)?.medianMs, 1)),
      ...modes.map((m) => f(by(m)?.vsOrt)),
      Math.max(...checks).toExponential(1),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  if (report.skipped.length) lines.push('', ...report.skipped.map((s) => `- skipped ${s}`));
  return lines.join('\n');
}
