/**
 * The storage types of webattn, named once: what a weight, a KV page or a checkpoint tensor holds
 * on the GPU or in a file, and its size. Everything else (kv accounting, kernels, model, api,
 * bench, demo) takes its dtype unions and byte sizes from here.
 *
 * A type is stored in blocks: `blockValues` values in `blockBytes` bytes. Plain types are blocks of
 * one value (f32: 1 value, 4 bytes); block-quantised types add rows here, e.g. GGUF Q8_0 is 32
 * values in 34 bytes (32 int8 + an f16 scale), Q4_K 256 values in 144 bytes.
 * Worked example: 1000 f16 values take ceil(1000 / 1) * 2 = 2000 bytes; 1000 Q8_0 values would take
 * ceil(1000 / 32) * 34 = 1088 bytes.
 */

export interface DtypeInfo {
  /** Values per block (1 for plain types). */
  readonly blockValues: number;
  /** Bytes per block. */
  readonly blockBytes: number;
}

/** Every storage type, by name. New (quantised) types are added here first. */
export const DTYPES = {
  f32: { blockValues: 1, blockBytes: 4 },
  f16: { blockValues: 1, blockBytes: 2 },
  /** Checkpoint tensors only: converted to f32 / f16 on load, never stored on the GPU. */
  bf16: { blockValues: 1, blockBytes: 2 },
  // GGUF blocks (src/reference/quant.ts has the layouts), on the GPU repacked per row into aligned planes
  // (src/kernels/quantLayout.ts) that unpack to the file's blocks byte for byte.
  /** GGUF Q8_0: an f16 scale d + 32 int8, x = q * d. */
  q8: { blockValues: 32, blockBytes: 34 },
  /** GGUF Q4_0: d + 32 nibbles, x = (q - 8) * d. */
  q4: { blockValues: 32, blockBytes: 18 },
  /** GGUF Q5_0: d + 32 5-bit codes (nibbles + a u32 of high bits), x = (q - 16) * d. */
  q5_0: { blockValues: 32, blockBytes: 22 },
  /** GGUF Q4_K: d, dmin, 8 x 6-bit (scale, min), 256 nibbles. */
  q4_K: { blockValues: 256, blockBytes: 144 },
  /** GGUF Q6_K: 256 6-bit codes, 16 int8 scales, d. */
  q6_K: { blockValues: 256, blockBytes: 210 },
} as const satisfies Record<string, DtypeInfo>;

export type Dtype = keyof typeof DTYPES;

/** What a weight can be stored as on the GPU (matmul / matvec / norms / embedding read these). */
export const WEIGHT_DTYPES = ['f32', 'f16'] as const satisfies readonly Dtype[];
export type WeightDtype = (typeof WEIGHT_DTYPES)[number];

/** Block-quantised weight formats: only the matrices of matmul / matvec (and the embedding) read them. */
export const QUANT_DTYPES = ['q8', 'q4', 'q5_0', 'q4_K', 'q6_K'] as const satisfies readonly Dtype[];
export type QuantDtype = (typeof QUANT_DTYPES)[number];

/** What a 2-D weight (a matmul / matvec W) can be stored as: a plain weight type or a block format. */
export type MatrixDtype = WeightDtype | QuantDtype;

export function isQuantDtype(x: unknown): x is QuantDtype {
  return (QUANT_DTYPES as readonly unknown[]).includes(x);
}

/**
 * What a KV page can be stored as. f16: two halves per u32 word, with or without `shader-f16`.
 * q8 / q4 are quantised per token and KV head on write (kvAppendQuant.wgsl), NOT the GGUF weight blocks
 * of DTYPES.q8 / q4 (those have a scale per 32 values in the block itself):
 *   q8  a row of D values = D int8 codes + ONE f16 scale, x = code * scale, scale = f16(max|x| / 127)
 *   q4  a row = D 4-bit codes + one f16 scale per group of 32 values (the last group may be shorter),
 *       x = (nibble - 8) * scale, scale = f16(m / -8) with m the group's value of largest |x| (as Q4_0)
 * The scales of a page follow its codes, so a page stays one contiguous block (kvPagesQ8.wgsl has the
 * exact layout); kvRowBytes / kvPageBytes give the sizes.
 */
