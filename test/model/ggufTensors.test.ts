import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ggufModelSpec } from '../../src/model/ggufConfig';
import {
  ggufTensorToHf,
  ggufToHfChange,
  ggufToHfTensorName,
  hfToGgufTensorName,
  permuteRopeRows,
  ropePermutationSource,
  unpermuteRopeRows,
} from '../../src/model/ggufTensors';
import { f16BitsToF32, f32ToF16Bits } from '../../src/sources/halfFloat';
import { type GgufFile, parseGguf, readGgufTensorF32, writeGguf } from '../../src/sources/gguf';
import { parseSafetensors, readTensorF32 } from '../../src/sources/safetensors';

const ROOT = new URL('../../', import.meta.url).pathname;
const REALWORLD = `${ROOT}../shared/realworld/`;
const gguf = (name: string): GgufFile => parseGguf(readFileSync(`${REALWORLD}gguf/${name}`), name);
const kjvSafetensors = () => parseSafetensors(readFileSync(`${ROOT}models/kjv-gqa/model.safetensors`), 'kjv-gqa');

/**
 * The reference definitions, spelled out on a [rows, cols] matrix with numpy's row-major strides:
 * llama.cpp's permute (HF → GGUF) is w.reshape(n_head, 2, d/2, cols).swapaxes(1, 2).reshape(rows, cols);
 * HF's convert_llama_weights_to_hf permute (llama2.c / Meta → HF) is
 * w.view(n_head, d/2, 2, cols).transpose(1, 2).reshape(rows, cols).
 */
function llamaCppPermute(w: Float64Array, rows: number, cols: number, nHead: number): Float64Array {
  const d = rows / nHead;
  const out = new Float64Array(w.length);
  // source index (h, two, i, c) of shape (n_head, 2, d/2, cols) lands at (h, i, two, c) of (n_head, d/2, 2, cols)
  for (let h = 0; h < nHead; h++)
    for (let two = 0; two < 2; two++)
      for (let i = 0; i < d / 2; i++)
        for (let c = 0; c < cols; c++) {
          const src = ((h * 2 + two) * (d / 2) + i) * cols + c;
          const dst = ((h * (d / 2) + i) * 2 + two) * cols + c;
          out[dst] = w[src];
        }
  return out;
}
function hfFromMetaPermute(w: Float64Array, rows: number, cols: number, nHead: number): Float64Array {
  const d = rows / nHead;
  const out = new Float64Array(w.length);
  // source (h, i, two, c) of shape (n_head, d/2, 2, cols) lands at (h, two, i, c) of (n_head, 2, d/2, cols)
  for (let h = 0; h < nHead; h++)
    for (let i = 0; i < d / 2; i++)
      for (let two = 0; two < 2; two++)
        for (let c = 0; c < cols; c++) {
          const src = ((h * (d / 2) + i) * 2 + two) * cols + c;
          const dst = ((h * 2 + two) * (d / 2) + i) * cols + c;
          out[dst] = w[src];
        }
  return out;
}

const f64Bytes = (a: Float64Array) => new Uint8Array(a.buffer.slice(0));
const bytesF64 = (b: Uint8Array) => new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
const f32Of = (b: Uint8Array) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
const relL2 = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
};

/** Q8_0 rows (blocks of an f16 scale + 32 int8) to floats: x = q · d. */
function dequantQ8(bytes: Uint8Array): Float32Array {
  const blocks = bytes.length / 34;
  const out = new Float32Array(blocks * 32);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < blocks; b++) {
    const d = f16BitsToF32(dv.getUint16(34 * b, true));
    for (let j = 0; j < 32; j++) out[32 * b + j] = dv.getInt8(34 * b + 2 + j) * d;
  }
  return out;
}

