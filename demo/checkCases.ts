/**
 * The "Check kernels" cases: attention() on fresh random inputs in this browser against the float64
 * referenceAttention, by relative L2 error. Small shapes (a software adapter runs them in seconds)
 * that still cover what can go wrong: ragged batches, partial last pages, GQA groups, both KV dtypes,
 * prefill (flashPrefill) and decode (splitKvDecode + mergePartials), and MLA's latent rows.
 * Tolerances as in test/gpu: f32 KV < 1e-4, f16 KV < 5e-3.
 */
import { attention, referenceAttention, relL2, type AttentionArgs, type GpuContext } from '../src/index';
import { randomArray, rng } from '../src/reference/random';
import type { KvDtype } from '../src/gpu/dtype';

export interface CheckCase {
  name: string;
  phase: 'prefill' | 'decode';
  /** The float KV dtypes only: the check compares against the unquantised reference. */
  kvDtype: Extract<KvDtype, 'f32' | 'f16'>;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  seqLensQ: number[];
  seqLensKV: number[];
  /** MLA: latent width (V) and rope width; K is the whole latent + rope row. */
  mla?: { latentDim: number; ropeDim: number };
}

export const CHECK_CASES: CheckCase[] = [
  {
    name: 'GQA prefill, 2 ragged sequences',
    phase: 'prefill',
    kvDtype: 'f32',
    numHeads: 8,
    numKvHeads: 2,
    headDim: 64,
    seqLensQ: [17, 5],
    seqLensKV: [17, 40],
  },
  {
    name: 'GQA prefill, 2 ragged sequences',
    phase: 'prefill',
    kvDtype: 'f16',
    numHeads: 8,
    numKvHeads: 2,
    headDim: 64,
    seqLensQ: [33, 9],
    seqLensKV: [33, 60],
  },
  {
    name: 'GQA decode, batch 3',
    phase: 'decode',
    kvDtype: 'f32',
    numHeads: 8,
    numKvHeads: 2,
    headDim: 64,
    seqLensQ: [1, 1, 1],
    seqLensKV: [37, 100, 5],
  },
  {
    name: 'GQA decode, batch 2',
    phase: 'decode',
    kvDtype: 'f16',
    numHeads: 8,
    numKvHeads: 2,
    headDim: 128,
    seqLensQ: [1, 1],
    seqLensKV: [200, 17],
  },
  {
    name: 'MLA decode (absorbed)',
    phase: 'decode',
    kvDtype: 'f16',
    numHeads: 8,
    numKvHeads: 1,
    headDim: 80,
    seqLensQ: [1, 1],
    seqLensKV: [70, 23],
    mla: { latentDim: 64, ropeDim: 16 },
  },
];

export const TOLERANCE = { f32: 1e-4, f16: 5e-3 } as const;

export interface CheckResult {
  relL2Out: number;
  relL2Lse: number;
  pass: boolean;
  ms: number;
  seed: number;
}

/** "8/2 heads, d 64, Q 17+5 over KV 17+40" */
export function describeShape(c: CheckCase): string {
  const dims = c.mla ? `latent ${c.mla.latentDim}+${c.mla.ropeDim}` : `d ${c.headDim}`;
  return `${c.numHeads}/${c.numKvHeads} heads, ${dims}, Q ${c.seqLensQ.join('+')} over KV ${c.seqLensKV.join('+')}`;
}

export async function runCheckCase(
  ctx: GpuContext,
  c: CheckCase,
  seed = (Math.random() * 2 ** 32) >>> 0,
): Promise<CheckResult> {
  const rand = rng(seed);
  const tq = c.seqLensQ.reduce((a, b) => a + b, 0);
  const tk = c.seqLensKV.reduce((a, b) => a + b, 0);
  const base = {
    q: randomArray(tq * c.numHeads * c.headDim, rand),
    numHeads: c.numHeads,
    seqLensQ: c.seqLensQ,
    seqLensKV: c.seqLensKV,
    kvDtype: c.kvDtype,
    kernel: c.phase,
  } as const;
  let args: AttentionArgs;
  let k: Float32Array; // [Tk, Hkv, Dqk] for the reference
  let v: Float32Array; // [Tk, Hkv, Dv]
  let headDimV: number;
  if (c.mla) {
    // One latent row per token, [c_kv | k_pe]: K is the whole row, V its first latentDim values.
    const { latentDim, ropeDim } = c.mla;
    const width = latentDim + ropeDim;
    const kv = randomArray(tk * width, rand);
    args = { ...base, variant: 'mla', kv, latentDim, ropeDim, numKvHeads: 1, headDimQK: width, headDimV: latentDim };
    k = kv;
    v = new Float32Array(tk * latentDim);
    for (let t = 0; t < tk; t++) v.set(kv.subarray(t * width, t * width + latentDim), t * latentDim);
    headDimV = latentDim;
  } else {
    k = randomArray(tk * c.numKvHeads * c.headDim, rand);
    v = randomArray(tk * c.numKvHeads * c.headDim, rand);
    args = { ...base, k, v, numKvHeads: c.numKvHeads, headDimQK: c.headDim, headDimV: c.headDim };
    headDimV = c.headDim;
  }
  const t0 = performance.now();
  const got = await attention(ctx, args);
  const ms = performance.now() - t0;
  const ref = referenceAttention({
    q: args.q,
    k,
    v,
    numHeads: c.numHeads,
    numKvHeads: c.mla ? 1 : c.numKvHeads,
    headDimQK: c.headDim,
    headDimV,
    seqLensQ: c.seqLensQ,
    seqLensKV: c.seqLensKV,
  });
  const relL2Out = relL2(got.out, ref.out);
  const relL2Lse = relL2(got.lse, ref.lse);
  const tol = TOLERANCE[c.kvDtype];
  return { relL2Out, relL2Lse, pass: relL2Out < tol && relL2Lse < tol, ms, seed };
}
