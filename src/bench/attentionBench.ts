/**
 * The attention benchmark: one set of definitions run by `npm run bench` in Node and by the demo's
 * bench page in the browser, 16-token pages, f16 KV unless a row names its KV dtype:
 *   - copy: a plain device copy, the bandwidth ceiling;
 *   - GQA 32/8 heads, d 128 (Llama-3-8B): decode at 1K/4K/16K context, batch 1 and 8
 *     (splitKvDecode + mergePartials) and causal prefill at 512/1K/2K tokens (flashPrefill);
 *   - MLA, DeepSeek dims (576-wide latent rows, V = the first 512), H = 16 and 128: decode at 4K/16K
 *     (mlaDecode + mergePartials);
 *   each against the naive three-pass attention;
 *   - KV dtypes: GQA 32/8 d128 decode, batch 1, at 16K / 64K context (128K with `long`) with f16, q8
 *     and q4 pages ('kv-dtype ...' rows), the current flash kernel only (naive runs once, as the
 *     check), each rep alternating with a copy-kernel run: vsCopyBandwidth is against that copy, so
 *     a load that drifts between rows (a shared machine) does not move the ratio.
 * Every shape is checked before it is timed: the flash and naive outputs must agree (each is tested
 * against the float64 reference in the test suite; here the shapes are too big for it).
 * Ratios are measured in the same run: vsNaive = naive time / flash time;
 * vsCopyBandwidth = this row's GB/s / the copy kernel's GB/s.
 * MLA decode rows (compute-bound) also alternate each rep with the compute ceiling, the prefill GEMM
 * (computeCeiling.ts; its own 'matmul' row): vsMatmulGflops = this row's GFLOP/s / that GEMM's.
 *
 * A ladder, as llm.c's attention_forward.cu keeps one: every kernel version stays and is timed on
 * the same shapes, each with the numbers it measured in its own header.
 *   - naive: three passes, scores materialised (naiveScores / naiveSoftmax / naiveOutput);
 *   - decode 'flash v1': splitKvDecodeV1.wgsl, q from workgroup memory, 128-key chunks;
 *   - decode 'flash v2': splitKvDecodeV2.wgsl, q shuffled through subgroups, 64-key chunks;
 *   - decode 'flash': splitKvDecode.wgsl (v3), q and p in registers through shuffles, a softmax state per
 *     subgroup (no barrier in the key loop); v2 where the adapter has no fixed subgroup size;
 *   - MLA decode 'flash v1': mlaDecodeV1.wgsl, one key per lane; 'flash': mlaDecode.wgsl (v2), two keys per lane;
 *   - prefill 'flash v1': flashPrefill over attentionTileV1.wgsl (K / V tile unpacked to f32);
 *   - prefill 'flash v2': flashPrefill over attentionTileV2.wgsl (tile as stored: 2x keys per tile in f16);
 *   - prefill 'flash': flashPrefill over attentionTile.wgsl (v3: S and P in registers, double-buffered K / V).
 * Every row says the bytes the kernel must read (bytesRead = bytesKv + bytesQ + bytesOut: K/V once per
 * KV head, q, out) and the workgroups it launched, so GB/s is against the floor; decode rows also say
 * kvPasses, how many times the kernel reads each K/V row in the step (1: once per KV head, all its
 * query heads at once; MLA: once per head block). GQA decode rows alternate each rep with a copy-kernel
 * run too, so vsCopyBandwidth is against a copy measured under the same load.
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { readFloat32, STORAGE, UNIFORM, uploadBuffer, writeBuffer } from '../gpu/buffers';
import { median, PassTimer, type TimingSource } from '../gpu/timer';
import { buildPageTable, type PageTableMetadata } from '../kernels/pageTable';
import { KvPool, kvPoolLayout, pageBufferBytes } from '../kernels/kvPool';
import { attentionParams, type AttentionSpec, type StepBuffers } from '../kernels/pagedAttention';
import { type KvDtype, kvPageBytes, kvRowBytes, kvScalesPerRow } from '../gpu/dtype';
import { FlashPrefill } from '../kernels/flashPrefill';
import { SplitKvDecode } from '../kernels/splitKvDecode';
import { MlaDecode } from '../kernels/mlaDecode';
import { MergePartials } from '../kernels/mergePartials';
import { NaiveAttention } from '../kernels/naiveAttention';
import { CopyKernel } from '../kernels/copy';
import { CEILING_SHAPE, type ComputeCeiling, createComputeCeiling, QUICK_CEILING_SHAPE } from './computeCeiling';
import { relL2 } from '../reference/attention';
import { seededArray } from '../reference/random';
import { f32ArrayToF16 } from '../sources/halfFloat';

export interface BenchRow {
  name: string;
  variant: string;
  phase: 'prefill' | 'decode' | 'copy' | 'matmul';
  /** 'flash': the current kernel; 'flash v1': the previous one (the ladder); 'naive': three passes. */
  kernel: 'flash' | 'flash v1' | 'flash v2' | 'naive' | 'copy' | 'matmul';
  batch: number;
  contextLength: number;
  /** KV bytes one token costs in one layer for this row's variant and dtype. */
  kvBytesPerToken: number;
  medianMs: number;
  gbPerSecond: number;
  gflopPerSecond: number;
  vsNaive: number | null;
  vsCopyBandwidth: number | null;
  /** The copy kernel's GB/s that vsCopyBandwidth divides by, when timed alternately with this row. */
  copyGbPerSecond?: number;
  /** MLA rows: the compute ceiling's GFLOP/s (computeCeiling.ts) timed alternately with this row. */
  matmulGflopPerSecond?: number;
  /** gflopPerSecond / matmulGflopPerSecond (MLA rows: compute-bound, so this is their ceiling). */
  vsMatmulGflops?: number;
  /** rel L2 between flash and naive outputs on this shape (null for copy). */
  checkRelL2: number | null;
  /** Bytes the kernel must read or write at least: the sequences' K/V once, q and out (copy: src + dst). */
  bytesRead?: number;
  /** The parts of bytesRead: K/V of every sequence once per KV head (scales included), q (f32), out (f32). */
  bytesKv?: number;
  bytesQ?: number;
  bytesOut?: number;
  /**
   * Decode rows: how many times the kernel reads each K/V row in the step, the row tiles of a KV head
   * (ceil(query heads per KV head / heads per workgroup)); 1 = K/V read once per KV head per step.
   */
  kvPasses?: number;
  /** Workgroups the row's dispatches launch (decode: the split-KV kernel plus the merge). */
  workgroups?: number;
  adapter: string;
}

