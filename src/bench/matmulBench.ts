/**
 * The matmul benchmark: the device's compute ceiling (prefill GEMM) and weight-streaming rate
 * (decode GEMV) that the attention benchmarks compare against. Suites:
 *   - full:  GEMM 512 x 2048 x 2048 (f16, f32, q8 and q4 weights), GEMV 1 x 4096 x 4096 (f16 and f32),
 *            GEMV 8 x 4096 x 4096 f16, and the gemv suite;
 *   - quick: GEMM 128 x 512 x 512 f16, q8 and q4, GEMV 1 x 1024 x 1024 f16 and f32, GEMV 8 x 1024 x 1024 f16,
 *            GEMV 1 x 1024 x 1024 q8 and q4;
 *   - gemv:  (what `webattn bench` runs after the attention rows) decode GEMV of one token through
 *            W [2048, 8192] (N 2048 outputs, K 8192 inputs: Llama-3.2-1B's down_proj) at f16, q8,
 *            q4, q4_K and q6_K (GGUF Q8_0 / Q4_0 / K-quant blocks: 34 / 18 / 144 / 210 bytes per
 *            32 / 32 / 256 / 256 values against f16's 64 per 32), the same at f16 with the plain
 *            (no-subgroup) reduction, the transposed W [8192, 2048] (gate / up_proj) at f16, q8, q4,
 *            and 8 tokens through W [2048, 8192] at f16 and q4.
 * Every shape is checked before it is timed: 64 sampled outputs against the float64 reference
 * (on the f16-rounded weights; for the block formats on the dequantized blocks), rel L2 in `checkRelL2`.
 * GFLOP/s = 2 · M · N · K / time; GB/s = (W + X + Y bytes) / time; weight GB/s = W bytes / time
 * (GEMV's floor is W ÷ bandwidth). Each GEMV row alternates its timed runs with a device copy of
 * 32 MiB (CopyKernel, read + write counted), so `vsCopy` = weight GB/s ÷ copy GB/s is measured
 * under the same load as the row (a shared machine's load drifts between rows).
 */
import type { GpuContext } from '../gpu/context';
import { readFloat32, STORAGE, UNIFORM, uploadBuffer } from '../gpu/buffers';
import { median, PassTimer, type TimingSource } from '../gpu/timer';
import { storageBytes, type MatrixDtype, type QuantDtype } from '../gpu/dtype';
import { CopyKernel } from '../kernels/copy';
import { createMatmul, createMatvec, quantMatmulParams, quantWeightBytes } from '../kernels/matmulQuant';
import { packQuantRows } from '../kernels/quantLayout';
import { quantizeBlocks } from '../model/quantize';
import { relL2 } from '../reference/attention';
import { seededArray } from '../reference/random';
import { dequantizeBlocks, GGUF_BLOCKS } from '../reference/quant';
import { f16BitsToF32, f32ArrayToF16, f32ToF16Bits } from '../sources/halfFloat';

export interface MatmulBenchRow {
  name: string;
  kernel: 'matmul' | 'matvec';
  M: number;
  N: number;
  K: number;
  weightDtype: MatrixDtype;
  /** 'plain': the GEMV's reduction without subgroups (the fallback path), else the adapter's default. */
  lanes?: 'plain';
  medianMs: number;
  gflopPerSecond: number;
  gbPerSecond: number;
  /** Bytes of W as stored (f16: 2 per value; q4: 18 per 32 values). */
  weightBytes: number;
  /** weightBytes / time: the GEMV's weight-streaming rate. */
  weightGbPerSecond: number;
  /** GEMV rows: the copy kernel's GB/s timed alternately with this row; null for GEMM rows. */
  copyGbPerSecond: number | null;
  /** weightGbPerSecond / copyGbPerSecond (GEMV rows). */
  vsCopy: number | null;
  /** rel L2 of 64 sampled outputs against the float64 reference. */
  checkRelL2: number;
  timing: TimingSource;
  adapter: string;
}

