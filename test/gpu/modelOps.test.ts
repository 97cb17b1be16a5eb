/**
 * The per-token kernels of a forward step (rmsNorm, rope, embedding, gatedActivation) against
 * their float64 twins in src/reference/ops.ts, on fresh random inputs with every output poisoned
 * (NaN) first. Odd sizes (dim 1, 7, 80, 96), f32 and f16 (packed) weights, both RoPE layouts with
 * default, llama3 and yarn frequency tables (from src/model/ropeFrequencies.ts, as the host computes them),
 * rotaryDim < headDim and MLA's rope part after the nope part.
 * Tolerances (rel L2): f32 < 1e-5 everywhere (~5e-8 is seen on both adapters, exp included; rope's
 * sin / cos are its own, accurate to ~1e-7, compared at the twin's f32-rounded angles, and < 1e-3
 * against exact angles up to position 3000); f16 weights < 1e-5 against the twin on the f16-rounded
 * weights and < 5e-3 against the unrounded ones.
 */
import { describe, expect, it } from 'vitest';
import { readFloat32, STORAGE, UNIFORM, uploadBuffer } from '../../src/gpu/buffers';
import { ShapeError } from '../../src/gpu/errors';
import type { WeightDtype } from '../../src/model/weights';
import type { ModelSpec } from '../../src/model/config';
import { ropeAttentionFactor, ropeInvFrequencies, type RopeScaling } from '../../src/model/ropeFrequencies';
import { RmsNorm, rmsNormParams, type RmsNormSpec } from '../../src/kernels/rmsNorm';
import { Rope, ropeParams, type RopeOperand } from '../../src/kernels/rope';
import { Embedding, embeddingParams } from '../../src/kernels/embedding';
import { GatedActivation, gatedActivationParams, type Activation } from '../../src/kernels/gatedActivation';
import { embeddingRef, gatedActivationRef, rmsNormRef, ropeRef } from '../../src/reference/ops';
import { relL2 } from '../../src/reference/attention';
import { f16BitsToF32, f32ArrayToF16 } from '../../src/sources/halfFloat';
import { dispatch, gpu, poisoned, randomArray, rng } from './harness';

const seed = () => (Math.random() * 2 ** 32) >>> 0;

/** Host data as stored on the GPU, and the values the GPU sees. */
function weightData(
  values: Float32Array,
  dtype: WeightDtype,
): { data: Float32Array | Uint16Array; seen: Float32Array } {
  if (dtype === 'f32') return { data: values, seen: values };
  const bits = f32ArrayToF16(values);
  return { data: bits, seen: Float32Array.from(bits, f16BitsToF32) };
}

const uniform = async (data: Uint32Array) => uploadBuffer(await gpu(), 'test.params', data, UNIFORM);