export interface BenchReport {
  adapter: string;
  features: string[];
  timing: TimingSource;
  date: string;
  rows: BenchRow[];
  /** Shapes not run on this adapter, with the reason (e.g. a pool past the binding limit). */
  skipped: string[];
}

export interface BenchOptions {
  quick?: boolean;
  reps?: number;
  onProgress?: (msg: string) => void;
  onRow?: (row: BenchRow) => void;
  signal?: AbortSignal;
  /**
   * Run only the shapes whose name (`<variant> <phase> b<batch> ctx|len<n>`, e.g.
   * 'mla h16 512+64 f16 decode b1 ctx4096') contains this, or any of several separated by commas
   * ('mla', 'decode b1', 'gqa,mla h16'); the copy row always runs.
   */
  only?: string;
  /** mlaDecode's most heads per workgroup (tuning; default: the kernel's own choice). */
  mlaHeadsPerWorkgroup?: number;
  /** Also the 128K-context KV-dtype rows (slow on a software adapter). */
  long?: boolean;
}

/** One attention configuration and the shapes it is measured at. */
interface Model {
  variant: string;
  numHeads: number;
  spec: AttentionSpec;
  /** Causal prefill lengths (batch 1). */
  prefill: number[];
  /** Decode context lengths, each at every batch size. */
  decode: number[];
  batches: number[];
  /** Time only the current flash kernel (no ladder, naive run once as the check): the long rows. */
  flashOnly?: boolean;
}

interface Suite {
  copyMiB: number;
  models: Model[];
}

const F16_PAGES = { pageSize: 16, kvDtype: 'f16' as const };
/** Llama-3-8B's attention: GQA 32 query heads over 8 KV heads, d 128. */
const GQA: Model = {
  variant: 'gqa32/8 d128 f16',
  numHeads: 32,
  spec: { numKvHeads: 8, groupSize: 4, headDimQK: 128, headDimV: 128, ...F16_PAGES },
  prefill: [512, 1024, 2048],
  decode: [1024, 4096, 16384],
  batches: [1, 8],
};
/** DeepSeek-V2/V3's absorbed MLA: H query heads over one 576-wide latent row (V = its first 512). */
const mla = (h: number, decode: number[]): Model => ({
  variant: `mla h${h} 512+64 f16`,
  numHeads: h,
  spec: { numKvHeads: 1, groupSize: h, headDimQK: 576, headDimV: 512, vAliasesK: true, ...F16_PAGES },
  prefill: [],
  decode,
  batches: [1],
});