describe('tensor names', () => {
  it('every tensor of the kjv-gqa GGUF maps onto the shipped safetensors, and back', () => {
    const st = kjvSafetensors();
    const f = gguf('kjv-gqa-F16.gguf');
    const mapped = [...f.tensors.keys()].map((n) => ggufToHfTensorName(n));
    expect(new Set(mapped)).toEqual(new Set(st.tensors.keys()));
    for (const n of f.tensors.keys()) expect(hfToGgufTensorName(ggufToHfTensorName(n)!)).toBe(n);
  });

  it('maps the names of every supported family', () => {
    const pairs: [string, string][] = [
      ['token_embd.weight', 'model.embed_tokens.weight'],
      ['output_norm.weight', 'model.norm.weight'],
      ['output.weight', 'lm_head.weight'],
      ['blk.0.attn_norm.weight', 'model.layers.0.input_layernorm.weight'],
      ['blk.11.attn_q.weight', 'model.layers.11.self_attn.q_proj.weight'],
      ['blk.2.attn_q.bias', 'model.layers.2.self_attn.q_proj.bias'],
      ['blk.2.attn_k.bias', 'model.layers.2.self_attn.k_proj.bias'],
      ['blk.2.attn_v.weight', 'model.layers.2.self_attn.v_proj.weight'],
      ['blk.2.attn_output.weight', 'model.layers.2.self_attn.o_proj.weight'],
      ['blk.3.attn_q_norm.weight', 'model.layers.3.self_attn.q_norm.weight'],
      ['blk.3.attn_k_norm.weight', 'model.layers.3.self_attn.k_norm.weight'],
      ['blk.4.ffn_norm.weight', 'model.layers.4.post_attention_layernorm.weight'],
      ['blk.4.ffn_gate.weight', 'model.layers.4.mlp.gate_proj.weight'],
      ['blk.4.ffn_up.weight', 'model.layers.4.mlp.up_proj.weight'],
      ['blk.4.ffn_down.weight', 'model.layers.4.mlp.down_proj.weight'],
      ['blk.5.attn_q_a.weight', 'model.layers.5.self_attn.q_a_proj.weight'],
      ['blk.5.attn_q_a_norm.weight', 'model.layers.5.self_attn.q_a_layernorm.weight'],
      ['blk.5.attn_q_b.weight', 'model.layers.5.self_attn.q_b_proj.weight'],
      ['blk.5.attn_kv_a_mqa.weight', 'model.layers.5.self_attn.kv_a_proj_with_mqa.weight'],
      ['blk.5.attn_kv_a_norm.weight', 'model.layers.5.self_attn.kv_a_layernorm.weight'],
      ['blk.5.attn_kv_b.weight', 'model.layers.5.self_attn.kv_b_proj.weight'],
    ];
    for (const [g, h] of pairs) {
      expect(ggufToHfTensorName(g)).toBe(h);
      expect(hfToGgufTensorName(h)).toBe(g);
    }
    for (const g of [
      'rope_freqs.weight',
      'blk.0.ffn_gate_exps.weight',
      'blk.x.attn_q.weight',
      'token_embd',
      'foo.weight',
    ]) {
      expect(ggufToHfTensorName(g)).toBeNull();
    }
    expect(hfToGgufTensorName('model.layers.0.mlp.experts.3.up_proj.weight')).toBeNull();
  });
});

