/**
 * The float64 ggml twins in src/reference/quant.ts:
 * - on real files written by llama.cpp's llama-quantize (../shared/realworld/gguf): quantizing each
 *   F32 tensor of kjv-gqa / stories260K with the reference Q8_0 / Q4_0 / Q5_0 quantizer gives the
 *   quantized file's blocks byte for byte, and dequantizing those blocks lands within a rounding step
 *   of the F32 values;
 * - Q4_K and Q6_K (no real file has them: every row length there is below 256) on blocks built
 *   here field by field from the GGUF layout, with the values written out by hand for one block.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  dequantizeBlocks,
  GGUF_BLOCKS,
  referenceQuantizeQ4_0,
  referenceQuantizeQ5_0,
  referenceQuantizeQ8_0,
  type GgufBlockFormat,
} from '../../src/reference/quant';
import { f16BitsToF32, f32ToF16Bits } from '../../src/sources/halfFloat';
import { randomArray, rng } from '../../src/reference/random';
import { readGgufTensors, type GgufTensor } from './ggufTensors';

const GGUF_DIR = new URL('../../../shared/realworld/gguf/', import.meta.url).pathname;
const hasFiles = existsSync(`${GGUF_DIR}kjv-gqa-F32.gguf`);

const QUANTIZERS = { q8: referenceQuantizeQ8_0, q4: referenceQuantizeQ4_0, q5_0: referenceQuantizeQ5_0 };
const TYPE_NAMES = Object.fromEntries(Object.entries(GGUF_BLOCKS).map(([k, v]) => [v.ggmlType, k])) as Record<
  number,
  GgufBlockFormat
>;

function f32Values(t: GgufTensor): Float32Array {
  const n = t.dims.reduce((a, b) => a * b, 1);
  return new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + n * 4));
}

/**
 * The most |dequantized - x| can be for a block of scale |d|: Q8_0 rounds to half a step, plus the
 * f16 rounding of d (2^-11 relative) over the largest code 127; Q4_0 / Q5_0 put the signed maximum
 * at code 0 exactly and clip the other end one step short (e.g. Q4_0 max -1: d 1/8, +1 -> 7/8).
 */
function stepError(format: GgufBlockFormat, d: number): number {
  return format === 'q8' ? d * (0.5 + 127 * 2 ** -11) : d * (1 + 16 * 2 ** -11);
}

/** Every quantized 2-D tensor of `quantFile`, checked against the same tensor of `f32File`. */
function checkFile(f32File: string, quantFile: string): Record<string, number> {
  const src = readGgufTensors(`${GGUF_DIR}${f32File}`);
  const q = readGgufTensors(`${GGUF_DIR}${quantFile}`);
  const counts: Record<string, number> = {};
  for (const [name, t] of q) {
    const format = TYPE_NAMES[t.ggmlType];
    if (!format || !(format in QUANTIZERS)) continue;
    const x = f32Values(src.get(name)!);
    const { blockBytes } = GGUF_BLOCKS[format];
    const blocks = x.length / 32;
    const want = t.data.subarray(0, blocks * blockBytes);
    const got = QUANTIZERS[format as keyof typeof QUANTIZERS](x);
    expect(Buffer.compare(Buffer.from(got), Buffer.from(want)), `${quantFile} ${name} (${format})`).toBe(0);
    const y = dequantizeBlocks(format, want, x.length);
    let worst = 0; // largest error / bound (one expect per tensor: per value is slow)
    for (let b = 0; b < blocks; b++) {
      const d = Math.abs(f16BitsToF32(want[b * blockBytes] | (want[b * blockBytes + 1] << 8)));
      for (let j = b * 32; j < b * 32 + 32; j++) worst = Math.max(worst, Math.abs(y[j] - x[j]) / stepError(format, d));
    }
    expect(worst, `${name}: worst error / bound`).toBeLessThanOrEqual(1);
    counts[format] = (counts[format] ?? 0) + 1;
  }
  return counts;
}