/** GQA 32/8 d128 decode at one KV dtype: the rows that compare f16 / q8 / q4 pages. */
const kvDtypeGqa = (kvDtype: KvDtype, decode: number[]): Model => ({
  variant: `kv-dtype gqa32/8 d128 ${kvDtype}`,
  numHeads: 32,
  spec: { ...GQA.spec, kvDtype },
  prefill: [],
  decode,
  batches: [1],
  flashOnly: true,
});
const KV_DTYPE_ROWS = ['f16', 'q8', 'q4'] as const;
/** 16K and 64K context; 128K only with `long` (lavapipe: a minute or more per row). */
const kvDtypeContexts = (long: boolean) => (long ? [16384, 65536, 131072] : [16384, 65536]);

const fullSuite = (long: boolean): Suite => ({
  copyMiB: 64,
  models: [
    GQA,
    mla(16, [4096, 16384]),
    mla(128, [4096, 16384]),
    ...KV_DTYPE_ROWS.map((d) => kvDtypeGqa(d, kvDtypeContexts(long))),
  ],
});
const QUICK: Suite = {
  copyMiB: 8,
  models: [
    { ...GQA, prefill: [128, 256], decode: [256, 1024], batches: [1, 4] },
    mla(16, [1024]),
    ...KV_DTYPE_ROWS.map((d) => kvDtypeGqa(d, [1024])),
  ],
};

/** Flash and naive compute the same thing with f32 arithmetic over the same pages. */
const CHECK_TOL = 1e-3;

/**
 * Bytes of KV one token costs in one layer, the q8 / q4 scales included (MLA: one latent row, nothing
 * stored twice): the K and V rows of every KV head. e.g. GQA 8 KV heads d 128: f16 4096, q8 2080, q4 1152.
 */
export function kvBytesPerToken(spec: AttentionSpec): number {
  if (spec.vAliasesK) return kvRowBytes(spec.kvDtype, spec.headDimQK);
  return spec.numKvHeads * (kvRowBytes(spec.kvDtype, spec.headDimQK) + kvRowBytes(spec.kvDtype, spec.headDimV));
}

/**
 * The bytes an attention step must move at least (a row's bytesKv / bytesQ / bytesOut): every
 * sequence's K/V once per KV head (kvBytesPerToken: all KV heads, scales included), its q rows in and
 * its output rows out, f32. e.g. GQA 32/8 d 128 f16, one sequence decoding at 16384 keys:
 * K/V 16384 * 4096 = 67108864, q 32 * 128 * 4 = 16384, out 16384.
 */
export function bytesMustRead(
  spec: AttentionSpec,
  numHeads: number,
  qLens: readonly number[],
  kvLens: readonly number[],
): { bytesKv: number; bytesQ: number; bytesOut: number } {
  const tq = qLens.reduce((a, b) => a + b, 0);
  const totalKv = kvLens.reduce((a, b) => a + b, 0);
  return {
    bytesKv: totalKv * kvBytesPerToken(spec),
    bytesQ: tq * numHeads * spec.headDimQK * 4,
    bytesOut: tq * numHeads * spec.headDimV * 4,
  };
}