export interface MatmulBenchOptions {
  /** Which shapes (default 'full'; quick: true is 'quick'). */
  suite?: 'full' | 'quick' | 'gemv';
  quick?: boolean;
  reps?: number;
  /** Only the rows whose name contains this, e.g. '2048x8192' or 'q4'. */
  only?: string;
  onRow?: (row: MatmulBenchRow) => void;
  signal?: AbortSignal;
}

interface Shape {
  kernel: 'matmul' | 'matvec';
  M: number;
  N: number;
  K: number;
  weightDtype: MatrixDtype;
  lanes?: 'plain';
}

const gemv = (M: number, N: number, K: number, weightDtype: MatrixDtype, lanes?: 'plain'): Shape => ({
  kernel: 'matvec',
  M,
  N,
  K,
  weightDtype,
  ...(lanes ? { lanes } : {}),
});
const GEMV: Shape[] = [
  ...(['f16', 'q8', 'q4', 'q4_K', 'q6_K'] as const).map((d) => gemv(1, 2048, 8192, d)),
  gemv(1, 2048, 8192, 'f16', 'plain'),
  ...(['f16', 'q8', 'q4'] as const).map((d) => gemv(1, 8192, 2048, d)),
  gemv(8, 2048, 8192, 'f16'),
  gemv(8, 2048, 8192, 'q4'),
];

const FULL: Shape[] = [
  { kernel: 'matmul', M: 512, N: 2048, K: 2048, weightDtype: 'f16' },
  { kernel: 'matmul', M: 512, N: 2048, K: 2048, weightDtype: 'f32' },
  { kernel: 'matmul', M: 512, N: 2048, K: 2048, weightDtype: 'q8' },
  { kernel: 'matmul', M: 512, N: 2048, K: 2048, weightDtype: 'q4' },
  { kernel: 'matvec', M: 1, N: 4096, K: 4096, weightDtype: 'f16' },
  { kernel: 'matvec', M: 1, N: 4096, K: 4096, weightDtype: 'f32' },
  { kernel: 'matvec', M: 8, N: 4096, K: 4096, weightDtype: 'f16' },
  ...GEMV,
];
const QUICK: Shape[] = [
  { kernel: 'matmul', M: 128, N: 512, K: 512, weightDtype: 'f16' },
  { kernel: 'matmul', M: 128, N: 512, K: 512, weightDtype: 'q8' },
  { kernel: 'matmul', M: 128, N: 512, K: 512, weightDtype: 'q4' },
  { kernel: 'matvec', M: 1, N: 1024, K: 1024, weightDtype: 'f16' },
  { kernel: 'matvec', M: 1, N: 1024, K: 1024, weightDtype: 'f32' },
  { kernel: 'matvec', M: 8, N: 1024, K: 1024, weightDtype: 'f16' },
  { kernel: 'matvec', M: 1, N: 1024, K: 1024, weightDtype: 'q8' },
  { kernel: 'matvec', M: 1, N: 1024, K: 1024, weightDtype: 'q4' },
];

/** Sampled outputs must agree with the float64 reference this well (f32 arithmetic, K <= 8192). */
const CHECK_TOL = 1e-4;

const SUITES = { full: FULL, quick: QUICK, gemv: GEMV };

/** The copy row GEMV rows alternate with: CopyKernel over COPY_MIB of vec4<f32>. */
const COPY_MIB = 32;

export async function runMatmulBench(ctx: GpuContext, opts: MatmulBenchOptions = {}): Promise<MatmulBenchRow[]> {
  const suite = opts.suite ?? (opts.quick ? 'quick' : 'full');
  const shapes = SUITES[suite].filter((s) => !opts.only || shapeName(s).includes(opts.only));
  const reps = opts.reps ?? (suite === 'quick' ? 3 : 5);
  const timer = PassTimer.create(ctx);
  const rows: MatmulBenchRow[] = [];
  const copy = await createCopy(ctx);
  try {
    for (const s of shapes) {
      opts.signal?.throwIfAborted();
      const row = await benchShape(ctx, timer, s, reps, copy, opts.signal);
      rows.push(row);
      opts.onRow?.(row);
    }
  } finally {
    timer.destroy();
    copy.destroy();
  }
  return rows;
}