describe.skipIf(!hasFiles)('GGUF blocks written by llama.cpp', () => {
  it('kjv-gqa Q8_0: 29 tensors byte for byte', () => {
    expect(checkFile('kjv-gqa-F32.gguf', 'kjv-gqa-Q8_0.gguf')).toEqual({ q8: 29 });
  });
  it('kjv-gqa Q4_0: 28 Q4_0 tensors and the Q8_0 embedding byte for byte', () => {
    expect(checkFile('kjv-gqa-F32.gguf', 'kjv-gqa-Q4_0.gguf')).toEqual({ q4: 28, q8: 1 });
  });
  it('kjv-gqa Q4_K_M (Q5_0 / Q8_0 fallbacks) byte for byte', () => {
    expect(checkFile('kjv-gqa-F32.gguf', 'kjv-gqa-Q4_K_M.gguf')).toEqual({ q5_0: 24, q8: 5 });
  });
  it('stories260K Q4_K_M (Q5_0 / Q8_0) byte for byte', () => {
    expect(checkFile('stories260K-F32.gguf', 'stories260K-Q4_K_M.gguf')).toEqual({ q5_0: 28, q8: 3 });
  });
});

describe('quantizers round trip on random data', () => {
  it.each(['q8', 'q4', 'q5_0'] as const)('%s: dequantize(quantize(x)) within a step', (format) => {
    const x = randomArray(32 * 40, rng(7 + format.length));
    x.fill(0, 64, 96); // an all-zero block: d = 0, codes at their zero point
    const y = dequantizeBlocks(format, QUANTIZERS[format](x), x.length);
    const levels = { q8: 127, q4: 8, q5_0: 16 }[format];
    for (let b = 0; b < 40; b++) {
      const amax = Math.max(...x.subarray(32 * b, 32 * b + 32).map(Math.abs));
      for (let j = 0; j < 32; j++) {
        const i = 32 * b + j;
        expect(Math.abs(y[i] - x[i])).toBeLessThanOrEqual(stepError(format, amax / levels) * (1 + 2 ** -10));
      }
    }
    expect(Array.from(y.subarray(64, 96), Math.abs)).toEqual(new Array(32).fill(0)); // -0 where d is -0
  });
});

function putF16(b: Uint8Array, o: number, v: number): number {
  const h = f32ToF16Bits(v);
  b[o] = h & 0xff;
  b[o + 1] = h >> 8;
  return f16BitsToF32(h);
}

/** A Q4_K block from its fields: sc/m 6-bit per sub-block (8 each), codes 4-bit per value (256). */
function q4kBlock(d: number, dmin: number, sc: number[], m: number[], codes: number[]): Uint8Array {
  const b = new Uint8Array(144);
  putF16(b, 0, d);
  putF16(b, 2, dmin);
  // scales[12]: bytes 0..3 = sc[0..3] | (sc[4..7] >> 4) << 6; bytes 4..7 = m[0..3] | (m[4..7] >> 4) << 6;
  // bytes 8..11 = (sc[4..7] & 15) | (m[4..7] & 15) << 4.
  for (let j = 0; j < 4; j++) {
    b[4 + j] = sc[j] | ((sc[j + 4] >> 4) << 6);
    b[8 + j] = m[j] | ((m[j + 4] >> 4) << 6);
    b[12 + j] = (sc[j + 4] & 15) | ((m[j + 4] & 15) << 4);
  }
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) b[16 + 32 * c + l] = codes[64 * c + l] | (codes[64 * c + 32 + l] << 4);
  }
  return b;
}

/** A Q6_K block from its fields: codes 6-bit per value (256), sc int8 per 16 values (16). */
function q6kBlock(d: number, sc: number[], codes: number[]): Uint8Array {
  const b = new Uint8Array(210);
  for (let n = 0; n < 2; n++) {
    for (let l = 0; l < 32; l++) {
      const c = [0, 1, 2, 3].map((i) => codes[128 * n + 32 * i + l]);
      b[64 * n + l] = (c[0] & 15) | ((c[2] & 15) << 4);
      b[64 * n + 32 + l] = (c[1] & 15) | ((c[3] & 15) << 4);
      b[128 + 32 * n + l] = (c[0] >> 4) | ((c[1] >> 4) << 2) | ((c[2] >> 4) << 4) | ((c[3] >> 4) << 6);
    }
  }
  for (let i = 0; i < 16; i++) b[192 + i] = sc[i] & 0xff;
  putF16(b, 208, d);
  return b;
}

/**
 * test/fixtures/quant/ggufpy-blocks.json: 3 seeded random blocks per format (f16 scales set to
 * finite values) and the values llama.cpp's own Python package (gguf-py 0.19.0,
 * gguf.quants.dequantize, float32 numpy) gives for them: an implementation independent of this
 * one. Equal to f32 rounding (gguf-py rounds each product to f32, the twin is exact in float64).
 */