export async function runAttentionBench(ctx: GpuContext, opts: BenchOptions = {}): Promise<BenchReport> {
  const suite = opts.quick ? QUICK : fullSuite(opts.long === true);
  const reps = opts.reps ?? (opts.quick ? 3 : 5);
  const timer = PassTimer.create(ctx);
  const progress = opts.onProgress ?? (() => {});
  const report: BenchReport = {
    adapter: ctx.adapterDescription,
    features: [...ctx.device.features].sort(),
    timing: timer.source,
    date: new Date().toISOString(),
    rows: [],
    skipped: [],
  };
  const emit = (row: Omit<BenchRow, 'adapter'>) => {
    const full = { ...row, adapter: report.adapter };
    report.rows.push(full);
    opts.onRow?.(full);
  };
  const timeReps = async (label: string, encode: (pass: GPUComputePassEncoder) => void, n = reps) => {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      opts.signal?.throwIfAborted();
      times.push(await timer.time(label, encode));
    }
    return median(times);
  };

  let copy: CopyRun | undefined;
  let ceiling: ComputeCeiling | undefined;
  try {
    progress('copy kernel');
    copy = await createCopy(ctx, suite.copyMiB);
    const copyMs = await timeReps('bench.copy', copy.encode);
    const copyGbps = copy.bytes / (copyMs * 1e6);
    emit({
      name: `copy ${suite.copyMiB} MiB`,
      variant: 'copy',
      phase: 'copy',
      kernel: 'copy',
      batch: 1,
      contextLength: 0,
      kvBytesPerToken: 0,
      medianMs: copyMs,
      gbPerSecond: copyGbps,
      gflopPerSecond: 0,
      vsNaive: null,
      vsCopyBandwidth: 1,
      checkRelL2: null,
      bytesRead: 2 * suite.copyMiB * 2 ** 20,
      workgroups: copy.workgroups,
    });
    // The compute ceiling (computeCeiling.ts), made and emitted before the first MLA shape: MLA decode rows
    // alternate their timed runs with it, so vsMatmulGflops is measured under the row's own load.
    const matmulCeiling = async (): Promise<ComputeCeiling> => {
      if (ceiling) return ceiling;
      const shape = opts.quick ? QUICK_CEILING_SHAPE : CEILING_SHAPE;
      progress(`compute ceiling (matmul ${shape.M}x${shape.N}x${shape.K})`);
      ceiling = await createComputeCeiling(ctx, shape, (encode) => timer.time('bench.matmul', encode));
      const ms = await timeReps('bench.matmul', ceiling.encode);
      emit({
        name: ceiling.name,
        variant: 'matmul',
        phase: 'matmul',
        kernel: 'matmul',
        batch: 1,
        contextLength: 0,
        kvBytesPerToken: 0,
        medianMs: ms,
        gbPerSecond: ceiling.bytes / (ms * 1e6),
        gflopPerSecond: ceiling.flop / (ms * 1e6),
        vsNaive: null,
        vsCopyBandwidth: null,
        vsMatmulGflops: 1,
        checkRelL2: ceiling.check,
        bytesRead: ceiling.bytes,
        workgroups: ceiling.workgroups,
      });
      return ceiling;
    };
    // Every shape: check flash against naive, time both, emit a flash row and a naive row.
    const run = async (m: Model, phase: 'decode' | 'prefill', batch: number, len: number) => {
      const name = `${m.variant} ${phase} b${batch} ${phase === 'decode' ? 'ctx' : 'len'}${len}`;
      if (only.length && !only.some((o) => name.includes(o))) return;
      progress(name);
      const qLen = phase === 'decode' ? 1 : len;
      const [qLens, kvLens] = [Array(batch).fill(qLen), Array(batch).fill(len)];
      const alternate = m.flashOnly || (phase === 'decode' && !m.spec.vAliasesK) ? copy : undefined;
      const mm = m.spec.vAliasesK ? await matmulCeiling() : undefined;
      const r = await benchShape(ctx, m, qLens, kvLens, timeReps, reps, opts.mlaHeadsPerWorkgroup, alternate, mm);
      if (typeof r === 'string') {
        report.skipped.push(`${name}: ${r}`);
        return;
      }
      const common = {
        variant: m.variant,
        phase,
        batch,
        contextLength: len,
        kvBytesPerToken: kvBytesPerToken(m.spec),
        checkRelL2: r.check,
      };
      const naiveMs = r.timed.find((t) => t.kernel === 'naive')?.ms;
      const copyMsHere = r.timed.find((t) => t.kernel === 'copy')?.ms;
      const rowCopyGbps = copyMsHere === undefined ? copyGbps : copy!.bytes / (copyMsHere * 1e6);
      const matmulMs = r.timed.find((t) => t.kernel === 'matmul')?.ms;
      const rowMatmulGflops = matmulMs === undefined ? undefined : mm!.flop / (matmulMs * 1e6);
      for (const { kernel, ms, workgroups, kvPasses } of r.timed) {
        if (kernel === 'copy' || kernel === 'matmul') continue;
        const gbps = r.bytes / (ms * 1e6);
        emit({
          ...common,
          name: `${name} ${kernel}`,
          kernel,
          medianMs: ms,
          gbPerSecond: gbps,
          gflopPerSecond: r.flop / (ms * 1e6),
          vsNaive: naiveMs === undefined ? null : naiveMs / ms,
          vsCopyBandwidth: gbps / rowCopyGbps,
          ...(copyMsHere === undefined ? {} : { copyGbPerSecond: rowCopyGbps }),
          ...(rowMatmulGflops === undefined
            ? {}
            : { matmulGflopPerSecond: rowMatmulGflops, vsMatmulGflops: r.flop / (ms * 1e6) / rowMatmulGflops }),
          bytesRead: r.bytes,
          bytesKv: r.bytesKv,
          bytesQ: r.bytesQ,
          bytesOut: r.bytesOut,
          workgroups,
          ...(kvPasses === undefined ? {} : { kvPasses }),
        });
      }
    };
    const only = (opts.only ?? '')
      .split(',')
      .map((o) => o.trim())
      .filter((o) => o);
    for (const m of suite.models) {
      for (const batch of m.batches) for (const len of m.decode) await run(m, 'decode', batch, len);
      for (const len of m.prefill) await run(m, 'prefill', 1, len);
    }
  } finally {
    copy?.destroy();
    ceiling?.destroy();
    timer.destroy();
  }
  return report;
}

