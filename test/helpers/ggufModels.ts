/**
 * Small GGUF model files for tests, written the way llama.cpp's converter lays them out: the
 * metadata keys of ggufConfig.ts, HF tensor names mapped to GGUF ones (ggufTensors.ts), dims in
 * ggml order, and each tensor in the type a test picks (F32, F16, Q8_0, Q4_0, Q5_0 from values;
 * random Q4_K / Q6_K blocks, which the GGUF loader's dequantizer turns into the model's values).
 * The tensors are written as given: no q/k RoPE permutation (the loader un-permutes llama's
 * q/k rows; a test reads the model back through the loader, so both sides see the same rows).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelSpec } from '../../src/model/config';
import { expectedTensors } from '../../src/model/expectedTensors';
import { hfToGgufTensorName, splitKvB } from '../../src/model/ggufTensors';
import { referenceQuantizeQ4_0, referenceQuantizeQ5_0, referenceQuantizeQ8_0 } from '../../src/reference/quant';
import { writeGguf, type GgmlType, type GgufKv, type GgufTensorToWrite } from '../../src/sources/gguf';
import { f32ArrayToF16, f32ToF16Bits } from '../../src/sources/halfFloat';

const u32 = (value: number): GgufKv => ({ type: 'uint32', value });
const f32 = (value: number): GgufKv => ({ type: 'float32', value });
const str = (value: string): GgufKv => ({ type: 'string', value });

/** The metadata convert_hf_to_gguf.py writes for a llama or a dense deepseek2 spec (no tokenizer, no RoPE scaling). */
export function ggufMetadata(arch: 'llama' | 'deepseek2', spec: ModelSpec): [string, GgufKv][] {
  const a = (key: string) => `${arch}.${key}`;
  const m: [string, GgufKv][] = [
    ['general.architecture', str(arch)],
    [a('block_count'), u32(spec.numLayers)],
    [a('context_length'), u32(spec.maxPositionEmbeddings)],
    [a('embedding_length'), u32(spec.hiddenSize)],
    [a('feed_forward_length'), u32(spec.intermediateSize)],
    [a('attention.head_count'), u32(spec.numHeads)],
    [a('attention.head_count_kv'), u32(spec.mla ? 1 : spec.numKvHeads)],
    [a('rope.freq_base'), f32(spec.rope.theta)],
    [a('attention.layer_norm_rms_epsilon'), f32(spec.rmsNormEps)],
    [a('vocab_size'), u32(spec.vocabSize)],
  ];
  const mla = spec.mla;
  if (mla) {
    if (mla.qLoraRank !== null) m.push([a('attention.q_lora_rank'), u32(mla.qLoraRank)]);
    m.push(
      [a('attention.kv_lora_rank'), u32(mla.kvLoraRank)],
      [a('attention.key_length'), u32(mla.kvLoraRank + mla.qkRopeHeadDim)],
      [a('attention.value_length'), u32(mla.kvLoraRank)],
      [a('attention.key_length_mla'), u32(mla.qkNopeHeadDim + mla.qkRopeHeadDim)],
      [a('attention.value_length_mla'), u32(mla.vHeadDim)],
      [a('rope.dimension_count'), u32(mla.qkRopeHeadDim)],
      [a('leading_dense_block_count'), u32(spec.numLayers)],
    );
  } else {
    m.push([a('rope.dimension_count'), u32(spec.headDim)]);
  }
  return m;
}

/** Values in a GGUF type that is written from values: F32, F16 (rounded), Q8_0, Q4_0, Q5_0 (llama.cpp's quantizers). */
export function encodeValues(type: GgmlType, values: Float32Array): Uint8Array {
  const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (type === 'F32') return bytesOf(values);
  if (type === 'F16') return bytesOf(f32ArrayToF16(values));
  if (type === 'Q8_0') return referenceQuantizeQ8_0(values);
  if (type === 'Q4_0') return referenceQuantizeQ4_0(values);
  if (type === 'Q5_0') return referenceQuantizeQ5_0(values);
  throw new RangeError(`encodeValues: ${type} is not written from values here`);
}

/**
 * Random Q4_K / Q6_K blocks of `count` values (a multiple of 256) whose values are about
 * `scale` in size: random codes and sub-block scales, the f16 super-block scales set from `scale`
 * (Q4_K: d·sc·q - dmin·m, sc, m < 64, q < 16; Q6_K: d·sc·(q - 32), |sc| < 128, |q - 32| <= 32).
 */
