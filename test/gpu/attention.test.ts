/**
 * flashPrefill, splitKvDecode + mergePartials and the naive baseline against the float64 reference,
 * through attention() (so through kvAppend, the KvCacheManager's slots and the page table too).
 * Fresh random inputs every run (the seed is in the failure message), outputs poisoned with NaN by
 * attention() before the kernels run, relative L2 error: < 1e-4 with f32 KV, < 5e-3 with f16 KV.
 * q8 / q4 KV: against the reference on the same quantised K / V (kvQuantized, the twin of kvAppend's
 * quantise-on-write), < 2e-3: the kernels' arithmetic is f32 on the dequantised values, and a code
 * may differ from the twin's where x / scale sits on a rounding edge (GPU division is not exact).
 */
import { describe, expect, it } from 'vitest';
import type { KvDtype } from '../../src/gpu/dtype';
import { attention, type AttentionArgs } from '../../src/api/attention';
import { kvQuantized, nonFiniteMismatch, referenceAttention, relL2, relL2Finite } from '../../src/reference/attention';
import { expectedShaderF16, gpu, randomArray, rng } from './harness';

interface Case {
  name: string;
  H: number;
  Hkv: number;
  D: number;
  Dv?: number;
  seqLensQ: number[];
  seqLensKV: number[];
  pageSize: number;
  kvDtype: KvDtype;
  causal?: boolean;
  window?: number;
  /** Multiplies q and k: large logits test the online softmax's stability. */
  amp?: number;
  kernel?: AttentionArgs['kernel'];
  /** Gemma-2 score soft-capping (0 = off). */
  softcap?: number;
  /**
   * One non-finite input value (issue 16: NaN in must give NaN out): a NaN in one q row, or a NaN /
   * +Inf in one K or V row (key kvLen / 2 of sequence 0, KV head 0), so with a causal mask earlier
   * queries stay finite and later ones do not, as the float64 reference says.
   */
  poison?: 'q' | 'k' | 'v' | 'kInf';
}

const TOL = { f32: 1e-4, f16: 5e-3, q8: 2e-3, q4: 2e-3 };

async function check(c: Case): Promise<void> {
  const seed = (Math.random() * 2 ** 32) >>> 0;
  const rand = rng(seed);
  const Dv = c.Dv ?? c.D;
  const tq = c.seqLensQ.reduce((a, b) => a + b, 0);
  const tk = c.seqLensKV.reduce((a, b) => a + b, 0);
  const args: AttentionArgs = {
    q: randomArray(tq * c.H * c.D, rand, c.amp ?? 1),
    k: randomArray(tk * c.Hkv * c.D, rand, c.amp ?? 1),
    v: randomArray(tk * c.Hkv * Dv, rand),
    numHeads: c.H,
    numKvHeads: c.Hkv,
    headDimQK: c.D,
    headDimV: Dv,
    seqLensQ: c.seqLensQ,
    seqLensKV: c.seqLensKV,
    causal: c.causal ?? true,
    window: c.window ?? 0,
    pageSize: c.pageSize,
    kvDtype: c.kvDtype,
    kernel: c.kernel ?? 'auto',
    softcap: c.softcap ?? 0,
  };
  if (c.poison) poisonInput(args, c.poison);
  const ctx = await gpu();
  const got = await attention(ctx, args);
  const quant = c.kvDtype === 'q8' || c.kvDtype === 'q4' ? c.kvDtype : undefined;
  const ref = referenceAttention({
    ...args,
    k: quant ? kvQuantized(args.k!, c.D, quant) : args.k!,
    v: quant ? kvQuantized(args.v!, Dv, quant) : args.v!,
  });
  const where = `${c.name} (seed ${seed}, adapter ${ctx.adapterDescription})`;
  if (c.poison) {
    // Non-finite exactly where the reference is, close to it everywhere else.
    expect(nonFiniteMismatch(got.out, ref.out), `out non-finite pattern ${where}`).toBeUndefined();
    expect(nonFiniteMismatch(got.lse, ref.lse), `lse non-finite pattern ${where}`).toBeUndefined();
    expect(
      ref.out.some((x) => Number.isNaN(x)),
      `the poison reaches the output ${where}`,
    ).toBe(true);
    expect(
      ref.out.some((x) => Number.isFinite(x)),
      `and not every row ${where}`,
    ).toBe(true);
    expect(relL2Finite(got.out, ref.out), `out rel L2 (finite rows) ${where}`).toBeLessThan(TOL[c.kvDtype]);
    expect(relL2Finite(got.lse, ref.lse), `lse rel L2 (finite rows) ${where}`).toBeLessThan(TOL[c.kvDtype]);
    return;
  }
  const eOut = relL2(got.out, ref.out);
  const eLse = relL2(got.lse, ref.lse);
  expect(eOut, `out rel L2 ${where}`).toBeLessThan(TOL[c.kvDtype]);
  expect(eLse, `lse rel L2 ${where}`).toBeLessThan(TOL[c.kvDtype]);
}

