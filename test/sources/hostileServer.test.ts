/**
 * Model sources against a loopback server that misbehaves: truncates, serves HTML with 200, stalls,
 * drips, gzips, sends more than the safetensors header promises, and is reached through `..`
 * URLs. Each test builds its failing input itself.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  cacheKey,
  diskCache,
  diskCachePath,
  folderSource,
  loadModelFiles,
  urlSource,
  type FileCache,
  type LoadProgress,
} from '../../src/sources/modelSource';
import { readTensorF32, safetensorsSizeFromPrefix, writeSafetensors } from '../../src/sources/safetensors';

const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);

// The files a good server serves, rebuilt for every test.
let files: Record<string, Uint8Array> = {};
let weights = new Float32Array(0);
function goodFiles() {
  weights = rand(64);
  files = {
    'config.json': new TextEncoder().encode(JSON.stringify({ model_type: 'llama', hidden_size: 8 })),
    'model.safetensors': writeSafetensors({ w: { dtype: 'F32', shape: [8, 8], data: weights } }),
  };
}

type Handler = (req: IncomingMessage, res: ServerResponse, name: string) => boolean;
let misbehave: Handler = () => false;
let bytesSent = 0;
const paths: string[] = [];

let server: Server;
let base = '';
beforeAll(async () => {
  server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').split('/').pop() ?? '');
    paths.push(req.url ?? '');
    if (misbehave(req, res, name)) return;
    const body = files[name];
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': String(body.length) });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}/m/`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});
beforeEach(() => {
  goodFiles();
  misbehave = () => false;
  bytesSent = 0;
  paths.length = 0;
});

const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));
const quiet = { onWarning: () => {} };

describe('the disk cache keeps only what passed its checks', () => {
  it('an HTML page served with 200 fails as "not valid JSON", is not cached, and the fixed server works', async () => {
    const cache = diskCache(tmp('webattn-cache-'));
    misbehave = (_req, res, name) => {
      if (name !== 'config.json') return false;
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>rate limited</html>');
      return true;
    };
    await expect(loadModelFiles(urlSource(base, { cache, ...quiet }))).rejects.toThrow(/config\.json: not valid JSON/);
    expect(await cache.get(cacheKey(`${base}config.json`))).toBeNull();
    misbehave = () => false;
    const m = await loadModelFiles(urlSource(base, { cache, ...quiet }));
    expect(Array.from(readTensorF32(m.tensor('w')!.file, 'w'))).toEqual(Array.from(weights));
  });

  it('a safetensors body cut short (Content-Length absent) is refused by its header and not cached', async () => {
    const cache = diskCache(tmp('webattn-cache-'));
    misbehave = (_req, res, name) => {
      if (name !== 'model.safetensors') return false;
      res.writeHead(200); // chunked, no Content-Length: only the header can tell
      res.end(files[name].subarray(0, files[name].length - 10));
      return true;
    };
    await expect(loadModelFiles(urlSource(base, { cache, ...quiet }))).rejects.toThrow(
      /model\.safetensors: got \d+ of the \d+ bytes its safetensors header promises/,
    );
    expect(await cache.get(cacheKey(`${base}model.safetensors`))).toBeNull();
  });

  it('a damaged cached copy is dropped with a warning and downloaded again', async () => {
    const dir = tmp('webattn-cache-');
    const cache = diskCache(dir);
    await loadModelFiles(urlSource(base, { cache, ...quiet }));
    const cachedConfig = diskCachePath(dir, `${base}config.json`);
    writeFileSync(cachedConfig, '<html>old bad copy</html>');
    const warnings: string[] = [];
    const m = await loadModelFiles(urlSource(base, { cache, onWarning: (w) => warnings.push(w) }));
    expect(m.config).toEqual({ model_type: 'llama', hidden_size: 8 });
    expect(warnings.join('\n')).toMatch(
      /config\.json \(cached at \/.*\/http\/127\.0\.0\.1_\d+\/m\/config\.json\): not valid JSON.*downloading it again/,
    );
    expect(JSON.parse(readFileSync(cachedConfig, 'utf8'))).toEqual({ model_type: 'llama', hidden_size: 8 });
  });

  it('an error about a cached file says it is cached and where', async () => {
    const dir = tmp('webattn-cache-');
    const cache = diskCache(dir);
    files['model-00001-of-00001.safetensors'] = files['model.safetensors'];
    delete files['model.safetensors'];
    files['model.safetensors.index.json'] = new TextEncoder().encode(
      JSON.stringify({ weight_map: { w: 'model-00001-of-00001.safetensors' } }),
    );
    await loadModelFiles(urlSource(base, { cache, ...quiet }));
    // The repo moves on: the index now names a tensor the (cached, old) shard lacks.
    files['model.safetensors.index.json'] = new TextEncoder().encode(
      JSON.stringify({ weight_map: { w: 'model-00001-of-00001.safetensors', v: 'model-00001-of-00001.safetensors' } }),
    );
    writeFileSync(diskCachePath(dir, `${base}model.safetensors.index.json`), files['model.safetensors.index.json']);
    await expect(loadModelFiles(urlSource(base, { cache, ...quiet }))).rejects.toThrow(
      /model-00001-of-00001\.safetensors \(cached at .*model-00001-of-00001\.safetensors\): tensor "v" listed/,
    );
  });

  it('a cache whose put throws (quota, a browser error) warns and the load goes on', async () => {
    const failing: FileCache = {
      get: async () => null,
      put: async () => {
        throw new Error('QuotaExceededError');
      },
    };
    const warnings: string[] = [];
    const m = await loadModelFiles(urlSource(base, { cache: failing, onWarning: (w) => warnings.push(w) }));
    expect(m.tensorNames()).toEqual(['w']);
    const stored = /could not store model\.safetensors \(QuotaExceededError\); going on without it/;
    expect(warnings.some((w) => stored.test(w))).toBe(true);
    const broken: FileCache = {
      get: async () => {
        throw new Error('cache storage unavailable');
      },
      put: async () => {},
    };
    expect((await loadModelFiles(urlSource(base, { cache: broken, ...quiet }))).tensorNames()).toEqual(['w']);
  });
});

describe('cache keys keep the scheme and cannot leave the cache folder', () => {
  it('a URL with literal ../ segments writes only inside the cache folder', async () => {
    const parent = tmp('webattn-parent-');
    const dir = join(parent, 'cache');
    const evil = `${base}../../../../../${parent.split('/').slice(1).join('/')}/escaped/`;
    await loadModelFiles(urlSource(evil, { cache: diskCache(dir), ...quiet }));
    expect(readdirSync(parent)).toEqual(['cache']);
    expect(existsSync(join(parent, 'escaped'))).toBe(false);
  });

  it('the key is the normalised URL with its scheme; paths for http and https differ', () => {
    expect(cacheKey('HTTP://Example.COM:80/a/./b/../c.json#frag')).toBe('http://example.com/a/c.json');
    expect(cacheKey('http://h/a/%2e%2e/%2E%2E/b.json')).toBe('http://h/b.json');
    const root = '/cache';
    expect(diskCachePath(root, 'https://huggingface.co/o/m/resolve/main/config.json')).toBe(
      '/cache/https/huggingface.co/o/m/resolve/main/config.json',
    );
    expect(diskCachePath(root, 'http://huggingface.co/o/m/resolve/main/config.json')).toBe(
      '/cache/http/huggingface.co/o/m/resolve/main/config.json',
    );
    expect(diskCachePath(root, 'http://h:8080/x/..%2F..%2Fetc%2Fpasswd')).toBe(
      '/cache/http/h_8080/x/.._2F.._2Fetc_2Fpasswd',
    );
    expect(() => diskCachePath(root, 'http://h/a//b.json')).toThrow(/cannot be cached .* not stay in the cache folder/);
  });

  it('an https load is never served the bytes an http load cached', async () => {
    const cache = diskCache(tmp('webattn-cache-'));
    await cache.put(cacheKey('http://example.com/m/config.json'), new TextEncoder().encode('{"from":"http"}'));
    expect(await cache.get(cacheKey('https://example.com/m/config.json'))).toBeNull();
    expect(await cache.get(cacheKey('http://example.com/m/config.json'))).not.toBeNull();
  });
});

describe('downloads have an idle deadline and size limits', () => {
  it('a server that never answers fails after the idle timeout, with progress showing the stall', async () => {
    misbehave = (_req, _res, name) => name === 'config.json'; // accepts, never writes headers
    const events: LoadProgress[] = [];
    const t0 = Date.now();
    await expect(
      loadModelFiles(urlSource(base, { cache: null, idleTimeoutMs: 300 }), { onProgress: (p) => events.push(p) }),
    ).rejects.toThrow(/config\.json: download stalled: 0 bytes in the last 0\.3 s/);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(events.some((e) => e.file === 'config.json' && (e.stalledMs ?? 0) >= 75)).toBe(true);
  });

  it('a body that stops after its headers fails after the idle timeout', async () => {
    misbehave = (_req, res, name) => {
      if (name !== 'model.safetensors') return false;
      res.writeHead(200, { 'content-length': String(files[name].length) });
      res.write(files[name].subarray(0, 20));
      return true;
    };
    await expect(loadModelFiles(urlSource(base, { cache: null, idleTimeoutMs: 300 }))).rejects.toThrow(
      /model\.safetensors: download stalled: 20 bytes in the last 0\.3 s \(20 of \d+ bytes in all\)/,
    );
  });

  it('a drip of one byte at a time does not count as alive', async () => {
    misbehave = (_req, res, name) => {
      if (name !== 'model.safetensors') return false;
      const body = files[name];
      res.writeHead(200, { 'content-length': String(body.length) });
      let i = 0;
      const drip = setInterval(() => {
        if (res.destroyed || i >= body.length) return void clearInterval(drip);
        res.write(body.subarray(i, ++i));
      }, 10);
      return true;
    };
    const source = urlSource(base, { cache: null, idleTimeoutMs: 400 });
    await expect(loadModelFiles(source)).rejects.toThrow(/download stalled/);
  });

  it('a body without Content-Length is stopped once it passes what the safetensors header promises', async () => {
    misbehave = (_req, res, name) => {
      if (name !== 'model.safetensors') return false;
      res.writeHead(200); // no Content-Length; the header is honest, then the body never ends (1.5 GiB in the report)
      res.write(files[name]);
      const chunk = new Uint8Array(64 * 1024);
      const more = () => {
        while (!res.destroyed && bytesSent < 1024 ** 3) {
          bytesSent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
      };
      more();
      return true;
    };
    const promised = safetensorsSizeFromPrefix(files['model.safetensors'])!;
    await expect(loadModelFiles(urlSource(base, { cache: null }))).rejects.toThrow(
      new RegExp(`model\\.safetensors: the body runs past the ${promised} bytes its safetensors header promises`),
    );
    expect(bytesSent).toBeLessThan(64 * 1024 * 1024); // stopped early, not read to the end
  });

  it('a Content-Length that disagrees with the safetensors header fails as soon as the header is in', async () => {
    misbehave = (_req, res, name) => {
      if (name !== 'model.safetensors') return false;
      const body = files[name];
      const padded = new Uint8Array(body.length + 4096);
      padded.set(body);
      res.writeHead(200, { 'content-length': String(padded.length) });
      res.end(padded);
      return true;
    };
    await expect(loadModelFiles(urlSource(base, { cache: null }))).rejects.toThrow(
      /Content-Length is \d+ bytes but the safetensors header promises \d+/,
    );
  });

  it('a body longer than the caller allows (an index total_size) is stopped there', async () => {
    const source = urlSource(base, { cache: null });
    await expect(source.readFile('config.json', undefined, { maxBytes: 10 })).rejects.toThrow(
      /config\.json: Content-Length \d+ is more than the 10 bytes it can be/,
    );
    misbehave = (_req, res, name) => {
      if (name !== 'config.json') return false;
      res.writeHead(200); // no Content-Length
      res.end(files[name]);
      return true;
    };
    await expect(source.readFile('config.json', undefined, { maxBytes: 10 })).rejects.toThrow(
      /config\.json: the body runs past the 10 bytes it can be; stopped there/,
    );
  });

  it('gzip responses decode and are checked against the decoded size, not the compressed Content-Length', async () => {
    misbehave = (_req, res, name) => {
      const body = files[name];
      if (!body) return false;
      const zipped = gzipSync(body);
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': String(zipped.length) });
      res.end(zipped);
      return true;
    };
    // The config compresses (293 → smaller); the random weights do not (gzip adds bytes).
    const config = { model_type: 'llama', hidden_size: 8, pad: 'x'.repeat(400) };
    files['config.json'] = new TextEncoder().encode(JSON.stringify(config));
    const cache = diskCache(tmp('webattn-cache-'));
    const m = await loadModelFiles(urlSource(base, { cache, ...quiet }));
    expect((m.config as { pad: string }).pad.length).toBe(400);
    expect(Array.from(readTensorF32(m.tensor('w')!.file, 'w'))).toEqual(Array.from(weights));
  });
});

describe('folder reads go by ranges (files past 2 GiB, Node readFile limit)', () => {
  it('a file read in many small ranges comes back whole, with progress per range', async () => {
    const dir = tmp('webattn-folder-');
    writeFileSync(join(dir, 'config.json'), files['config.json']);
    const big = writeSafetensors({ w: { dtype: 'F32', shape: [1000, 3], data: rand(3000) } });
    writeFileSync(join(dir, 'model.safetensors'), big);
    const events: LoadProgress[] = [];
    const m = await loadModelFiles(folderSource(dir, { readRangeBytes: 1000 }), { onProgress: (p) => events.push(p) });
    expect(m.shards[0].bytes).toEqual(new Uint8Array(big));
    const ranges = events.filter((e) => e.file === 'model.safetensors');
    expect(ranges.length).toBe(Math.ceil(big.length / 1000));
    expect(ranges.at(-1)).toMatchObject({ loadedBytes: big.length, totalBytes: big.length });
  });

  it('a file name that leaves the folder is refused', async () => {
    const dir = tmp('webattn-folder-');
    const leaves = /file name "\.\.\/x\.json" leaves the folder/;
    await expect(folderSource(dir).readFile('../x.json')).rejects.toThrow(leaves);
  });
});

describe('chat templates from their own files', () => {
  it('chat_template.jinja wins over tokenizer_config.json; chat_template.json fills a config without one', async () => {
    const dir = tmp('webattn-folder-');
    writeFileSync(join(dir, 'config.json'), files['config.json']);
    writeFileSync(join(dir, 'model.safetensors'), files['model.safetensors']);
    writeFileSync(join(dir, 'tokenizer.json'), '{}');
    const withTemplate = { eos_token: '</s>', chat_template: 'from config' };
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(withTemplate));
    writeFileSync(join(dir, 'chat_template.json'), JSON.stringify({ chat_template: 'from json' }));
    let m = await loadModelFiles(folderSource(dir));
    expect(m.tokenizerConfig).toEqual({ eos_token: '</s>', chat_template: 'from config' });
    expect(m.chatTemplateFile).toBe('tokenizer_config.json');
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>' }));
    m = await loadModelFiles(folderSource(dir));
    expect(m.tokenizerConfig).toEqual({ eos_token: '</s>', chat_template: 'from json' });
    expect(m.chatTemplateFile).toBe('chat_template.json');
    writeFileSync(join(dir, 'chat_template.jinja'), 'from jinja {{ x }}');
    m = await loadModelFiles(folderSource(dir));
    expect(m.tokenizerConfig).toEqual({ eos_token: '</s>', chat_template: 'from jinja {{ x }}' });
    expect(m.chatTemplateFile).toBe('chat_template.jinja');
  });
});
