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
 *                     permutation undone, gemma's norm + 1 removed) and HF shape ([out, in]);
 *                     DeepSeek2's kv_b_proj also from the attn_k_b + attn_v_b pair newer
 *                     converters split it into (mergedKvBView: dequantized, merged, F32)
 * so weights.ts reads a GGUF tensor exactly as a safetensors one: an F32 GGUF of an f16 checkpoint
 * loads bit for bit the weights of that checkpoint. The byte copy a permuted tensor needs is made
 * when the loader reads its bytes, one tensor at a time, never kept.
 *
 * Tensor types: F32, F16 and BF16 are read like safetensors tensors. The block types Q8_0, Q4_0,
 * Q5_0, Q4_K, Q5_K and Q6_K are dequantized when read (ggufDequantize.ts: exactly llama.cpp's
 * values) and shown to the loader as F32 tensors, so an explicit weight dtype (f32 / f16 / q8 / q4)
 * converts every tensor to it. With none (Transformer.load without weightDtype), each matrix the
 * GEMM / GEMV / embedding gather read keeps its own format: the block types the GPU runs (Q8_0,
 * Q4_0, Q5_0, Q4_K, Q6_K: GGUF_GPU_FORMATS) upload their blocks unchanged (repacked per row into
 * planes, src/kernels/quantLayout.ts), F16 matrices as f16
 * (ggufNativeTensors); the rest (1-D norms and biases, Q5_K, BF16, F32 matrices, MLA's kv_b_proj,
 * which headMatmul reads as f16) go at ggufDefaultWeightDtype. A Q4_K_M file so runs its Q4_K,
 * Q6_K, Q5_0 and Q8_0 tensors natively, one kernel per (role, format) (modelKernels.ts).
 * Any other type (IQ*, Q2_K, Q3_K, Q4_1, ...) is refused by tensor(), naming the tensor (GGUF and
 * HF names) and its type.
 */
import type { MatrixDtype, QuantDtype } from '../gpu/dtype';
import type { ModelFiles } from '../sources/modelSource';
import { readGgufTensorF32, type GgmlType, type GgufFile } from '../sources/gguf';
import type { Dtype as SafetensorsDtype, SafetensorsFile, TensorInfo } from '../sources/safetensors';
import { ggufTokenizerFiles, type GgufTokenizerFiles } from '../tokenizer/ggufTokenizer';
import type { ModelSpec } from './config';
import { ggufArchitecture, ggufModelSpec, ggufToHfConfig, type GgufArchitecture } from './ggufConfig';
import { dequantizeGguf, GGUF_DEQUANT_TYPES, isGgufDequantType } from './ggufDequantize';
import { ggufTensorToHf, ggufToHfTensorName, hfToGgufTensorName, mergeKvB, type HfTensorFromGguf } from './ggufTensors';
import { type LoadDtype, type NativeTensor, WeightError } from './weights';

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
  const splitKvB = splitKvBLayers(gguf, hfNames); // HF kv_b_proj name → its attn_k_b / attn_v_b

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
      const split = splitKvB.get(name);
      if (split) return mergedKvBView(model, name, split.kb, split.vb);
      const ggufName = hfNames.get(name);
      if (ggufName === undefined) return null;
      return plainTensorView(model, name, ggufName);
    },
    tensorNames: () => [...hfNames.keys(), ...splitKvB.keys()],
    gguf,
  };
  converted.set(files, out);
  models.set(out, model);
  return out;
}

/**
 * The weight dtype a GGUF loads at when none is asked for: q4 when every block matrix is Q4_0 but
 * the embedding / output (Q8_0 in llama-quantize's Q4_0 files), q8 for every other file with block
 * tensors, null (the f16 default) when it has none. Its matrices in GPU formats keep their own
 * (ggufNativeTensors); this dtype is the one of the norms and biases (f16 under q8 / q4) and of
 * what has no GPU format (a Q5_K or BF16 matrix: quantized to it on load).
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

/**
 * The tensors of a GGUF `files` that go to the GPU as they are in the file when it loads at `load`
 * (its ggufDefaultWeightDtype), for uploadWeights' `native`; undefined for a safetensors folder.
 * A tensor is native when the kernels read it as a matrix (projections, the embedding, the LM head;
 * not MLA's kv_b_proj, which headMatmul reads at the vector dtype) and its type is a GPU format:
 * a block type of GGUF_GPU_FORMATS, or F16 / F32 where that is vectorDtype(load) (a plain matrix's
 * bias is read in the matrix's dtype, so the two must agree). e.g. stories260K-Q4_K_M at q8:
 * attn_q Q5_0 -> q5_0, blk.2.attn_v Q8_0 -> q8, ffn_down F16 -> f16, attn_norm F32 -> null (f16).
 */
