/**
 * Model weights from parsed safetensors shards to GPU buffers, checked against the shapes the
 * config implies. Weights are kept f16 on the GPU by default (two values per u32, read with
 * unpack2x16float, so no `shader-f16` is needed), f32 on request. F32, F16 and BF16 checkpoints
 * are accepted; an F16 tensor going to an f16 buffer is copied bit for bit.
 *
 * Quantize on load (`dtype: 'q8' | 'q4'`): each matmul weight is quantized to GGUF Q8_0 / Q4_0
 * blocks while it streams to the GPU, a chunk of rows at a time (about 1 Mi values of f32 scratch,
 * never a whole f32 tensor, let alone the model). What stays at higher precision (storedDtype):
 *   - 1-D tensors (norms, biases): f16; they are tiny and the norm kernels read f16 / f32 only;
 *   - the token embedding, and an untied lm_head: q8 under q8 and under q4. Measured on kjv-gqa
 *     (float64 reference forward, 200 held-out lines, 7559 tokens): f16 ppl 46.112; q8 everywhere
 *     46.116 (embedding f16: 46.120); q4 with the embedding at q8 46.564 (f16: 46.567, q4: 46.943).
 *     A q4 embedding costs +0.8% perplexity and a q8 one nothing measurable, while the
 *     embedding is most of a small model's bytes (Qwen2.5-0.5B: 260 MiB of its 942 MiB at f16).
 *     llama.cpp's Q4_0 files keep token_embd at Q8_0 the same way;
 *   - MLA's kv_b_proj: f16 (read per head by headMatmul, which takes f16 / f32);
 *   - a matrix whose row length is not a multiple of 32: f16 (llama.cpp falls back the same way).
 *
 * No weight is refused for its size: a matrix whose buffer would pass one storage binding
 * (maxStorageBufferBindingSize, 128 MiB on lavapipe and many phones) or one buffer (maxBufferSize)
 * is uploaded as row shards (src/kernels/rowShards.ts), which the GEMM, the GEMV and the embedding
 * gather run over; e.g. Qwen2.5-0.5B's tied embedding [151936, 896] f16 (260 MiB) is 3 shards
 * there. Only a model that does not fit the device's memory is refused, with an OutOfMemoryError
 * naming the tensor, the bytes it asked for, the model's weight bytes and what was allocated.
 * Every error names the file and the tensor.
 */
import type { GpuContext } from '../gpu/context';
import { STORAGE, writeBuffer } from '../gpu/buffers';
import { OutOfMemoryError } from '../gpu/errors';
import type { ModelFiles } from '../sources/modelSource';
import { readTensorF32, type SafetensorsFile, type TensorInfo } from '../sources/safetensors';
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToF16 } from '../sources/halfFloat';
import { DTYPES, isQuantDtype, type MatrixDtype, type WeightDtype } from '../gpu/dtype';
import { matrixBufferBytes } from '../kernels/matmulQuant';
import { packedRowBytes, packQuantRows } from '../kernels/quantLayout';
import {
  createShardRange,
  maxShardBytes,
  planRowShards,
  type MatrixBuffers,
  type RowShard,
} from '../kernels/rowShards';
import { quantizeBlocks, QUANT_BLOCK_BYTES, type OnLoadQuant } from './quantize';
import { checkUnexpectedTensors } from './checkpointTensors';

export class WeightError extends Error {
  override name = 'WeightError';
}

export type { WeightDtype } from '../gpu/dtype';

/** What uploadWeights is asked for: a plain GPU dtype for every tensor, or quantized matrices. */
export type LoadDtype = WeightDtype | OnLoadQuant;

export interface GpuWeight {
  name: string;
  shape: number[];
  dtype: MatrixDtype;
  /**
   * f16: [elements] as u16 pairs in u32 words (an odd count is padded); f32: [elements] f32;
   * q8 / q4 / GGUF blocks: [rows][cols] in packed rows (src/kernels/quantLayout.ts: each row's
   * blocks repacked into 16-byte-aligned planes, every byte kept; quantBufferBytes).
   * A matrix split by rows (`shards`): its first shard's buffer; bind weightMatrix(w) instead.
   */
  buffer: GPUBuffer;
  /**
   * A matrix past one binding or one buffer: its row shards (two or more, in row order, each laid
   * out as `buffer` above for its rows, with its range uniform); undefined for a tensor in one buffer.
   */
  shards?: RowShard[];
}

/** What the GEMM, the GEMV and the embedding gather bind for a weight: its buffer or its row shards. */
export function weightMatrix(w: GpuWeight): MatrixBuffers {
  return w.shards ?? w.buffer;
}

