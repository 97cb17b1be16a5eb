/**
 * A GGUF model as the Hugging Face folder it was converted from: ggufModelFiles(files) takes the
 * ModelFiles loadModelFiles returns for a `.gguf` (only `gguf` set) and fills in what a safetensors
 * folder would have given, so Transformer.load, Engine.load, the CLI and the tokenizer read one kind
 * of ModelFiles and there is no second loader:
 *   config            ggufToHfConfig(header, rope_freqs)  (ggufConfig.ts: the config.json the
 *                     converter read; the ModelSpec through parseConfig, as for a folder)
 *   tokenizer, tokenizerConfig   ggufTokenizerFiles(metadata): tokenizer.json / tokenizer_config.json
 *                     objects, chat template from `tokenizer.chat_template`; built when first read
 *                     (the logits path never builds them); null when the file has no tokenizer
 *   tensor(hfName)    the GGUF tensor of that HF name (hfToGgufTensorName) as a one-tensor
 *                     safetensors view, in HF row order (ggufTensorToHf: llama's q/k RoPE row
 *                     permutation undone, gemma's norm + 1 removed) and HF shape ([out, in])
 * so weights.ts reads a GGUF tensor exactly as a safetensors one: an F32 GGUF of an f16 checkpoint
 * loads bit for bit the weights of that checkpoint. The byte copy a permuted tensor needs is made
 * when the loader reads its bytes, one tensor at a time, never kept.
 *
 * Tensor types: F32, F16 and BF16 are read like safetensors tensors. The block types Q8_0, Q4_0,
 * Q5_0, Q4_K, Q5_K and Q6_K are dequantized when read (ggufDequantize.ts: exactly llama.cpp's
 * values) and shown to the loader as F32 tensors, so they go to the GPU at the load's weight dtype.
 * By default (ggufDefaultWeightDtype) that is q8 or q4, whose quantize-on-load gives the file's
 * Q8_0 / Q4_0 blocks back byte for byte; Q5_0 and K-quant tensors are requantized to Q8_0 until the
 * transformer binds the q5_0 / q4_K / q6_K formats per tensor (ggufHfTensor gives those bytes,
 * HF-ordered). f32 keeps llama.cpp's weights exactly, at 4x their bytes. Any other type (IQ*,
 * Q2_K, Q3_K, Q4_1, ...) is refused by tensor(), naming the tensor (GGUF and HF names) and its type.
 */
import type { QuantDtype } from '../gpu/dtype';
import type { ModelFiles } from '../sources/modelSource';
import { readGgufTensorF32, type GgmlType, type GgufFile } from '../sources/gguf';
import type { Dtype as SafetensorsDtype, SafetensorsFile, TensorInfo } from '../sources/safetensors';
import { ggufTokenizerFiles, type GgufTokenizerFiles } from '../tokenizer/ggufTokenizer';
import type { ModelSpec } from './config';
import { ggufArchitecture, ggufModelSpec, ggufToHfConfig, type GgufArchitecture } from './ggufConfig';
import { dequantizeGguf, GGUF_DEQUANT_TYPES, isGgufDequantType } from './ggufDequantize';
import { ggufTensorToHf, ggufToHfTensorName, hfToGgufTensorName, type HfTensorFromGguf } from './ggufTensors';
import { type LoadDtype, WeightError } from './weights';

/** GGUF tensor types that the weight loader reads as it reads safetensors ones. */
const PLAIN_TYPES: Partial<Record<GgmlType, SafetensorsDtype>> = { F32: 'F32', F16: 'F16', BF16: 'BF16' };

/** What a GGUF-backed ModelFiles knows beyond a folder's: the file, its architecture and spec. */
export interface GgufModel {
  file: GgufFile;
  arch: GgufArchitecture;
  /** ggufModelSpec of the file: errors name the GGUF keys. Equal to parseConfig(files.config). */
  spec: ModelSpec;
}

const converted = new WeakMap<ModelFiles, ModelFiles>();
const models = new WeakMap<ModelFiles, GgufModel>();

/** The GGUF model behind files that ggufModelFiles made, or null (a safetensors folder). */
export function ggufModelOf(files: ModelFiles): GgufModel | null {
  return models.get(files) ?? null;
}

/**
 * `files` with config, tokenizer and HF-named tensors filled in from its GGUF file; `files` itself
 * when it is a safetensors folder or already converted. Throws ModelConfigError naming the GGUF key
 * when the metadata does not describe a supported model.
 */