describe('rmsNorm', () => {
  const ROWS = 5;
  const cases: { dim: number; weightDtype: WeightDtype; mode: 'plain' | 'fused' | 'inPlace'; plusOne: boolean }[] = [];
  for (const dim of [1, 7, 80, 96, 576]) {
    for (const weightDtype of ['f32', 'f16'] as const) {
      for (const mode of ['plain', 'fused', 'inPlace'] as const)
        cases.push({ dim, weightDtype, mode, plusOne: (dim + cases.length) % 2 === 0 });
    }
  }

  it.each(cases)(
    'dim $dim, $weightDtype weights, $mode, plusOne $plusOne',
    async ({ dim, weightDtype, mode, plusOne }) => {
      const ctx = await gpu();
      const rand = rng(seed());
      const eps = 1e-5;
      const spec: RmsNormSpec = {
        dim,
        eps,
        weightDtype,
        weightPlusOne: plusOne,
        fused: mode === 'fused',
        inPlace: mode === 'inPlace',
      };
      const op = await RmsNorm.create(ctx, spec);
      const x = randomArray(ROWS * dim, rand, 2);
      const residual = randomArray(ROWS * dim, rand, 2);
      const wValues = randomArray(dim, rand);
      const w = weightData(wValues, weightDtype);
      const xBuf = await uploadBuffer(ctx, 'test.x', x);
      const resBuf = mode === 'fused' ? await uploadBuffer(ctx, 'test.residual', residual) : undefined;
      const yBuf = mode === 'inPlace' ? undefined : await poisoned('test.y', ROWS * dim * 4);
      const wBuf = await uploadBuffer(ctx, 'test.w', w.data);
      const params = await uniform(rmsNormParams(ROWS));
      const bind = op.bind({ x: xBuf, residual: resBuf, weight: wBuf, y: yBuf, params });
      await dispatch('rmsNorm test', (pass) => op.encode(pass, bind, ROWS));
      const y = await readFloat32(ctx, yBuf ?? xBuf, ROWS * dim);
      const res = mode === 'fused' ? residual : undefined;
      const ref = rmsNormRef(x, ROWS, dim, w.seen, eps, { plusOne, residual: res });
      expect(relL2(y, ref.y)).toBeLessThan(1e-5);
      // Against the unrounded weights too: f16 rounding only. Not at tiny dims: with plusOne, one weight
      // near -1 makes 1 + w tiny and its f16 rounding large relative to it (dim 1 failed at 6e-3).
      if (weightDtype === 'f16' && dim >= 8)
        expect(relL2(y, rmsNormRef(x, ROWS, dim, wValues, eps, { plusOne, residual: res }).y)).toBeLessThan(5e-3);
      if (mode === 'fused') {
        // residual += x, as f32 adds: exact.
        const sum = await readFloat32(ctx, resBuf!, ROWS * dim);
        expect(Array.from(sum)).toEqual(Array.from(ref.sum, (v) => Math.fround(v)));
      }
      for (const b of [xBuf, resBuf, yBuf, wBuf, params]) b?.destroy();
      op.destroy();
    },
  );

  it('rejects bad shapes before the GPU sees them', async () => {
    const ctx = await gpu();
    await expect(RmsNorm.create(ctx, { dim: 0, eps: 1e-6, weightDtype: 'f32' })).rejects.toThrow(ShapeError);
    await expect(
      RmsNorm.create(ctx, { dim: 8, eps: 1e-6, weightDtype: 'f32', fused: true, inPlace: true }),
    ).rejects.toThrow(ShapeError);
    const op = await RmsNorm.create(ctx, { dim: 8, eps: 1e-6, weightDtype: 'f32', fused: true });
    const buf = await ctx.createBuffer('test.buf', 3 * 8 * 4, STORAGE);
    const params = await uniform(rmsNormParams(4));
    expect(() => op.bind({ x: buf, weight: buf, y: buf, params })).toThrow(/residual/);
    const small = await ctx.createBuffer('test.small', 16, STORAGE);
    expect(() => op.bind({ x: buf, residual: buf, weight: small, y: buf, params })).toThrow(/weight/);
    const bind = op.bind({ x: buf, residual: buf, weight: buf, y: buf, params });
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    expect(() => op.encode(pass, bind, 4)).toThrow(/hold 3/);
    pass.end();
    enc.finish();
    for (const b of [buf, small, params]) b.destroy();
    op.destroy();
  });
});