/** Median time of `n` runs (default: the bench's reps). */
type TimeReps = (label: string, encode: (pass: GPUComputePassEncoder) => void, n?: number) => Promise<number>;

/** The copy kernel over `mib` MiB, bound and ready: the bandwidth ceiling rows are measured against. */
interface CopyRun {
  encode: (pass: GPUComputePassEncoder) => void;
  /** Bytes read plus written. */
  bytes: number;
  workgroups: number;
  destroy(): void;
}

async function createCopy(ctx: GpuContext, mib: number): Promise<CopyRun> {
  const n = (mib * 2 ** 20) / 16;
  const owned: GPUBuffer[] = [];
  const destroy = () => {
    for (const b of owned) b.destroy();
  };
  try {
    owned.push(await uploadBuffer(ctx, 'bench.copy.src', seededArray(4 * n, 7)));
    owned.push(await ctx.createBuffer('bench.copy.dst', 16 * n, STORAGE));
    owned.push(await uploadBuffer(ctx, 'bench.copy.params', new Uint32Array([n, 0, 0, 0]), UNIFORM));
    const [src, dst, params] = owned;
    const copy = await CopyKernel.create(ctx);
    const bind = copy.bind({ src, dst, params });
    return { encode: (pass) => copy.encode(pass, bind, n), bytes: 32 * n, workgroups: Math.ceil(n / 64), destroy };
  } catch (e) {
    destroy();
    throw e;
  }
}

interface Timed {
  kernel: BenchRow['kernel'];
  ms: number;
  workgroups: number;
  /** Decode kernels: reads of each K/V row per step (BenchRow.kvPasses). */
  kvPasses?: number;
}
interface ShapeResult {
  timed: Timed[];
  /** bytesKv + bytesQ + bytesOut. */
  bytes: number;
  bytesKv: number;
  bytesQ: number;
  bytesOut: number;
  flop: number;
  check: number;
}

/** Workgroups of one dispatch of `grid`. */
const groups = (grid: readonly (number | undefined)[]) => grid.reduce<number>((p, x) => p * (x ?? 1), 1);