/** Every GPU buffer a weight holds (its shards and their range uniforms), for destroying it. */
export function weightBuffers(w: GpuWeight): GPUBuffer[] {
  return w.shards ? w.shards.flatMap((s) => [s.buffer, s.range]) : [w.buffer];
}

/** Weights the GEMM / GEMV read (projections, MLP, the untied LM head): the ones quantized on load. */
const MATMUL_WEIGHT =
  /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj|q_a_proj|q_b_proj|kv_a_proj_with_mqa)\.weight$/;

/**
 * The dtype one tensor is stored as when the model loads at `load` (see the header for why).
 * e.g. q4: 'model.layers.0.mlp.up_proj.weight' [384, 128] -> q4, 'lm_head.weight' and
 * 'model.embed_tokens.weight' -> q8, 'model.norm.weight' -> f16; stories260K's down_proj
 * [64, 172] -> f16 (rows of 172 are not whole blocks), its up_proj [172, 64] -> q4.
 */
export function storedDtype(name: string, shape: readonly number[], load: LoadDtype): MatrixDtype {
  if (load === 'f32' || load === 'f16') return load;
  const matrix = shape.length === 2 && shape[1] % 32 === 0;
  if (matrix && (name === 'lm_head.weight' || name === 'model.embed_tokens.weight')) return 'q8';
  if (matrix && MATMUL_WEIGHT.test(name)) return load;
  return 'f16';
}

/**
 * A tensor already in a GPU format (a GGUF file's own blocks, rows in HF order): uploaded byte for
 * byte (blocks in packed rows: the same bytes, moved into planes; quantLayout.ts).
 */
export interface NativeTensor {
  dtype: MatrixDtype;
  /** f32 / f16 values, or GGUF blocks of [rows][cols] row after row (no pad word). */
  bytes: Uint8Array;
}

export interface WeightProgress {
  tensor: string;
  done: number;
  total: number;
}

/** Checks that every expected tensor exists with the expected shape; returns the problems, all of them. */
export function checkWeights(files: ModelFiles, expected: ReadonlyMap<string, readonly number[]>): string[] {
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    const t = files.tensor(name);
    if (!t) {
      problems.push(`${files.source}: tensor "${name}" is missing (expected shape [${shape}])`);
      continue;
    }
    const got = t.info.shape;
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      problems.push(`${t.file.fileName}: tensor "${name}" has shape [${got}], the config implies [${shape}]`);
    }
    if (!['F32', 'F16', 'BF16'].includes(t.info.dtype)) {
      problems.push(`${t.file.fileName}: tensor "${name}" has dtype ${t.info.dtype}; webattn reads F32, F16 and BF16`);
    }
  }
  problems.push(...checkUnexpectedTensors(files, expected)); // layers past the config refused, the rest warned
  return problems;
}

/**
 * GPU bytes of the expected tensors when the model loads at `load` (storedDtype decides each
 * tensor's dtype), for `webattn info`, the demo's memory check and the README's size table.
 * e.g. Llama-3.2-1B (tied, 16 layers, hidden 2048): f16 2357 MiB, q8 1252 MiB, q4 788 MiB.
 */
export function weightBytesAt(expected: ReadonlyMap<string, readonly number[]>, load: LoadDtype): number {
  let bytes = 0;
  for (const [name, shape] of expected) {
    const dtype = storedDtype(name, shape, load);
    bytes += shape.length === 2 ? matrixBufferBytes(dtype, shape[0], shape[1]) : matrixBufferBytes(dtype, 1, shape[0]);
  }
  return bytes;
}

/** Host data for one tensor in the GPU dtype: f16 bit patterns or f32 values. */
export function tensorData(file: SafetensorsFile, name: string, dtype: WeightDtype): Uint16Array | Float32Array {
  const info = file.tensors.get(name)!;
  if (dtype === 'f16' && info.dtype === 'F16') {
    const n = (info.end - info.begin) / 2;
    const bits = new Uint16Array(n);
    new Uint8Array(bits.buffer).set(file.bytes.subarray(info.begin, info.end));
    return bits;
  }
  const f32 = readTensorF32(file, name);
  return dtype === 'f32' ? f32 : f32ArrayToF16(f32);
}

/** tensorData of `name` times `scale` (rounded to f16 after scaling). */
function scaledData(
  file: SafetensorsFile,
  name: string,
  dtype: WeightDtype,
  scale: number,
): Uint16Array | Float32Array {
  const f32 = readTensorF32(file, name).map((x) => x * scale);
  return dtype === 'f32' ? f32 : f32ArrayToF16(f32);
}