describe('rope', () => {
  /** invFreq as the host computes it for a config (only spec.rope is read). */
  function invFreqFor(
    theta: number,
    rotaryDim: number,
    scaling: RopeScaling,
  ): { invFreq: Float32Array; attentionFactor: number } {
    const spec = { rope: { theta, rotaryDim, interleaved: false, scaling } } as unknown as ModelSpec;
    return { invFreq: Float32Array.from(ropeInvFrequencies(spec)), attentionFactor: ropeAttentionFactor(spec) };
  }
  const llama3: RopeScaling = {
    type: 'llama3',
    factor: 8,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 256,
  };
  const yarn: RopeScaling = {
    type: 'yarn',
    factor: 40,
    originalMaxPositionEmbeddings: 128,
    betaFast: 32,
    betaSlow: 1,
    mscale: 1,
    mscaleAllDim: 0,
    attentionFactor: 1.3689,
  };

  interface Case {
    name: string;
    T: number;
    rotaryDim: number;
    interleaved: boolean;
    scaling: RopeScaling;
    q: RopeOperand;
    k?: RopeOperand;
    /** Largest position (positions are random below it, or all 0). */
    maxPos: number;
  }
  const cases: Case[] = [
    {
      name: 'llama GQA, rotate-half, default freqs, head 80',
      T: 7,
      rotaryDim: 80,
      interleaved: false,
      scaling: { type: 'none' },
      q: { heads: 4, headStride: 80 },
      k: { heads: 2, headStride: 80 },
      maxPos: 3000,
    },
    {
      name: 'rotaryDim 32 < head 96, rotate-half, llama3 freqs',
      T: 5,
      rotaryDim: 32,
      interleaved: false,
      scaling: llama3,
      q: { heads: 3, headStride: 96 },
      k: { heads: 1, headStride: 96 },
      maxPos: 3000,
    },
    {
      name: 'interleaved, head 96, linear freqs',
      T: 5,
      rotaryDim: 96,
      interleaved: true,
      scaling: { type: 'linear', factor: 4 },
      q: { heads: 2, headStride: 96 },
      k: { heads: 2, headStride: 96 },
      maxPos: 3000,
    },
    {
      name: 'MLA: interleaved rope part after nope, yarn freqs + attentionFactor',
      T: 6,
      rotaryDim: 16,
      interleaved: true,
      scaling: yarn,
      q: { heads: 3, headStride: 48, offset: 32 },
      k: { heads: 1, headStride: 80, offset: 64 },
      maxPos: 3000,
    },
    {
      name: 'fused QKV row, one operand, q and k heads adjacent',
      T: 4,
      rotaryDim: 64,
      interleaved: false,
      scaling: { type: 'none' },
      q: { heads: 4 + 2, headStride: 64, tokenStride: (4 + 2 * 2) * 64 },
      maxPos: 3000,
    },
    {
      name: 'long context: positions up to 60000 (range reduction)',
      T: 6,
      rotaryDim: 64,
      interleaved: false,
      scaling: { type: 'none' },
      q: { heads: 2, headStride: 64 },
      k: { heads: 1, headStride: 64 },
      maxPos: 60000,
    },
    {
      name: 'position 0 is the identity',
      T: 5,
      rotaryDim: 96,
      interleaved: false,
      scaling: { type: 'none' },
      q: { heads: 2, headStride: 96 },
      k: { heads: 1, headStride: 96 },
      maxPos: 0,
    },
  ];

  it.each(cases)('$name', async (c) => {
    const ctx = await gpu();
    const rand = rng(seed());
    const { invFreq, attentionFactor } = invFreqFor(c.name.includes('llama3') ? 500000 : 10000, c.rotaryDim, c.scaling);
    const op = await Rope.create(ctx, {
      rotaryDim: c.rotaryDim,
      interleaved: c.interleaved,
      attentionFactor,
      q: c.q,
      k: c.k,
    });
    const positions = Uint32Array.from({ length: c.T }, () => Math.floor(rand() * c.maxPos));
    if (c.maxPos > 0) positions[0] = 0;
    const operands = [c.q, ...(c.k ? [c.k] : [])];
    const rows = operands.map((o) => o.tokenStride ?? o.heads * o.headStride);
    const inputs = rows.map((r) => randomArray(c.T * r, rand));
    const bufs = await Promise.all(inputs.map((x, i) => uploadBuffer(ctx, `test.${i ? 'k' : 'q'}`, x)));
    const posBuf = await uploadBuffer(ctx, 'test.positions', positions);
    const freqBuf = await uploadBuffer(ctx, 'test.invFreq', invFreq);
    const params = await uniform(ropeParams(c.T));
    const bind = op.bind({ q: bufs[0], k: bufs[1], positions: posBuf, invFreq: freqBuf, params });
    await dispatch('rope test', (pass) => op.encode(pass, bind, c.T));
    for (let i = 0; i < operands.length; i++) {
      const got = await readFloat32(ctx, bufs[i], c.T * rows[i]);
      const ref = Float64Array.from(inputs[i]);
      ropeRef(ref, c.T, operands[i], positions, invFreq, c.rotaryDim, c.interleaved, attentionFactor);
      if (c.maxPos === 0) {
        expect(Array.from(got)).toEqual(Array.from(inputs[i])); // exactly
      } else {
        expect(relL2(got, ref)).toBeLessThan(1e-5);
        // Against exact (float64) angles the f32 angle's own rounding shows (~1e-4 at position 3000).
        if (c.maxPos <= 3000) {
          const exact = Float64Array.from(inputs[i]);
          ropeRef(exact, c.T, operands[i], positions, invFreq, c.rotaryDim, c.interleaved, attentionFactor, true);
          expect(relL2(got, exact)).toBeLessThan(1e-3);
        }
      }
      // Values outside the rotated range (nope part, v heads, dims past rotaryDim) are untouched.
      for (let j = 0; j < got.length; j++) if (ref[j] === inputs[i][j]) expect(got[j]).toBe(inputs[i][j]);
    }
    for (const b of [...bufs, posBuf, freqBuf, params]) b.destroy();
    op.destroy();
  });

  it('rejects bad shapes before the GPU sees them', async () => {
    const ctx = await gpu();
    await expect(
      Rope.create(ctx, { rotaryDim: 15, interleaved: false, q: { heads: 1, headStride: 16 } }),
    ).rejects.toThrow(ShapeError);
    await expect(
      Rope.create(ctx, { rotaryDim: 16, interleaved: true, q: { heads: 2, headStride: 48, offset: 40 } }),
    ).rejects.toThrow(/offset/);
    await expect(
      Rope.create(ctx, { rotaryDim: 16, interleaved: true, q: { heads: 4, headStride: 16, tokenStride: 32 } }),
    ).rejects.toThrow(/tokenStride/);
    const op = await Rope.create(ctx, {
      rotaryDim: 16,
      interleaved: false,
      q: { heads: 2, headStride: 16 },
      k: { heads: 1, headStride: 16 },
    });
    const buf = await ctx.createBuffer('test.buf', 4 * 32 * 4, STORAGE);
    const params = await uniform(ropeParams(1));
    expect(() => op.bind({ q: buf, positions: buf, invFreq: buf, params })).toThrow(/k buffer/);
    expect(() => op.bind({ q: buf, k: buf, positions: buf, invFreq: buf, params })).toThrow(/one buffer/);
    buf.destroy();
    params.destroy();
    op.destroy();
  });
});

