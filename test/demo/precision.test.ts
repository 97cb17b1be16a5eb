/**
 * The demo's "Precision and memory" logic and its GGUF path (no DOM, no GPU): the bytes of each
 * weight format for a model, the weights past an adapter's binding split by rows (never refused for
 * it: only MLA's kv_b_proj past one binding is), a load that runs out of memory shown as such, the KV
 * dtypes with their bytes per token, a GGUF file priced from its header alone (picked file, or a URL
 * whose server honours Range or ignores it), and the KV-bill page's weight columns and window saving.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { classifyError, describeModel, ggufOf, readModelPlan } from '../../demo/engineClient';
import { fileRangeReader, readGgufPrefix, urlRangeReader } from '../../demo/ggufHeader';
import { dimsFromConfig, weightColumns, windowSaving } from '../../demo/kvCost';
import { kvTotals, localSnapshot } from '../../demo/kvGrid';
import {
  fittingChoices,
  kvChoices,
  planFromSpec,
  splitNote,
  weightChoices,
  weightCost,
  weightNote,
  weightOptionLabel,
} from '../../demo/precision';
import type { KvSnapshot } from '../../src/engine/types';
import { KV_DTYPES } from '../../src/gpu/dtype';
import { parseConfig } from '../../src/model/config';
import { runtimeTensors } from '../../src/model/expectedTensors';
import { planRowShards } from '../../src/kernels/rowShards';
import { matrixBufferBytes } from '../../src/kernels/matmulQuant';
import { weightBytesAt } from '../../src/model/weights';
import { parseGguf, writeGguf } from '../../src/sources/gguf';

const root = path.resolve(__dirname, '../..');
const kjvConfig = JSON.parse(readFileSync(path.join(root, 'models/kjv-gqa/config.json'), 'utf8'));
const GGUF_DIR = path.resolve(root, '../shared/realworld/gguf');
const GEMMA3 = path.resolve(root, '../shared/realworld/gemma-3-1b-it/config.json');
const big = { maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 30 };

describe('precision menu: weight formats', () => {
  const spec = parseConfig(kjvConfig);
  const plan = planFromSpec(spec);

  it('prices q4, q8, f16 and f32 with the runtime rule, smallest first', () => {
    expect(weightChoices(plan)).toEqual(['q4', 'q8', 'f16', 'f32']);
    for (const dtype of ['q4', 'q8', 'f16', 'f32'] as const) {
      expect(weightCost(plan, dtype, big)).toMatchObject({
        bytes: weightBytesAt(runtimeTensors(spec), dtype),
        problem: null,
        split: null,
      });
    }
    const bytes = weightChoices(plan).map((c) => weightCost(plan, c, big).bytes);
    expect(bytes).toEqual([760064, 1136896, 2033920, 4067840]);
    expect(weightOptionLabel(weightCost(plan, 'q4', big))).toBe('q4 · 742 KiB');
    expect(weightNote(plan, weightCost(plan, 'q4', big))).toBe(
      '1.02M parameters: 742 KiB on the GPU in q4 (4-bit blocks, embedding q8)',
    );
    expect(plan.parameters).toBe(1016960);
  });

  it('splits a weight past the binding into row shards, as the runtime does, and refuses no format for it', () => {
    const small = { maxStorageBufferBindingSize: 262144, maxBufferSize: 2 ** 30 };
    const f16 = weightCost(plan, 'f16', small);
    expect(f16.problem).toBeNull();
    // The embedding [2048, 128] f16 is 512 KiB: 1024 rows (256 KiB) a shard, as weights.ts plans it.
    const shards = planRowShards(2048, (r) => matrixBufferBytes('f16', r, 128), 262144, 'embed');
    expect(shards).toEqual([
      { firstRow: 0, rows: 1024 },
      { firstRow: 1024, rows: 1024 },
    ]);
    expect(f16.split).toEqual({
      limit: 262144,
      tensors: 1,
      buffers: 2,
      largest: { name: 'model.embed_tokens.weight', bytes: 524288, buffers: 2 },
    });
    expect(weightNote(plan, f16)).toBe(
      "1.02M parameters: 1.94 MiB on the GPU in f16 (half precision); past this GPU's 256 KiB binding, " +
        'model.embed_tokens.weight (512 KiB) is split by rows into 2 buffers',
    );
    // q4 keeps the embedding at q8: 2048 packed rows of 144 bytes (4 blocks: 128 codes, their scales
    // padded to 16): 2 shards too.
    expect(weightCost(plan, 'q4', small).split?.largest).toEqual({
      name: 'model.embed_tokens.weight',
      bytes: 294912,
      buffers: 2,
    });
    expect(fittingChoices(plan, small).map((c) => c.choice)).toEqual(['q4', 'q8', 'f16', 'f32']);
    expect(weightOptionLabel(weightCost(plan, 'f16', small))).toBe('f16 · 1.94 MiB');
    // Several weights past a 128 KiB buffer limit at f32 (maxBufferSize counts as the binding does): the
    // embedding (1 MiB) in 8 shards, each layer's gate, up and down projections (192 KiB) in 2.
    const buffer = { maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 131072 };
    const f32 = weightCost(plan, 'f32', buffer);
    expect(f32.problem).toBeNull();
    expect(f32.split).toEqual({
      limit: 131072,
      tensors: 13,
      buffers: 32,
      largest: { name: 'model.embed_tokens.weight', bytes: 1048576, buffers: 8 },
    });
    expect(splitNote(f32.split)).toBe(
      "; past this GPU's 128 KiB binding, 13 weights are split by rows into 32 buffers " +
        '(the largest, model.embed_tokens.weight, 1 MiB, into 8)',
    );
    // A matrix of which not even 64 rows fit cannot be split: that is refused, as the runtime refuses it.
    expect(weightCost(plan, 'f32', { maxStorageBufferBindingSize: 65536, maxBufferSize: 2 ** 30 }).problem).toBe(
      'model.layers.0.mlp.down_proj.weight [128, 384] cannot be split by rows to fit: 64 of its rows take 96 KiB ' +
        'in f32, and this GPU binds at most 64 KiB at once (maxStorageBufferBindingSize)',
    );
    expect(weightCost(plan, 'f16', big).split).toBeNull();
    expect(splitNote(null)).toBe('');
  });

  it("refuses MLA's kv_b_proj past one binding (the head matmul binds it whole), naming it and both sizes", () => {
    const mla = JSON.parse(readFileSync(path.join(root, 'models/kjv-mla/config.json'), 'utf8'));
    // DeepSeek-V2-Lite's MLA shape: 16 heads, kv_lora_rank 512, nope and v 128: kv_b_proj [4096, 512].
    const lite = { ...mla, num_attention_heads: 16, num_key_value_heads: 16, kv_lora_rank: 512 };
    const mlaPlan = planFromSpec(parseConfig({ ...lite, qk_nope_head_dim: 128, v_head_dim: 128 }));
    const twoMiB = { maxStorageBufferBindingSize: 2 * 2 ** 20, maxBufferSize: 2 ** 30 };
    for (const dtype of ['q4', 'q8', 'f16'] as const) {
      expect(weightCost(mlaPlan, dtype, twoMiB).problem).toBe(
        "model.layers.0.self_attn.kv_b_proj.weight [4096, 512] takes 4 MiB in f16, and MLA's head matmul reads " +
          'it whole, while this GPU binds at most 2 MiB at once (maxStorageBufferBindingSize)',
      );
    }
    expect(weightOptionLabel(weightCost(mlaPlan, 'q4', twoMiB))).toMatch(/^q4 · [\d.]+ MiB · too big$/);
    expect(fittingChoices(mlaPlan, twoMiB)).toEqual([]);
    // 4 MiB binds: kv_b_proj fits, f16 runs; f32 doubles it and is refused.
    const fourMiB = { maxStorageBufferBindingSize: 4 * 2 ** 20, maxBufferSize: 2 ** 30 };
    expect(fittingChoices(mlaPlan, fourMiB).map((c) => c.choice)).toEqual(['q4', 'q8', 'f16']);
    expect(weightCost(mlaPlan, 'f32', fourMiB).problem).toContain('takes 8 MiB in f32');
    // A GGUF file: its attn_kv_b (any type: the runtime reads it at f16), or a newer converter's
    // attn_k_b [H, C, N] + attn_v_b [H, V, C] pair, which the runtime merges into the same [4096, 512].
    const stored = (tensors: { name: string; type: string; shape: number[] }[]) => {
      const largest = { name: 'token_embd.weight', bytes: 1 };
      const file = { bytes: 1, largest, types: {}, fileName: 'lite.gguf', hasChatTemplate: false, tensors };
      return weightCost(planFromSpec(mlaPlan.spec, file), 'stored', twoMiB).problem;
    };
    expect(stored([{ name: 'blk.0.attn_kv_b.weight', type: 'Q8_0', shape: [4096, 512] }])).toBe(
      "blk.0.attn_kv_b.weight [4096, 512] takes 4 MiB in f16, and MLA's head matmul reads it whole, while this " +
        'GPU binds at most 2 MiB at once (maxStorageBufferBindingSize)',
    );
    const pair = [
      { name: 'blk.1.attn_k_b.weight', type: 'F16', shape: [16, 512, 128] },
      { name: 'blk.1.attn_v_b.weight', type: 'F16', shape: [16, 128, 512] },
    ];
    expect(stored(pair)).toMatch(/^blk\.1\.attn_kv_b\.weight \[4096, 512\] takes 4 MiB in f16,/);
    expect(stored(pair.map((t) => ({ ...t, shape: [4, ...t.shape.slice(1)] })))).toBeNull(); // 4 heads: 1 MiB
    // The tiny kjv-mla's kv_b_proj [256, 32] is 16 KiB: on a 256 KiB binding only its embedding splits.
    const tiny = planFromSpec(parseConfig(mla));
    const small = { maxStorageBufferBindingSize: 262144, maxBufferSize: 2 ** 30 };
    expect(weightCost(tiny, 'f16', small)).toMatchObject({ problem: null, split: { tensors: 1, buffers: 2 } });
  });

  it("a load that runs out of device memory is a memory failure, shown with the runtime's message", () => {
    const message =
      'kjv: tensor "model.embed_tokens.weight" [151936, 896] f16 (rows 0..50687 of 151936): 90832896 bytes ' +
      "could not be allocated (weight.x: out of GPU memory allocating 90832896 bytes); the model's weights " +
      "take 988000000 bytes, 0 were allocated before it: the model does not fit this device's memory";
    const e = Object.assign(new Error(message), { name: 'OutOfMemoryError' });
    expect(classifyError(e)).toEqual({ kind: 'memory', message });
    // The same message quoting the adapter's maxBufferSize stays a memory failure.
    const quoting = Object.assign(new Error(message.replace('out of GPU memory', 'exceeds maxBufferSize')), {
      name: 'OutOfMemoryError',
    });
    expect(classifyError(quoting).kind).toBe('memory');
  });

  it('offers every KV dtype the runtime has, with its bytes per token', () => {
    const choices = kvChoices(spec);
    expect(choices.map((c) => c.dtype).sort()).toEqual([...KV_DTYPES].sort());
    expect(choices.find((c) => c.dtype === 'f16')!.bytesPerToken).toBe(512); // 4 layers x 2 x 2 x 16 x 2 bytes
    expect(choices.find((c) => c.dtype === 'f32')!.bytesPerToken).toBe(1024);
    // Smallest first once every dtype is priced (q4, q8: rows of codes + f16 scales).
    expect(choices.map((c) => c.bytesPerToken)).toEqual(
      [...choices.map((c) => c.bytesPerToken!)].sort((a, b) => a - b),
    );
    expect(kvChoices(null).map((c) => c.dtype)).toEqual([...KV_DTYPES]);
    expect(choices.every((c) => c.problem === null)).toBe(true); // d 16: q4 too
    // q4 on d 8 heads (stories260K) is refused with the runtime's own reason (kvDtypeProblem).
    const d8 = kvChoices({ ...spec, headDim: 8, headDimV: 8 });
    expect(d8.find((c) => c.dtype === 'q4')!.problem).toMatch(/head dim 8 leaves a last group of 8/);
    expect(d8.filter((c) => c.problem !== null).map((c) => c.dtype)).toEqual(['q4']);
  });
});

describe.skipIf(!existsSync(GGUF_DIR))('precision menu: a GGUF file, from its header alone', () => {
  const file = path.join(GGUF_DIR, 'kjv-gqa-Q4_0.gguf');
  const bytes = () => new Uint8Array(readFileSync(file));

  it('a picked .gguf: the spec of its metadata, its tensors as stored, one choice "as stored"', async () => {
    const whole = bytes();
    const picked = new File([whole], 'kjv-gqa-Q4_0.gguf');
    const prefix = await readGgufPrefix(fileRangeReader(picked), picked.name);
    expect(prefix.bytesRead).toBe(256 * 1024); // of 770848: the header is in the first try
    expect([...prefix.header.tensors.keys()]).toEqual([...parseGguf(whole).tensors.keys()]);

    const choice = { kind: 'files' as const, files: [picked], name: 'picked files' };
    expect(ggufOf(choice)?.name).toBe('kjv-gqa-Q4_0.gguf');
    const plan = await readModelPlan(choice);
    const { numLayers, hiddenSize, numHeads, numKvHeads, headDim, vocabSize, intermediateSize } =
      parseConfig(kjvConfig);
    expect(plan.spec).toMatchObject({
      numLayers,
      hiddenSize,
      numHeads,
      numKvHeads,
      headDim,
      vocabSize,
      intermediateSize,
    });
    expect(plan.gguf!.types).toEqual({ Q4_0: 28, F32: 9, Q8_0: 1 });
    let tensorBytes = 0;
    for (const t of parseGguf(whole).tensors.values()) tensorBytes += t.byteLength;
    expect(plan.gguf!.bytes).toBe(tensorBytes);
    expect(weightChoices(plan)).toEqual(['stored']);
    const cost = weightCost(plan, 'stored', big);
    expect(cost.bytes).toBe(tensorBytes);
    expect(weightOptionLabel(cost)).toMatch(/^as stored · \d+ KiB$/);
    expect(weightNote(plan, cost)).toMatch(
      /^kjv-gqa-Q4_0\.gguf: its weights are already quantized \(GGUF Q4_0 28, F32 9, Q8_0 1\) and load as .* \d+ KiB/,
    );
    // On a 256 KiB binding the Q8_0 embedding (288 KiB in packed rows) loads in 2 row shards: not refused.
    const small = { maxStorageBufferBindingSize: 262144, maxBufferSize: 2 ** 30 };
    const stored = weightCost(plan, 'stored', small);
    expect(stored.problem).toBeNull();
    expect(stored.split).toEqual({
      limit: 262144,
      tensors: 1,
      buffers: 2,
      largest: { name: 'token_embd.weight', bytes: 294912, buffers: 2 },
    });
    expect(weightNote(plan, stored)).toMatch(
      /\d+ KiB on the GPU; past this GPU's 256 KiB binding, token_embd\.weight /,
    );
    expect(weightNote(plan, stored)).toMatch(/ token_embd\.weight \(288 KiB\) is split by rows into 2 buffers$/);
    const info = await describeModel(choice, 'f16', plan);
    expect(info).toMatchObject({ attention: 'gqa', numLayers: 4, kvBytesPerToken: 512, parameters: 1016960 });
    expect(info.hasChatTemplate).toBe(parseGguf(whole).metadata.has('tokenizer.chat_template'));
  });

  it('a URL: a Range request, or the start of a body whose server ignores Range', async () => {
    const whole = bytes();
    const requests: string[] = [];
    let chunksRead = 0;
    const body = () =>
      new ReadableStream<Uint8Array>({
        pull(c) {
          const at = chunksRead++ * 65536;
          if (at >= whole.length) c.close();
          else c.enqueue(whole.slice(at, at + 65536));
        },
      });
    const ignoring: typeof fetch = async (_url, init) => {
      requests.push(new Headers(init?.headers).get('range') ?? '');
      chunksRead = 0;
      return new Response(body(), { status: 200, headers: { 'content-length': String(whole.length) } });
    };
    const a = await readGgufPrefix(urlRangeReader('http://x/m.gguf', ignoring), 'm.gguf');
    expect(requests).toEqual(['bytes=0-262143']);
    expect(chunksRead).toBeLessThanOrEqual(5); // 4 chunks of 64 KiB, then cancelled: not 12
    expect(a.fileSize).toBe(whole.length);
    const honouring: typeof fetch = async (_url, init) => {
      const [, from, to] = /bytes=(\d+)-(\d+)/.exec(new Headers(init?.headers).get('range')!)!.map(Number);
      const part = whole.slice(from, to + 1);
      const range = `bytes ${from}-${from + part.length - 1}/${whole.length}`;
      return new Response(part, { status: 206, headers: { 'content-range': range } });
    };
    const b = await readGgufPrefix(urlRangeReader('http://x/m.gguf', honouring), 'm.gguf');
    expect(b.fileSize).toBe(whole.length);
    expect([...b.header.metadata.keys()]).toEqual([...a.header.metadata.keys()]);
    const notFound: typeof fetch = async () => new Response('no', { status: 404, statusText: 'Not Found' });
    await expect(readGgufPrefix(urlRangeReader('http://x/m.gguf', notFound), 'm.gguf')).rejects.toThrow(
      'http://x/m.gguf: HTTP 404 Not Found',
    );
  });

  it('a hub repo id with a GGUF path, or a .gguf URL, names the file; a folder names none', () => {
    expect(ggufOf({ kind: 'hub', repoId: 'Qwen/Qwen2.5-0.5B-Instruct-GGUF/q4/qwen2.5-0.5b-q4_0.gguf' })?.name).toBe(
      'qwen2.5-0.5b-q4_0.gguf',
    );
    expect(ggufOf({ kind: 'hub', repoId: 'HuggingFaceTB/SmolLM2-135M-Instruct' })).toBeNull();
    expect(ggufOf({ kind: 'url', url: './m/stories260K-F32.gguf' }, 'http://h/index.html')?.name).toBe(
      'stories260K-F32.gguf',
    );
    expect(ggufOf({ kind: 'url', url: './models/kjv-gqa/' }, 'http://h/index.html')).toBeNull();
    const both = [new File(['{}'], 'config.json'), new File([''], 'a.gguf')];
    expect(ggufOf({ kind: 'files', files: both, name: 'x' })).toBeNull();
  });
});

describe('readGgufPrefix', () => {
  it('grows the prefix as the header asks and reads rope_freqs as one more range', async () => {
    const ropeFreqs = Float32Array.from({ length: 16 }, (_, i) => 1 + i / 7);
    const vocab = Array.from({ length: 20000 }, (_, i) => `token-${i}-${'x'.repeat(i % 13)}`); // ~420 KB of header
    const file = writeGguf({
      metadata: [
        ['general.architecture', { type: 'string', value: 'llama' }],
        ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: vocab }],
      ],
      tensors: [
        ['rope_freqs.weight', { type: 'F32', dims: [16], data: new Uint8Array(ropeFreqs.buffer) }],
        ['x.weight', { type: 'F32', dims: [4], data: new Uint8Array(16) }],
      ],
    });
    const ranges: string[] = [];
    const read = fileRangeReader(new Blob([file.slice()]));
    const got = await readGgufPrefix(async (b, e) => {
      ranges.push(`${b}-${e}`);
      return read(b, e);
    }, 'synthetic.gguf');
    // 256 KiB, doubled while the header is longer (its reader asks for at least the next field), then rope_freqs.
    const rope = got.header.tensors.get('rope_freqs.weight')!;
    expect(ranges).toEqual(['0-262144', '0-524288', `${rope.begin}-${rope.end}`]);
    expect(got.header.metadata.get('tokenizer.ggml.tokens')!.value).toHaveLength(20000);
    expect([...got.ropeFreqs!]).toEqual([...ropeFreqs]);
    await expect(readGgufPrefix(fileRangeReader(new Blob([file.slice(0, 1000)])), 'cut.gguf')).rejects.toThrow(
      /cut\.gguf/,
    );
  });
});

describe('KV-bill page: weight columns and the sliding-window saving', () => {
  it('weights at every format from a config, estimates for a parameter count', () => {
    const d = dimsFromConfig(kjvConfig);
    expect(weightColumns(d).map((c) => [c.dtype, c.bytes, c.approx])).toEqual([
      ['f32', 4067840, false],
      ['f16', 2033920, false],
      ['q8', 1136896, false],
      ['q4', 760064, false],
    ]);
    const preset = weightColumns({ ...d, spec: undefined, parameters: 1e9 });
    expect(preset.map((c) => [c.dtype, c.bytes, c.approx])).toEqual([
      ['f32', 4e9, true],
      ['f16', 2e9, true],
      ['q8', 1.0625e9, true],
      ['q4', 5.625e8, true],
    ]);
    expect(windowSaving(d.spec, 4096)).toBeNull(); // no sliding layer
  });

  it.skipIf(!existsSync(GEMMA3))('gemma-3-1b at 32K: 832 MiB with every page, 139 MiB with windows freed', () => {
    const d = dimsFromConfig(JSON.parse(readFileSync(GEMMA3, 'utf8')));
    const s = windowSaving(d.spec, 32768)!;
    expect(s.allPagesBytes).toBe(832 * 2 ** 20);
    expect((s.scheduledBytes / 2 ** 20).toFixed(1)).toBe('139.0');
    expect(s).toMatchObject({ window: 512, slidingLayers: 22, numLayers: 26, slidingPagesHeld: 32 });
    expect(s.ratio).toBeCloseTo(0.167, 3);
  });
});

describe('live KV grid: the sliding-window pool', () => {
  it('counts the local pool beside the global one and draws it as a snapshot of its own', () => {
    const pages = (owner: number[]) => ({
      numPages: owner.length,
      bytesPerPage: 1024,
      owner: Int32Array.from(owner),
      refCount: Uint8Array.from(owner.map((o) => (o >= 0 ? 1 : 0))),
      cached: new Uint8Array(owner.length),
      fill: Uint8Array.from(owner.map((o) => (o >= 0 ? 16 : 0))),
    });
    const snap: KvSnapshot = {
      pageSize: 16,
      ...pages([3, 3, 3, -1]),
      requests: [{ requestId: 3, index: 0, label: 'a', tokens: 40, pages: 3 }],
      local: {
        ...pages([-1, 3, 3]),
        window: 16,
        requests: [{ requestId: 3, index: 0, label: 'a', tokens: 40, pages: 2 }],
      },
    };
    const t = kvTotals(snap);
    expect(t.usedPages).toBe(3);
    expect(t.local).toEqual({ usedPages: 2, numPages: 3, usedBytes: 2048, window: 16 });
    const local = localSnapshot(snap)!;
    expect(local.pageSize).toBe(16);
    expect(kvTotals(local).usedPages).toBe(2);
    expect(localSnapshot({ ...snap, local: undefined })).toBeNull();
  });
});
