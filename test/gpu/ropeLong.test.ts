/**
 * The rope kernel's LongRoPE path (Phi-3.5 / Phi-4-mini / MiniCPM3): invFreq holds [2][rotaryDim / 2]
 * (short table, long table) and a position >= longFrom reads the long one. Checked against the
 * float64 twin ropeRef run per token with the table its position selects, on positions either side
 * of longFrom, with partial rotary (rotaryDim < head) and an attention factor, as phi3 loads them.
 */
import { describe, expect, it } from 'vitest';
import { readFloat32, UNIFORM, uploadBuffer } from '../../src/gpu/buffers';
import { ShapeError } from '../../src/gpu/errors';
import { ropeAttentionFactor, ropeFrequencyTable, ropeLongFrom, type RopeSpec } from '../../src/model/ropeFrequencies';
import { Rope, ropeParams } from '../../src/kernels/rope';
import { ropeRef } from '../../src/reference/ops';
import { relL2 } from '../../src/reference/attention';
import { gpu, randomArray, rng } from './harness';

describe('rope: LongRoPE tables', () => {
  it('positions below longFrom use the short factors, from longFrom on the long ones', async () => {
    const ctx = await gpu();
    const rand = rng((Math.random() * 2 ** 32) >>> 0);
    const half = 12;
    const rope: RopeSpec = {
      theta: 10000,
      rotaryDim: 2 * half, // of a 32-wide head: partial rotary
      interleaved: false,
      scaling: {
        type: 'longrope',
        shortFactor: Array.from({ length: half }, (_, i) => 1 + 0.05 * i),
        longFactor: Array.from({ length: half }, (_, i) => 1 + 3 * i),
        originalMaxPositionEmbeddings: 100,
        attentionFactor: 1.19,
      },
    };
    const spec = { rope };
    const longFrom = ropeLongFrom(spec)!;
    const table = ropeFrequencyTable(spec); // [2][half]
    expect(table.length).toBe(2 * half);
    const op = await Rope.create(ctx, {
      rotaryDim: rope.rotaryDim,
      interleaved: false,
      attentionFactor: ropeAttentionFactor(spec),
      longFrom,
      q: { heads: 3, headStride: 32 },
      k: { heads: 1, headStride: 32 },
    });
    const positions = Uint32Array.from([0, 1, 98, 99, 100, 101, 250, 1000]);
    const T = positions.length;
    const q = randomArray(T * 3 * 32, rand);
    const k = randomArray(T * 32, rand);
    const qBuf = await uploadBuffer(ctx, 'test.q', q);
    const kBuf = await uploadBuffer(ctx, 'test.k', k);
    const posBuf = await uploadBuffer(ctx, 'test.positions', positions);
    const freqBuf = await uploadBuffer(ctx, 'test.invFreq', table);
    const params = await uploadBuffer(ctx, 'test.params', ropeParams(T), UNIFORM);
    const bind = op.bind({ q: qBuf, k: kBuf, positions: posBuf, invFreq: freqBuf, params });
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    op.encode(pass, bind, T);
    pass.end();
    ctx.device.queue.submit([enc.finish()]);
    for (const [buf, x, heads] of [
      [qBuf, q, 3],
      [kBuf, k, 1],
    ] as const) {
      const got = await readFloat32(ctx, buf, x.length);
      const ref = Float64Array.from(x);
      for (let t = 0; t < T; t++) {
        const row = ref.subarray(t * heads * 32, (t + 1) * heads * 32);
        const freq = positions[t] >= longFrom ? table.subarray(half) : table.subarray(0, half);
        ropeRef(row, 1, { heads, headStride: 32 }, [positions[t]], freq, rope.rotaryDim, false, 1.19);
      }
      expect(relL2(got, ref)).toBeLessThan(1e-5);
      // One table for everyone would be wrong on both sides of longFrom.
      const oneTable = Float64Array.from(x);
      ropeRef(oneTable, T, { heads, headStride: 32 }, positions, table.subarray(0, half), rope.rotaryDim, false, 1.19);
      expect(relL2(got, oneTable)).toBeGreaterThan(1e-3);
    }
    // invFreq must hold both tables.
    expect(() => op.bind({ q: qBuf, k: kBuf, positions: posBuf, invFreq: params, params })).toThrow(ShapeError);
    for (const b of [qBuf, kBuf, posBuf, freqBuf, params]) b.destroy();
    op.destroy();
  });
});