describe("dequantize agrees with gguf-py (llama.cpp's Python package) on random blocks", () => {
  const fixture = JSON.parse(
    readFileSync(new URL('../fixtures/quant/ggufpy-blocks.json', import.meta.url), 'utf8'),
  ) as { formats: Record<GgufBlockFormat, { blocks: string; values: number[] }> };
  it.each(Object.keys(GGUF_BLOCKS) as GgufBlockFormat[])('%s', (format) => {
    const { blocks, values } = fixture.formats[format];
    const bytes = Uint8Array.from(Buffer.from(blocks, 'hex'));
    const y = dequantizeBlocks(format, bytes, values.length);
    const scale = Math.max(...values.map(Math.abs));
    let worst = 0;
    for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(y[i] - values[i]));
    expect(worst / scale).toBeLessThan(2 ** -22);
  });
});

describe('K-quant blocks built from their fields', () => {
  it('Q4_K: x = d * sc[sub] * code - dmin * m[sub], sub = value / 32', () => {
    const rand = rng(11);
    const int = (n: number) => Math.floor(rand() * n);
    const sc = Array.from({ length: 8 }, () => int(64));
    const m = Array.from({ length: 8 }, () => int(64));
    const codes = Array.from({ length: 256 }, () => int(16));
    const block = q4kBlock(0.01, 0.002, sc, m, codes);
    const d = f16BitsToF32(f32ToF16Bits(0.01));
    const dmin = f16BitsToF32(f32ToF16Bits(0.002));
    const y = dequantizeBlocks('q4_K', block, 256);
    for (let v = 0; v < 256; v++) {
      const s = v >> 5;
      expect(y[v]).toBe(d * sc[s] * codes[v] - dmin * m[s]);
    }
  });
  it('Q4_K by hand: sub-block 5 takes its scale from bytes 9 and 1, its min from bytes 9 and 5', () => {
    const b = new Uint8Array(144);
    putF16(b, 0, 0.5);
    putF16(b, 2, 0.25);
    b[4 + 1] = 0b10_000000; // sc[1] = 0; top two bits of sc[5] = 2
    b[4 + 5] = 0b01_000000; // m[1] = 0; top two bits of m[5] = 1
    b[4 + 9] = 0x73; // sc[5] low nibble 3, m[5] low nibble 7
    b[16 + 32 * 2 + 3] = 0x90; // value 64 * 2 + 32 + 3 = 163 (sub-block 5) has code 9
    const y = dequantizeBlocks('q4_K', b, 256);
    // sc[5] = 3 | 2 << 4 = 35, m[5] = 7 | 1 << 4 = 23: 0.5 * 35 * 9 - 0.25 * 23
    expect(y[163]).toBe(0.5 * 35 * 9 - 0.25 * 23);
    expect(y[160]).toBe(-0.25 * 23);
    expect(y[0]).toBe(0);
  });
  it('Q6_K: x = d * sc[value / 16] * (code - 32)', () => {
    const rand = rng(12);
    const int = (n: number) => Math.floor(rand() * n);
    const sc = Array.from({ length: 16 }, () => int(256) - 128);
    const codes = Array.from({ length: 256 }, () => int(64));
    const y = dequantizeBlocks('q6_K', q6kBlock(0.003, sc, codes), 256);
    const d = f16BitsToF32(f32ToF16Bits(0.003));
    for (let v = 0; v < 256; v++) expect(y[v]).toBe(d * sc[v >> 4] * (codes[v] - 32));
  });
  it('Q6_K by hand: value 200 = 128 + 2 * 32 + 8: high nibble of ql[64 + 8], bits 4..5 of qh[32 + 8]', () => {
    const b = new Uint8Array(210);
    b[64 + 8] = 0x50; // high nibble 5
    b[128 + 32 + 8] = 0b00_10_0000; // bits 4..5 = 2
    b[192 + 8 + 0 + 2 * 2] = -3 & 0xff; // sc[8n + l/16 + 2i] = sc[12] = -3
    putF16(b, 208, 0.125);
    const y = dequantizeBlocks('q6_K', b, 256);
    expect(y[200]).toBe(0.125 * -3 * ((5 | (2 << 4)) - 32));
    expect(Math.abs(y[0])).toBe(0); // sc[0] = 0
  });
});
