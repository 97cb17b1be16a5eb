/**
 * The attention benchmark's compute ceiling: the project's prefill GEMM (shaders/model/matmul.wgsl
 * through src/kernels/matmul.ts, not changed for the bench) on a square-ish compute-bound shape,
 * Y [M, N] = X [M, K] · Wᵀ with f16 weights (as the attention rows' f16 pages), M 512, N 2048, K 2048
 * (quick: 128 x 512 x 512). 2 · M · N · K flop over M · K + N · K + M · N values: 4.3 GFLOP over
 * 16.8 MB at the full shape (256 flop/byte), compute-bound on every adapter.
 * Compute-bound attention rows (MLA decode at 128 heads: 2 · H · (576 + 512) flop per 1152-byte
 * latent row, 242 flop/byte) report their GFLOP/s against this one's: `vsMatmulGflops`.
 * Checked before it is timed, as every bench row: 64 sampled outputs against the float64 product
 * of the f16-rounded weights (rel L2 < 1e-4).
 */
import type { GpuContext } from '../gpu/context';
import { readFloat32, STORAGE, UNIFORM, uploadBuffer } from '../gpu/buffers';
import { MatMul, matmulParams, type MatmulSpec } from '../kernels/matmul';
import { relL2 } from '../reference/attention';
import { seededArray } from '../reference/random';
import { f16BitsToF32, f32ArrayToF16 } from '../sources/halfFloat';

export interface CeilingShape {
  M: number;
  N: number;
  K: number;
}

/** The full suite's shape, and the quick suite's. */
export const CEILING_SHAPE: CeilingShape = { M: 512, N: 2048, K: 2048 };
export const QUICK_CEILING_SHAPE: CeilingShape = { M: 128, N: 512, K: 512 };

/** The GEMM bound and checked, ready to time: what the bench's 'matmul' row and the MLA rows run. */
export interface ComputeCeiling {
  /** e.g. 'matmul 512x2048x2048 f16'. */
  name: string;
  encode: (pass: GPUComputePassEncoder) => void;
  /** 2 · M · N · K. */
  flop: number;
  /** Bytes read and written at least: X (f32) + W (f16) + Y (f32). */
  bytes: number;
  workgroups: number;
  /** rel L2 of the sampled outputs against the float64 reference. */
  check: number;
  destroy(): void;
}

/** Sampled outputs must agree with the float64 reference this well (f32 accumulation, K <= 2048). */
const CHECK_TOL = 1e-4;
const SAMPLES = 64;

/**
 * Creates the GEMM of `shape` on random inputs, runs it once through `run` (which compiles the
 * pipeline; pass the bench's timer) and checks it; throws rather than time a wrong kernel.
 */
export async function createComputeCeiling(
  ctx: GpuContext,
  shape: CeilingShape,
  run: (encode: (pass: GPUComputePassEncoder) => void) => Promise<unknown>,
): Promise<ComputeCeiling> {
  const { M, N, K } = shape;
  const spec: MatmulSpec = { N, K, weightDtype: 'f16', bias: false };
  const name = `matmul ${M}x${N}x${K} f16`;
  const owned: { destroy(): void }[] = [];
  const destroy = () => {
    for (const b of owned) b.destroy();
  };
  try {
    const x = seededArray(M * K, 21);
    const wBits = f32ArrayToF16(seededArray(N * K, 22));
    const kernel = await MatMul.create(ctx, spec);
    owned.push(kernel);
    const up = async (label: string, data: ArrayBufferView, usage = STORAGE) => {
      const b = await uploadBuffer(ctx, `bench.ceiling.${label}`, data, usage);
      owned.push(b);
      return b;
    };
    const y = await ctx.createBuffer('bench.ceiling.y', M * N * 4, STORAGE);
    owned.push(y);
    const bind = kernel.bind({
      x: await up('x', x),
      w: await up('w', wBits),
      y,
      params: await up('params', matmulParams(spec, M), UNIFORM),
    });
    const encode = (pass: GPUComputePassEncoder) => kernel.encode(pass, bind, M);
    await ctx.validated('bench.ceiling', () => run(encode));
    const out = await readFloat32(ctx, y, M * N);
    const got: number[] = [];
    const want: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      // Spread over the output (Knuth's multiplicative hash): every row tile and column tile is likely hit.
      const idx = Math.floor((((i * 2654435761) % 2 ** 32) / 2 ** 32) * M * N);
      const [m, n] = [Math.floor(idx / N), idx % N];
      let acc = 0;
      for (let k = 0; k < K; k++) acc += x[m * K + k] * f16BitsToF32(wBits[n * K + k]);
      got.push(out[idx]);
      want.push(acc);
    }
    const check = relL2(got, want);
    if (!(check < CHECK_TOL)) throw new Error(`bench: ${name} sampled outputs off by rel L2 ${check}; not timing it`);
    const [gx, gy = 1] = kernel.grid(M);
    return {
      name,
      encode,
      flop: 2 * M * N * K,
      bytes: 4 * M * K + 2 * N * K + 4 * M * N,
      workgroups: gx * gy,
      check,
      destroy,
    };
  } catch (e) {
    destroy();
    throw e;
  }
}
