/** Random GGUF blocks for the quantized-kernel tests (matmulQuant, embeddingQuant). */
import type { QuantDtype } from '../../src/gpu/dtype';
import {
  GGUF_BLOCKS,
  referenceQuantizeQ4_0,
  referenceQuantizeQ5_0,
  referenceQuantizeQ8_0,
} from '../../src/reference/quant';
import { f32ToF16Bits } from '../../src/sources/halfFloat';
import { randomArray } from './harness';

/** Random GGUF blocks of W [N, K] in `dtype`. */
export function randomBlocks(dtype: QuantDtype, N: number, K: number, rand: () => number): Uint8Array {
  const values = randomArray(N * K, rand, 0.5);
  if (dtype === 'q8') return referenceQuantizeQ8_0(values);
  if (dtype === 'q4') return referenceQuantizeQ4_0(values);
  if (dtype === 'q5_0') return referenceQuantizeQ5_0(values);
  const { blockBytes } = GGUF_BLOCKS[dtype];
  const bytes = new Uint8Array(((N * K) / 256) * blockBytes);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
  const putF16 = (o: number, v: number) => {
    const h = f32ToF16Bits(v);
    bytes[o] = h & 0xff;
    bytes[o + 1] = h >> 8;
  };
  for (let o = 0; o < bytes.length; o += blockBytes) {
    if (dtype === 'q4_K') {
      putF16(o, 0.002 * (0.5 + rand())); // d: values up to 0.002 * 63 * 15 ~ 1.9
      putF16(o + 2, 0.004 * rand()); // dmin
    } else {
      putF16(o + 208, 0.0005 * (0.5 + rand())); // d: values up to 0.0005 * 128 * 32 ~ 2
    }
  }
  return bytes;
}