/** Sets up a pool holding the sequences' KV, checks flash against naive, then times both. */
async function benchShape(
  ctx: GpuContext,
  model: Model,
  qLens: number[],
  kvLens: number[],
  timeReps: TimeReps,
  reps: number,
  mlaHeadsPerWorkgroup?: number,
  /** Timed alternately with the flash kernel (a 'copy' entry in the result). */
  alternateCopy?: CopyRun,
  /** Timed alternately with the flash kernel (a 'matmul' entry): the compute ceiling of MLA rows. */
  alternateMatmul?: ComputeCeiling,
): Promise<ShapeResult | string> {
  const H = model.numHeads;
  const pagesPer = kvLens.map((n) => Math.ceil(n / model.spec.pageSize));
  const numPages = pagesPer.reduce((a, b) => a + b, 0);
  // A pool past one binding is split across up to 4 buffers (kvPoolLayout); the kernels are made from the
  // split spec. What even 4 buffers (or this adapter's storage-buffer count) cannot hold is skipped.
  let spec: AttentionSpec;
  try {
    spec = kvPoolLayout(ctx, { ...model.spec, numLayers: 1, numPages });
  } catch (e) {
    if (e instanceof ShapeError) return e.message;
    throw e;
  }
  // Pages handed out in a shuffled order, as a long-running pool would.
  const order = shuffled(numPages, 11);
  let next = 0;
  const meta: PageTableMetadata = buildPageTable(
    kvLens.map((kvLen, i) => ({ kvLen, qLen: qLens[i], blockTable: order.slice(next, (next += pagesPer[i])) })),
    spec.pageSize,
  );
  const tq = qLens.reduce((a, b) => a + b, 0);
  const owned: { destroy(): void }[] = [];
  const up = async (label: string, data: ArrayBufferView, usage = STORAGE) => {
    const b = await uploadBuffer(ctx, `bench.${label}`, data, usage);
    owned.push(b);
    return b;
  };
  try {
    const pool = await KvPool.create(ctx, { ...spec, numLayers: 1, numPages });
    owned.push(pool);
    const kv = pool.layers[0];
    for (const b of [kv.kPages, ...(kv.kMore ?? [])]) await fillRandom(ctx, b, spec, spec.headDimQK, 1);
    if (!spec.vAliasesK)
      for (const b of [kv.vPages, ...(kv.vMore ?? [])]) await fillRandom(ctx, b, spec, spec.headDimV, 2);
    const step: StepBuffers = {
      qoIndptr: await up('qoIndptr', meta.qoIndptr),
      kvIndptr: await up('kvIndptr', meta.kvIndptr),
      kvPageIndices: await up('kvPageIndices', meta.kvPageIndices),
      kvLastPageLen: await up('kvLastPageLen', meta.kvLastPageLen),
      params: await up(
        'params',
        new Uint8Array(
          attentionParams(meta.numSeqs, { scale: 1 / Math.sqrt(spec.headDimQK), causal: true, window: 0 }),
        ),
        UNIFORM,
      ),
    };
    const q = await up('q', seededArray(tq * H * spec.headDimQK, 3));
    const outFlash = await up('outFlash', new Float32Array(tq * H * spec.headDimV).fill(NaN));
    const outNaive = await up('outNaive', new Float32Array(tq * H * spec.headDimV).fill(NaN));
    const lse = await up('lse', new Float32Array(tq * H));

    type Encode = (pass: GPUComputePassEncoder) => void;
    /** The flash kernels of this shape, newest first: [kernel, encode, workgroups, kvPasses]. */
    const flashes: [BenchRow['kernel'], Encode, number, number?][] = [];
    const decode = qLens.every((n) => n === 1);
    if (decode) {
      const merge = await MergePartials.create(ctx, H, spec.headDimV);
      const split = async (kernel: BenchRow['kernel'], k: SplitKvDecode | MlaDecode) => {
        const plan = k.plan(meta);
        const bytes = k.partialBytes(plan.numSlots);
        const po = await ctx.createBuffer('bench.partialO', bytes.o, STORAGE);
        const pml = await ctx.createBuffer('bench.partialML', bytes.ml, STORAGE);
        owned.push(po, pml);
        const bind = k.bind({ q, pages: kv, step, work: await up('work', plan.work), partialO: po, partialML: pml });
        const slotIndptr = await up('slotIndptr', plan.slotIndptr);
        const mergeBind = merge.bind({
          partialO: po,
          partialML: pml,
          slotIndptr,
          qoIndptr: step.qoIndptr,
          out: outFlash,
          lse,
        });
        const encode: Encode = (pass) => {
          k.encode(pass, bind, plan.numWorkItems);
          merge.encode(pass, mergeBind, meta.numSeqs);
        };
        const kvPasses = Math.max(...qLens.map((n) => Math.ceil((n * spec.groupSize) / k.tiles.blockM)));
        const workgroups = groups(k.grid(plan.numWorkItems)) + groups(merge.grid(meta.numSeqs));
        flashes.push([kernel, encode, workgroups, kvPasses]);
      };
      // MLA: the head-blocked kernel; same plan / bind / encode as the generic one.
      if (spec.vAliasesK) {
        const mlaOpts = { maxHeadsPerWorkgroup: mlaHeadsPerWorkgroup };
        await split('flash', await MlaDecode.create(ctx, spec, mlaOpts));
        if (!model.flashOnly) await split('flash v1', await MlaDecode.create(ctx, spec, { ...mlaOpts, version: 1 }));
      } else {
        const current = await SplitKvDecode.create(ctx, spec);
        await split('flash', current);
        if (!model.flashOnly) {
          if (current.version === 3) await split('flash v2', await SplitKvDecode.create(ctx, spec, { version: 2 }));
          await split('flash v1', await SplitKvDecode.create(ctx, spec, { version: 1 }));
        }
      }
    } else {
      for (const [kernel, version] of [
        ['flash', 3],
        ['flash v2', 2],
        ['flash v1', 1],
      ] as const) {
        const k = await FlashPrefill.create(ctx, spec, { version });
        const plan = k.plan(meta);
        const bind = k.bind({ q, pages: kv, step, work: await up('work', plan.work), out: outFlash, lse });
        flashes.push([kernel, (pass) => k.encode(pass, bind, plan.numWorkItems), groups(k.grid(plan.numWorkItems))]);
      }
    }
    const naiveK = await NaiveAttention.create(ctx, spec);
    const nplan = naiveK.plan(meta);
    const scores = await ctx.createBuffer('bench.scores', nplan.scoresBytes, STORAGE);
    owned.push(scores);
    const tokenSeq = await up('tokenSeq', nplan.tokenSeq);
    const nbind = await naiveK.bind(nplan, { q, pages: kv, step, tokenSeq, scores, out: outNaive, lse });
    owned.push(...nbind.chunks.map((c) => c.uniform));
    const naive = (pass: GPUComputePassEncoder) => naiveK.encode(pass, nbind);
    const h = spec.numKvHeads * spec.groupSize;
    let naiveGroups = 0;
    for (const c of nbind.chunks) {
      naiveGroups += Math.ceil((c.numTokens * h * nplan.maxKv) / 64) + Math.ceil((c.numTokens * h) / 64);
      naiveGroups += Math.ceil((c.numTokens * h * (spec.headDimV / 4)) / 64);
    }

    // Check every version before timing (this first run also compiles the pipelines); flashOnly
    // rows run each once here (naive at 64K+ context takes tens of seconds on a software adapter).
    const checkReps = model.flashOnly ? 1 : reps;
    await ctx.validated('bench', () => timeReps('bench.check.naive', naive, checkReps));
    const n = tq * H * spec.headDimV;
    const naiveOut = await readFloat32(ctx, outNaive, n);
    let check = 0;
    for (const [kernel, encode] of flashes) {
      await ctx.validated('bench', () => timeReps(`bench.check.${kernel}`, encode, checkReps));
      const e = relL2(await readFloat32(ctx, outFlash, n), naiveOut);
      if (!(e < CHECK_TOL)) {
        throw new Error(`bench: ${kernel} and naive disagree on this shape (rel L2 ${e}); not timing a wrong kernel`);
      }
      check = Math.max(check, e);
    }
    // Interleaved, one run of each kernel per round, so a load that changes during the shape (a
    // shared machine) weighs on every kernel alike and the ratios stay meaningful.
    const kernels: [BenchRow['kernel'], Encode, number, number?][] = model.flashOnly
      ? [...flashes]
      : [...flashes, ['naive', naive, naiveGroups]];
    if (alternateCopy) kernels.push(['copy', alternateCopy.encode, alternateCopy.workgroups]);
    if (alternateMatmul) kernels.push(['matmul', alternateMatmul.encode, alternateMatmul.workgroups]);
    const times: number[][] = kernels.map(() => []);
    for (let i = 0; i < reps; i++) {
      for (const [j, [kernel, encode]] of kernels.entries()) {
        times[j].push(await timeReps(`bench.${kernel}`, encode, 1));
      }
    }
    const timed: Timed[] = kernels.map(([kernel, , workgroups, kvPasses], j) => ({
      kernel,
      ms: median(times[j]),
      workgroups,
      ...(kvPasses === undefined ? {} : { kvPasses }),
    }));

    const { bytesKv, bytesQ, bytesOut } = bytesMustRead(spec, H, qLens, kvLens);
    // Visible (query, key) pairs: all keys for decode, the causal triangle for prefill.
    let pairs = 0;
    for (let i = 0; i < qLens.length; i++) {
      const off = kvLens[i] - qLens[i];
      for (let j = 0; j < qLens[i]; j++) pairs += off + j + 1;
    }
    const flop = 2 * pairs * H * (spec.headDimQK + spec.headDimV);
    return { timed, bytes: bytesKv + bytesQ + bytesOut, bytesKv, bytesQ, bytesOut, flop, check };
  } finally {
    for (const b of owned) b.destroy();
  }
}