interface CopyRun {
  encode: (pass: GPUComputePassEncoder) => void;
  bytes: number;
  destroy(): void;
}

async function createCopy(ctx: GpuContext): Promise<CopyRun> {
  const n = (COPY_MIB * 2 ** 20) / 16; // vec4s
  const src = await uploadBuffer(ctx, 'bench.gemvCopy.src', seededArray(4 * n, 7));
  const dst = await ctx.createBuffer('bench.gemvCopy.dst', 16 * n, STORAGE);
  const params = await uploadBuffer(ctx, 'bench.gemvCopy.params', new Uint32Array([n, 0, 0, 0]), UNIFORM);
  const kernel = await CopyKernel.create(ctx);
  const bind = kernel.bind({ src, dst, params });
  return {
    encode: (pass) => kernel.encode(pass, bind, n),
    bytes: 2 * n * 16,
    destroy() {
      for (const b of [src, dst, params]) b.destroy();
    },
  };
}

/** Random GGUF blocks of a K-quant (any codes; the f16 scales set so values stay within about ±2). */
function randomKQuantBlocks(dtype: 'q4_K' | 'q6_K', count: number, seed: number): Uint8Array {
  const { blockBytes } = GGUF_BLOCKS[dtype];
  const bytes = new Uint8Array((count / 256) * blockBytes);
  const r = seededArray(bytes.length, seed);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor((r[i] + 1) * 128) & 0xff;
  const putF16 = (o: number, v: number) => {
    const h = f32ToF16Bits(v);
    bytes[o] = h & 0xff;
    bytes[o + 1] = h >> 8;
  };
  for (let o = 0, j = 0; o < bytes.length; o += blockBytes, j++) {
    const u = 0.75 + 0.25 * r[j % r.length];
    if (dtype === 'q4_K') {
      putF16(o, 0.002 * u); // d
      putF16(o + 2, 0.002 * u); // dmin
    } else {
      putF16(o + 208, 0.0005 * u); // d
    }
  }
  return bytes;
}