export function ggufModelFiles(files: ModelFiles): ModelFiles {
  const gguf = files.gguf;
  if (!gguf || models.has(files)) return files;
  const done = converted.get(files);
  if (done) return done;

  const arch = ggufArchitecture(gguf);
  const ropeFreqs = gguf.tensors.has('rope_freqs.weight') ? readGgufTensorF32(gguf, 'rope_freqs.weight') : undefined;
  const spec = ggufModelSpec(gguf, { ropeFreqs });
  const config = ggufToHfConfig(gguf, { ropeFreqs });
  const model: GgufModel = { file: gguf, arch, spec };

  let tokenizerFiles: GgufTokenizerFiles | null | undefined;
  const tokenizerOnce = (): GgufTokenizerFiles | null => {
    if (tokenizerFiles === undefined) {
      tokenizerFiles = gguf.metadata.has('tokenizer.ggml.model')
        ? ggufTokenizerFiles(gguf.metadata, gguf.fileName)
        : null;
    }
    return tokenizerFiles;
  };

  const hfNames = new Map<string, string>(); // HF name → GGUF name, in file order
  for (const name of gguf.tensors.keys()) {
    const hf = ggufToHfTensorName(name);
    if (hf !== null) hfNames.set(hf, name);
  }

  const out: ModelFiles = {
    source: files.source,
    config,
    get tokenizer() {
      return tokenizerOnce()?.tokenizerJson ?? null;
    },
    get tokenizerConfig() {
      return tokenizerOnce()?.tokenizerConfig ?? null;
    },
    get chatTemplateFile() {
      return tokenizerOnce()?.tokenizerConfig.chat_template !== undefined ? 'tokenizer.chat_template' : null;
    },
    // The stop ids (eos, eot, eom) are in config.eos_token_id, as ggufToHfConfig writes them.
    generationConfig: null,
    shards: [],
    tensor(name) {
      const ggufName = hfNames.get(name);
      if (ggufName === undefined) return null;
      return plainTensorView(model, name, ggufName);
    },
    tensorNames: () => [...hfNames.keys()],
    gguf,
  };
  converted.set(files, out);
  models.set(out, model);
  return out;
}

/**
 * The weight dtype a GGUF loads at when none is asked for: its blocks stay quantized. q4 when every
 * block matrix is Q4_0 but the embedding / output (Q8_0 in llama-quantize's Q4_0 files), q8 for
 * every other file with block tensors, null (the f16 default) when it has none. Quantize-on-load
 * of the dequantized values gives back the file's Q8_0 and Q4_0 blocks byte for byte (checked on
 * the real files), so those two load as llama.cpp's blocks; Q5_0 and K-quant tensors are
 * requantized to Q8_0 until the transformer binds GGUF formats per tensor.
 */
export function ggufDefaultWeightDtype(files: ModelFiles): LoadDtype | null {
  const model = ggufModelOf(ggufModelFiles(files));
  if (!model) return null;
  let blocks = false;
  let onlyQ4 = true;
  for (const t of model.file.tensors.values()) {
    if (PLAIN_TYPES[t.type] !== undefined || ggufToHfTensorName(t.name) === null) continue;
    blocks = true;
    const head = t.name === 'token_embd.weight' || t.name === 'output.weight';
    if (!(t.type === 'Q4_0' || (head && t.type === 'Q8_0'))) onlyQ4 = false;
  }
  return blocks ? (onlyQ4 ? 'q4' : 'q8') : null;
}

/** GGUF block types that are webattn GPU formats (src/gpu/dtype.ts), stored byte for byte as in the file. */
export const GGUF_GPU_FORMATS: Partial<Record<GgmlType, QuantDtype>> = {
  Q8_0: 'q8',
  Q4_0: 'q4',
  Q5_0: 'q5_0',
  Q4_K: 'q4_K',
  Q6_K: 'q6_K',
};

/**
 * The GGUF tensor of an HF name in HF row order and shape, in the file's own type (block data
 * included), or null when the file has none. For a loader of GGUF block formats: a type of
 * GGUF_GPU_FORMATS can go to the GPU as these bytes (rows stay whole blocks).
 */
export function ggufHfTensor(files: ModelFiles, hfName: string): HfTensorFromGguf | null {
  const model = ggufModelOf(ggufModelFiles(files));
  const ggufName = hfToGgufTensorName(hfName);
  if (!model || ggufName === null || !model.file.tensors.has(ggufName)) return null;
  return ggufTensorToHf(model.file, model.arch, ggufName, model.spec);
}

/**
 * A one-tensor safetensors view of a GGUF tensor; its bytes (HF row order; a block type
 * dequantized to f32) are made when first read.
 */
function plainTensorView(model: GgufModel, hfName: string, ggufName: string) {
  const { file, arch, spec } = model;
  const t = file.tensors.get(ggufName)!;
  const type = t.type;
  const blocks = isGgufDequantType(type);
  const dtype = blocks ? 'F32' : PLAIN_TYPES[type];
  if (dtype === undefined) throw unsupportedType(file, hfName, ggufName, type);
  const info: TensorInfo = {
    name: hfName,
    dtype,
    shape: [...t.shape],
    begin: 0,
    end: blocks ? 4 * t.numel : t.byteLength,
  };
  let bytes: Uint8Array | undefined;
  const read = () => {
    const hf = ggufTensorToHf(file, arch, ggufName, spec).bytes; // rows moved as whole blocks
    if (!blocks) return hf;
    const values = dequantizeGguf(type, hf);
    return new Uint8Array(values.buffer, values.byteOffset, values.byteLength); // little-endian hosts
  };
  const view: SafetensorsFile = {
    fileName: file.fileName,
    metadata: {},
    tensors: new Map([[hfName, info]]),
    dataOffset: 0,
    get bytes() {
      bytes ??= read();
      return bytes;
    },
  };
  return { file: view, info };
}

function unsupportedType(file: GgufFile, hfName: string, ggufName: string, type: GgmlType): WeightError {
  let others = 0;
  for (const t of file.tensors.values()) if (t.type === type && t.name !== ggufName) others++;
  const more = others ? `, as are ${others} more of its tensors` : '';
  const known = ['F32', 'F16', 'BF16', ...Object.keys(GGUF_DEQUANT_TYPES)].join(', ');
  return new WeightError(
    `${file.fileName}: tensor "${ggufName}" (${hfName}) is ${type}${more}; webattn loads GGUF tensors of ` +
      `the types ${known}`,
  );
}