/**
 * Fills a page buffer with random pages, writing one random block of whole pages repeatedly.
 * f16: random halves in [-1, 1); q8 / q4: random code bytes, then each row's f16 scales (the layout
 * of kvPagesQ8.wgsl / kvPagesQ4.wgsl: a page's codes, then its scales) drawn so that values stay
 * within [-1, 1] as kvAppend's quantisation would leave them.
 */
async function fillRandom(
  ctx: GpuContext,
  buffer: GPUBuffer,
  spec: AttentionSpec,
  headDim: number,
  seed: number,
): Promise<void> {
  const pageBytes = pageBufferBytes(spec, headDim);
  const blockBytes = Math.min(buffer.size, Math.max(1, Math.floor((4 << 20) / pageBytes)) * pageBytes);
  let block: Uint8Array;
  if (spec.kvDtype === 'f16') {
    block = new Uint8Array(f32ArrayToF16(seededArray(blockBytes / 2, seed)).buffer);
  } else if (spec.kvDtype === 'q8' || spec.kvDtype === 'q4') {
    block = randomQuantPages(spec, headDim, blockBytes / pageBytes, seed);
  } else {
    throw new Error(`bench: no random fill for ${spec.kvDtype} pages`);
  }
  for (let off = 0; off < buffer.size; off += blockBytes) {
    const len = Math.min(blockBytes, buffer.size - off);
    writeBuffer(ctx, buffer, block.subarray(0, len), off);
  }
  await ctx.device.queue.onSubmittedWorkDone();
}