async function benchShape(
  ctx: GpuContext,
  timer: PassTimer,
  s: Shape,
  reps: number,
  copy: CopyRun,
  signal?: AbortSignal,
): Promise<MatmulBenchRow> {
  const { M, N, K, weightDtype } = s;
  const spec = { N, K, weightDtype, bias: false };
  const op =
    s.kernel === 'matmul'
      ? await createMatmul(ctx, spec)
      : await createMatvec(ctx, spec, { subgroups: s.lanes !== 'plain' });
  const x = seededArray(M * K, 11);
  const wValues = seededArray(N * K, 12);
  const wBits = weightDtype === 'f16' ? f32ArrayToF16(wValues) : undefined;
  // Block formats: GGUF blocks, uploaded in packed rows as uploadWeights does (quantLayout.ts).
  const quant: QuantDtype | undefined = weightDtype === 'f16' || weightDtype === 'f32' ? undefined : weightDtype;
  const weightBytes = quant ? quantWeightBytes(quant, N, K) : storageBytes(weightDtype, N * K);
  let wBlocks: Uint8Array | undefined;
  if (quant === 'q8' || quant === 'q4') {
    wBlocks = new Uint8Array(weightBytes);
    quantizeBlocks(quant, wValues, wBlocks);
  } else if (quant === 'q4_K' || quant === 'q6_K') {
    wBlocks = randomKQuantBlocks(quant, N * K, 13);
  } else if (quant) {
    throw new Error(`matmul bench: no block generator for ${quant}`);
  }
  const wSeen = quant ? dequantizeBlocks(quant, wBlocks!, N * K) : undefined;
  const xBuf = await uploadBuffer(ctx, 'bench.matmul.x', x);
  const wBuf = await uploadBuffer(
    ctx,
    'bench.matmul.w',
    quant ? packQuantRows(quant, wBlocks!, N, K) : (wBits ?? wValues),
  );
  const yBuf = await ctx.createBuffer('bench.matmul.y', M * N * 4, STORAGE);
  const params = await uploadBuffer(ctx, 'bench.matmul.params', quantMatmulParams(spec, M), UNIFORM);
  try {
    const bind = op.bind({ x: xBuf, w: wBuf, y: yBuf, params });
    const encode = (pass: GPUComputePassEncoder) => op.encode(pass, bind, M);
    const label = `bench.${s.kernel}`;
    await ctx.validated(label, () => timer.time(label, encode)); // warm-up (and compile)

    // Check 64 sampled outputs against the reference before timing.
    const y = await readFloat32(ctx, yBuf, M * N);
    const got: number[] = [];
    const want: number[] = [];
    for (let i = 0; i < 64; i++) {
      const idx = Math.floor((((i * 2654435761) % 2 ** 32) / 2 ** 32) * M * N);
      const m = Math.floor(idx / N);
      const n = idx % N;
      let acc = 0;
      for (let k = 0; k < K; k++) {
        const wv = wSeen ? wSeen[n * K + k] : wBits ? f16BitsToF32(wBits[n * K + k]) : wValues[n * K + k];
        acc += x[m * K + k] * wv;
      }
      got.push(y[idx]);
      want.push(acc);
    }
    const check = relL2(got, want);
    const name = shapeName(s);
    if (!(check < CHECK_TOL)) throw new Error(`${label} ${name}: sampled outputs off by rel L2 ${check}`);

    const times: number[] = [];
    const copyTimes: number[] = [];
    const isGemv = s.kernel === 'matvec';
    if (isGemv) await timer.time('bench.gemvCopy', copy.encode); // warm-up
    for (let i = 0; i < reps; i++) {
      signal?.throwIfAborted();
      times.push(await timer.time(label, encode));
      if (isGemv) copyTimes.push(await timer.time('bench.gemvCopy', copy.encode));
    }
    const ms = median(times);
    const bytes = weightBytes + 4 * M * K + 4 * M * N;
    const weightGbPerSecond = weightBytes / (ms * 1e6);
    const copyGbPerSecond = isGemv ? copy.bytes / (median(copyTimes) * 1e6) : null;
    return {
      name,
      kernel: s.kernel,
      M,
      N,
      K,
      weightDtype,
      ...(s.lanes ? { lanes: s.lanes } : {}),
      medianMs: ms,
      gflopPerSecond: (2 * M * N * K) / (ms * 1e6),
      gbPerSecond: bytes / (ms * 1e6),
      weightBytes,
      weightGbPerSecond,
      copyGbPerSecond,
      vsCopy: copyGbPerSecond ? weightGbPerSecond / copyGbPerSecond : null,
      checkRelL2: check,
      timing: timer.source,
      adapter: ctx.adapterDescription,
    };
  } finally {
    for (const b of [xBuf, wBuf, yBuf, params]) b.destroy();
    op.destroy();
  }
}

/** A markdown table of matmul / GEMV rows (ms median, weight GB/s, the copy kernel's GB/s beside each GEMV). */
export function formatMatmulTable(rows: MatmulBenchRow[]): string {
  const f = (v: number | null, d = 2) => (v === null ? '' : v.toFixed(d));
  const lines = [
    '| row | W | median ms | weight GB/s | copy GB/s | vs copy | GFLOP/s | check rel L2 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const mib = `${(r.weightBytes / 2 ** 20).toFixed(1)} MiB`;
    lines.push(
      `| ${r.name} | ${mib} | ${r.medianMs.toFixed(3)} | ${f(r.weightGbPerSecond)} | ${f(r.copyGbPerSecond)} | ` +
        `${f(r.vsCopy)} | ${r.gflopPerSecond.toFixed(2)} | ${r.checkRelL2.toExponential(1)} |`,
    );
  }
  return lines.join('\n');
}

function shapeName(s: Shape): string {
  return `${s.kernel} ${s.M}x${s.N}x${s.K} ${s.weightDtype}${s.lanes ? ` ${s.lanes}` : ''}`;
}

/** Deterministic values in [-1, 1) (Mulberry32), so runs compare. */
