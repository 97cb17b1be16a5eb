/**
 * The matmul benchmark: the device's compute ceiling (prefill GEMM) and weight-streaming rate
 * (decode GEMV) that the attention benchmarks compare against. Rows:
 *   - full:  GEMM 512 x 2048 x 2048 (f16, f32, q8 and q4 weights), GEMV 1 x 4096 x 4096 (f16 and f32),
 *            GEMV 8 x 4096 x 4096 f16; GEMV 1 x 2048 x 8192 (W [2048, 8192]) at f16, q8 and q4
 *            (GGUF Q8_0 / Q4_0 blocks: 34 / 18 bytes per 32 values against f16's 64);
 *   - quick: GEMM 128 x 512 x 512 f16, q8 and q4, GEMV 1 x 1024 x 1024 f16 and f32, GEMV 8 x 1024 x 1024 f16,
 *            GEMV 1 x 1024 x 1024 q8 and q4.
 * Every shape is checked before it is timed: 64 sampled outputs against the float64 reference
 * (on the f16-rounded weights; for q8 / q4 on the dequantized blocks), rel L2 in `checkRelL2`.
 * GFLOP/s = 2 · M · N · K / time; GB/s = (W + X + Y bytes) / time (GEMV's floor is W ÷ bandwidth).
 */
import type { GpuContext } from '../gpu/context';
import { readFloat32, STORAGE, UNIFORM, uploadBuffer } from '../gpu/buffers';
import { median, PassTimer, type TimingSource } from '../gpu/timer';
import { storageBytes, type MatrixDtype } from '../gpu/dtype';
import { createMatmul, createMatvec, quantMatmulParams, quantWeightBytes } from '../kernels/matmulQuant';
import { quantizeBlocks } from '../model/quantize';
import { relL2 } from '../reference/attention';
import { dequantizeBlocks } from '../reference/quant';
import { f16BitsToF32, f32ArrayToF16 } from '../sources/halfFloat';

export interface MatmulBenchRow {
  name: string;
  kernel: 'matmul' | 'matvec';
  M: number;
  N: number;
  K: number;
  weightDtype: MatrixDtype;
  medianMs: number;
  gflopPerSecond: number;
  gbPerSecond: number;
  /** rel L2 of 64 sampled outputs against the float64 reference. */
  checkRelL2: number;
  timing: TimingSource;
  adapter: string;
}

export interface MatmulBenchOptions {
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
}

const FULL: Shape[] = [
  { kernel: 'matmul', M: 512, N: 2048, K: 2048, weightDtype: 'f16' },
  { kernel: 'matmul', M: 512, N: 2048, K: 2048, weightDtype: 'f32' },
  { kernel: 'matmul', M: 512, N: 2048, K: 2048, weightDtype: 'q8' },
  { kernel: 'matmul', M: 512, N: 2048, K: 2048, weightDtype: 'q4' },
  { kernel: 'matvec', M: 1, N: 4096, K: 4096, weightDtype: 'f16' },
  { kernel: 'matvec', M: 1, N: 4096, K: 4096, weightDtype: 'f32' },
  { kernel: 'matvec', M: 8, N: 4096, K: 4096, weightDtype: 'f16' },
  { kernel: 'matvec', M: 1, N: 2048, K: 8192, weightDtype: 'f16' },
  { kernel: 'matvec', M: 1, N: 2048, K: 8192, weightDtype: 'q8' },
  { kernel: 'matvec', M: 1, N: 2048, K: 8192, weightDtype: 'q4' },
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

/** Sampled outputs must agree with the float64 reference this well (f32 arithmetic, K <= 4096). */
const CHECK_TOL = 1e-4;

export async function runMatmulBench(ctx: GpuContext, opts: MatmulBenchOptions = {}): Promise<MatmulBenchRow[]> {
  const shapes = (opts.quick ? QUICK : FULL).filter((s) => !opts.only || shapeName(s).includes(opts.only));
  const reps = opts.reps ?? (opts.quick ? 3 : 5);
  const timer = PassTimer.create(ctx);
  const rows: MatmulBenchRow[] = [];
  try {
    for (const s of shapes) {
      opts.signal?.throwIfAborted();
      const row = await benchShape(ctx, timer, s, reps, opts.signal);
      rows.push(row);
      opts.onRow?.(row);
    }
  } finally {
    timer.destroy();
  }
  return rows;
}

async function benchShape(
  ctx: GpuContext,
  timer: PassTimer,
  s: Shape,
  reps: number,
  signal?: AbortSignal,
): Promise<MatmulBenchRow> {
  const { M, N, K, weightDtype } = s;
  const spec = { N, K, weightDtype, bias: false };
  const op = s.kernel === 'matmul' ? await createMatmul(ctx, spec) : await createMatvec(ctx, spec);
  const x = randomF32(M * K, 11);
  const wValues = randomF32(N * K, 12);
  const wBits = weightDtype === 'f16' ? f32ArrayToF16(wValues) : undefined;
  // q8 / q4: GGUF blocks as uploadWeights makes them (+ the pad word the kernel reads past the end).
  const quant = weightDtype === 'q8' || weightDtype === 'q4' ? weightDtype : undefined;
  const wBlocks = quant ? new Uint8Array(quantWeightBytes(quant, N, K) + 4) : undefined;
  if (quant) quantizeBlocks(quant, wValues, wBlocks!);
  const wSeen = quant ? dequantizeBlocks(quant, wBlocks!, N * K) : undefined;
  const xBuf = await uploadBuffer(ctx, 'bench.matmul.x', x);
  const wBuf = await uploadBuffer(ctx, 'bench.matmul.w', wBlocks ?? wBits ?? wValues);
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
    if (!(check < CHECK_TOL))
      throw new Error(`${label} ${M}x${N}x${K} ${weightDtype}: sampled outputs off by rel L2 ${check}`);

    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      signal?.throwIfAborted();
      times.push(await timer.time(label, encode));
    }
    const ms = median(times);
    const bytes = (quant ? quantWeightBytes(quant, N, K) : storageBytes(weightDtype, N * K)) + 4 * M * K + 4 * M * N;
    return {
      name: shapeName(s),
      kernel: s.kernel,
      M,
      N,
      K,
      weightDtype,
      medianMs: ms,
      gflopPerSecond: (2 * M * N * K) / (ms * 1e6),
      gbPerSecond: bytes / (ms * 1e6),
      checkRelL2: check,
      timing: timer.source,
      adapter: ctx.adapterDescription,
    };
  } finally {
    for (const b of [xBuf, wBuf, yBuf, params]) b.destroy();
    op.destroy();
  }
}

function shapeName(s: Shape): string {
  return `${s.kernel} ${s.M}x${s.N}x${s.K} ${s.weightDtype}`;
}

/** Deterministic values in [-1, 1) (Mulberry32), so runs compare. */
function randomF32(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}
