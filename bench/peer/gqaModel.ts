/**
 * A one-node ONNX model holding onnxruntime's `com.microsoft` GroupQueryAttention contrib operator
 * (docs/ContribOperators.md in the onnxruntime repository), written with onnx-proto, f32 throughout
 * (SwiftShader has no `shader-f16`). Batch, sequence and cache lengths are symbolic, so one session
 * serves every shape of the peer benchmark.
 *
 *   inputs   query        f32 [batch, seq, numHeads * headDim]
 *            key, value   f32 [batch, seq, kvNumHeads * headDim]   the step's new tokens
 *            past_key     f32 [batch, kvNumHeads, past, headDim]   BNSH; past = the allocated cache
 *            past_value   f32 [batch, kvNumHeads, past, headDim]     length (ORT's static cache when
 *                                                                     present aliases it)
 *            seqlens_k    i32 [batch]     total tokens of each sequence after this step, minus 1
 *            total_sequence_length  i32 scalar   max over the batch of seqlens_k + 1
 *   outputs  output       f32 [batch, seq, numHeads * headDim]
 *            present_key, present_value  f32 [batch, kvNumHeads, present, headDim]
 *
 * The operator is always causal (new tokens see the past and the new tokens up to themselves) and
 * scales by 1 / sqrt(headDim) when the `scale` attribute is absent.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export interface GqaModelSpec {
  numHeads: number;
  kvNumHeads: number;
  headDim: number;
}

type Dim = number | string;

function valueInfo(name: string, elemType: number, dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** The serialized model (ModelProto bytes), ready for `InferenceSession.create`. */
export function gqaModelBytes(spec: GqaModelSpec): Uint8Array {
  const F32 = onnx.TensorProto.DataType.FLOAT;
  const I32 = onnx.TensorProto.DataType.INT32;
  const { numHeads: H, kvNumHeads: Hkv, headDim: D } = spec;
  const intAttr = (name: string, i: number): onnxProto.onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.INT,
    i,
  });
  const node: onnxProto.onnx.INodeProto = {
    name: 'gqa',
    opType: 'GroupQueryAttention',
    domain: 'com.microsoft',
    input: ['query', 'key', 'value', 'past_key', 'past_value', 'seqlens_k', 'total_sequence_length'],
    output: ['output', 'present_key', 'present_value'],
    attribute: [intAttr('num_heads', H), intAttr('kv_num_heads', Hkv)],
  };
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'webattn-peer-bench',
    opsetImport: [
      { domain: '', version: 17 },
      { domain: 'com.microsoft', version: 1 },
    ],
    graph: {
      name: `gqa_${H}_${Hkv}_${D}`,
      node: [node],
      input: [
        valueInfo('query', F32, ['batch', 'seq', H * D]),
        valueInfo('key', F32, ['batch', 'seq', Hkv * D]),
        valueInfo('value', F32, ['batch', 'seq', Hkv * D]),
        valueInfo('past_key', F32, ['batch', Hkv, 'past', D]),
        valueInfo('past_value', F32, ['batch', Hkv, 'past', D]),
        valueInfo('seqlens_k', I32, ['batch']),
        valueInfo('total_sequence_length', I32, []),
      ],
      output: [
        valueInfo('output', F32, ['batch', 'seq', H * D]),
        valueInfo('present_key', F32, ['batch', Hkv, 'present', D]),
        valueInfo('present_value', F32, ['batch', Hkv, 'present', D]),
      ],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
