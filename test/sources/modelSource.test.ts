/** Model sources: folder, sharded index, URL with progress and an on-disk cache, and their errors. */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  diskCache,
  folderSource,
  hubSource,
  loadModelFiles,
  ModelSourceError,
  urlSource,
  type LoadProgress,
} from '../../src/sources/modelSource';
import { readTensorF32, writeSafetensors } from '../../src/sources/safetensors';

const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);

function modelFolder(sharded: boolean): { dir: string; a: Float32Array; b: Float32Array } {
  const dir = mkdtempSync(join(tmpdir(), 'webattn-src-'));
  const a = rand(12);
  const b = rand(6);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', hidden_size: 4 }));
  writeFileSync(join(dir, 'README.md'), 'ignored');
  if (sharded) {
    writeFileSync(
      join(dir, 'model-00001-of-00002.safetensors'),
      writeSafetensors({ a: { dtype: 'F32', shape: [3, 4], data: a } }),
    );
    writeFileSync(
      join(dir, 'model-00002-of-00002.safetensors'),
      writeSafetensors({ b: { dtype: 'F16', shape: [6], data: b } }),
    );
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }),
    );
  } else {
    writeFileSync(
      join(dir, 'model.safetensors'),
      writeSafetensors({ a: { dtype: 'F32', shape: [3, 4], data: a }, b: { dtype: 'F16', shape: [6], data: b } }),
    );
  }
  return { dir, a, b };
}

describe('loadModelFiles from a folder', () => {
  it.each([false, true])('sharded %s: config, weights, tensors by name; tokenizer optional', async (sharded) => {
    const { dir, a, b } = modelFolder(sharded);
    const m = await loadModelFiles(folderSource(dir));
    expect(m.config).toEqual({ model_type: 'llama', hidden_size: 4 });
    expect(m.tokenizer).toBeNull();
    expect(m.shards.length).toBe(sharded ? 2 : 1);
    expect(m.tensorNames().sort()).toEqual(['a', 'b']);
    const ta = m.tensor('a')!;
    expect(ta.info.shape).toEqual([3, 4]);
    expect(Array.from(readTensorF32(ta.file, 'a'))).toEqual(Array.from(a));
    const tb = readTensorF32(m.tensor('b')!.file, 'b');
    tb.forEach((x, i) => expect(Math.abs(x - b[i])).toBeLessThan(1e-3));
    expect(m.tensor('c')).toBeNull();
  });

  it('names the missing or broken file', async () => {
    const { dir } = modelFolder(true);
    await expect(loadModelFiles(folderSource(dir), { needTokenizer: true })).rejects.toThrow(
      /tokenizer\.json: missing/,
    );
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', z: 'model-00001-of-00002.safetensors' } }),
    );
    await expect(loadModelFiles(folderSource(dir))).rejects.toThrow(
      /model-00001-of-00002\.safetensors: tensor "z" listed in the index is not in this shard/,
    );
    writeFileSync(join(dir, 'config.json'), '{ not json');
    await expect(loadModelFiles(folderSource(dir))).rejects.toThrow(ModelSourceError);
    await expect(loadModelFiles(folderSource(join(dir, 'nope')))).rejects.toThrow(/config\.json: missing/);
  });
});

describe('urlSource over HTTP with a disk cache', () => {
  let server: Server;
  let base = '';
  let requests = 0;
  let truncate = false;
  const { dir } = modelFolder(false);
  beforeAll(async () => {
    server = createServer((req, res) => {
      requests++;
      const name = decodeURIComponent((req.url ?? '/').slice(1));
      try {
        const body = readFileSync(join(dir, name));
        if (truncate && name === 'model.safetensors') {
          res.writeHead(200, { 'content-length': String(body.length) });
          res.write(body.subarray(0, 10), () => res.socket?.destroy()); // the connection drops early
          return;
        }
        res.writeHead(200, { 'content-length': String(body.length) });
        res.end(body);
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  });
  afterAll(() => server.close());

  it('downloads with progress, then loads from the cache without the network', async () => {
    const cache = diskCache(mkdtempSync(join(tmpdir(), 'webattn-cache-')));
    const events: LoadProgress[] = [];
    const m = await loadModelFiles(urlSource(base, { cache }), { onProgress: (p) => events.push(p) });
    expect(m.tensorNames().sort()).toEqual(['a', 'b']);
    const last = events.filter((e) => e.file === 'model.safetensors').at(-1)!;
    expect(last.loadedBytes).toBe(last.totalBytes);
    const before = requests;
    const again = await loadModelFiles(urlSource(base, { cache }));
    expect(again.tensorNames().sort()).toEqual(['a', 'b']);
    // Only the files that were absent (404s are not cached) are asked for again.
    const misses = requests - before;
    expect(misses).toBeLessThanOrEqual(4);
    expect(misses).toBeGreaterThan(0);
  });

  it('a download cut halfway is an error and is not cached', async () => {
    const cache = diskCache(mkdtempSync(join(tmpdir(), 'webattn-cache-')));
    truncate = true;
    await expect(loadModelFiles(urlSource(base, { cache }))).rejects.toThrow(
      /model\.safetensors: (got 10 of|download cut off)/,
    );
    truncate = false;
    const m = await loadModelFiles(urlSource(base, { cache }));
    expect(m.tensorNames().length).toBe(2);
  });

  it('a hub id must look like org/name', () => {
    expect(() => hubSource('not a repo')).toThrow(/not a Hugging Face repo id/);
    expect(hubSource('HuggingFaceTB/SmolLM2-135M-Instruct', { cache: null }).name).toBe(
      'HuggingFaceTB/SmolLM2-135M-Instruct',
    );
  });
});
