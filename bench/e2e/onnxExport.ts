/**
 * A llama-family safetensors checkpoint as the decoder ONNX graph transformers.js loads
 * (`onnx/model.onnx`, the layout an Optimum / onnxruntime-genai export has), written with onnx-proto.
 *
 *   inputs   input_ids       i64 [batch_size, sequence_length]
 *            attention_mask  i64 [batch_size, total_sequence_length]   1 on every real token
 *            position_ids    i64 [batch_size, sequence_length]
 *            past_key_values.N.key / .value   f32 [batch_size, kvHeads, past_sequence_length, headDim]
 *   outputs  logits          f32 [batch_size, sequence_length, vocab]
 *            present.N.key / .value           f32 [batch_size, kvHeads, total_sequence_length, headDim]
 * The symbolic dims carry Optimum's names: transformers.js v4 sizes its empty first-step cache from
 * the session's input metadata, resolving `batch_size` and taking every other name as 0.
 *
 * The ops ORT then runs, per layer: RMSNorm as Pow / ReduceMean / Add / Sqrt / Div / Mul; the
 * projections and the MLP as MatMul (weights stored transposed, [in, out]) with SiLU as
 * Sigmoid · Mul; RoPE (HF rotate-half) as Slice / Neg / Concat / Mul / Add on cos/sin rows gathered
 * by position_ids; attention as onnxruntime's `com.microsoft` GroupQueryAttention (causal, scale
 * 1/sqrt(headDim), past K/V concatenated into present; seqlens_k and total_sequence_length from
 * attention_mask as onnxruntime-genai's builder makes them), the contrib operator transformers.js's
 * WebGPU decoder exports use. The LM head is Gemm(x, embed_tokens, transB) for tied embeddings
 * (one copy of the table) or MatMul with lm_head. Weights are f32 initializers inside the file.
 */
import onnxProto from 'onnx-proto';
import { parseConfig } from '../../src/model/config';
import { ropeInvFrequencies } from '../../src/model/ropeFrequencies';
import type { ModelFiles } from '../../src/sources/modelSource';
import { readTensorF32 } from '../../src/sources/safetensors';

const { onnx } = onnxProto;
type Node = onnxProto.onnx.INodeProto;
type Tensor = onnxProto.onnx.ITensorProto;
type Dim = number | string;

const F32 = onnx.TensorProto.DataType.FLOAT;
const I64 = onnx.TensorProto.DataType.INT64;
const I32 = onnx.TensorProto.DataType.INT32;

function valueInfo(name: string, elemType: number, dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType, shape: { dim } } } };
}

