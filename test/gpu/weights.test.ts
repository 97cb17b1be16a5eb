/** Weights reach the GPU bit-exact in the requested dtype, and wrong checkpoints are refused by name. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBuffer } from '../../src/gpu/buffers';
import { checkWeights, uploadWeights, WeightError } from '../../src/model/weights';
import { f32ToF16Bits } from '../../src/sources/halfFloat';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { writeSafetensors } from '../../src/sources/safetensors';
import { gpu, randomArray, rng } from './harness';

async function files(tensors: Parameters<typeof writeSafetensors>[0]) {
  const dir = mkdtempSync(join(tmpdir(), 'webattn-w-'));
  writeFileSync(join(dir, 'config.json'), '{}');
  writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors));
  return loadModelFiles(folderSource(dir));
}

describe('uploadWeights', () => {
  it('f16 and f32 weights arrive exactly, from F32 and F16 tensors', async () => {
    const ctx = await gpu();
    const rand = rng((Math.random() * 2 ** 32) >>> 0);
    const a = randomArray(7 * 5, rand); // odd element count: padded on the GPU
    const b = randomArray(16, rand);
    const m = await files({ a: { dtype: 'F32', shape: [7, 5], data: a }, b: { dtype: 'F16', shape: [16], data: b } });
    const expected = new Map([
      ['a', [7, 5]],
      ['b', [16]],
    ]);
    for (const dtype of ['f16', 'f32'] as const) {
      const w = await uploadWeights(ctx, m, expected, { dtype });
      for (const [name, src] of [
        ['a', a],
        ['b', b],
      ] as const) {
        const bytes = await readBuffer(ctx, w.get(name)!.buffer, src.length * (dtype === 'f16' ? 2 : 4));
        if (dtype === 'f16') {
          expect(Array.from(new Uint16Array(bytes))).toEqual(Array.from(src, f32ToF16Bits));
        } else if (name === 'a') {
          expect(Array.from(new Float32Array(bytes))).toEqual(Array.from(src));
        } else {
          // F16 in the file: f32 on the GPU holds the f16 values exactly
          new Float32Array(bytes).forEach((x, i) => expect(f32ToF16Bits(x)).toBe(f32ToF16Bits(src[i])));
        }
      }
      for (const x of w.values()) x.buffer.destroy();
    }
  });

  it('names every missing tensor and wrong shape, and uploads nothing', async () => {
    const ctx = await gpu();
    const m = await files({ a: { dtype: 'F32', shape: [2, 3], data: new Float32Array(6).fill(1) } });
    const expected = new Map([
      ['a', [3, 2]],
      ['model.norm.weight', [4]],
    ]);
    const problems = checkWeights(m, expected);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/model\.safetensors: tensor "a" has shape \[2,3\], the config implies \[3,2\]/);
    expect(problems[1]).toMatch(/tensor "model\.norm\.weight" is missing/);
    await expect(uploadWeights(ctx, m, expected)).rejects.toThrow(WeightError);
  });
});
