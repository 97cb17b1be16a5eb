/**
 * GGUF tensors → the Hugging Face checkpoint's: names, and the two value changes
 * convert_hf_to_gguf.py makes, undone.
 *
 * Names (N = layer): token_embd → model.embed_tokens, output_norm → model.norm, output → lm_head,
 * blk.N.attn_norm → model.layers.N.input_layernorm, blk.N.attn_q/k/v/output → self_attn.q/k/v/o_proj,
 * blk.N.ffn_norm → post_attention_layernorm, blk.N.ffn_gate/up/down → mlp.gate/up/down_proj, qwen3's
 * attn_q_norm / attn_k_norm → self_attn.q_norm / k_norm, and DeepSeek's MLA projections (see
 * BLOCK_NAMES). `.weight` and `.bias` carry over.
 *
 * Values:
 *  1. llama (LlamaModel.permute in convert_hf_to_gguf.py): q_proj and k_proj rows are reordered per
 *     head so that llama.cpp's RoPE can rotate adjacent pairs (2i, 2i+1) instead of HF's rotate-half
 *     pairs (i, i + d/2):  w.reshape(n_head, 2, d/2, ...).swapaxes(1, 2).reshape(w.shape)
 *     i.e. GGUF row 2i + half of a head = HF row half·d/2 + i of it. k uses n_head_kv heads.
 *     unpermuteRopeRows undoes it. Rows are whole blocks (a row of a Q8_0 weight is ne0/32 blocks),
 *     so the permutation moves row bytes and works for every type, quantized or not.
 *     Worked example, d = 4 (one head, rows r0..r3 in HF order): GGUF holds r0 r2 r1 r3.
 *  2. gemma (GemmaModel.modify_tensors): every `*norm.weight` is stored as w + 1 (llama.cpp's RMSNorm
 *     multiplies by w). minusOne undoes it, so the spec keeps normWeightPlusOne like the HF config.
 * qwen2, qwen3, gemma and deepseek2 are converted without the permutation (llama.cpp runs their
 * RoPE as NEOX = rotate-half, or, for DeepSeek, on checkpoints already stored interleaved).
 */
import { f16BitsToF32, f32ToF16Bits } from '../sources/halfFloat';
import type { GgmlType, GgufFile, GgufTensorInfo } from '../sources/gguf';
import { ggmlTypeInfo } from '../sources/gguf';
import type { GgufArchitecture } from './ggufConfig';

/** GGUF block tensor names (after `blk.N.`) → HF (after `model.layers.N.`). */
const BLOCK_NAMES: Record<string, string> = {
  attn_norm: 'input_layernorm',
  attn_q: 'self_attn.q_proj',
  attn_k: 'self_attn.k_proj',
  attn_v: 'self_attn.v_proj',
  attn_output: 'self_attn.o_proj',
  attn_q_norm: 'self_attn.q_norm',
  attn_k_norm: 'self_attn.k_norm',
  ffn_norm: 'post_attention_layernorm',
  ffn_gate: 'mlp.gate_proj',
  ffn_up: 'mlp.up_proj',
  ffn_down: 'mlp.down_proj',
  // DeepSeek MLA
  attn_q_a: 'self_attn.q_a_proj',
  attn_q_a_norm: 'self_attn.q_a_layernorm',
  attn_q_b: 'self_attn.q_b_proj',
  attn_kv_a_mqa: 'self_attn.kv_a_proj_with_mqa',
  attn_kv_a_norm: 'self_attn.kv_a_layernorm',
  attn_kv_b: 'self_attn.kv_b_proj',
  // Newer converters split kv_b_proj per head into k_b (transposed: [n_head, kv_lora, nope]) and
  // v_b ([n_head, v_head, kv_lora]), the absorbed form's W_UK and W_UV. HF has no such tensors; the
  // names are the converter's own intermediate ones. ggufModelFiles merges the pair back into
  // kv_b_proj (mergeKvB below), which the MLA path reads.
  attn_k_b: 'self_attn.k_b_proj',
  attn_v_b: 'self_attn.v_b_proj',
  // DeepSeek MoE (the runtime refuses MoE; named so that a listing can say what is there)
  ffn_gate_inp: 'mlp.gate',
  ffn_gate_shexp: 'mlp.shared_experts.gate_proj',
  ffn_up_shexp: 'mlp.shared_experts.up_proj',
  ffn_down_shexp: 'mlp.shared_experts.down_proj',
};
const GLOBAL_NAMES: Record<string, string> = {
  token_embd: 'model.embed_tokens',
  output_norm: 'model.norm',
  output: 'lm_head',
};
const HF_BLOCK_NAMES = Object.fromEntries(Object.entries(BLOCK_NAMES).map(([g, h]) => [h, g]));
const HF_GLOBAL_NAMES = Object.fromEntries(Object.entries(GLOBAL_NAMES).map(([g, h]) => [h, g]));