/** Puts one non-finite value into q (token qLen / 2 of sequence 0, head 1) or into K / V (see Case.poison). */
function poisonInput(a: AttentionArgs, what: NonNullable<Case['poison']>): void {
  if (what === 'q') {
    const t = Math.floor(a.seqLensQ[0] / 2);
    a.q[(t * a.numHeads + (1 % a.numHeads)) * a.headDimQK + 3] = Number.NaN;
    return;
  }
  const key = Math.floor(a.seqLensKV[0] / 2);
  if (what === 'v') a.v![key * a.numKvHeads * a.headDimV + 2] = Number.NaN;
  else a.k![key * a.numKvHeads * a.headDimQK + 5] = what === 'kInf' ? Number.POSITIVE_INFINITY : Number.NaN;
}

// Each dimension of the matrix is covered at least once, without the full cross product
// (the software adapters run on 2 CPU cores).
const prefillCases: Case[] = [
  {
    name: 'MHA d64 single seq 97 tokens',
    H: 4,
    Hkv: 4,
    D: 64,
    seqLensQ: [97],
    seqLensKV: [97],
    pageSize: 16,
    kvDtype: 'f32',
  },
  {
    name: 'GQA g2 d80 ragged',
    H: 4,
    Hkv: 2,
    D: 80,
    seqLensQ: [17, 54, 1],
    seqLensKV: [17, 54, 1],
    pageSize: 16,
    kvDtype: 'f16',
  },
  { name: 'GQA g3 d128 page 7', H: 6, Hkv: 2, D: 128, seqLensQ: [54], seqLensKV: [54], pageSize: 7, kvDtype: 'f32' },
  {
    name: 'GQA g4 d128 300 tokens',
    H: 8,
    Hkv: 2,
    D: 128,
    seqLensQ: [300],
    seqLensKV: [300],
    pageSize: 16,
    kvDtype: 'f16',
  },
  {
    name: 'GQA g7 d64 page 1',
    H: 7,
    Hkv: 1,
    D: 64,
    seqLensQ: [17, 30],
    seqLensKV: [17, 30],
    pageSize: 1,
    kvDtype: 'f32',
  },
  { name: 'GQA g8 d256', H: 8, Hkv: 1, D: 256, seqLensQ: [33], seqLensKV: [33], pageSize: 16, kvDtype: 'f16' },
  {
    name: 'MQA 12 heads d64',
    H: 12,
    Hkv: 1,
    D: 64,
    seqLensQ: [40, 9],
    seqLensKV: [40, 9],
    pageSize: 16,
    kvDtype: 'f32',
  },
  {
    name: 'chunked prefill: last chunk of each sequence',
    H: 8,
    Hkv: 2,
    D: 64,
    seqLensQ: [17, 5, 30],
    seqLensKV: [97, 54, 300],
    pageSize: 16,
    kvDtype: 'f32',
  },
  {
    name: 'chunked prefill f16 page 7',
    H: 4,
    Hkv: 1,
    D: 80,
    seqLensQ: [20, 1],
    seqLensKV: [54, 17],
    pageSize: 7,
    kvDtype: 'f16',
  },
  {
    name: 'head dims differ (Dqk 96, Dv 64)',
    H: 4,
    Hkv: 2,
    D: 96,
    Dv: 64,
    seqLensQ: [54],
    seqLensKV: [54],
    pageSize: 16,
    kvDtype: 'f32',
  },
  {
    name: 'sliding window 16',
    H: 4,
    Hkv: 2,
    D: 64,
    seqLensQ: [97],
    seqLensKV: [97],
    pageSize: 16,
    kvDtype: 'f32',
    window: 16,
  },
  {
    name: 'non-causal',
    H: 4,
    Hkv: 4,
    D: 64,
    seqLensQ: [17, 54],
    seqLensKV: [17, 54],
    pageSize: 16,
    kvDtype: 'f32',
    causal: false,
  },
  {
    name: 'large logits (|q.k| ~ 1e3)',
    H: 4,
    Hkv: 2,
    D: 64,
    seqLensQ: [54],
    seqLensKV: [54],
    pageSize: 16,
    kvDtype: 'f32',
    amp: 12,
  },
  // Gemma-2 soft-capping, and one non-finite input (issue 16: NaN in must give NaN out).
  {
    name: 'soft-cap 5 (Gemma-2)',
    H: 4,
    Hkv: 2,
    D: 64,
    seqLensQ: [54, 17],
    seqLensKV: [54, 40],
    pageSize: 16,
    kvDtype: 'f32',
    amp: 3,
    softcap: 5,
  },
  {
    name: 'soft-cap 20, window 16, large logits',
    H: 8,
    Hkv: 2,
    D: 128,
    seqLensQ: [70],
    seqLensKV: [70],
    pageSize: 7,
    kvDtype: 'f16',
    amp: 12,
    softcap: 20,
    window: 16,
  },
  {
    name: 'NaN in one q row',
    H: 8,
    Hkv: 2,
    D: 64,
    seqLensQ: [17, 30],
    seqLensKV: [17, 30],
    pageSize: 16,
    kvDtype: 'f32',
    poison: 'q',
  },
  {
    name: 'NaN in one K row',
    H: 4,
    Hkv: 1,
    D: 80,
    seqLensQ: [54, 9],
    seqLensKV: [54, 20],
    pageSize: 7,
    kvDtype: 'f16',
    poison: 'k',
  },
  {
    name: 'NaN in one V row (causal diagonal)',
    H: 8,
    Hkv: 2,
    D: 64,
    seqLensQ: [40],
    seqLensKV: [40],
    pageSize: 16,
    kvDtype: 'f32',
    poison: 'v',
  },
  {
    name: 'NaN in one V row, window 9',
    H: 4,
    Hkv: 2,
    D: 64,
    seqLensQ: [40],
    seqLensKV: [40],
    pageSize: 16,
    kvDtype: 'f16',
    window: 9,
    poison: 'v',
  },
  {
    name: '+Inf in one K row',
    H: 4,
    Hkv: 2,
    D: 64,
    seqLensQ: [30],
    seqLensKV: [30],
    pageSize: 16,
    kvDtype: 'f32',
    poison: 'kInf',
  },
];

