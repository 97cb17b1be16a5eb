/**
 * MLA (absorbed multi-head latent attention) over the paged latent cache: one row [c_kv | k_pe] per
 * token, K = the row, V = its first d_c values read in place. Kernels vs the float64 reference, and
 * the absorbed form against naive per-head decompressed attention on random weights.
 */
import { describe, expect, it } from 'vitest';
import type { KvDtype } from '../../src/gpu/dtype';
import { attention, type AttentionArgs } from '../../src/api/attention';
import { kvQuantized, referenceAttention, relL2 } from '../../src/reference/attention';
import { expectedShaderF16, gpu, randomArray, rng } from './harness';

interface MlaCase {
  name: string;
  H: number;
  dc: number;
  dr: number;
  seqLensQ: number[];
  seqLensKV: number[];
  pageSize: number;
  kvDtype: KvDtype;
  kernel: 'prefill' | 'decode';
  softcap?: number;
}

const TOL = { f32: 1e-4, f16: 5e-3, q8: 2e-3, q4: 2e-3 };

/** V of the reference: the first d_c values of every latent row. */
function latentV(kv: Float32Array, tk: number, dc: number, dr: number): Float32Array {
  const v = new Float32Array(tk * dc);
  for (let t = 0; t < tk; t++) v.set(kv.subarray(t * (dc + dr), t * (dc + dr) + dc), t * dc);
  return v;
}

async function check(c: MlaCase) {
  const seed = (Math.random() * 2 ** 32) >>> 0;
  const rand = rng(seed);
  const tq = c.seqLensQ.reduce((a, b) => a + b, 0);
  const tk = c.seqLensKV.reduce((a, b) => a + b, 0);
  const D = c.dc + c.dr;
  const args: AttentionArgs = {
    variant: 'mla',
    latentDim: c.dc,
    ropeDim: c.dr,
    q: randomArray(tq * c.H * D, rand),
    kv: randomArray(tk * D, rand),
    numHeads: c.H,
    numKvHeads: 1,
    headDimQK: D,
    headDimV: c.dc,
    seqLensQ: c.seqLensQ,
    seqLensKV: c.seqLensKV,
    causal: true,
    pageSize: c.pageSize,
    kvDtype: c.kvDtype,
    kernel: c.kernel,
    softcap: c.softcap ?? 0,
  };
  const got = await attention(await gpu(), args);
  // q8 / q4: the reference reads the latent rows as quantised (code * scale is exact in f32).
  const k =
    c.kvDtype === 'q8' || c.kvDtype === 'q4' ? Float32Array.from(kvQuantized(args.kv!, D, c.kvDtype)) : args.kv!;
  const ref = referenceAttention({ ...args, k, v: latentV(k, tk, c.dc, c.dr) });
  const where = `${c.name} (seed ${seed})`;
  expect(relL2(got.out, ref.out), `out ${where}`).toBeLessThan(TOL[c.kvDtype]);
  expect(relL2(got.lse, ref.lse), `lse ${where}`).toBeLessThan(TOL[c.kvDtype]);
}