/** `pages` q8 / q4 pages: random codes, then scales in [0.5, 1] / the code range (127 or 8). */
function randomQuantPages(spec: AttentionSpec, headDim: number, pages: number, seed: number): Uint8Array {
  const dtype = spec.kvDtype as 'q8' | 'q4';
  const rows = spec.numKvHeads * spec.pageSize;
  const pageBytes = kvPageBytes(dtype, rows, headDim);
  const codeBytes = rows * (dtype === 'q8' ? headDim : headDim / 2);
  const scales = rows * kvScalesPerRow(dtype, headDim);
  const out = new Uint8Array(pages * pageBytes);
  const codes = seededArray(pages * codeBytes, seed);
  const unit = seededArray(pages * scales, seed + 1000);
  const codeRange = dtype === 'q8' ? 127 : 8;
  for (let p = 0; p < pages; p++) {
    const base = p * pageBytes;
    for (let i = 0; i < codeBytes; i++) out[base + i] = Math.floor((codes[p * codeBytes + i] + 1) * 128) & 255;
    const s = new Float32Array(scales);
    for (let i = 0; i < scales; i++) s[i] = (0.75 + 0.25 * unit[p * scales + i]) / codeRange;
    out.set(new Uint8Array(f32ArrayToF16(s).buffer), base + codeBytes);
  }
  return out;
}

/** 0..n-1 in a seeded random order (pages handed out out of order, as a busy pool would). */
export function shuffled(n: number, seed: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  let s = seed >>> 0;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** The report as a markdown table (README, CLI). */
export function formatBenchTable(report: BenchReport): string {
  const f = (x: number | null, d = 2) => (x === null ? '' : x.toFixed(d));
  const lines = [
    `Adapter: ${report.adapter} (timing: ${report.timing})`,
    '',
    '| row | KV B/token/layer | MB read | KV passes | workgroups | median ms | GB/s | GFLOP/s | vs naive |' +
      ' vs copy BW | vs matmul GFLOP/s | check rel L2 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...report.rows.map(
      (r) =>
        `| ${[
          r.name,
          r.kvBytesPerToken || '',
          r.bytesRead === undefined ? '' : f(r.bytesRead / 1e6, 1),
          r.kvPasses ?? '',
          r.workgroups ?? '',
          f(r.medianMs, 3),
          f(r.gbPerSecond),
          f(r.gflopPerSecond),
          f(r.vsNaive),
          f(r.vsCopyBandwidth),
          f(r.vsMatmulGflops ?? null),
          r.checkRelL2 === null ? '' : r.checkRelL2.toExponential(1),
        ].join(' | ')} |`,
    ),
  ];
  if (report.skipped.length) lines.push('', ...report.skipped.map((s) => `- skipped ${s}`));
  return lines.join('\n');
}
