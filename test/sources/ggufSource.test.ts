/**
 * GGUF models through the sources and the HF view (no GPU): a .gguf file, a folder holding one, a
 * URL (cached only after it passes the strict parser, a bad header stopped early) and picked files
 * all load; ggufModelFiles gives the config, tokenizer, chat template and HF-named tensors that
 * the safetensors folder of the same model gives, value for value (llama q/k rows un-permuted);
 * block tensors read dequantized; other types are refused naming the tensor and its type.
 */
import { createServer, type Server } from 'node:http';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/model/config';
import { expectedTensors } from '../../src/model/expectedTensors';
import { dequantizeGguf } from '../../src/model/ggufDequantize';
import {
  GGUF_GPU_FORMATS,
  ggufDefaultWeightDtype,
  ggufHfTensor,
  ggufModelFiles,
  ggufModelOf,
  ggufNativeTensors,
} from '../../src/model/ggufModelFiles';
import { checkWeights } from '../../src/model/weights';
import {
  diskCache,
  filesSource,
  folderSource,
  hubSource,
  loadModelFiles,
  resolveSource,
  urlSource,
  type ModelFiles,
} from '../../src/sources/modelSource';
import { relL2 } from '../../src/reference/attention';
import { readTensorF32 } from '../../src/sources/safetensors';
import { tokenizerFromModelFiles } from '../../src/tokenizer/tokenizer';

const GGUF = join(__dirname, '../../../shared/realworld/gguf');
const KJV = join(__dirname, '../../models/kjv-gqa');
const haveData = existsSync(join(GGUF, 'kjv-gqa-F32.gguf')) && existsSync(KJV);
const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