describe('the q/k row permutation', () => {
  it('ropePermutationSource: the worked example', () => {
    expect([...ropePermutationSource(8, 2)]).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    expect(() => ropePermutationSource(6, 4)).toThrow('do not split into 4 heads');
    expect(() => ropePermutationSource(6, 2)).toThrow('of an even size');
  });

  it("permuteRopeRows equals llama.cpp's reshape/swapaxes definition; unpermute equals HF's from Meta order", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 4 }),
        (heads, halfD, cols) => {
          const rows = heads * 2 * halfD;
          const w = Float64Array.from({ length: rows * cols }, () => Math.random());
          const ours = bytesF64(permuteRopeRows(f64Bytes(w), 8 * cols, heads));
          expect(ours).toEqual(llamaCppPermute(w, rows, cols, heads));
          // llama.cpp's permute of an HF matrix is the Meta / llama2.c order, whose HF form is unpermute
          expect(bytesF64(unpermuteRopeRows(f64Bytes(ours), 8 * cols, heads))).toEqual(w);
          expect(hfFromMetaPermute(ours, rows, cols, heads)).toEqual(w);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('permute ∘ unpermute = identity = unpermute ∘ permute, on rows of any byte width', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 40 }),
        fc.nat(),
        (heads, halfD, rowBytes, seed) => {
          const b = Uint8Array.from({ length: heads * 2 * halfD * rowBytes }, (_, i) => (i * 131 + seed) & 255);
          expect(permuteRopeRows(unpermuteRopeRows(b, rowBytes, heads), rowBytes, heads)).toEqual(b);
          expect(unpermuteRopeRows(permuteRopeRows(b, rowBytes, heads), rowBytes, heads)).toEqual(b);
        },
      ),
      { numRuns: 300 },
    );
    expect(() => unpermuteRopeRows(new Uint8Array(10), 3, 1)).toThrow('are not whole rows of 3 bytes');
  });

  it('applies to llama q/k only, with n_head for q and n_head_kv for k', () => {
    const spec = { numHeads: 8, numKvHeads: 2 };
    expect(ggufToHfChange('llama', 'blk.0.attn_q.weight', spec)).toEqual({ kind: 'unpermuteRope', heads: 8 });
    expect(ggufToHfChange('llama', 'blk.0.attn_k.weight', spec)).toEqual({ kind: 'unpermuteRope', heads: 2 });
    expect(ggufToHfChange('llama', 'blk.0.attn_k.bias', spec)).toEqual({ kind: 'unpermuteRope', heads: 2 });
    expect(ggufToHfChange('llama', 'blk.0.attn_v.weight', spec)).toEqual({ kind: 'none' });
    for (const arch of ['qwen2', 'qwen3', 'deepseek2'] as const) {
      expect(ggufToHfChange(arch, 'blk.0.attn_q.weight', spec)).toEqual({ kind: 'none' });
    }
    expect(ggufToHfChange('gemma', 'blk.0.attn_norm.weight', spec)).toEqual({ kind: 'minusOne' });
    expect(ggufToHfChange('gemma', 'output_norm.weight', spec)).toEqual({ kind: 'minusOne' });
    expect(ggufToHfChange('gemma', 'blk.0.attn_q.weight', spec)).toEqual({ kind: 'none' });
  });
});