/** Rows [first, first + count) of a 2-D F32 / F16 / BF16 tensor with `cols` columns, as f32 (little-endian files). */
function rowsF32(file: SafetensorsFile, info: TensorInfo, first: number, count: number, cols: number): Float32Array {
  const elem = info.dtype === 'F32' ? 4 : 2;
  const begin = info.begin + first * cols * elem;
  const raw = file.bytes.slice(begin, begin + count * cols * elem); // a copy: aligned for the typed view
  if (info.dtype === 'F32') return new Float32Array(raw.buffer);
  const bits = new Uint16Array(raw.buffer);
  return info.dtype === 'F16' ? f16ArrayToF32(bits) : bf16ArrayToF32(bits);
}

/** Values converted per chunk when quantizing on load (f32 scratch: 4 MiB). */
const QUANT_CHUNK_VALUES = 1 << 20;

/** Bytes of one row of `cols` values in `dtype`'s GPU buffer: e.g. q8, 96 -> 112 (packed rows); f16, 5 -> 10. */
function rowBytes(dtype: MatrixDtype, cols: number): number {
  return isQuantDtype(dtype) ? packedRowBytes(dtype, cols) : cols * DTYPES[dtype].blockBytes;
}

/**
 * Creates the model's weight buffers and keeps the count: every buffer it made (destroyed all
 * together when a load fails) and their bytes, for the error when the device runs out of memory.
 */
class WeightAllocator {
  readonly created: GPUBuffer[] = [];
  allocated = 0;

  constructor(
    private readonly ctx: GpuContext,
    /** The model's weight bytes (estimated past the failed tensor where GGUF tensors keep their own format). */
    private readonly totalBytes: () => number,
  ) {}

  /**
   * The buffers of one tensor of `dtype` and `shape` (a 1-D tensor is one row): one, or row shards
   * within one binding and one buffer each with their range uniforms.
   */
  async tensor(where: string, name: string, dtype: MatrixDtype, shape: readonly number[]): Promise<GpuWeight> {
    const [rows, cols] = shape.length === 2 ? shape : [1, shape[0]];
    const plan = planRowShards(
      rows,
      (r) => matrixBufferBytes(dtype, r, cols),
      maxShardBytes(this.ctx.limits),
      `${where}: tensor "${name}" [${shape}] ${dtype}`,
    );
    const shards: RowShard[] = [];
    for (const p of plan) {
      const label = plan.length > 1 ? `weight.${name}.rows${p.firstRow}` : `weight.${name}`;
      const bytes = matrixBufferBytes(dtype, p.rows, cols);
      let buffer: GPUBuffer;
      try {
        buffer = await this.ctx.createBuffer(label, bytes, STORAGE);
      } catch (e) {
        if (!(e instanceof OutOfMemoryError)) throw e;
        const part = plan.length > 1 ? ` (rows ${p.firstRow}..${p.firstRow + p.rows - 1} of ${rows})` : '';
        throw new OutOfMemoryError(
          `${where}: tensor "${name}" [${shape}] ${dtype}${part}: ${bytes} bytes could not be allocated ` +
            `(${e.message}); the model's weights take ${this.totalBytes()} bytes, ${this.allocated} ` +
            "were allocated before it: the model does not fit this device's memory" +
            (dtype === 'q4' ? '' : ' (a smaller weight dtype, e.g. q4, takes less)'),
        );
      }
      this.created.push(buffer);
      this.allocated += buffer.size;
      if (plan.length === 1) return { name, shape: [...shape], dtype, buffer };
      const range = await createShardRange(this.ctx, `${label}.range`, p.firstRow, p.rows);
      this.created.push(range);
      shards.push({ buffer, firstRow: p.firstRow, rows: p.rows, range });
    }
    return { name, shape: [...shape], dtype, buffer: shards[0].buffer, shards };
  }
}

/**
 * Writes `count` whole rows from row `firstRow` on (`bytes`, `rowLength` bytes each) into the
 * weight's buffer or row shards, split where the rows cross a shard. Offsets stay 4-aligned where
 * every write starts on an even row of a shard (shards start at multiples of 64 rows) or at 0.
 */
function writeRows(
  ctx: GpuContext,
  w: GpuWeight,
  firstRow: number,
  count: number,
  bytes: Uint8Array,
  rowLength: number,
): void {
  const shards = w.shards ?? [{ buffer: w.buffer, firstRow: 0, rows: Infinity }];
  for (const s of shards) {
    const from = Math.max(firstRow, s.firstRow);
    const to = Math.min(firstRow + count, s.firstRow + s.rows);
    if (from >= to) continue;
    const piece = bytes.subarray((from - firstRow) * rowLength, (to - firstRow) * rowLength);
    writeBuffer(ctx, s.buffer, piece, (from - s.firstRow) * rowLength);
  }
}

/** The bytes of a typed array (a view, no copy). */
function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Quantizes W [rows, cols] into GGUF blocks a chunk of rows at a time and writes them, repacked
 * into packed rows (quantLayout.ts; each a multiple of 16 bytes), into the weight's buffers.
 */