const bytesOf = (a: Float32Array | BigInt64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** [rows, cols] row-major → [cols, rows]. */
function transposed(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
  return t;
}

export interface OnnxExportOptions {
  /**
   * 'gqa' (default): onnxruntime's com.microsoft GroupQueryAttention. 'plain': standard ONNX ops only
   * (Concat for the cache, MatMul for QK^T and PV over a [batch, kvHeads, group, seq, ·] view of the
   * query heads, a causal mask from Range / Less / Where, Softmax), what torch.onnx.export of eager
   * attention gives.
   */
  attention?: 'gqa' | 'plain';
  /** Rows of the cos/sin tables (positions the graph can take). Default the config's max_position_embeddings. */
  maxPositions?: number;
}

/** The serialized ModelProto of the checkpoint in `files` (llama / mistral / qwen2-style without biases). */
export function exportDecoderOnnx(files: ModelFiles, opts: OnnxExportOptions = {}): Uint8Array {
  const spec = parseConfig(files.config, `${files.source}: config.json`);
  if (spec.family !== 'llama' || spec.mla || spec.attentionBias || spec.qkNorm || spec.sandwichNorms)
    throw new Error(`${files.source}: the ONNX export here covers plain llama checkpoints only`);
  const { hiddenSize: hid, numHeads: H, numKvHeads: Hkv, headDim: D, numLayers: L, vocabSize: V } = spec;
  if (spec.rope.rotaryDim !== D || spec.rope.interleaved)
    throw new Error(`${files.source}: only full-width rotate-half RoPE is exported`);
  const invFreq = ropeInvFrequencies(spec);
  const maxPos = opts.maxPositions ?? spec.maxPositionEmbeddings;

  const nodes: Node[] = [];
  const inits: Tensor[] = [];
  let counter = 0;
  const fresh = (base: string) => `${base}_${counter++}`;
  const node = (opType: string, input: string[], attrs: onnxProto.onnx.IAttributeProto[] = [], domain = '') => {
    const out = fresh(opType.toLowerCase());
    nodes.push({ name: out, opType, domain, input, output: [out], attribute: attrs });
    return out;
  };
  const intAttr = (name: string, i: number) => ({ name, type: onnx.AttributeProto.AttributeType.INT, i });
  const intsAttr = (name: string, ints: number[]) => ({
    name,
    type: onnx.AttributeProto.AttributeType.INTS,
    ints,
  });
  const f32Init = (name: string, dims: number[], data: Float32Array) => {
    inits.push({ name, dims, dataType: F32, rawData: bytesOf(data) });
    return name;
  };
  const i64Init = (dims: number[], values: number[]) => {
    const name = fresh('const');
    inits.push({ name, dims, dataType: I64, rawData: bytesOf(BigInt64Array.from(values.map(BigInt))) });
    return name;
  };
  const weight = (name: string) => {
    const t = files.tensor(name);
    if (!t) throw new Error(`${files.source}: no tensor ${name}`);
    return readTensorF32(t.file, name);
  };
  /** HF Linear weight [out, in] → MatMul's [in, out]. */
  const linear = (name: string, out: number, inp: number) =>
    f32Init(name, [inp, out], transposed(weight(name), out, inp));

  const epsName = f32Init('rms_eps', [], Float32Array.of(spec.rmsNormEps));
  const twoName = f32Init('two', [], Float32Array.of(2));
  const rmsNorm = (x: string, w: string) => {
    const ms = node('ReduceMean', [node('Pow', [x, twoName])], [intsAttr('axes', [-1]), intAttr('keepdims', 1)]);
    const inv = node('Sqrt', [node('Add', [ms, epsName])]);
    return node('Mul', [node('Div', [x, inv]), f32Init(w, [hid], weight(w))]);
  };

  // cos/sin [maxPos, D] in HF's rotate-half layout: entry (p, i) uses inv_freq[i mod D/2].
  const cosT = new Float32Array(maxPos * D);
  const sinT = new Float32Array(maxPos * D);
  for (let p = 0; p < maxPos; p++)
    for (let i = 0; i < D; i++) {
      const a = p * invFreq[i % (D / 2)];
      cosT[p * D + i] = Math.cos(a);
      sinT[p * D + i] = Math.sin(a);
    }
  const axis2 = i64Init([1], [2]);
  // [batch, seq, 1, D]: broadcast over heads
  const cos = node('Unsqueeze', [node('Gather', [f32Init('cos_cache', [maxPos, D], cosT), 'position_ids']), axis2]);
  const sin = node('Unsqueeze', [node('Gather', [f32Init('sin_cache', [maxPos, D], sinT), 'position_ids']), axis2]);
  const half0 = i64Init([1], [0]);
  const halfMid = i64Init([1], [D / 2]);
  const halfEnd = i64Init([1], [D]);
  const axis3 = i64Init([1], [3]);
  const rope = (x: string, heads: number) => {
    const x4 = node('Reshape', [x, i64Init([4], [0, 0, heads, D])]);
    const x1 = node('Slice', [x4, half0, halfMid, axis3]);
    const x2 = node('Slice', [x4, halfMid, halfEnd, axis3]);
    const rot = node('Concat', [node('Neg', [x2]), x1], [intAttr('axis', 3)]);
    const y = node('Add', [node('Mul', [x4, cos]), node('Mul', [rot, sin])]);
    return node('Reshape', [y, i64Init([3], [0, 0, heads * D])]);
  };

  // GroupQueryAttention's lengths: seqlens_k = (sum of the mask) - 1, total = the mask's width.
  const one = i64Init([], [1]);
  const maskI64 = node('Cast', ['attention_mask'], [intAttr('to', I64)]);
  const maskSum = node('ReduceSum', [maskI64, i64Init([1], [1])], [intAttr('keepdims', 0)]);
  const seqlensK = node('Cast', [node('Sub', [maskSum, one])], [intAttr('to', I32)]);
  const total = node('Gather', [node('Shape', ['attention_mask']), one], [intAttr('axis', 0)]); // i64 scalar
  const totalLen = node('Cast', [total], [intAttr('to', I32)]);
  // The plain graph's causal mask [seq, total]: query i sits at position total - seq + i and sees keys
  // j <= that position; the others get -1e30 (finite: a row never becomes NaN).
  const plain = opts.attention === 'plain';
  const G = H / Hkv;
  const scaleName = f32Init('attn_scale', [], Float32Array.of(spec.softmaxScale));
  let causalMask = '';
  if (plain) {
    const seq = node('Gather', [node('Shape', ['input_ids']), one], [intAttr('axis', 0)]);
    const qPos = node('Unsqueeze', [node('Range', [node('Sub', [total, seq]), total, one]), i64Init([1], [1])]);
    const kPos = node('Unsqueeze', [node('Range', [i64Init([], [0]), total, one]), i64Init([1], [0])]);
    const off = f32Init('mask_off', [], Float32Array.of(-1e30));
    causalMask = node('Where', [node('Less', [qPos, kPos]), off, f32Init('mask_on', [], Float32Array.of(0))]);
  }

  const embedName = 'model.embed_tokens.weight';
  const embed = f32Init(embedName, [V, hid], weight(embedName));
  let x = node('Gather', [embed, 'input_ids']); // [batch, seq, hidden]
  const inputs = [
    valueInfo('input_ids', I64, ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', I64, ['batch_size', 'total_sequence_length']),
    valueInfo('position_ids', I64, ['batch_size', 'sequence_length']),
  ];
  const outputs = [valueInfo('logits', F32, ['batch_size', 'sequence_length', V])];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    const h = rmsNorm(x, `${p}.input_layernorm.weight`);
    const q = rope(node('MatMul', [h, linear(`${p}.self_attn.q_proj.weight`, H * D, hid)]), H);
    const k = rope(node('MatMul', [h, linear(`${p}.self_attn.k_proj.weight`, Hkv * D, hid)]), Hkv);
    const v = node('MatMul', [h, linear(`${p}.self_attn.v_proj.weight`, Hkv * D, hid)]);
    const pastK = `past_key_values.${l}.key`;
    const pastV = `past_key_values.${l}.value`;
    inputs.push(
      valueInfo(pastK, F32, ['batch_size', Hkv, 'past_sequence_length', D]),
      valueInfo(pastV, F32, ['batch_size', Hkv, 'past_sequence_length', D]),
    );
    const presentK = `present.${l}.key`;
    const presentV = `present.${l}.value`;
    outputs.push(
      valueInfo(presentK, F32, ['batch_size', Hkv, 'total_sequence_length', D]),
      valueInfo(presentV, F32, ['batch_size', Hkv, 'total_sequence_length', D]),
    );
    let attn: string;
    if (plain) {
      // [batch, seq, heads·D] → [batch, heads, seq, D]
      const bnsh = (t: string, heads: number) =>
        node('Transpose', [node('Reshape', [t, i64Init([4], [0, 0, heads, D])])], [intsAttr('perm', [0, 2, 1, 3])]);
      nodes.push({
        name: presentK,
        opType: 'Concat',
        input: [pastK, bnsh(k, Hkv)],
        output: [presentK],
        attribute: [intAttr('axis', 2)],
      });
      nodes.push({
        name: presentV,
        opType: 'Concat',
        input: [pastV, bnsh(v, Hkv)],
        output: [presentV],
        attribute: [intAttr('axis', 2)],
      });
      // query head h = kvHead · G + g: [batch, H, seq, D] → [batch, Hkv, G, seq, D]
      const q5 = node('Reshape', [bnsh(q, H), i64Init([5], [0, Hkv, G, -1, D])]);
      const kT = node('Unsqueeze', [node('Transpose', [presentK], [intsAttr('perm', [0, 1, 3, 2])]), axis2]);
      const scores = node('Add', [node('Mul', [node('MatMul', [q5, kT]), scaleName]), causalMask]);
      const probs = node('Softmax', [scores], [intAttr('axis', -1)]);
      const o5 = node('MatMul', [probs, node('Unsqueeze', [presentV, axis2])]); // [batch, Hkv, G, seq, D]
      const o4 = node('Reshape', [o5, i64Init([4], [0, H, -1, D])]);
      attn = node('Reshape', [node('Transpose', [o4], [intsAttr('perm', [0, 2, 1, 3])]), i64Init([3], [0, 0, H * D])]);
    } else {
      attn = fresh('gqa');
      nodes.push({
        name: attn,
        opType: 'GroupQueryAttention',
        domain: 'com.microsoft',
        input: [q, k, v, pastK, pastV, seqlensK, totalLen],
        output: [attn, presentK, presentV],
        attribute: [intAttr('num_heads', H), intAttr('kv_num_heads', Hkv)],
      });
    }
    x = node('Add', [x, node('MatMul', [attn, linear(`${p}.self_attn.o_proj.weight`, hid, H * D)])]);
    const h2 = rmsNorm(x, `${p}.post_attention_layernorm.weight`);
    const gate = node('MatMul', [h2, linear(`${p}.mlp.gate_proj.weight`, spec.intermediateSize, hid)]);
    const up = node('MatMul', [h2, linear(`${p}.mlp.up_proj.weight`, spec.intermediateSize, hid)]);
    const act = node('Mul', [node('Mul', [gate, node('Sigmoid', [gate])]), up]);
    x = node('Add', [x, node('MatMul', [act, linear(`${p}.mlp.down_proj.weight`, hid, spec.intermediateSize)])]);
  }
  const xn = rmsNorm(x, 'model.norm.weight');
  let logits: string;
  if (spec.tieWordEmbeddings || !files.tensor('lm_head.weight')) {
    // Gemm is 2-D: [batch·seq, hidden] · embed^T, then back to [batch, seq, vocab].
    const flat = node('Reshape', [xn, i64Init([2], [-1, hid])]);
    const g = node('Gemm', [flat, embed], [intAttr('transB', 1)]);
    const shape = node('Concat', [node('Shape', ['input_ids']), i64Init([1], [V])], [intAttr('axis', 0)]);
    logits = node('Reshape', [g, shape]);
  } else {
    logits = node('MatMul', [xn, linear('lm_head.weight', V, hid)]);
  }
  nodes.push({ name: 'logits_out', opType: 'Identity', input: [logits], output: ['logits'] });

  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'webattn-e2e-bench',
    opsetImport: [
      { domain: '', version: 17 },
      { domain: 'com.microsoft', version: 1 },
    ],
    graph: { name: 'decoder', node: nodes, initializer: inits, input: inputs, output: outputs },
  });
  return onnx.ModelProto.encode(model).finish();
}