describe('GGUF tensors → HF tensors on the real files', () => {
  it('kjv-gqa-F16.gguf gives the shipped F16 safetensors byte for byte (q/k unpermuted)', () => {
    const st = kjvSafetensors();
    const f = gguf('kjv-gqa-F16.gguf');
    const spec = ggufModelSpec(f);
    let permuted = 0;
    for (const name of f.tensors.keys()) {
      const t = ggufTensorToHf(f, 'llama', name, spec);
      const s = st.tensors.get(t.name)!;
      expect(t.shape).toEqual(s.shape);
      expect(s.dtype).toBe('F16');
      if (t.gguf.dims.length === 2) {
        expect(t.type).toBe('F16');
        // Buffer.compare: toEqual on half a million bytes takes seconds
        expect(Buffer.compare(t.bytes, st.bytes.subarray(s.begin, s.end))).toBe(0);
      } else {
        // llama.cpp keeps 1-D norms in F32: the same values
        expect(t.type).toBe('F32');
        expect(readGgufTensorF32(f, name)).toEqual(readTensorF32(st, t.name));
      }
      if (/attn_[qk]\.weight/.test(name)) {
        permuted++;
        // and the raw GGUF rows are not the HF ones: the permutation is real
        expect(Buffer.compare(f.bytes.subarray(t.gguf.begin, t.gguf.end), t.bytes)).not.toBe(0);
      }
    }
    expect(permuted).toBe(8);
  });

  it('kjv-gqa-F32.gguf holds the F16 values exactly, in HF order after unpermuting', () => {
    const st = kjvSafetensors();
    const f = gguf('kjv-gqa-F32.gguf');
    const spec = ggufModelSpec(f);
    for (const name of ['blk.0.attn_q.weight', 'blk.3.attn_k.weight', 'blk.1.ffn_down.weight', 'token_embd.weight']) {
      const t = ggufTensorToHf(f, 'llama', name, spec);
      expect(f32Of(t.bytes)).toEqual(readTensorF32(st, t.name));
    }
  });

  it('kjv-gqa-Q8_0.gguf: unpermuting whole Q8_0 rows gives the HF matrices within Q8_0 error', () => {
    const st = kjvSafetensors();
    const f = gguf('kjv-gqa-Q8_0.gguf');
    const spec = ggufModelSpec(f);
    for (const name of ['blk.0.attn_q.weight', 'blk.2.attn_k.weight']) {
      const t = ggufTensorToHf(f, 'llama', name, spec);
      expect(t.type).toBe('Q8_0');
      const hf = readTensorF32(st, t.name);
      expect(relL2(dequantQ8(t.bytes), hf)).toBeLessThan(1e-2);
      expect(relL2(dequantQ8(f.bytes.subarray(t.gguf.begin, t.gguf.end)), hf)).toBeGreaterThan(0.5);
    }
  });

  it("stories260K-F32.gguf q/k equal llama2.c's rows; unpermuted, they equal HF's permute of them", () => {
    const f = gguf('stories260K-F32.gguf');
    const bin = readFileSync(`${REALWORLD}stories260K/stories260K.bin`);
    const [dim, , layers, heads, kvHeads, vocab] = new Int32Array(
      bin.buffer.slice(bin.byteOffset, bin.byteOffset + 28),
    );
    const kvDim = (dim / heads) * kvHeads;
    const floats = new Float32Array(bin.buffer.slice(bin.byteOffset + 28, bin.byteOffset + bin.length));
    const wqAt = vocab * dim + layers * dim;
    const wkAt = wqAt + layers * dim * dim;
    const spec = ggufModelSpec(f);
    for (let l = 0; l < layers; l++) {
      const wq = floats.subarray(wqAt + l * dim * dim, wqAt + (l + 1) * dim * dim);
      const wk = floats.subarray(wkAt + l * kvDim * dim, wkAt + (l + 1) * kvDim * dim);
      expect(readGgufTensorF32(f, `blk.${l}.attn_q.weight`)).toEqual(wq);
      expect(readGgufTensorF32(f, `blk.${l}.attn_k.weight`)).toEqual(wk);
      const q = f32Of(ggufTensorToHf(f, 'llama', `blk.${l}.attn_q.weight`, spec).bytes);
      const k = f32Of(ggufTensorToHf(f, 'llama', `blk.${l}.attn_k.weight`, spec).bytes);
      expect([...q]).toEqual([...hfFromMetaPermute(Float64Array.from(wq), dim, dim, heads)]);
      expect([...k]).toEqual([...hfFromMetaPermute(Float64Array.from(wk), kvDim, dim, kvHeads)]);
    }
  });

  it('gemma norms come back minus one (F32 and F16)', () => {
    const f16 = Uint16Array.from([1.5, 2, 0.25].map(f32ToF16Bits));
    const file = parseGguf(
      writeGguf({
        metadata: [],
        tensors: [
          [
            'blk.0.attn_norm.weight',
            { type: 'F32', dims: [3], data: new Uint8Array(new Float32Array([1.5, 2, 0.25]).buffer) },
          ],
          ['output_norm.weight', { type: 'F16', dims: [3], data: new Uint8Array(f16.buffer) }],
        ],
      }),
    );
    const spec = { numHeads: 1, numKvHeads: 1 };
    expect([...f32Of(ggufTensorToHf(file, 'gemma', 'blk.0.attn_norm.weight', spec).bytes)]).toEqual([0.5, 1, -0.75]);
    const out = ggufTensorToHf(file, 'gemma', 'output_norm.weight', spec);
    expect(out.name).toBe('model.norm.weight');
    const bits = new Uint16Array(out.bytes.buffer.slice(0));
    expect([...bits].map(f16BitsToF32)).toEqual([0.5, 1, -0.75]);
  });
});
