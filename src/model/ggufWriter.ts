/**
 * The project's GGUF writer: a Hugging Face folder (ModelFiles of config.json, model.safetensors,
 * tokenizer.json, tokenizer_config.json) to the GGUF file llama.cpp's convert_hf_to_gguf.py writes
 * for it, so the peer runtimes that read only GGUF (llama.cpp, wllama) run the same model as webattn.
 * For the F32 type the output is byte for byte what the converter wrote for the shipped kjv-gqa
 * (shared/realworld/gguf/kjv-gqa-F32.gguf; a test checks it).
 *
 *   metadata   general.* (architecture, type, name, size_label), A.block_count, context_length,
 *              embedding_length, feed_forward_length, attention.head_count, head_count_kv,
 *              rope.freq_base, attention.layer_norm_rms_epsilon, attention.key_length /
 *              value_length (when the config has head_dim), general.file_type, A.vocab_size,
 *              rope.dimension_count, general.quantization_version, then the tokenizer: in the
 *              converter's order (A = llama, qwen2 or qwen3).
 *   tokenizer  byte-level BPE tokenizer.json → tokenizer.ggml.model gpt2, pre gpt-2 (the split
 *              regex of ByteLevel(use_regex)), tokens by id, token_type (special added tokens 3 =
 *              control, the rest 1), merges "a b", bos / eos ids, add_bos / add_sep / add_eos,
 *              tokenizer.chat_template.
 *   tensors    HF names → GGUF names (ggufTensors.ts), in the checkpoint's order; dims reversed
 *              ([out, in] → ne [in, out], the same bytes); llama's q_proj / k_proj rows permuted
 *              for llama.cpp's adjacent-pair RoPE (permuteRopeRows).
 *   types      F32: every tensor F32. F16: 1-D tensors F32, the rest F16 (convert --outtype f16).
 *              Q8_0: 1-D F32, matrices Q8_0 where rows are whole 32-value blocks, else F16
 *              (--outtype q8_0). Q4_0: as llama-quantize's Q4_0, matrices Q4_0 but token_embd Q8_0.
 * Refused, naming what: other model types (gemma's norm + 1, MLA and fused projections are not
 * written here), a tokenizer that is not byte-level BPE, untied LM heads are written as `output`.
 */
import { writeGguf, type GgmlType, type GgufKv, type GgufTensorToWrite } from '../sources/gguf';
import type { ModelFiles } from '../sources/modelSource';
import { readTensorF32 } from '../sources/safetensors';
import { f32ArrayToF16 } from '../sources/halfFloat';
import { parseConfig, type ModelSpec } from './config';
import { expectedTensors } from './expectedTensors';
import { ggufRowBytes, hfToGgufTensorName, permuteRopeRows } from './ggufTensors';
import { quantizeBlocks } from './quantize';

export class GgufWriteError extends Error {
  override name = 'GgufWriteError';
}

/** What the tensors are written as (see the header). */
export type GgufWriteType = 'F32' | 'F16' | 'Q8_0' | 'Q4_0';
/** general.file_type of each (llama.cpp's LLAMA_FTYPE_ALL_F32, MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_Q4_0). */
const FILE_TYPE: Record<GgufWriteType, number> = { F32: 0, F16: 1, Q8_0: 7, Q4_0: 2 };
/** HF model_type → GGUF architecture, for the ones written without changes beyond llama's permutation. */
const ARCHITECTURES: Record<string, string> = { llama: 'llama', qwen2: 'qwen2', qwen3: 'qwen3' };

export interface GgufWriteOptions {
  type?: GgufWriteType; // default F32
  /** general.name; default the folder's name in title case ('kjv-gqa' → 'Kjv Gqa', as the converter guesses). */
  name?: string;
}

