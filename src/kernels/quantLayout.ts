/**
 * How a block-quantized weight sits in its GPU buffer: GGUF blocks repacked, row by row, into
 * 16-byte-aligned planes, the bytes themselves unchanged (a repack, never a re-quantization: every
 * code and scale keeps its bits, and unpackQuantRows gives the file's blocks back byte for byte).
 *
 * Why: GGUF blocks are 34 (Q8_0), 18 (Q4_0), 22 (Q5_0) and 210 (Q6_K) bytes, so their fields fall
 * on every 2-byte boundary and each 4-byte read of a code group straddles two words (two loads and
 * a shift). In planes, a lane reads its codes as whole vec4<u32> words, consecutive lanes on
 * consecutive 16 bytes of a row (coalesced on GPUs), and its block's scale as one u32.
 *
 * A plane gathers the bytes [start, start + bytes) of every block of the row, block after block,
 * padded to a multiple of 16 bytes; a row is its planes in order, so every row and every plane
 * starts on 16 bytes, and a row's bytes depend only on its length (row shards stay whole rows).
 *   q8   codes (bytes 2..33, 32 a block) | d (bytes 0..1)
 *   q4   codes (bytes 2..17, 16 a block) | d
 *   q5_0 low nibbles (bytes 6..21, 16) | qh (bytes 2..5, one u32 a block) | d
 *   q4_K the block as it is (144 bytes: a multiple of 16 already; its 16-byte header is one vec4)
 *   q6_K ql and qh (bytes 0..191, 12 vec4s) | scales (bytes 192..207, one vec4) | d (bytes 208..209)
 * e.g. q8, K 96 (3 blocks): codes 96 bytes (vec4s 0..5), d 6 bytes padded to 16 (vec4 6): 112 bytes
 * a row against GGUF's 102; at K 8192: 8192 + 512 = 8704 bytes, GGUF's exactly (256 blocks' d fill
 * 512 bytes). The kernels' format snippets (shaders/model/quant/*.wgsl) read this layout.
 */
import { DTYPES, type QuantDtype } from '../gpu/dtype';

/** A plane: bytes [start, start + bytes) of each GGUF block. */
export interface QuantPlane {
  start: number;
  bytes: number;
}

/** The planes of a packed row, in order (see the header). */
export const QUANT_PLANES: Record<QuantDtype, readonly QuantPlane[]> = {
  q8: [
    { start: 2, bytes: 32 },
    { start: 0, bytes: 2 },
  ],
  q4: [
    { start: 2, bytes: 16 },
    { start: 0, bytes: 2 },
  ],
  q5_0: [
    { start: 6, bytes: 16 },
    { start: 2, bytes: 4 },
    { start: 0, bytes: 2 },
  ],
  q4_K: [{ start: 0, bytes: 144 }],
  q6_K: [
    { start: 0, bytes: 192 },
    { start: 192, bytes: 16 },
    { start: 208, bytes: 2 },
  ],
};

const pad16 = (n: number) => Math.ceil(n / 16) * 16;

/** Bytes of one packed row of `cols` values (a whole number of blocks): e.g. q8, 96 -> 112; q4_K, 512 -> 288. */
export function packedRowBytes(dtype: QuantDtype, cols: number): number {
  const blocks = cols / DTYPES[dtype].blockValues;
  return QUANT_PLANES[dtype].reduce((sum, p) => sum + pad16(blocks * p.bytes), 0);
}

/**
 * Repacks `rows` rows of GGUF blocks (`cols` values a row, row after row) into the planes, into
 * `out` (packedRowBytes * rows bytes, zeroed padding) or a new array.
 */
export function packQuantRows(
  dtype: QuantDtype,
  blocks: Uint8Array,
  rows: number,
  cols: number,
  out?: Uint8Array,
): Uint8Array {
  const { blockValues, blockBytes } = DTYPES[dtype];
  const perRow = cols / blockValues;
  const rowOut = packedRowBytes(dtype, cols);
  const dst = out ?? new Uint8Array(rows * rowOut);
  if (dst.length < rows * rowOut) throw new RangeError(`packQuantRows: ${rows} rows need ${rows * rowOut} bytes`);
  for (let r = 0; r < rows; r++) {
    let o = r * rowOut;
    const src = r * perRow * blockBytes;
    for (const p of QUANT_PLANES[dtype]) {
      const end = o + pad16(perRow * p.bytes);
      for (let b = 0; b < perRow; b++, o += p.bytes) {
        const s = src + b * blockBytes + p.start;
        dst.set(blocks.subarray(s, s + p.bytes), o);
      }
      dst.fill(0, o, end);
      o = end;
    }
  }
  return dst;
}

/** The inverse of packQuantRows: GGUF blocks of `rows` rows from their packed planes. */
export function unpackQuantRows(dtype: QuantDtype, packed: Uint8Array, rows: number, cols: number): Uint8Array {
  const { blockValues, blockBytes } = DTYPES[dtype];
  const perRow = cols / blockValues;
  const rowIn = packedRowBytes(dtype, cols);
  const out = new Uint8Array(rows * perRow * blockBytes);
  for (let r = 0; r < rows; r++) {
    let o = r * rowIn;
    const dst = r * perRow * blockBytes;
    for (const p of QUANT_PLANES[dtype]) {
      for (let b = 0; b < perRow; b++) {
        out.set(packed.subarray(o + b * p.bytes, o + (b + 1) * p.bytes), dst + b * blockBytes + p.start);
      }
      o += pad16(perRow * p.bytes);
    }
  }
  return out;
}