export const KV_DTYPES = ['f32', 'f16', 'q8', 'q4'] as const satisfies readonly Dtype[];
export type KvDtype = (typeof KV_DTYPES)[number];
/** The quantised KV dtypes. */
export type KvQuantDtype = 'q8' | 'q4';
/** Values per f16 scale in a q4 KV row. */
export const KV_Q4_GROUP = 32;

export function isKvQuantDtype(x: unknown): x is KvQuantDtype {
  return x === 'q8' || x === 'q4';
}

/** f16 scales per stored KV row of `values` values: 0 for f32 / f16, 1 for q8, ceil(values / 32) for q4. */
export function kvScalesPerRow(dtype: KvDtype, values: number): number {
  return dtype === 'q8' ? 1 : dtype === 'q4' ? Math.ceil(values / KV_Q4_GROUP) : 0;
}

/**
 * Bytes of one stored K or V row (one token, one KV head) of `values` values, scales included:
 * f32 4v, f16 2v, q8 v + 2, q4 v / 2 + 2 * ceil(v / 32). e.g. d 128: 512, 256, 130, 72.
 */
export function kvRowBytes(dtype: KvDtype, values: number): number {
  if (!isKvDtype(dtype)) throw new Error(`dtype: unknown KV dtype ${String(dtype)}`);
  if (dtype === 'f32' || dtype === 'f16') return values * bytesPerValue(dtype);
  return (dtype === 'q8' ? values : values / 2) + 2 * kvScalesPerRow(dtype, values);
}

/**
 * Bytes of one page block of `rows` rows (numKvHeads * pageSize) of `values` values in one K or V
 * buffer: rows * kvRowBytes, the f16 scales padded to a whole u32 word. e.g. q8, 8 heads x 16 tokens,
 * d 128: 128 * 128 + 128 * 2 = 16640 bytes (f16: 32768).
 */
export function kvPageBytes(dtype: KvDtype, rows: number, values: number): number {
  if (dtype === 'f32' || dtype === 'f16') return rows * kvRowBytes(dtype, values);
  const codeBytes = rows * (dtype === 'q8' ? values : values / 2);
  return codeBytes + 4 * Math.ceil((rows * kvScalesPerRow(dtype, values)) / 2);
}

/** What a checkpoint tensor may hold for webattn to read it. */
export const SOURCE_DTYPES = ['f32', 'f16', 'bf16'] as const satisfies readonly Dtype[];
export type SourceDtype = (typeof SOURCE_DTYPES)[number];

export function isWeightDtype(x: unknown): x is WeightDtype {
  return (WEIGHT_DTYPES as readonly unknown[]).includes(x);
}

export function isKvDtype(x: unknown): x is KvDtype {
  return (KV_DTYPES as readonly unknown[]).includes(x);
}

function info(dtype: Dtype): DtypeInfo {
  const i: DtypeInfo | undefined = DTYPES[dtype];
  if (!i) throw new Error(`dtype: unknown storage type ${String(dtype)}`);
  return i;
}

/** Bytes of one value of a plain type: f32 4, f16 2, bf16 2. Block types have no per-value size. */
export function bytesPerValue(dtype: Dtype): number {
  const i = info(dtype);
  if (i.blockValues !== 1) throw new Error(`dtype: ${dtype} is stored in blocks of ${i.blockValues}; use storageBytes`);
  return i.blockBytes;
}

/** Bytes of `count` values stored as `dtype`, whole blocks: e.g. 1000 f16 -> 2000. */
export function storageBytes(dtype: Dtype, count: number): number {
  const i = info(dtype);
  return Math.ceil(count / i.blockValues) * i.blockBytes;
}