export function ggufNativeTensors(
  files: ModelFiles,
  load: LoadDtype,
): ((name: string, shape: readonly number[]) => NativeTensor | null) | undefined {
  const model = ggufModelOf(ggufModelFiles(files));
  if (!model) return undefined;
  const plain = load === 'f32' ? 'f32' : 'f16'; // modelKernels' vectorDtype (the norms' and biases' dtype)
  return (name, shape) => {
    const ggufName = hfToGgufTensorName(name);
    const t = ggufName === null ? undefined : model.file.tensors.get(ggufName);
    if (!t || shape.length !== 2 || !NATIVE_MATRIX.test(name)) return null;
    const dtype: MatrixDtype | undefined =
      GGUF_GPU_FORMATS[t.type] ?? (t.type === 'F16' ? 'f16' : t.type === 'F32' ? 'f32' : undefined);
    if (dtype === undefined || ((dtype === 'f16' || dtype === 'f32') && dtype !== plain)) return null;
    return { dtype, bytes: ggufTensorToHf(model.file, model.arch, t.name, model.spec).bytes };
  };
}

/** The matrices the GEMM / GEMV and the embedding gather read (weights.ts quantizes the same ones on load). */
const NATIVE_MATRIX = new RegExp(
  '^(model\\.embed_tokens|lm_head|.*\\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj|' +
    'q_a_proj|q_b_proj|kv_a_proj_with_mqa))\\.weight$',
);

/** GGUF block types that are webattn GPU formats (src/gpu/dtype.ts): blocks upload unchanged (repacked into planes). */
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
 * DeepSeek2 files from newer converters hold each layer's kv_b_proj as attn_k_b + attn_v_b
 * (ggufTensors.ts mergeKvB has the layouts). For every layer with both and no attn_kv_b, the HF
 * name kv_b_proj stands in for the two (which leave `hfNames`); the map gives their GGUF names.
 */
function splitKvBLayers(gguf: GgufFile, hfNames: Map<string, string>): Map<string, { kb: string; vb: string }> {
  const out = new Map<string, { kb: string; vb: string }>();
  for (const name of gguf.tensors.keys()) {
    const m = /^blk\.(\d+)\.attn_k_b\.weight$/.exec(name);
    if (!m) continue;
    const vb = `blk.${m[1]}.attn_v_b.weight`;
    if (!gguf.tensors.has(vb) || gguf.tensors.has(`blk.${m[1]}.attn_kv_b.weight`)) continue;
    hfNames.delete(ggufToHfTensorName(name)!);
    hfNames.delete(ggufToHfTensorName(vb)!);
    out.set(`model.layers.${m[1]}.self_attn.kv_b_proj.weight`, { kb: name, vb });
  }
  return out;
}

/** A tensor's values as f32 in row-major order: plain types converted, block types dequantized. */
function tensorValues(file: GgufFile, hfName: string, ggufName: string): Float32Array {
  const t = file.tensors.get(ggufName)!;
  if (PLAIN_TYPES[t.type] !== undefined) return readGgufTensorF32(file, ggufName);
  if (isGgufDequantType(t.type)) return dequantizeGguf(t.type, file.bytes.subarray(t.begin, t.end));
  throw unsupportedType(file, hfName, ggufName, t.type);
}

/**
 * The F32 view of kv_b_proj [H (N + V), C] merged from a layer's attn_k_b [H, C, N] and attn_v_b
 * [H, V, C] (made when first read); a shape that disagrees with the MLA config is refused, naming
 * the tensor and both shapes.
 */
function mergedKvBView(model: GgufModel, hfName: string, kbName: string, vbName: string) {
  const { file, spec } = model;
  const mla = spec.mla;
  if (!mla) throw new WeightError(`${file.fileName}: tensor "${kbName}" (split kv_b_proj) in a model without MLA`);
  const d = { heads: spec.numHeads, kvLoraRank: mla.kvLoraRank, nope: mla.qkNopeHeadDim, v: mla.vHeadDim };
  const want: [string, number[]][] = [
    [kbName, [d.heads, d.kvLoraRank, d.nope]],
    [vbName, [d.heads, d.v, d.kvLoraRank]],
  ];
  for (const [name, shape] of want) {
    const got = file.tensors.get(name)!.shape;
    if (got.length !== 3 || got.some((x, i) => x !== shape[i])) {
      throw new WeightError(
        `${file.fileName}: tensor "${name}" has shape [${got}]; the MLA config implies [${shape}] ` +
          "(heads, then the converter's split of kv_b_proj)",
      );
    }
  }
  const info: TensorInfo = {
    name: hfName,
    dtype: 'F32',
    shape: [d.heads * (d.nope + d.v), d.kvLoraRank],
    begin: 0,
    end: 4 * d.heads * (d.nope + d.v) * d.kvLoraRank,
  };
  let bytes: Uint8Array | undefined;
  const view: SafetensorsFile = {
    fileName: file.fileName,
    metadata: {},
    tensors: new Map([[hfName, info]]),
    dataOffset: 0,
    get bytes() {
      if (!bytes) {
        const kb = tensorValues(file, hfName, kbName);
        const vb = tensorValues(file, hfName, vbName);
        const values = mergeKvB(kb, vb, d);
        bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength); // little-endian hosts
      }
      return bytes;
    },
  };
  return { file: view, info };
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