const decodeCases: Case[] = [
  {
    name: 'decode MHA d64 ragged',
    H: 4,
    Hkv: 4,
    D: 64,
    seqLensQ: [1, 1, 1],
    seqLensKV: [1, 97, 300],
    pageSize: 16,
    kvDtype: 'f32',
  },
  {
    name: 'decode GQA g4 d128 f16 long',
    H: 8,
    Hkv: 2,
    D: 128,
    seqLensQ: [1, 1],
    seqLensKV: [600, 17],
    pageSize: 16,
    kvDtype: 'f16',
  },
  {
    name: 'decode GQA g3 d80 page 7',
    H: 6,
    Hkv: 2,
    D: 80,
    seqLensQ: [1, 1],
    seqLensKV: [54, 130],
    pageSize: 7,
    kvDtype: 'f32',
  },
  {
    name: 'decode MQA 8 heads d256 page 1',
    H: 8,
    Hkv: 1,
    D: 256,
    seqLensQ: [1],
    seqLensKV: [97],
    pageSize: 1,
    kvDtype: 'f16',
  },
  {
    name: 'decode g64 (tiled heads) d64',
    H: 64,
    Hkv: 1,
    D: 64,
    seqLensQ: [1, 1],
    seqLensKV: [40, 300],
    pageSize: 16,
    kvDtype: 'f32',
  },
  {
    name: 'decode window 50',
    H: 4,
    Hkv: 2,
    D: 64,
    seqLensQ: [1, 1],
    seqLensKV: [300, 30],
    pageSize: 16,
    kvDtype: 'f32',
    window: 50,
  },
  {
    name: 'decode large logits',
    H: 4,
    Hkv: 1,
    D: 64,
    seqLensQ: [1],
    seqLensKV: [300],
    pageSize: 16,
    kvDtype: 'f32',
    amp: 12,
  },
  {
    name: 'decode soft-cap 5',
    H: 8,
    Hkv: 2,
    D: 128,
    seqLensQ: [1, 1],
    seqLensKV: [600, 17],
    pageSize: 16,
    kvDtype: 'f16',
    amp: 3,
    softcap: 5,
  },
  {
    name: 'decode NaN in one q row',
    H: 8,
    Hkv: 2,
    D: 64,
    seqLensQ: [1, 1],
    seqLensKV: [300, 30],
    pageSize: 16,
    kvDtype: 'f32',
    poison: 'q',
  },
  {
    name: 'decode NaN in one K row',
    H: 4,
    Hkv: 2,
    D: 64,
    seqLensQ: [1, 1],
    seqLensKV: [300, 30],
    pageSize: 7,
    kvDtype: 'f16',
    poison: 'k',
  },
  {
    name: 'decode NaN in one V row',
    H: 6,
    Hkv: 2,
    D: 80,
    seqLensQ: [1, 1],
    seqLensKV: [600, 30],
    pageSize: 16,
    kvDtype: 'f32',
    poison: 'v',
  },
];