describe('embedding', () => {
  it.each([
    { dim: 80, tableDtype: 'f32' as const, scale: 1 },
    { dim: 96, tableDtype: 'f16' as const, scale: Math.sqrt(96) },
    { dim: 7, tableDtype: 'f16' as const, scale: 1 }, // odd: rows straddle u32 words
    { dim: 7, tableDtype: 'f32' as const, scale: Math.sqrt(7) },
  ])('dim $dim, $tableDtype table, scale $scale', async ({ dim, tableDtype, scale }) => {
    const ctx = await gpu();
    const rand = rng(seed());
    const vocab = 37;
    const op = await Embedding.create(ctx, { vocab, dim, tableDtype, scale });
    const tValues = randomArray(vocab * dim, rand);
    const t = weightData(tValues, tableDtype);
    const ids = Uint32Array.from([
      0,
      vocab - 1,
      ...Array.from({ length: 7 }, () => Math.floor(rand() * vocab)),
      vocab + 5,
    ]);
    const T = ids.length;
    const tableBuf = await uploadBuffer(ctx, 'test.table', t.data);
    const idsBuf = await uploadBuffer(ctx, 'test.ids', ids);
    const out = await poisoned('test.out', T * dim * 4);
    const params = await uniform(embeddingParams(T));
    const bind = op.bind({ ids: idsBuf, table: tableBuf, out, params });
    await dispatch('embedding test', (pass) => op.encode(pass, bind, T));
    const got = await readFloat32(ctx, out, T * dim);
    const good = (T - 1) * dim; // the last id is out of range: a row of NaN
    expect(got.subarray(good).every(Number.isNaN)).toBe(true);
    expect(relL2(got.subarray(0, good), embeddingRef(ids, t.seen, vocab, dim, scale).subarray(0, good))).toBeLessThan(
      1e-6,
    );
    if (tableDtype === 'f16') {
      expect(
        relL2(got.subarray(0, good), embeddingRef(ids, tValues, vocab, dim, scale).subarray(0, good)),
      ).toBeLessThan(5e-3);
    }
    for (const b of [tableBuf, idsBuf, out, params]) b.destroy();
  });

  it('rejects a table smaller than vocab x dim', async () => {
    const ctx = await gpu();
    const op = await Embedding.create(ctx, { vocab: 10, dim: 8, tableDtype: 'f16' });
    const small = await ctx.createBuffer('test.small', 10 * 8 * 2 - 16, STORAGE);
    expect(() => op.bind({ ids: small, table: small, out: small, params: small })).toThrow(ShapeError);
    small.destroy();
  });
});