function uploadQuantized(ctx: GpuContext, w: GpuWeight, file: SafetensorsFile, dtype: OnLoadQuant, scale = 1): void {
  const info = file.tensors.get(w.name)!;
  const [rows, cols] = w.shape;
  const chunkRows = Math.max(1, Math.floor(QUANT_CHUNK_VALUES / cols));
  const blocks = new Uint8Array(chunkRows * (cols / 32) * QUANT_BLOCK_BYTES[dtype]);
  const packed = new Uint8Array(chunkRows * packedRowBytes(dtype, cols));
  for (let r = 0; r < rows; r += chunkRows) {
    const n = Math.min(chunkRows, rows - r);
    const rowsOf = rowsF32(file, info, r, n, cols);
    if (scale !== 1) for (let i = 0; i < rowsOf.length; i++) rowsOf[i] *= scale;
    quantizeBlocks(dtype, rowsOf, blocks);
    writeRows(ctx, w, r, n, packQuantRows(dtype, blocks, n, cols, packed), packedRowBytes(dtype, cols));
  }
}

/**
 * Uploads every expected tensor (after checkWeights passes) into its own GPU buffer (row shards
 * past one binding), in the dtype storedDtype picks for `opts.dtype` (default f16).
 * On any failure the buffers made so far are destroyed: nothing half-loaded is left behind. Running
 * out of device memory throws an OutOfMemoryError with the numbers (see the header).
 */
export async function uploadWeights(
  ctx: GpuContext,
  files: ModelFiles,
  expected: ReadonlyMap<string, readonly number[]>,
  opts: {
    dtype?: LoadDtype;
    onProgress?: (p: WeightProgress) => void;
    /** Multipliers folded into tensors as they load (MiniCPM3's muP residual and logit scales). */
    scales?: ReadonlyMap<string, number>;
    /** Tensors that arrive in a GPU format (a GGUF's blocks): stored as they are, not at `dtype`; null: converted. */
    native?: (name: string, shape: readonly number[]) => NativeTensor | null;
  } = {},
): Promise<Map<string, GpuWeight>> {
  const problems = checkWeights(files, expected);
  if (problems.length) {
    throw new WeightError(
      problems.length === 1 ? problems[0] : `${problems.length} weight problems:\n  ${problems.join('\n  ')}`,
    );
  }
  const dtype = opts.dtype ?? 'f16';
  const out = new Map<string, GpuWeight>();
  // The model's bytes for the out-of-memory message: the tensors uploaded, the one that failed, and
  // storedDtype's for the rest (a GGUF's native tensors past the failed one are estimated so).
  const storedOf = new Map<string, MatrixDtype>();
  const totalBytes = () => {
    let bytes = 0;
    for (const [name, shape] of expected) {
      const [rows, cols] = shape.length === 2 ? shape : [1, shape[0]];
      bytes += matrixBufferBytes(storedOf.get(name) ?? storedDtype(name, shape, dtype), rows, cols);
    }
    return bytes;
  };
  const alloc = new WeightAllocator(ctx, totalBytes);
  let done = 0;
  try {
    for (const [name, shape] of expected) {
      const { file } = files.tensor(name)!;
      const native = opts.native?.(name, shape) ?? null;
      const stored = native?.dtype ?? storedDtype(name, shape, dtype);
      storedOf.set(name, stored);
      if (!native && !['q8', 'q4', 'f32', 'f16'].includes(stored)) {
        throw new WeightError(`${file.fileName}: tensor "${name}": no loader for ${stored}`);
      }
      const w = await alloc.tensor(file.fileName, name, stored, shape);
      const rows = shape.length === 2 ? shape[0] : 1;
      const cols = shape[shape.length - 1];
      if (native) {
        const bytes = isQuantDtype(stored) ? packQuantRows(stored, native.bytes, rows, cols) : native.bytes;
        writeRows(ctx, w, 0, rows, bytes, rowBytes(stored, cols));
      } else if (stored === 'q8' || stored === 'q4') {
        uploadQuantized(ctx, w, file, stored, opts.scales?.get(name));
      } else {
        const plain = stored as WeightDtype;
        const scale = opts.scales?.get(name) ?? 1;
        const data = scale === 1 ? tensorData(file, name, plain) : scaledData(file, name, plain, scale);
        writeRows(ctx, w, 0, rows, bytesOf(data), rowBytes(plain, cols));
      }
      out.set(name, w);
      opts.onProgress?.({ tensor: name, done: ++done, total: expected.size });
    }
  } catch (e) {
    for (const b of alloc.created) b.destroy();
    throw e;
  }
  return out;
}