export function randomKQuantBlocks(type: 'Q4_K' | 'Q6_K', count: number, scale: number): Uint8Array {
  const blockBytes = type === 'Q4_K' ? 144 : 210;
  const bytes = new Uint8Array((count / 256) * blockBytes);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  const putF16 = (o: number, v: number) => {
    const h = f32ToF16Bits(v);
    bytes[o] = h & 0xff;
    bytes[o + 1] = h >> 8;
  };
  for (let o = 0; o < bytes.length; o += blockBytes) {
    if (type === 'Q4_K') {
      putF16(o, ((0.5 + Math.random()) * 2 * scale) / (63 * 15)); // d
      putF16(o + 2, (Math.random() * scale) / 63); // dmin
    } else {
      putF16(o + 208, ((0.5 + Math.random()) * 2 * scale) / (127 * 32)); // d
    }
  }
  return bytes;
}

/** One tensor to write: its HF name, row-major shape, GGUF type and stored bytes (values or blocks). */
export interface TensorToWrite {
  hfName: string;
  shape: number[];
  type: GgmlType;
  data: Uint8Array;
}

/** GGUF bytes of `tensors` under `metadata`; a tensor's GGUF name is hfToGgufTensorName's, or its `ggufName`. */
export function ggufBytes(
  metadata: [string, GgufKv][],
  tensors: (TensorToWrite & { ggufName?: string })[],
): Uint8Array {
  const out: [string, GgufTensorToWrite][] = tensors.map((t) => {
    const name = t.ggufName ?? hfToGgufTensorName(t.hfName);
    if (name === null) throw new RangeError(`ggufBytes: ${t.hfName} has no GGUF name`);
    return [name, { type: t.type, dims: [...t.shape].reverse(), data: t.data }];
  });
  return writeGguf({ metadata, tensors: out });
}

/** Writes GGUF bytes into a new folder; returns the file's path (what loadModelFiles(folderSource(path)) reads). */
export function writeGgufFile(bytes: Uint8Array, name = 'model.gguf'): string {
  const path = join(mkdtempSync(join(tmpdir(), 'webattn-gguf-')), name);
  writeFileSync(path, bytes);
  return path;
}

/**
 * A dense deepseek2 GGUF of `weights` (HF names), every tensor F32; kv_b_proj as attn_kv_b (split
 * null) or as the attn_k_b + attn_v_b pair of newer converters in type `split`
 * (DeepseekV2Model.modify_tensors: k_b [H, C, N], v_b [H, V, C]; 'untransposed' writes k_b as
 * [H, N, C], a wrong layout of the same size). Returns the file's path.
 */
export function writeDeepseek2Gguf(
  spec: ModelSpec,
  weights: Map<string, Float32Array>,
  split: 'F32' | 'F16' | null,
  kbShape: 'converter' | 'untransposed' = 'converter',
): string {
  const mla = spec.mla!;
  const d = { heads: spec.numHeads, kvLoraRank: mla.kvLoraRank, nope: mla.qkNopeHeadDim, v: mla.vHeadDim };
  const tensors: (TensorToWrite & { ggufName?: string })[] = [];
  for (const [hfName, shape] of expectedTensors(spec)) {
    const values = weights.get(hfName)!;
    const m = /^model\.layers\.(\d+)\.self_attn\.kv_b_proj\.weight$/.exec(hfName);
    if (!m || !split) {
      tensors.push({ hfName, shape, type: 'F32', data: encodeValues('F32', values) });
      continue;
    }
    const { kb, vb } = splitKvB(values, d);
    const kbDims = kbShape === 'converter' ? [d.heads, d.kvLoraRank, d.nope] : [d.heads, d.nope, d.kvLoraRank];
    const at = (t: string) => `blk.${m[1]}.${t}.weight`;
    tensors.push({ hfName, ggufName: at('attn_k_b'), shape: kbDims, type: split, data: encodeValues(split, kb) });
    const vbDims = [d.heads, d.v, d.kvLoraRank];
    tensors.push({ hfName, ggufName: at('attn_v_b'), shape: vbDims, type: split, data: encodeValues(split, vb) });
  }
  return writeGgufFile(ggufBytes(ggufMetadata('deepseek2', spec), tensors));
}
