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
 * Every error names the file and the tensor.
 */
import type { GpuContext } from '../gpu/context';
import { STORAGE, writeBuffer } from '../gpu/buffers';
import type { ModelFiles } from '../sources/modelSource';
import { readTensorF32, type SafetensorsFile, type TensorInfo } from '../sources/safetensors';
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToF16 } from '../sources/halfFloat';
import type { MatrixDtype, WeightDtype } from '../gpu/dtype';
import { matrixBufferBytes, quantBufferBytes } from '../kernels/matmulQuant';
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
   * q8 / q4: GGUF blocks of [rows][cols], row after row, plus a pad word (quantBufferBytes).
   */
  buffer: GPUBuffer;
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

/**
 * Quantizes W [rows, cols] into a new GPU buffer of GGUF blocks, an even number of rows at a time
 * (so every chunk but the last is a whole number of u32 words: q8 rows of 32-blocks are 34 bytes
 * per block, 2 rows always a multiple of 4).
 */
async function uploadQuantized(
  ctx: GpuContext,
  file: SafetensorsFile,
  name: string,
  dtype: OnLoadQuant,
  shape: readonly number[],
  scale = 1,
): Promise<GPUBuffer> {
  const info = file.tensors.get(name)!;
  const [rows, cols] = shape;
  const rowBytes = (cols / 32) * QUANT_BLOCK_BYTES[dtype];
  const buffer = await ctx.createBuffer(`weight.${name}`, quantBufferBytes(dtype, rows, cols), STORAGE);
  const chunkRows = Math.max(2, 2 * Math.floor(QUANT_CHUNK_VALUES / cols / 2));
  const out = new Uint8Array(Math.ceil((chunkRows * rowBytes) / 4) * 4);
  for (let r = 0; r < rows; r += chunkRows) {
    const n = Math.min(chunkRows, rows - r);
    const rowsOf = rowsF32(file, info, r, n, cols);
    if (scale !== 1) for (let i = 0; i < rowsOf.length; i++) rowsOf[i] *= scale;
    const end = quantizeBlocks(dtype, rowsOf, out);
    writeBuffer(ctx, buffer, out.subarray(0, end), r * rowBytes);
  }
  return buffer;
}

/**
 * Uploads every expected tensor (after checkWeights passes) into its own GPU buffer, in the dtype
 * storedDtype picks for `opts.dtype` (default f16).
 * On any failure the buffers made so far are destroyed: nothing half-loaded is left behind.
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
  let done = 0;
  try {
    for (const [name, shape] of expected) {
      const { file } = files.tensor(name)!;
      const stored = storedDtype(name, shape, dtype);
      let buffer: GPUBuffer;
      if (stored === 'q8' || stored === 'q4') {
        buffer = await uploadQuantized(ctx, file, name, stored, shape, opts.scales?.get(name));
      } else if (stored === 'f32' || stored === 'f16') {
        const scale = opts.scales?.get(name) ?? 1;
        const data = scale === 1 ? tensorData(file, name, stored) : scaledData(file, name, stored, scale);
        buffer = await ctx.createBuffer(`weight.${name}`, data.byteLength, STORAGE);
        writeBuffer(ctx, buffer, data);
      } else {
        throw new WeightError(`${file.fileName}: tensor "${name}": no loader for ${stored}`);
      }
      out.set(name, { name, shape: [...shape], dtype: stored, buffer });
      opts.onProgress?.({ tensor: name, done: ++done, total: expected.size });
    }
  } catch (e) {
    for (const w of out.values()) w.buffer.destroy();
    throw e;
  }
  return out;
}