/** The HF name of a GGUF tensor, or null when it has none (rope_freqs, MoE expert stacks, unknown names). */
export function ggufToHfTensorName(name: string): string | null {
  const m = /^(.*)\.(weight|bias)$/.exec(name);
  if (!m) return null;
  const [, stem, kind] = m;
  if (Object.hasOwn(GLOBAL_NAMES, stem)) return `${GLOBAL_NAMES[stem]}.${kind}`;
  const b = /^blk\.(\d+)\.(.+)$/.exec(stem);
  if (b && Object.hasOwn(BLOCK_NAMES, b[2])) return `model.layers.${b[1]}.${BLOCK_NAMES[b[2]]}.${kind}`;
  return null;
}

/** The GGUF name of an HF tensor (the inverse of ggufToHfTensorName), or null. */
export function hfToGgufTensorName(name: string): string | null {
  const m = /^(.*)\.(weight|bias)$/.exec(name);
  if (!m) return null;
  const [, stem, kind] = m;
  if (Object.hasOwn(HF_GLOBAL_NAMES, stem)) return `${HF_GLOBAL_NAMES[stem]}.${kind}`;
  const b = /^model\.layers\.(\d+)\.(.+)$/.exec(stem);
  if (b && Object.hasOwn(HF_BLOCK_NAMES, b[2])) return `blk.${b[1]}.${HF_BLOCK_NAMES[b[2]]}.${kind}`;
  return null;
}

/**
 * Row r of the GGUF (llama.cpp) order holds which row of the HF order, for a tensor of `rows` rows
 * split into `heads` heads of d = rows / heads rows: within a head, GGUF row 2i + half holds HF row
 * half·d/2 + i. Worked example, rows 8, heads 2 (d 4): [0, 2, 1, 3, 4, 6, 5, 7].
 */
export function ropePermutationSource(rows: number, heads: number): Int32Array {
  if (!Number.isInteger(heads) || heads < 1 || rows % heads !== 0 || (rows / heads) % 2 !== 0) {
    throw new RangeError(`rope permutation: ${rows} rows do not split into ${heads} heads of an even size`);
  }
  const d = rows / heads;
  const half = d / 2;
  const src = new Int32Array(rows);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      src[h * d + 2 * i] = h * d + i; // first half of the pair
      src[h * d + 2 * i + 1] = h * d + half + i; // its rotate-half partner
    }
  }
  return src;
}

function checkRows(bytes: Uint8Array, rowBytes: number): number {
  if (!Number.isInteger(rowBytes) || rowBytes < 1 || bytes.length % rowBytes !== 0) {
    throw new RangeError(`rope permutation: ${bytes.length} bytes are not whole rows of ${rowBytes} bytes`);
  }
  return bytes.length / rowBytes;
}

/** HF → GGUF: llama.cpp's permute of q_proj / k_proj rows (a new array; rows are `rowBytes` bytes each). */
export function permuteRopeRows(bytes: Uint8Array, rowBytes: number, heads: number): Uint8Array {
  const rows = checkRows(bytes, rowBytes);
  const src = ropePermutationSource(rows, heads);
  const out = new Uint8Array(bytes.length);
  for (let r = 0; r < rows; r++) out.set(bytes.subarray(src[r] * rowBytes, (src[r] + 1) * rowBytes), r * rowBytes);
  return out;
}

/** GGUF → HF: the inverse of permuteRopeRows, on row bytes of any type (a new array). */
export function unpermuteRopeRows(bytes: Uint8Array, rowBytes: number, heads: number): Uint8Array {
  const rows = checkRows(bytes, rowBytes);
  const src = ropePermutationSource(rows, heads);
  const out = new Uint8Array(bytes.length);
  for (let r = 0; r < rows; r++) out.set(bytes.subarray(r * rowBytes, (r + 1) * rowBytes), src[r] * rowBytes);
  return out;
}

/** Bytes of one row of a tensor: ne0 values (the whole tensor for 1-D ones is one value per row). */
export function ggufRowBytes(t: Pick<GgufTensorInfo, 'type' | 'dims'>, oneDimAsRows = true): number {
  const info = ggmlTypeInfo(t.type);
  if (t.dims.length === 1 && oneDimAsRows) {
    if (info.blockValues !== 1) throw new RangeError(`a 1-D ${t.type} tensor has no per-value rows`);
    return info.blockBytes;
  }
  return (t.dims[0] / info.blockValues) * info.blockBytes;
}

/** What must happen to a GGUF tensor's bytes to give the HF tensor's values. */
export type GgufToHfChange =
  | { kind: 'none' }
  /** unpermuteRopeRows with this many heads (llama q: n_head, k: n_head_kv); 1-D biases per value. */
  | { kind: 'unpermuteRope'; heads: number }
  /** gemma norms: subtract 1 from every value. */
  | { kind: 'minusOne' };