/** The GGUF bytes of a loaded safetensors model folder. */
export function writeModelGguf(files: ModelFiles, opts: GgufWriteOptions = {}): Uint8Array {
  const type = opts.type ?? 'F32';
  const config = files.config as Record<string, unknown>;
  const spec = parseConfig(config, `${files.source}: config.json`);
  const arch = ARCHITECTURES[String(config.model_type)];
  if (!arch || spec.mla || spec.fusedProjections) {
    throw new GgufWriteError(
      `${files.source}: model_type "${String(config.model_type)}" is not written as GGUF here ` +
        `(written: ${Object.keys(ARCHITECTURES).join(', ')})`,
    );
  }
  const tensors = gatherTensors(files, spec, arch, type);
  const params = tensors.reduce((n, [, t]) => n + t.dims.reduce((a, b) => a * b, 1), 0);
  const u32 = (value: number): GgufKv => ({ type: 'uint32', value });
  const f32 = (value: number): GgufKv => ({ type: 'float32', value });
  const str = (value: string): GgufKv => ({ type: 'string', value });
  const a = (key: string) => `${arch}.${key}`;
  const meta: [string, GgufKv][] = [
    ['general.architecture', str(arch)],
    ['general.type', str('model')],
    ['general.name', str(opts.name ?? titleCase(files.source))],
    ['general.size_label', str(sizeLabel(params))],
    [a('block_count'), u32(spec.numLayers)],
    [a('context_length'), u32(spec.maxPositionEmbeddings)],
    [a('embedding_length'), u32(spec.hiddenSize)],
    [a('feed_forward_length'), u32(spec.intermediateSize)],
    [a('attention.head_count'), u32(spec.numHeads)],
    [a('attention.head_count_kv'), u32(spec.numKvHeads)],
    [a('rope.freq_base'), f32(spec.rope.theta)],
    [a('attention.layer_norm_rms_epsilon'), f32(spec.rmsNormEps)],
  ];
  if (config.head_dim !== undefined) {
    meta.push([a('attention.key_length'), u32(spec.headDim)], [a('attention.value_length'), u32(spec.headDimV)]);
  }
  meta.push(
    ['general.file_type', u32(FILE_TYPE[type])],
    [a('vocab_size'), u32(spec.vocabSize)],
    [a('rope.dimension_count'), u32(spec.rope.rotaryDim)],
    ['general.quantization_version', u32(2)],
    ...tokenizerMetadata(files, config, spec),
  );
  return writeGguf({ metadata: meta, tensors });
}

