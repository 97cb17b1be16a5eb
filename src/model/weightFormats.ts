/**
 * What a model's weights cost on the GPU in each format it can load at, before anything is
 * downloaded: from the ModelSpec alone (config.json, or a GGUF header's metadata), for
 * `webattn info`, the demo's "Precision and memory" menu and its KV-bill calculator.
 *
 *   weightBytesByFormat(spec)   every load format (f32, f16, q8, q4): total GPU bytes of the tensors
 *                               the forward binds (runtimeTensors: phi3's fused projections split,
 *                               as Transformer.load uploads them), each at storedDtype (weights.ts:
 *                               norms f16, the embedding q8 under q4...), and the largest tensor
 *   ggufStoredWeights(header)   a GGUF file's tensors as the file stores them (its own block types,
 *                               already quantized): their bytes, the largest, the count per type
 *
 * Worked example (kjv-gqa: 4 layers, hidden 128, 4 heads of 32, 2 KV heads, intermediate 352,
 * vocab 2048, tied): 1,016,960 parameters; f32 3.88 MiB, f16 1.94 MiB, q8 1.08 MiB, q4 0.72 MiB
 * (rows repacked into 16-byte planes); the largest tensor is the embedding [2048, 128]: 512 KiB in
 * f16, 288 KiB in q8 (144 bytes a row: 128 codes, 4 scales padded to 16; under q4 too: storedDtype
 * keeps the embedding q8).
 */
import type { GgufHeader } from '../sources/gguf';
import type { ModelSpec } from './config';
import { runtimeTensors } from './expectedTensors';
import { type LoadDtype, weightBytesAt } from './weights';

/** Every format a model loads at (TransformerOptions.weightDtype, --weight-dtype), widest first. */
export const LOAD_DTYPES = ['f32', 'f16', 'q8', 'q4'] as const satisfies readonly LoadDtype[];

export interface TensorBytes {
  name: string;
  bytes: number;
}

export interface FormatBytes {
  dtype: LoadDtype;
  /** GPU bytes of every weight at this format (weightBytesAt). */
  bytes: number;
  /** The largest single weight buffer at this format (the one a binding limit meets first). */
  largest: TensorBytes;
}

/** Parameters: the sum of every checkpoint tensor's elements (as `webattn info` counts them). */
export function parameterCount(spec: ModelSpec): number {
  let n = 0;
  for (const shape of runtimeTensors(spec).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}

/** GPU bytes of the spec's weights at each of `formats` (default LOAD_DTYPES), with the largest tensor. */
export function weightBytesByFormat(spec: ModelSpec, formats: readonly LoadDtype[] = LOAD_DTYPES): FormatBytes[] {
  const tensors = runtimeTensors(spec);
  return formats.map((dtype) => {
    let largest: TensorBytes = { name: '', bytes: 0 };
    for (const [name, shape] of tensors) {
      const bytes = weightBytesAt(new Map([[name, shape]]), dtype); // one tensor: its buffer
      if (bytes > largest.bytes) largest = { name, bytes };
    }
    return { dtype, bytes: weightBytesAt(tensors, dtype), largest };
  });
}

export interface GgufStoredWeights {
  /** Bytes of every tensor in the file, as stored (block data included). */
  bytes: number;
  /** The largest tensor, by its GGUF name ('token_embd.weight'). */
  largest: TensorBytes;
  /** Tensors per GGUF type, most first: e.g. kjv-gqa-Q4_0.gguf { Q4_0: 28, F32: 9, Q8_0: 1 }. */
  types: Record<string, number>;
}

/** A GGUF file's weights as it stores them: what its header says, no tensor data read. */
export function ggufStoredWeights(header: GgufHeader): GgufStoredWeights {
  let bytes = 0;
  let largest: TensorBytes = { name: '', bytes: 0 };
  const counts = new Map<string, number>();
  for (const t of header.tensors.values()) {
    bytes += t.byteLength;
    if (t.byteLength > largest.bytes) largest = { name: t.name, bytes: t.byteLength };
    counts.set(t.type, (counts.get(t.type) ?? 0) + 1);
  }
  const types = Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  return { bytes, largest, types };
}

/** "Q4_0 28, F32 9, Q8_0 1" */
export function formatTypeCounts(types: Record<string, number>): string {
  return Object.entries(types)
    .map(([t, n]) => `${t} ${n}`)
    .join(', ');
}