/** The change a tensor needs, from the architecture and the head counts of the ModelSpec. */
export function ggufToHfChange(
  arch: GgufArchitecture,
  ggufName: string,
  spec: { numHeads: number; numKvHeads: number },
): GgufToHfChange {
  if (arch === 'llama') {
    if (/^blk\.\d+\.attn_q\.(weight|bias)$/.test(ggufName)) return { kind: 'unpermuteRope', heads: spec.numHeads };
    if (/^blk\.\d+\.attn_k\.(weight|bias)$/.test(ggufName)) return { kind: 'unpermuteRope', heads: spec.numKvHeads };
  }
  if (arch === 'gemma' && /norm\.weight$/.test(ggufName)) return { kind: 'minusOne' };
  return { kind: 'none' };
}

function minusOne(type: GgmlType, bytes: Uint8Array, name: string): Uint8Array {
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  if (type === 'F32') for (let o = 0; o < out.length; o += 4) dv.setFloat32(o, dv.getFloat32(o, true) - 1, true);
  else if (type === 'F16') {
    for (let o = 0; o < out.length; o += 2)
      dv.setUint16(o, f32ToF16Bits(f16BitsToF32(dv.getUint16(o, true)) - 1), true);
  } else throw new RangeError(`${name}: gemma norm weight of type ${type}; only F32 and F16 are supported`);
  return out;
}

export interface HfTensorFromGguf {
  /** The HF name. */
  name: string;
  /** The GGUF tensor it came from. */
  gguf: GgufTensorInfo;
  /** Row-major (HF) shape. */
  shape: number[];
  type: GgmlType;
  /** The stored bytes in HF row order (a copy when a change applied, else a view into the file). */
  bytes: Uint8Array;
}

/** A GGUF tensor as the HF tensor it was converted from: HF name, HF row order, HF values. */
export function ggufTensorToHf(
  file: GgufFile,
  arch: GgufArchitecture,
  ggufName: string,
  spec: { numHeads: number; numKvHeads: number },
): HfTensorFromGguf {
  const t = file.tensors.get(ggufName);
  if (!t) throw new RangeError(`${file.fileName}: no tensor ${JSON.stringify(ggufName)}`);
  const name = ggufToHfTensorName(ggufName);
  if (name === null)
    throw new RangeError(`${file.fileName}: tensor ${JSON.stringify(ggufName)} has no Hugging Face name`);
  const raw = file.bytes.subarray(t.begin, t.end);
  const change = ggufToHfChange(arch, ggufName, spec);
  let bytes = raw;
  if (change.kind === 'unpermuteRope') bytes = unpermuteRopeRows(raw, ggufRowBytes(t), change.heads);
  else if (change.kind === 'minusOne') bytes = minusOne(t.type, raw, ggufName);
  return { name, gguf: t, shape: t.shape, type: t.type, bytes };
}

/** MLA's per-head widths: kv_lora_rank C, qk_nope_head_dim N, v_head_dim V, over H heads. */
export interface KvBDims {
  heads: number;
  kvLoraRank: number;
  nope: number;
  v: number;
}

/**
 * kv_b_proj [H (N + V), C] from the two tensors newer llama.cpp converters write instead
 * (DeepseekV2Model.modify_tensors: kv_b.view(H, N + V, C) split on dim 1 into k_b [H, N, C], which
 * is then transposed to [H, C, N] = GGUF attn_k_b, and v_b [H, V, C] = attn_v_b): per head h, the N
 * rows of k_b[h]ᵀ, then the V rows of v_b[h]. Values in row-major (torch) order.
 * Worked example H 1, C 2, N 1, V 1: k_b [[a], [b]] (C x N), v_b [[c, d]] (V x C) → [[a, b], [c, d]].
 */
export function mergeKvB(kb: Float32Array, vb: Float32Array, d: KvBDims): Float32Array {
  const { heads: H, kvLoraRank: C, nope: N, v: V } = d;
  if (kb.length !== H * C * N || vb.length !== H * V * C) {
    throw new RangeError(`mergeKvB: k_b has ${kb.length} values (want ${H * C * N}), v_b ${vb.length} (${H * V * C})`);
  }
  const out = new Float32Array(H * (N + V) * C);
  for (let h = 0; h < H; h++) {
    const head = h * (N + V) * C;
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) out[head + n * C + c] = kb[(h * C + c) * N + n];
    out.set(vb.subarray(h * V * C, (h + 1) * V * C), head + N * C);
  }
  return out;
}

/** The converter's split of kv_b_proj (the inverse of mergeKvB): k_b [H, C, N] and v_b [H, V, C]. */
export function splitKvB(kvb: Float32Array, d: KvBDims): { kb: Float32Array; vb: Float32Array } {
  const { heads: H, kvLoraRank: C, nope: N, v: V } = d;
  if (kvb.length !== H * (N + V) * C) throw new RangeError(`splitKvB: ${kvb.length} values, want ${H * (N + V) * C}`);
  const kb = new Float32Array(H * C * N);
  const vb = new Float32Array(H * V * C);
  for (let h = 0; h < H; h++) {
    const head = h * (N + V) * C;
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) kb[(h * C + c) * N + n] = kvb[head + n * C + c];
    vb.set(kvb.subarray(head + N * C, head + (N + V) * C), h * V * C);
  }
  return { kb, vb };
}