describe('gatedActivation', () => {
  const cases: { I: number; activation: Activation; layout: 'split' | 'concat' }[] = [];
  for (const I of [7, 80, 96])
    for (const activation of ['silu', 'geluTanh'] as const)
      for (const layout of ['split', 'concat'] as const) cases.push({ I, activation, layout });

  it.each(cases)('I $I, $activation, $layout', async ({ I, activation, layout }) => {
    const ctx = await gpu();
    const rand = rng(seed());
    const T = 5;
    const op = await GatedActivation.create(ctx, { intermediate: I, activation, layout });
    const gate = randomArray(T * I, rand, 6); // reaches both saturated tails
    const up = randomArray(T * I, rand, 2);
    let bufs: GPUBuffer[];
    if (layout === 'split') {
      bufs = [await uploadBuffer(ctx, 'test.gate', gate), await uploadBuffer(ctx, 'test.up', up)];
    } else {
      const gateUp = new Float32Array(T * 2 * I); // [T, 2I]: gate | up per row
      for (let t = 0; t < T; t++) {
        gateUp.set(gate.subarray(t * I, (t + 1) * I), t * 2 * I);
        gateUp.set(up.subarray(t * I, (t + 1) * I), t * 2 * I + I);
      }
      bufs = [await uploadBuffer(ctx, 'test.gateUp', gateUp)];
    }
    const out = await poisoned('test.out', T * I * 4);
    const params = await uniform(gatedActivationParams(T));
    const bind = op.bind({ gate: bufs[0], up: bufs[1], out, params });
    await dispatch('gatedActivation test', (pass) => op.encode(pass, bind, T));
    const got = await readFloat32(ctx, out, T * I);
    expect(relL2(got, gatedActivationRef(gate, up, activation))).toBeLessThan(1e-5);
    for (const b of [...bufs, out, params]) b.destroy();
  });

  it('rejects the wrong buffers for the layout', async () => {
    const ctx = await gpu();
    const op = await GatedActivation.create(ctx, { intermediate: 8, activation: 'silu', layout: 'concat' });
    const buf = await ctx.createBuffer('test.buf', 4 * 16 * 4, STORAGE);
    expect(() => op.bind({ gate: buf, up: buf, out: buf, params: buf })).toThrow(/split layout/);
    await expect(GatedActivation.create(ctx, { intermediate: 0, activation: 'silu', layout: 'split' })).rejects.toThrow(
      ShapeError,
    );
    buf.destroy();
  });
});