/** 'models/kjv-gqa' → 'Kjv Gqa'. */
function titleCase(source: string): string {
  const base = source.split(/[\\/]/).filter(Boolean).pop() ?? source;
  return base
    .split(/[-_\s]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join(' ');
}

/** gguf-py's model_weight_count_rounded_notation: at least 2 digits, K / M / B / T (1.0M, 260K, 7.2B). */
export function sizeLabel(params: number): string {
  const [scale, suffix] =
    params > 1e12 ? [1e-12, 'T'] : params > 1e9 ? [1e-9, 'B'] : params > 1e6 ? [1e-6, 'M'] : [1e-3, 'K'];
  const scaled = params * scale;
  const digits = String(Math.round(scaled)).replace(/^0+/, '').length;
  return `${scaled.toFixed(Math.max(2 - digits, 0))}${suffix}`;
}

function gatherTensors(
  files: ModelFiles,
  spec: ModelSpec,
  arch: string,
  type: GgufWriteType,
): [string, GgufTensorToWrite][] {
  const expected = expectedTensors(spec);
  const out: [string, GgufTensorToWrite][] = [];
  for (const name of files.tensorNames()) {
    if (!expected.has(name)) continue; // rotary_emb.inv_freq and the like: the converter drops them too
    const gguf = hfToGgufTensorName(name);
    const t = files.tensor(name)!;
    if (gguf === null) throw new GgufWriteError(`${t.file.fileName}: tensor "${name}" has no GGUF name`);
    const shape = t.info.shape;
    const values = readTensorF32(t.file, name);
    const tensorType = tensorTypeOf(name, shape, type);
    const dims = [...shape].reverse();
    let data = encode(tensorType, values);
    const heads = ropeHeads(arch, name, spec);
    if (heads) data = permuteRopeRows(data, ggufRowBytes({ type: tensorType, dims }), heads);
    out.push([gguf, { type: tensorType, dims, data }]);
  }
  return out;
}

/** The type one tensor is written as (see the header): 'model.norm.weight' [128] → F32 under every type. */
function tensorTypeOf(name: string, shape: readonly number[], type: GgufWriteType): GgmlType {
  if (shape.length === 1 || type === 'F32') return 'F32';
  if (type === 'F16' || shape[1] % 32 !== 0) return 'F16';
  if (type === 'Q4_0' && name !== 'model.embed_tokens.weight') return 'Q4_0';
  return 'Q8_0';
}

/** llama.cpp's permute: q rows per head, k rows per KV head (llama only; 1-D biases per value). */
function ropeHeads(arch: string, name: string, spec: ModelSpec): number | null {
  if (arch !== 'llama') return null;
  if (/\.self_attn\.q_proj\.(weight|bias)$/.test(name)) return spec.numHeads;
  if (/\.self_attn\.k_proj\.(weight|bias)$/.test(name)) return spec.numKvHeads;
  return null;
}

function encode(type: GgmlType, values: Float32Array): Uint8Array {
  if (type === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice();
  if (type === 'F16') {
    const bits = f32ArrayToF16(values);
    return new Uint8Array(bits.buffer, bits.byteOffset, values.length * 2).slice();
  }
  const block = type === 'Q8_0' ? 34 : 18;
  const out = new Uint8Array((values.length / 32) * block);
  quantizeBlocks(type === 'Q8_0' ? 'q8' : 'q4', values, out);
  return out;
}

type TokenizerJson = {
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
  pre_tokenizer?: { type?: string; use_regex?: boolean; pretokenizers?: unknown[] } | null;
  added_tokens?: { id: number; content: string; special?: boolean }[];
};

/** tokenizer.ggml.* and the chat template of a byte-level BPE tokenizer.json (see the header). */
function tokenizerMetadata(files: ModelFiles, config: Record<string, unknown>, spec: ModelSpec): [string, GgufKv][] {
  const tok = files.tokenizer as TokenizerJson | null;
  if (!tok) throw new GgufWriteError(`${files.source}: tokenizer.json is missing; a GGUF file carries the tokenizer`);
  const where = `${files.source}: tokenizer.json`;
  if (tok.model?.type !== 'BPE' || tok.pre_tokenizer?.type !== 'ByteLevel') {
    throw new GgufWriteError(
      `${where}: only byte-level BPE (model BPE, pre_tokenizer ByteLevel) is written as GGUF, ` +
        `got model ${tok.model?.type}, pre_tokenizer ${tok.pre_tokenizer?.type}`,
    );
  }
  const tokens: string[] = new Array(spec.vocabSize);
  const types = new Int32Array(spec.vocabSize).fill(1); // normal
  for (const [piece, id] of Object.entries(tok.model.vocab ?? {})) tokens[id] = piece;
  for (const t of tok.added_tokens ?? []) {
    tokens[t.id] = t.content;
    types[t.id] = t.special ? 3 : 4; // control, user-defined
  }
  for (let id = 0; id < tokens.length; id++) {
    // The converter pads a vocabulary smaller than the embedding with [PADn] user-defined tokens.
    if (tokens[id] === undefined) {
      tokens[id] = `[PAD${id}]`;
      types[id] = 4;
    }
  }
  const merges = (tok.model.merges ?? []).map((m) => (Array.isArray(m) ? m.join(' ') : m));
  const tokCfg = (files.tokenizerConfig ?? {}) as Record<string, unknown>;
  const id = (v: unknown) => (Array.isArray(v) ? v[0] : v);
  const meta: [string, GgufKv][] = [
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: 'string', value: 'gpt-2' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'int32', value: types }],
    ['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: merges }],
  ];
  const bos = id(config.bos_token_id);
  const eos = id(config.eos_token_id);
  if (typeof bos === 'number') meta.push(['tokenizer.ggml.bos_token_id', { type: 'uint32', value: bos }]);
  if (typeof eos === 'number') meta.push(['tokenizer.ggml.eos_token_id', { type: 'uint32', value: eos }]);
  for (const key of ['add_bos_token', 'add_sep_token', 'add_eos_token']) {
    const v = key === 'add_sep_token' ? (tokCfg[key] ?? false) : tokCfg[key];
    if (typeof v === 'boolean') meta.push([`tokenizer.ggml.${key}`, { type: 'bool', value: v }]);
  }
  const template = tokCfg.chat_template;
  if (typeof template === 'string') meta.push(['tokenizer.chat_template', { type: 'string', value: template }]);
  return meta;
}