/** The first index where a and b differ (bit patterns; lengths must match), or -1. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

async function ggufFiles(name: string): Promise<ModelFiles> {
  return ggufModelFiles(await loadModelFiles(folderSource(join(GGUF, name))));
}

describe.skipIf(!haveData)('GGUF files read as the HF folder they came from', () => {
  it('kjv-gqa F32 and F16: config, spec and every tensor equal the safetensors folder, value for value', async () => {
    const folder = await loadModelFiles(folderSource(KJV), { needTokenizer: true });
    const spec = parseConfig(folder.config, 'kjv-gqa');
    const expected = expectedTensors(spec);
    for (const name of ['kjv-gqa-F32.gguf', 'kjv-gqa-F16.gguf']) {
      const files = await ggufFiles(name);
      const ggufSpec = parseConfig(files.config, name);
      expect(ggufSpec).toEqual(ggufModelOf(files)!.spec);
      for (const k of ['hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'vocabSize'] as const) {
        expect(ggufSpec[k], `${name} ${k}`).toBe(spec[k]);
      }
      expect(ggufSpec.tieWordEmbeddings).toBe(spec.tieWordEmbeddings);
      expect(ggufSpec.rope).toEqual(spec.rope);
      expect(checkWeights(files, expected)).toEqual([]);
      expect(files.tensorNames().sort()).toEqual([...expected.keys()].sort());
      for (const tensor of expected.keys()) {
        const got = files.tensor(tensor)!;
        const want = folder.tensor(tensor)!;
        expect(got.info.shape, tensor).toEqual(want.info.shape);
        // F16 checkpoint values are exact in F32 and F16: any row out of place is a mismatch.
        expect(
          firstDifference(readTensorF32(got.file, tensor), readTensorF32(want.file, tensor)),
          `${name} ${tensor}`,
        ).toBe(-1);
      }
    }
  });

  it('kjv-gqa: the tokenizer and chat template come from the GGUF metadata', async () => {
    const files = await ggufFiles('kjv-gqa-F16.gguf');
    const tok = tokenizerFromModelFiles(files);
    expect(tok.encode('Once upon a time')).toEqual([0, 81, 112, 349, 426, 261, 784]);
    expect(tok.encode('In the beginning')).toEqual([0, 1169, 260, 1803, 1253]);
    expect(files.chatTemplateFile).toBe('tokenizer.chat_template');
    const folder = await loadModelFiles(folderSource(KJV), { needTokenizer: true });
    const ref = tokenizerFromModelFiles(folder);
    const chat = [{ role: 'user' as const, content: 'Who begat Enos?' }];
    expect(tok.applyChatTemplate(chat, { addGenerationPrompt: true })).toBe(
      ref.applyChatTemplate(chat, { addGenerationPrompt: true }),
    );
    expect(tok.eosTokenIds).toEqual(ref.eosTokenIds);
  });

  it('stories260K: SentencePiece tokenizer gives run.c prompt ids', async () => {
    const files = await ggufFiles('stories260K-F32.gguf');
    expect(tokenizerFromModelFiles(files).encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
  });

  it('block tensors (Q8_0, Q4_0, Q5_0) read dequantized, near the F32 file; other types are refused', async () => {
    const f32 = await ggufFiles('kjv-gqa-F32.gguf');
    const name = 'model.layers.1.self_attn.k_proj.weight'; // permuted rows: un-permuted as whole blocks
    const want = readTensorF32(f32.tensor(name)!.file, name);
    for (const [file, tol] of [
      ['kjv-gqa-Q8_0.gguf', 0.01],
      ['kjv-gqa-Q4_0.gguf', 0.15],
      ['kjv-gqa-Q4_K_M.gguf', 0.08],
    ] as const) {
      const t = (await ggufFiles(file)).tensor(name)!;
      expect(t.info.dtype).toBe('F32');
      expect(relL2(readTensorF32(t.file, name), want), file).toBeLessThan(tol);
    }
    // The block bytes as stored (HF row order) are what the F32 view dequantizes.
    const q8 = await ggufFiles('kjv-gqa-Q8_0.gguf');
    const blocks = ggufHfTensor(q8, name)!;
    expect([blocks.type, GGUF_GPU_FORMATS[blocks.type], blocks.shape]).toEqual(['Q8_0', 'q8', [32, 128]]);
    expect(blocks.bytes.length).toBe((32 * 128 * 34) / 32);
    expect(firstDifference(dequantizeGguf('Q8_0', blocks.bytes), readTensorF32(q8.tensor(name)!.file, name))).toBe(-1);
    // IQ4_NL blocks have Q4_0's size (32 values, 18 bytes): one tensor relabelled keeps the file valid.
    const bytes = new Uint8Array(readFileSync(join(GGUF, 'kjv-gqa-Q4_0.gguf')));
    const tensorName = new TextEncoder().encode('blk.0.attn_q.weight');
    let at = -1;
    for (let i = 0; at < 0 && i < bytes.length; i++) if (tensorName.every((b, j) => bytes[i + j] === b)) at = i;
    const typeAt = at + tensorName.length + 4 + 2 * 8; // name, n_dims u32, dims u64 x 2, then the type
    expect(new DataView(bytes.buffer).getUint32(typeAt, true)).toBe(2); // Q4_0
    new DataView(bytes.buffer).setUint32(typeAt, 20, true); // IQ4_NL
    const dir = tmp('webattn-gguf-iq-');
    writeFileSync(join(dir, 'iq.gguf'), bytes);
    const files = ggufModelFiles(await loadModelFiles(folderSource(join(dir, 'iq.gguf'))));
    const spec = parseConfig(files.config, 'iq');
    expect(() => checkWeights(files, expectedTensors(spec))).toThrow(
      new RegExp(
        'iq\\.gguf: tensor "blk\\.0\\.attn_q\\.weight" \\(model\\.layers\\.0\\.self_attn\\.q_proj\\.weight\\) ' +
          'is IQ4_NL; ' +
          'webattn loads GGUF tensors of the types F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K',
      ),
    );
  });

  it('every file of shared/realworld/gguf loads, with the weight dtype that keeps its blocks', async () => {
    const defaults: Record<string, string | null> = {};
    for (const name of readdirSync(GGUF).filter((f) => f.endsWith('.gguf'))) {
      const files = await ggufFiles(name);
      expect(files.tensorNames().length, name).toBeGreaterThan(0);
      expect(files.tokenizer, name).not.toBeNull();
      defaults[name.replace('.gguf', '')] = ggufDefaultWeightDtype(files);
    }
    expect(defaults).toEqual({
      'kjv-gqa-F16': null,
      'kjv-gqa-F32': null,
      'kjv-gqa-Q4_0': 'q4', // Q4_0 matrices, token_embd Q8_0
      'kjv-gqa-Q4_K_M': 'q8', // norms f16; its Q5_0 and Q8_0 matrices stay as they are (ggufNativeTensors)
      'kjv-gqa-Q6_K': 'q8',
      'kjv-gqa-Q8_0': 'q8',
      'stories260K-F16': null,
      'stories260K-F32': null,
      'stories260K-Q4_K_M': 'q8',
      'stories260K-Q6_K': 'q8',
    });
    expect(ggufDefaultWeightDtype(await loadModelFiles(folderSource(KJV)))).toBeNull(); // a safetensors folder
  });
});

describe.skipIf(!haveData)('GGUF tensors that go to the GPU as stored (ggufNativeTensors)', () => {
  it('stories260K-Q4_K_M: Q5_0, Q8_0, F16 matrices in their own format, HF-ordered; norms converted', async () => {
    const files = await ggufFiles('stories260K-Q4_K_M.gguf');
    const spec = parseConfig(files.config, 'stories');
    const native = ggufNativeTensors(files, 'q8')!;
    const stored: Record<string, string | null> = {};
    for (const [name, shape] of expectedTensors(spec)) {
      const t = native(name, shape);
      stored[name] = t?.dtype ?? null;
      if (t) expect(Buffer.from(t.bytes).equals(ggufHfTensor(files, name)!.bytes), name).toBe(true); // q/k un-permuted
    }
    const layer = (l: number, v: string, down: string) => ({
      [`model.layers.${l}.input_layernorm.weight`]: null,
      [`model.layers.${l}.post_attention_layernorm.weight`]: null,
      [`model.layers.${l}.self_attn.q_proj.weight`]: 'q5_0',
      [`model.layers.${l}.self_attn.k_proj.weight`]: 'q5_0',
      [`model.layers.${l}.self_attn.v_proj.weight`]: v,
      [`model.layers.${l}.self_attn.o_proj.weight`]: 'q5_0',
      [`model.layers.${l}.mlp.gate_proj.weight`]: 'q5_0',
      [`model.layers.${l}.mlp.up_proj.weight`]: 'q5_0',
      [`model.layers.${l}.mlp.down_proj.weight`]: down,
    });
    // gguf/README.md: Q8_0 = token_embd, blk.2 / blk.4 attn_v; F16 = every ffn_down; Q5_0 the rest.
    expect(stored).toEqual({
      'model.embed_tokens.weight': 'q8',
      'model.norm.weight': null,
      ...layer(0, 'q5_0', 'f16'),
      ...layer(1, 'q5_0', 'f16'),
      ...layer(2, 'q8', 'f16'),
      ...layer(3, 'q5_0', 'f16'),
      ...layer(4, 'q8', 'f16'),
    });
    // At an f32 load the F16 matrices are converted (a plain matrix's bias shares its dtype); a folder has none.
    expect(ggufNativeTensors(files, 'f32')!('model.layers.0.mlp.down_proj.weight', [64, 172])).toBeNull();
    expect(ggufNativeTensors(await loadModelFiles(folderSource(KJV)), 'q8')).toBeUndefined();
  });
});

describe.skipIf(!haveData)('where a GGUF model comes from', () => {
  it('a .gguf path, a folder with one .gguf, --gguf-file in a folder; several .gguf need a name', async () => {
    const one = tmp('webattn-gguf-');
    copyFileSync(join(GGUF, 'stories260K-F16.gguf'), join(one, 'stories260K-F16.gguf'));
    for (const source of [
      await resolveSource(join(GGUF, 'stories260K-F16.gguf')),
      await resolveSource(one),
      await resolveSource(GGUF, { ggufFile: 'stories260K-F16.gguf' }),
    ]) {
      expect(source.ggufFile).toBe('stories260K-F16.gguf');
      const files = await loadModelFiles(source);
      expect(files.gguf!.tensors.size).toBe(47);
    }
    await expect(resolveSource(GGUF)).rejects.toThrow(/no config\.json and 10 GGUF files .*--gguf-file/);
    await expect(resolveSource(GGUF, { ggufFile: '../x.gguf' })).rejects.toThrow(/not a GGUF file name/);
  });

  it('picked files: one .gguf and no config.json is that model', async () => {
    const bytes = readFileSync(join(GGUF, 'stories260K-F16.gguf'));
    const picked = [new File([bytes], 'stories260K-F16.gguf'), new File(['x'], 'README.md')];
    const source = filesSource(picked);
    expect(source.ggufFile).toBe('stories260K-F16.gguf');
    const files = ggufModelFiles(await loadModelFiles(source));
    expect(files.tensor('model.norm.weight')!.info.shape).toEqual([64]);
  });

  it('a split GGUF part is refused with how to merge it', async () => {
    const { writeGguf } = await import('../../src/sources/gguf');
    const dir = tmp('webattn-gguf-split-');
    const bytes = writeGguf({
      metadata: [
        ['general.architecture', { type: 'string', value: 'llama' }],
        ['split.count', { type: 'uint16', value: 2 }],
      ],
    });
    writeFileSync(join(dir, 'm-00001-of-00002.gguf'), bytes);
    await expect(loadModelFiles(await resolveSource(dir))).rejects.toThrow(
      /split\.count is 2.*llama-gguf-split --merge/,
    );
  });
});

describe.skipIf(!haveData)('a GGUF model from a URL', () => {
  let server: Server;
  let base = '';
  let origin = '';
  let requests: string[] = [];
  let serve: (name: string) => Uint8Array | null = () => null;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const name = decodeURIComponent((req.url ?? '/').split('?')[0].split('/').pop() ?? '');
      requests.push(req.url ?? '');
      const body = serve(name);
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': String(body.length) });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    base = `${origin}/repo/resolve/main/`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('a .gguf URL downloads once, then loads from the cache', async () => {
    const good = readFileSync(join(GGUF, 'kjv-gqa-F16.gguf'));
    serve = (name) => (name === 'kjv-gqa-F16.gguf' ? good : null);
    const cache = diskCache(tmp('webattn-cache-'));
    const source = urlSource(`${base}kjv-gqa-F16.gguf?download=true`, { cache });
    expect(source.ggufFile).toBe('kjv-gqa-F16.gguf');
    requests = [];
    const files = ggufModelFiles(await loadModelFiles(source));
    expect(requests).toEqual(['/repo/resolve/main/kjv-gqa-F16.gguf']); // nothing else is asked for
    expect(files.tensor('model.embed_tokens.weight')!.info.shape).toEqual([2048, 128]);
    requests = [];
    await loadModelFiles(urlSource(`${base}kjv-gqa-F16.gguf`, { cache }));
    expect(requests).toEqual([]);
  });

  it('a hub repo and a file in it: org/name/x.gguf, or ggufFile', async () => {
    const good = readFileSync(join(GGUF, 'stories260K-F16.gguf'));
    serve = (name) => (name === 'stories260K-F16.gguf' ? good : null);
    for (const source of [
      hubSource('org/repo/stories260K-F16.gguf', { endpoint: origin, cache: null }),
      hubSource('org/repo', { endpoint: origin, cache: null, ggufFile: 'stories260K-F16.gguf' }),
    ]) {
      requests = [];
      expect(source.name).toBe('org/repo');
      const files = await loadModelFiles(source);
      expect(requests).toEqual(['/org/repo/resolve/main/stories260K-F16.gguf']);
      expect(files.gguf!.tensors.size).toBe(47);
    }
    expect(() => hubSource('org/repo', { ggufFile: 'a/../b.gguf' })).toThrow(/not a GGUF file name/);
    serve = () => null;
    await expect(loadModelFiles(hubSource('org/repo/gone.gguf', { endpoint: origin, cache: null }))).rejects.toThrow(
      /org\/repo: gone\.gguf: missing/,
    );
  });

  it('a damaged GGUF is refused by the parser and never cached; bad magic stops the download early', async () => {
    const good = readFileSync(join(GGUF, 'kjv-gqa-F16.gguf'));
    const cacheDir = tmp('webattn-cache-');
    const cache = diskCache(cacheDir);
    serve = () => good.subarray(0, good.length - 100); // truncated: the last tensor ends past the file
    await expect(loadModelFiles(urlSource(`${base}m.gguf`, { cache, onWarning: () => {} }))).rejects.toThrow(
      /m\.gguf.*(ends|past the end|truncat)/,
    );
    expect(readdirSync(cacheDir)).toEqual([]);
    const bad = new Uint8Array(readFileSync(join(GGUF, 'kjv-gqa-F32.gguf')));
    bad.set([0x47, 0x47, 0x55, 0x47]); // "GGUG"
    serve = () => bad;
    let loaded = 0;
    const onProgress = (p: { loadedBytes: number }) => void (loaded = Math.max(loaded, p.loadedBytes));
    await expect(loadModelFiles(urlSource(`${base}m.gguf`, { cache }), { onProgress })).rejects.toThrow(
      /m\.gguf.*magic/,
    );
    expect(loaded).toBeLessThan(bad.length / 2); // stopped once the first 256 KiB were in, not at the end
    expect(readdirSync(cacheDir)).toEqual([]);
  });
});
