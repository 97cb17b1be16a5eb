/**
 * Quantize on load (uploadWeights with dtype q8 / q4) round trip: the GGUF blocks that land in each
 * GPU buffer equal, byte for byte, what the float64 reference quantizer (src/reference/quant.ts,
 * ggml's quantize_row_*_ref) writes for the same tensor read as f32, so the dequantized weights are
 * equal bit for bit. Sources F32, F16 and BF16; one tensor big enough (66 x 32768) to stream in
 * three chunks of rows; what stays f16 (norms, rows that are not whole blocks) and the embedding
 * and LM head at q8 under q4 are checked too.
 */
import { describe, expect, it } from 'vitest';
import { readBuffer } from '../../src/gpu/buffers';
import { quantBufferBytes } from '../../src/kernels/matmulQuant';
import { packQuantRows, unpackQuantRows } from '../../src/kernels/quantLayout';
import { storedDtype, uploadWeights, type LoadDtype } from '../../src/model/weights';
import { dequantizeBlocks, referenceQuantizeQ4_0, referenceQuantizeQ8_0 } from '../../src/reference/quant';
import type { ModelFiles } from '../../src/sources/modelSource';
import { parseSafetensors, readTensorF32, writeSafetensors } from '../../src/sources/safetensors';
import { f32ArrayToF16 } from '../../src/sources/halfFloat';
import { gpu, randomArray, rng } from './harness';

const SHAPES: Record<string, { shape: number[]; dtype: 'F32' | 'F16' | 'BF16' }> = {
  'model.embed_tokens.weight': { shape: [11, 64], dtype: 'F16' },
  'model.layers.0.self_attn.q_proj.weight': { shape: [5, 64], dtype: 'F16' },
  'model.layers.0.mlp.up_proj.weight': { shape: [66, 32768], dtype: 'F32' }, // 3 chunks: 32 + 32 + 2 rows
  'model.layers.0.mlp.gate_proj.weight': { shape: [7, 96], dtype: 'BF16' },
  'model.layers.0.mlp.down_proj.weight': { shape: [3, 36], dtype: 'F32' }, // rows of 36: not whole blocks
  'model.norm.weight': { shape: [64], dtype: 'F32' },
  'lm_head.weight': { shape: [9, 32], dtype: 'F32' },
};

/** A safetensors file of BF16 tensors: writeSafetensors writes F32 / F16 only, so the header is built here. */
function bf16File(tensors: Record<string, { shape: number[]; values: Float32Array }>): Uint8Array {
  const header: Record<string, unknown> = {};
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const [name, { shape, values }] of Object.entries(tensors)) {
    const bits = new Uint16Array(values.length);
    const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < values.length; i++) bits[i] = u[i] >>> 16; // truncate: any bf16 will do
    header[name] = { dtype: 'BF16', shape, data_offsets: [at, at + bits.byteLength] };
    parts.push(new Uint8Array(bits.buffer));
    at += bits.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let o = 8 + json.length;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function files(): ModelFiles {
  const rand = rng(1234);
  const plain: Parameters<typeof writeSafetensors>[0] = {};
  const bf16: Record<string, { shape: number[]; values: Float32Array }> = {};
  for (const [name, { shape, dtype }] of Object.entries(SHAPES)) {
    const values = randomArray(
      shape.reduce((a, b) => a * b, 1),
      rand,
      0.3,
    );
    if (dtype === 'BF16') bf16[name] = { shape, values };
    else plain[name] = { dtype, shape, data: dtype === 'F16' ? f32ArrayToF16(values) : values };
  }
  const shards = [
    parseSafetensors(writeSafetensors(plain), 'a.safetensors'),
    parseSafetensors(bf16File(bf16), 'b.safetensors'),
  ];
  const find = (name: string) => shards.find((s) => s.tensors.has(name));
  return {
    source: 'test',
    config: {},
    tokenizer: null,
    tokenizerConfig: null,
    chatTemplateFile: null,
    generationConfig: null,
    shards,
    tensor: (name) => {
      const file = find(name);
      return file ? { file, info: file.tensors.get(name)! } : null;
    },
    tensorNames: () => shards.flatMap((s) => [...s.tensors.keys()]),
  };
}

describe.each(['q8', 'q4'] as const)('quantize on load, %s', (load: LoadDtype) => {
  it('every quantized tensor equals the reference quantizer byte for byte; the rest stays f16', async () => {
    const ctx = await gpu();
    const f = files();
    const expected = new Map(Object.entries(SHAPES).map(([n, t]) => [n, t.shape]));
    const weights = await uploadWeights(ctx, f, expected, { dtype: load });
    const stored = Object.fromEntries([...weights].map(([n, w]) => [n, w.dtype]));
    expect(stored).toEqual({
      'model.embed_tokens.weight': 'q8',
      'model.layers.0.self_attn.q_proj.weight': load,
      'model.layers.0.mlp.up_proj.weight': load,
      'model.layers.0.mlp.gate_proj.weight': load,
      'model.layers.0.mlp.down_proj.weight': 'f16',
      'model.norm.weight': 'f16',
      'lm_head.weight': 'q8',
    });
    for (const [name, w] of weights) {
      if (w.dtype !== 'q8' && w.dtype !== 'q4') continue;
      const [N, K] = w.shape;
      const x = readTensorF32(f.tensor(name)!.file, name);
      const want = w.dtype === 'q8' ? referenceQuantizeQ8_0(x) : referenceQuantizeQ4_0(x);
      // The buffer holds packed rows (quantLayout.ts): unpacked, they are the GGUF blocks again.
      const packed = new Uint8Array(await readBuffer(ctx, w.buffer, quantBufferBytes(w.dtype, N, K)));
      const got = unpackQuantRows(w.dtype, packed, N, K);
      expect(Buffer.from(packQuantRows(w.dtype, got, N, K)).equals(Buffer.from(packed)), name).toBe(true);
      expect(Buffer.compare(Buffer.from(got), Buffer.from(want)), name).toBe(0);
      // Equal blocks dequantize to equal values; and those are near the source.
      const y = dequantizeBlocks(w.dtype, got, N * K);
      let err = 0;
      for (let i = 0; i < y.length; i++) err = Math.max(err, Math.abs(y[i] - x[i]));
      expect(err, name).toBeLessThan(w.dtype === 'q8' ? 0.3 / 127 : 0.3 / 7);
    }
    for (const w of weights.values()) w.buffer.destroy();
  });
});

it('storedDtype keeps f32 / f16 loads as they are', () => {
  expect(storedDtype('model.layers.0.mlp.up_proj.weight', [8, 64], 'f32')).toBe('f32');
  expect(storedDtype('model.norm.weight', [64], 'f16')).toBe('f16');
  expect(storedDtype('model.layers.0.self_attn.kv_b_proj.weight', [64, 64], 'q4')).toBe('f16');
});