const DS = { dc: 512, dr: 64 }; // DeepSeek-V2/V3 latent and rope dims
const cases: MlaCase[] = [
  {
    name: 'decode H1 DeepSeek dims, ragged 1/130/600',
    H: 1,
    ...DS,
    seqLensQ: [1, 1, 1],
    seqLensKV: [1, 130, 600],
    pageSize: 16,
    kvDtype: 'f32',
    kernel: 'decode',
  },
  {
    name: 'decode H4 DeepSeek dims, page 1',
    H: 4,
    ...DS,
    seqLensQ: [1, 1],
    seqLensKV: [130, 17],
    pageSize: 1,
    kvDtype: 'f16',
    kernel: 'decode',
  },
  {
    name: 'decode H16 DeepSeek dims, ragged',
    H: 16,
    ...DS,
    seqLensQ: [1, 1, 1],
    seqLensKV: [1, 130, 600],
    pageSize: 16,
    kvDtype: 'f16',
    kernel: 'decode',
  },
  {
    name: 'decode H128 DeepSeek dims',
    H: 128,
    ...DS,
    seqLensQ: [1, 1],
    seqLensKV: [130, 33],
    pageSize: 16,
    kvDtype: 'f32',
    kernel: 'decode',
  },
  {
    name: 'decode small model d_c 32, d_rope 16',
    H: 8,
    dc: 32,
    dr: 16,
    seqLensQ: [1, 1],
    seqLensKV: [600, 54],
    pageSize: 16,
    kvDtype: 'f32',
    kernel: 'decode',
  },
  {
    name: 'prefill H4 DeepSeek dims, chunked',
    H: 4,
    ...DS,
    seqLensQ: [17, 1],
    seqLensKV: [54, 20],
    pageSize: 16,
    kvDtype: 'f32',
    kernel: 'prefill',
  },
  {
    name: 'prefill H16 d_c 128 d_rope 32, page 1',
    H: 16,
    dc: 128,
    dr: 32,
    seqLensQ: [20, 5],
    seqLensKV: [20, 40],
    pageSize: 1,
    kvDtype: 'f16',
    kernel: 'prefill',
  },
  {
    name: 'prefill H128 DeepSeek dims, short chunk',
    H: 128,
    ...DS,
    seqLensQ: [3],
    seqLensKV: [40],
    pageSize: 16,
    kvDtype: 'f16',
    kernel: 'prefill',
  },
  {
    name: 'prefill small model d_c 64 d_rope 64',
    H: 4,
    dc: 64,
    dr: 64,
    seqLensQ: [97],
    seqLensKV: [97],
    pageSize: 16,
    kvDtype: 'f32',
    kernel: 'prefill',
  },
  {
    name: 'prefill soft-cap 5, d_c 64 d_rope 32',
    H: 8,
    dc: 64,
    dr: 32,
    seqLensQ: [30, 4],
    seqLensKV: [30, 20],
    pageSize: 16,
    kvDtype: 'f16',
    kernel: 'prefill',
    softcap: 5,
  },
  // q8 / q4 latent rows through flashPrefill (issue 17); mlaDecode's are in mlaDecode.test.ts.
  {
    name: 'prefill H8 d_c 64 + d_rope 32, ragged, q4',
    H: 8,
    dc: 64,
    dr: 32,
    seqLensQ: [40, 7],
    seqLensKV: [40, 20],
    pageSize: 16,
    kvDtype: 'q4',
    kernel: 'prefill',
  },
  {
    name: 'prefill H8 d_c 64 + d_rope 32, page 7, q8',
    H: 8,
    dc: 64,
    dr: 32,
    seqLensQ: [30],
    seqLensKV: [30],
    pageSize: 7,
    kvDtype: 'q8',
    kernel: 'prefill',
  },
];

describe('MLA kernels vs float64 reference', () => {
  // Quantised latent rows go through the same flashPrefill shader on every adapter (attention.test.ts runs
  // a q8 / q4 prefill on SwiftShader): here they run on lavapipe only, where compiling is cheap.
  const swiftshader = expectedShaderF16() === false;
  for (const c of cases) {
    const quant = c.kvDtype === 'q8' || c.kvDtype === 'q4';
    it.skipIf(swiftshader && quant)(`${c.name} [${c.kvDtype}]`, () => check(c));
  }
});

