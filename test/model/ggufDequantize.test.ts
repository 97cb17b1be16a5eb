/**
 * GGUF block dequantization (src/model/ggufDequantize.ts, the loader's f32 path) against its
 * float64 twin (src/reference/quant.ts): every block tensor of the real llama.cpp files
 * (Q8_0, Q4_0, Q5_0) value for value, and fresh random Q4_K / Q6_K blocks (no real file has them)
 * to f32 rounding; and quantize-on-load of the dequantized values gives the files' Q8_0 / Q4_0
 * blocks back (so a q8 / q4 load of such a GGUF holds llama.cpp's blocks).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dequantizeGguf, type GgufDequantType } from '../../src/model/ggufDequantize';
import { quantizeBlocks } from '../../src/model/quantize';
import { dequantizeBlocks, type GgufBlockFormat } from '../../src/reference/quant';
import { relL2 } from '../../src/reference/attention';
import { rng } from '../../src/reference/random';
import { ggufTensorBytes, parseGguf } from '../../src/sources/gguf';
import { f32ToF16Bits } from '../../src/sources/halfFloat';

const GGUF = join(__dirname, '../../../shared/realworld/gguf');
const FORMAT: Partial<Record<GgufDequantType, GgufBlockFormat>> = {
  Q8_0: 'q8',
  Q4_0: 'q4',
  Q5_0: 'q5_0',
  Q4_K: 'q4_K',
  Q6_K: 'q6_K',
};

describe('GGUF block dequantization', () => {
  it.skipIf(!existsSync(GGUF))('every block tensor of the real files equals the float64 reference exactly', () => {
    const seen: Record<string, number> = {};
    for (const name of readdirSync(GGUF).filter((f) => f.endsWith('.gguf'))) {
      const file = parseGguf(new Uint8Array(readFileSync(join(GGUF, name))), name);
      for (const t of file.tensors.values()) {
        const format = FORMAT[t.type as GgufDequantType];
        if (!format) continue;
        const bytes = ggufTensorBytes(file, t.name);
        const got = dequantizeGguf(t.type as GgufDequantType, bytes);
        const want = dequantizeBlocks(format, bytes, t.numel);
        expect(got.length).toBe(want.length);
        let bad = -1;
        for (let i = 0; i < got.length && bad < 0; i++) if (got[i] !== want[i]) bad = i;
        expect(bad, `${name} ${t.name} (${t.type})`).toBe(-1);
        seen[t.type] = (seen[t.type] ?? 0) + 1;
      }
    }
    expect(Object.keys(seen).sort()).toEqual(['Q4_0', 'Q5_0', 'Q8_0']);
  });

  it.skipIf(!existsSync(GGUF))('quantized on load again, the real Q8_0 and Q4_0 blocks come back byte for byte', () => {
    let tensors = 0;
    for (const name of readdirSync(GGUF).filter((f) => f.endsWith('.gguf'))) {
      const file = parseGguf(new Uint8Array(readFileSync(join(GGUF, name))), name);
      for (const t of file.tensors.values()) {
        if (t.type !== 'Q8_0' && t.type !== 'Q4_0') continue;
        const bytes = ggufTensorBytes(file, t.name);
        const again = new Uint8Array(bytes.length);
        quantizeBlocks(t.type === 'Q8_0' ? 'q8' : 'q4', dequantizeGguf(t.type, bytes), again);
        expect(Buffer.compare(again, bytes), `${name} ${t.name}`).toBe(0);
        tensors++;
      }
    }
    expect(tensors).toBeGreaterThan(100);
  });

  for (const [type, blockBytes, dOffsets] of [
    ['Q4_K', 144, [0, 2]],
    ['Q6_K', 210, [208]],
  ] as const) {
    it(`random ${type} blocks match the float64 reference to f32 rounding`, () => {
      const seed = Math.floor(Math.random() * 2 ** 31);
      const r = rng(seed);
      const blocks = 12;
      const bytes = new Uint8Array(blocks * blockBytes).map(() => Math.floor(r() * 256));
      for (let b = 0; b < blocks; b++) {
        for (const o of dOffsets) {
          const h = f32ToF16Bits((r() - 0.5) * 0.02); // a sane scale, not a random f16 bit pattern
          bytes[b * blockBytes + o] = h & 0xff;
          bytes[b * blockBytes + o + 1] = h >> 8;
        }
      }
      const got = dequantizeGguf(type, bytes);
      const want = dequantizeBlocks(FORMAT[type]!, bytes, blocks * 256);
      expect(relL2(got, want), `seed ${seed}`).toBeLessThan(1e-6);
    });
  }

  it('Q5_K is Q4_K plus 16 scale steps where its qh bit is set', () => {
    const q4k = new Uint8Array(144).map(() => Math.floor(Math.random() * 256));
    const h = f32ToF16Bits(0.01);
    [q4k[0], q4k[1], q4k[2], q4k[3]] = [h & 0xff, h >> 8, h & 0xff, h >> 8];
    q4k.fill(0x41, 4, 16); // every 6-bit scale and min is 1 or more: a set qh bit always moves a value
    const q5k = new Uint8Array(176);
    q5k.set(q4k.subarray(0, 16)); // d, dmin, scales
    q5k.set(q4k.subarray(16), 48); // qs after qh[32]
    const base = dequantizeGguf('Q4_K', q4k);
    expect(dequantizeGguf('Q5_K', q5k)).toEqual(base);
    const bit = Math.floor(Math.random() * 8); // bit b of qh[l] is the fifth bit of value 32 * b + l
    const l = Math.floor(Math.random() * 32);
    q5k[16 + l] = 1 << bit;
    const moved = dequantizeGguf('Q5_K', q5k);
    const at = 32 * bit + l;
    expect(moved[at]).toBeGreaterThan(base[at]);
    moved[at] = base[at];
    expect(moved).toEqual(base); // only that value moved
  });

  it('refuses bytes that are not whole blocks', () => {
    expect(() => dequantizeGguf('Q8_0', new Uint8Array(35))).toThrow(/35 bytes are not whole 34-byte blocks/);
  });
});