// q8 / q4 pages (issue 17): a reduced set over the kernels, page sizes 1 / 7 / 16, ragged, a partial
// q4 scale group (d 80 = 32 + 32 + 16), Dv != D, window and soft-cap.
const quantCases: Case[] = [
  { name: 'GQA g2 d80 ragged', H: 4, Hkv: 2, D: 80, seqLensQ: [17, 54, 1], seqLensKV: [17, 54, 1], pageSize: 16 },
  { name: 'GQA g3 d128 page 7', H: 6, Hkv: 2, D: 128, seqLensQ: [54], seqLensKV: [54], pageSize: 7 },
  {
    name: 'd96 / dv64 chunk, window 16, soft-cap 20',
    H: 4,
    Hkv: 2,
    D: 96,
    Dv: 64,
    seqLensQ: [9, 30],
    seqLensKV: [70, 30],
    pageSize: 16,
    window: 16,
    softcap: 20,
    amp: 3,
  },
].map((c) => ({ ...c, kvDtype: 'f32' as KvDtype }));
const quantDecodeCases: Case[] = [
  { name: 'decode GQA g4 d128', H: 8, Hkv: 2, D: 128, seqLensQ: [1, 1], seqLensKV: [300, 17], pageSize: 16 },
  { name: 'decode MHA d64 page 1', H: 2, Hkv: 2, D: 64, seqLensQ: [1, 1, 1], seqLensKV: [1, 40, 97], pageSize: 1 },
].map((c) => ({ ...c, kvDtype: 'f32' as KvDtype }));

// Quantised pages are read through the f32 word snippet on every adapter (the same shader), so past the
// first prefill and the first decode case SwiftShader adds no coverage, only compile time (about a minute
// per flashPrefill pipeline there on a busy machine): the rest, and the naive baseline, run on lavapipe only.
const swiftshader = expectedShaderF16() === false;

describe('paged attention kernels on q8 / q4 pages vs float64 reference on the same quantised values', () => {
  for (const kvDtype of ['q8', 'q4'] as const) {
    quantCases.forEach((c, i) =>
      it.skipIf(swiftshader && i > 0)(`flashPrefill: ${c.name} [${kvDtype}]`, () =>
        check({ ...c, kvDtype, kernel: 'prefill' }),
      ),
    );
    quantDecodeCases.forEach((c, i) =>
      it.skipIf(swiftshader && i > 0)(`splitKvDecode: ${c.name} [${kvDtype}]`, () =>
        check({ ...c, kvDtype, kernel: 'decode' }),
      ),
    );
    it.skipIf(swiftshader)(`naive three-pass: ${quantCases[0].name} [${kvDtype}]`, () =>
      check({ ...quantCases[0], kvDtype, kernel: 'naive' }),
    );
  }
});

describe('paged attention kernels vs float64 reference', () => {
  it('runs on the f16 path this adapter must exercise', async () => {
    const ctx = await gpu();
    const want = expectedShaderF16();
    if (want !== undefined) expect(ctx.features.shaderF16).toBe(want);
  });
  for (const c of prefillCases) it(`flashPrefill: ${c.name} [${c.kvDtype}]`, () => check({ ...c, kernel: 'prefill' }));
  for (const c of decodeCases) it(`splitKvDecode: ${c.name} [${c.kvDtype}]`, () => check({ ...c, kernel: 'decode' }));
  it('flashPrefill also serves one-token queries (decode shapes)', () =>
    check({ ...decodeCases[0], kernel: 'prefill' }));
  it('naive three-pass baseline: ragged GQA', () =>
    check({
      name: 'naive',
      H: 8,
      Hkv: 2,
      D: 64,
      seqLensQ: [17, 5],
      seqLensKV: [54, 97],
      pageSize: 16,
      kvDtype: 'f16',
      kernel: 'naive',
    }));
  it('naive three-pass baseline: soft-cap and NaN in V', async () => {
    const base = { H: 4, Hkv: 2, D: 64, seqLensQ: [20, 3], seqLensKV: [40, 30], pageSize: 16 };
    const kernel = 'naive' as const;
    await check({ ...base, kernel, name: 'naive soft-cap 5', kvDtype: 'f32', amp: 3, softcap: 5 });
    await check({ ...base, kernel, name: 'naive NaN V', kvDtype: 'f16', poison: 'v' });
  });
  it('naive three-pass baseline: window, page 7', () =>
    check({
      name: 'naive window',
      H: 4,
      Hkv: 4,
      D: 80,
      seqLensQ: [30],
      seqLensKV: [30],
      pageSize: 7,
      kvDtype: 'f32',
      window: 9,
      kernel: 'naive',
    }));
});