describe('absorbed MLA equals naive per-head decompressed attention', () => {
  it.each(['decode', 'prefill'] as const)('%s, random W_UK and W_UV', async (kernel) => {
    const rand = rng((Math.random() * 2 ** 32) >>> 0);
    const H = 4,
      dc = 64,
      dr = 16,
      dNope = 32,
      dv = 24;
    const seqLensKV = [37, 90];
    const seqLensQ = kernel === 'decode' ? [1, 1] : [5, 12];
    const tq = seqLensQ[0] + seqLensQ[1];
    const tk = seqLensKV[0] + seqLensKV[1];
    const cKv = randomArray(tk * dc, rand);
    const kPe = randomArray(tk * dr, rand); // already roped: shared by all heads
    const wUK = randomArray(H * dNope * dc, rand, 0.3); // per head [dNope][dc]
    const wUV = randomArray(H * dv * dc, rand, 0.3); // per head [dv][dc]
    const qNope = randomArray(tq * H * dNope, rand);
    const qPe = randomArray(tq * H * dr, rand);
    const scale = 1 / Math.sqrt(dNope + dr); // the model's head dim, not the latent width

    // Naive: decompress K and V per head and run plain MHA.
    const K = new Float64Array(tk * H * (dNope + dr));
    const V = new Float64Array(tk * H * dv);
    for (let t = 0; t < tk; t++) {
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < dNope; i++) {
          let s = 0;
          for (let c = 0; c < dc; c++) s += wUK[(h * dNope + i) * dc + c] * cKv[t * dc + c];
          K[(t * H + h) * (dNope + dr) + i] = s;
        }
        for (let i = 0; i < dr; i++) K[(t * H + h) * (dNope + dr) + dNope + i] = kPe[t * dr + i];
        for (let i = 0; i < dv; i++) {
          let s = 0;
          for (let c = 0; c < dc; c++) s += wUV[(h * dv + i) * dc + c] * cKv[t * dc + c];
          V[(t * H + h) * dv + i] = s;
        }
      }
    }
    const Q = new Float64Array(tq * H * (dNope + dr));
    for (let t = 0; t < tq; t++)
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < dNope; i++) Q[(t * H + h) * (dNope + dr) + i] = qNope[(t * H + h) * dNope + i];
        for (let i = 0; i < dr; i++) Q[(t * H + h) * (dNope + dr) + dNope + i] = qPe[(t * H + h) * dr + i];
      }
    const naive = referenceAttention({
      q: Q,
      k: K,
      v: V,
      numHeads: H,
      numKvHeads: H,
      headDimQK: dNope + dr,
      headDimV: dv,
      seqLensQ,
      seqLensKV,
      scale,
    });

    // Absorbed: q_lat = q_nope W_UK (per head), kernel over [c_kv | k_pe], out = o_lat W_UV^T.
    const D = dc + dr;
    const q = new Float32Array(tq * H * D);
    for (let t = 0; t < tq; t++)
      for (let h = 0; h < H; h++) {
        for (let c = 0; c < dc; c++) {
          let s = 0;
          for (let i = 0; i < dNope; i++) s += qNope[(t * H + h) * dNope + i] * wUK[(h * dNope + i) * dc + c];
          q[(t * H + h) * D + c] = s;
        }
        for (let i = 0; i < dr; i++) q[(t * H + h) * D + dc + i] = qPe[(t * H + h) * dr + i];
      }
    const kv = new Float32Array(tk * D);
    for (let t = 0; t < tk; t++) {
      kv.set(cKv.subarray(t * dc, (t + 1) * dc), t * D);
      kv.set(kPe.subarray(t * dr, (t + 1) * dr), t * D + dc);
    }
    const got = await attention(await gpu(), {
      variant: 'mla',
      latentDim: dc,
      ropeDim: dr,
      q,
      kv,
      numHeads: H,
      numKvHeads: 1,
      headDimQK: D,
      headDimV: dc,
      seqLensQ,
      seqLensKV,
      scale,
      kernel,
    });
    const out = new Float64Array(tq * H * dv);
    for (let t = 0; t < tq; t++)
      for (let h = 0; h < H; h++)
        for (let i = 0; i < dv; i++) {
          let s = 0;
          for (let c = 0; c < dc; c++) s += got.out[(t * H + h) * dc + c] * wUV[(h * dv + i) * dc + c];
          out[(t * H + h) * dv + i] = s;
        }
    expect(relL2(out, naive.out)).toBeLessThan(1e-4);
    expect(relL2(got.lse, naive.lse)).toBeLessThan(1e-4);
  });
});
