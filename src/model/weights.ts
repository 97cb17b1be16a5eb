/**
 * Model weights from parsed safetensors shards to GPU buffers, checked against the shapes the
 * config implies. Weights are kept f16 on the GPU by default (two values per u32, read with
 * unpack2x16float, so no `shader-f16` is needed), f32 on request. F32, F16 and BF16 checkpoints
 * are accepted; an F16 tensor going to an f16 buffer is copied bit for bit.
 * Every error names the file and the tensor.
 */
import type { GpuContext } from '../gpu/context';
import { STORAGE, writeBuffer } from '../gpu/buffers';
import type { ModelFiles } from '../sources/modelSource';
import { readTensorF32, type SafetensorsFile } from '../sources/safetensors';
import { f32ArrayToF16 } from '../sources/halfFloat';

export class WeightError extends Error {
  override name = 'WeightError';
}

export type WeightDtype = 'f16' | 'f32';

export interface GpuWeight {
  name: string;
  shape: number[];
  dtype: WeightDtype;
  /** f16: [elements] as u16 pairs in u32 words (an odd count is padded); f32: [elements] f32. */
  buffer: GPUBuffer;
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
  return problems;
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

/**
 * Uploads every expected tensor (after checkWeights passes) into its own GPU buffer.
 * On any failure the buffers made so far are destroyed: nothing half-loaded is left behind.
 */
export async function uploadWeights(
  ctx: GpuContext,
  files: ModelFiles,
  expected: ReadonlyMap<string, readonly number[]>,
  opts: { dtype?: WeightDtype; onProgress?: (p: WeightProgress) => void } = {},
): Promise<Map<string, GpuWeight>> {
  const problems = checkWeights(files, expected);
  if (problems.length) {
    throw new WeightError(problems.length === 1 ? problems[0] : `${problems.length} weight problems:\n  ${problems.join('\n  ')}`);
  }
  const dtype = opts.dtype ?? 'f16';
  const out = new Map<string, GpuWeight>();
  let done = 0;
  try {
    for (const [name, shape] of expected) {
      const { file } = files.tensor(name)!;
      const data = tensorData(file, name, dtype);
      const buffer = await ctx.createBuffer(`weight.${name}`, data.byteLength, STORAGE);
      writeBuffer(ctx, buffer, data);
      out.set(name, { name, shape: [...shape], dtype, buffer });
      opts.onProgress?.({ tensor: name, done: ++done, total: expected.size });
    }
  } catch (e) {
    for (const w of out.values()) w.buffer.destroy();
    throw e;
  }
  return out;
}
