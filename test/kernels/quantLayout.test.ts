/**
 * The packed rows of block-quantized weights (src/kernels/quantLayout.ts): a repack, not a
 * re-quantization. Every format at ragged row lengths: unpack(pack(blocks)) is the blocks byte for
 * byte, each plane holds its block bytes in order, rows and planes start on 16 bytes, padding is zero.
 */
import { describe, expect, it } from 'vitest';
import { DTYPES, QUANT_DTYPES } from '../../src/gpu/dtype';
import { packedRowBytes, packQuantRows, QUANT_PLANES, unpackQuantRows } from '../../src/kernels/quantLayout';

describe.each(QUANT_DTYPES)('packed rows, %s', (dtype) => {
  const { blockValues, blockBytes } = DTYPES[dtype];
  it.each([1, 3, 9, 17])(
    '%i blocks a row, 5 rows: the planes hold the block bytes, and unpack gives them back',
    (n) => {
      const cols = n * blockValues;
      const rows = 5;
      const blocks = Uint8Array.from({ length: rows * n * blockBytes }, () => Math.floor(Math.random() * 256));
      const packed = packQuantRows(dtype, blocks, rows, cols);
      const rowBytes = packedRowBytes(dtype, cols);
      expect(rowBytes % 16).toBe(0);
      expect(packed.length).toBe(rows * rowBytes);
      expect(Buffer.from(unpackQuantRows(dtype, packed, rows, cols)).equals(Buffer.from(blocks))).toBe(true);
      // Plane p of row r: bytes [start, start + bytes) of each block, in block order, then zeros to 16.
      for (let r = 0; r < rows; r++) {
        let o = r * rowBytes;
        for (const { start, bytes } of QUANT_PLANES[dtype]) {
          expect(o % 16).toBe(0);
          for (let b = 0; b < n; b++) {
            const src = (r * n + b) * blockBytes + start;
            expect([...packed.subarray(o + b * bytes, o + (b + 1) * bytes)]).toEqual([
              ...blocks.subarray(src, src + bytes),
            ]);
          }
          const end = o + Math.ceil((n * bytes) / 16) * 16;
          expect(packed.subarray(o + n * bytes, end).every((v) => v === 0)).toBe(true);
          o = end;
        }
        expect(o).toBe((r + 1) * rowBytes);
      }
    },
  );
});

it('row bytes: the GGUF bytes plus the padding of each plane to 16', () => {
  expect(packedRowBytes('q8', 96)).toBe(112); // 96 codes + 6 bytes of d padded to 16
  expect(packedRowBytes('q8', 8192)).toBe(8704); // = 256 blocks of 34 bytes
  expect(packedRowBytes('q4', 96)).toBe(64); // 48 + 16
  expect(packedRowBytes('q5_0', 128)).toBe(96); // 64 codes + 16 qh + 16 (8 bytes of d)
  expect(packedRowBytes('q4_K', 512)).toBe(288); // the blocks as they are
  expect(packedRowBytes('q6_K', 256)).toBe(224); // 192 + 16 scales + 16 (2 bytes of d)
});
