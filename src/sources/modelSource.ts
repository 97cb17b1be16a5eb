/**
 * Where a model's files come from, and loading them into parsed form. A ModelSource only knows how
 * to fetch a file by name; loadModelFiles() decides which files a model needs:
 *   config.json                          required
 *   model.safetensors                    or the shards listed in model.safetensors.index.json
 *   tokenizer.json, tokenizer_config.json, generation_config.json   optional (text needs the first)
 * or, for a GGUF model (the source's `ggufFile`, or loadModelFiles' option of that name), that one
 * `.gguf` file alone: metadata, tensors, tokenizer and chat template are all inside it. ModelFiles
 * then carries the parsed file (`gguf`); src/model/ggufModelFiles.ts turns it into the config,
 * tokenizer and HF-named tensors the rest of the runtime reads (this layer imports no model code).
 * Sources: a folder (Node), a URL prefix, a Hugging Face repo id (`org/name`, from
 * https://huggingface.co/<id>/resolve/<revision>/<file>), or files picked in a page. URL and hub
 * sources cache what they download (Cache API in the browser, a folder on disk in Node) so a second
 * load reads no network. Every failure names the source and the file.
 */
import {
  MAX_HEADER_BYTES,
  parseSafetensors,
  SafetensorsError,
  safetensorsSizeFromPrefix,
  type SafetensorsFile,
  type TensorInfo,
} from './safetensors';
import { GgufError, parseGguf, readGgufHeader, type GgufFile } from './gguf';

export class ModelSourceError extends Error {
  override name = 'ModelSourceError';
}

export interface LoadProgress {
  file: string;
  loadedBytes: number;
  /** From Content-Length, the safetensors header or the file size; undefined when unknown. */
  totalBytes: number | undefined;
  /** Set while a download gets nothing: ms since its last bytes (reported about once a second). */
  stalledMs?: number;
  /** The bytes came from the cache, not the network. */
  cached?: boolean;
}

export interface ReadFileOptions {
  /** The file cannot be larger than this (an index's total_size): a longer body is stopped there. */
  maxBytes?: number;
}

export interface ModelSource {
  /** Shown in messages: a path, a URL or a repo id. */
  readonly name: string;
  /** The file's bytes, or null when the source has no such file. Other failures throw. */
  readFile(file: string, onProgress?: (p: LoadProgress) => void, opts?: ReadFileOptions): Promise<Uint8Array | null>;
  /** For messages: where the bytes of a file already read came from when not the source itself ("cached at ..."). */
  origin?(file: string): string | null;
  /** Set when the model is one GGUF file: its name in the source ('stories260K-F32.gguf'). */
  readonly ggufFile?: string;
}

/** A GGUF model file's name: ends in `.gguf` (any case); a hub file may sit in a folder of the repo. */
export const isGgufFileName = (file: string) => /\.gguf$/i.test(file);

/**
 * How messages name a file of a source: 'org/m: config.json'; a source made from the file's own path
 * or URL already names it: 'dir/m.gguf', not 'dir/m.gguf: m.gguf'.
 */
function fileLabel(sourceName: string, file: string): string {
  const path = sourceName.split(/[?#]/)[0];
  const named = path === file || path.endsWith(`/${file}`) || path.endsWith(`\\${file}`);
  return named ? sourceName : `${sourceName}: ${file}`;
}

/** '/a/b/m.gguf' → ['/a/b', 'm.gguf']; 'm.gguf' → ['.', 'm.gguf']. Both separators, for Windows paths. */
function splitLastSegment(path: string): [string, string] {
  const cut = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return cut < 0 ? ['.', path] : [path.slice(0, cut) || path.slice(0, 1), path.slice(cut + 1)];
}

// JSON files of a model are at most tens of MB (gemma's tokenizer.json: 33 MB); a body past this is not one.
const MAX_JSON_BYTES = 256 * 1024 * 1024;
// Node's fs.readFile stops at 2 GiB; files are read in ranges of this size instead.
const READ_RANGE_BYTES = 64 * 1024 * 1024;

/**
 * Reads a whole local file in ranges (a Llama-3.2-1B checkpoint is 2.47 GB, past readFile's 2 GiB
 * limit) into one buffer of its size. Null when it does not exist.
 */
async function readLocalFile(file: string, rangeBytes: number, onRange?: (loaded: number, total: number) => void) {
  const fs = await import('node:fs/promises');
  let handle: Awaited<ReturnType<typeof fs.open>>;
  try {
    handle = await fs.open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const { size } = await handle.stat();
    const out = new Uint8Array(size);
    for (let off = 0; off < size; ) {
      const { bytesRead } = await handle.read(out, off, Math.min(rangeBytes, size - off), off);
      if (bytesRead === 0) throw new Error(`file ended at ${off} of ${size} bytes while being read`);
      off += bytesRead;
      onRange?.(off, size);
    }
    return out;
  } finally {
    await handle.close();
  }
}

/** `dir/file`, refusing a file name that would leave `dir` (`../x`, an absolute path). */
async function pathInside(dir: string, file: string): Promise<string> {
  const path = await import('node:path');
  const root = path.resolve(dir);
  const full = path.resolve(root, file);
  if (!full.startsWith(root + path.sep)) throw new ModelSourceError(`${dir}: file name "${file}" leaves the folder`);
  return full;
}

/**
 * A local folder (Node only), or one `.gguf` file (then the folder is its parent and `ggufFile`
 * its name). `readRangeBytes` sets how much one read takes (tests make it small).
 */
export function folderSource(path: string, opts: { readRangeBytes?: number; ggufFile?: string } = {}): ModelSource {
  const [dir, ggufFile] = isGgufFileName(path) ? splitLastSegment(path) : [path, opts.ggufFile];
  return {
    name: path,
    ggufFile,
    async readFile(file, onProgress) {
      const full = await pathInside(dir, file);
      try {
        const bytes = await readLocalFile(full, opts.readRangeBytes ?? READ_RANGE_BYTES, (loadedBytes, totalBytes) =>
          onProgress?.({ file, loadedBytes, totalBytes }),
        );
        if (bytes?.length === 0) onProgress?.({ file, loadedBytes: 0, totalBytes: 0 });
        return bytes;
      } catch (e) {
        throw new ModelSourceError(`${dir}: cannot read ${file}: ${(e as Error).message}`);
      }
    },
  };
}

/**
 * Files picked in a page (`<input type=file webkitdirectory>` or a drop): matched by base name.
 * Picked files without a config.json and with exactly one `.gguf` among them are that GGUF model.
 */
export function filesSource(files: readonly File[], name = 'picked files'): ModelSource {
  const ggufs = files.filter((f) => isGgufFileName(f.name));
  const hasConfig = files.some((f) => f.name === 'config.json');
  return {
    name,
    ggufFile: !hasConfig && ggufs.length === 1 ? ggufs[0].name : undefined,
    async readFile(file, onProgress) {
      const f = files.find((x) => x.name === file || x.webkitRelativePath?.endsWith(`/${file}`));
      if (!f) return null;
      const bytes = new Uint8Array(await f.arrayBuffer());
      onProgress?.({ file, loadedBytes: bytes.length, totalBytes: bytes.length });
      return bytes;
    },
  };
}

/**
 * A cache of downloaded files: the Cache API in a browser, a folder in Node. Keys are URLs as
 * cacheKey() normalises them. urlSource puts only bytes that passed checkFileBytes, and treats
 * every cache failure as a miss with a warning: a cache never fails a load.
 */
export interface FileCache {
  get(key: string): Promise<Uint8Array | null>;
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** Drops an entry (one that no longer passes its checks). */
  delete?(key: string): Promise<void>;
  /** Where an entry lives, for messages: a path, or the Cache API store and URL. */
  describe?(key: string): string;
}

/**
 * The one spelling of a URL a cache is keyed by: WHATWG-parsed (dot segments resolved, host
 * lower-cased, default port dropped), scheme kept, fragment dropped.
 * 'HTTP://Example.com:80/a/../b/c.json#x' → 'http://example.com/b/c.json'.
 */
export function cacheKey(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ModelSourceError(`${url}: not a URL`);
  }
  u.hash = '';
  return u.href;
}

export function browserCache(name = 'webattn-models'): FileCache {
  return {
    async get(key) {
      const hit = await (await caches.open(name)).match(key);
      return hit ? new Uint8Array(await hit.arrayBuffer()) : null;
    },
    async put(key, bytes) {
      await (await caches.open(name)).put(key, new Response(bytes as BufferSource));
    },
    async delete(key) {
      await (await caches.open(name)).delete(key);
    },
    describe: (key) => `browser Cache API store "${name}", entry ${key}`,
  };
}

// A path segment on disk: letters, digits, '.', '_', '-'; anything else becomes '_'.
const safeSegment = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');

/**
 * Where a key lives under `root`: <root>/<scheme>/<host[_port]>/<path segments>[_<query>].
 * 'https://huggingface.co/org/m/resolve/main/config.json'
 *   → <root>/https/huggingface.co/org/m/resolve/main/config.json
 * Throws for a key whose path would not stay under root (no segment may be '.', '..' or empty).
 */
export function diskCachePath(root: string, key: string, sep = '/'): string {
  const u = new URL(cacheKey(key));
  const segments = u.pathname
    .split('/')
    .slice(1)
    .map((s) => safeSegment(s));
  if (u.search) segments[segments.length - 1] += safeSegment(u.search);
  const parts = [safeSegment(u.protocol.replace(/:$/, '')), safeSegment(u.host), ...segments];
  for (const part of parts) {
    if (part === '' || part === '.' || part === '..') {
      throw new ModelSourceError(
        `${key}: cannot be cached (path segment "${part}"); it would not stay in the cache folder`,
      );
    }
  }
  return [root.replace(/[\\/]+$/, ''), ...parts].join(sep);
}

/** Node: files under `dir` (default ~/.cache/webattn), one per URL, written atomically, confined to `dir`. */
export function diskCache(dir?: string): FileCache {
  let root: string | undefined;
  const fileFor = async (key: string) => {
    const os = await import('node:os');
    const path = await import('node:path');
    root ??= path.resolve(dir ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'webattn'));
    const file = path.resolve(diskCachePath(root, key, path.sep));
    // diskCachePath already refuses '..'; this is the second lock on the same door.
    if (!file.startsWith(root + path.sep)) throw new ModelSourceError(`${key}: cache path leaves ${root}`);
    return file;
  };
  const cache: FileCache = {
    async get(key) {
      return readLocalFile(await fileFor(key), READ_RANGE_BYTES);
    },
    async put(key, bytes) {
      const fs = await import('node:fs/promises');
      const path = await import('node:path');
      const file = await fileFor(key);
      await fs.mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.partial`;
      await fs.writeFile(tmp, bytes);
      await fs.rename(tmp, file); // a download cut halfway never becomes a cache hit
    },
    async delete(key) {
      const fs = await import('node:fs/promises');
      await fs.rm(await fileFor(key), { force: true });
    },
    describe: (key) => (root ? diskCachePath(root, key) : `the disk cache, entry ${key}`),
  };
  return cache;
}

/**
 * Checks that a file's bytes are what its name says, before they are cached or used:
 * `.json` parses as JSON, `.safetensors` passes parseSafetensors, `.gguf` parseGguf (the header, and
 * every tensor inside the bytes). Throws ModelSourceError naming `where`.
 */
export function checkFileBytes(file: string, bytes: Uint8Array, where: string): void {
  try {
    if (file.endsWith('.json')) JSON.parse(new TextDecoder().decode(bytes));
    else if (file.endsWith('.safetensors')) parseSafetensors(bytes, where);
    else if (isGgufFileName(file)) parseGguf(bytes, where);
  } catch (e) {
    if (e instanceof SafetensorsError || e instanceof GgufError) throw new ModelSourceError(e.message, { cause: e });
    throw new ModelSourceError(`${where}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

export interface UrlSourceOptions {
  cache?: FileCache | null;
  name?: string;
  /** A download fails when less than 16 KiB arrive in this many ms (before headers too). Default 30 000. */
  idleTimeoutMs?: number;
  /** Cache problems (a failing put, a damaged entry) go here. Default console.warn. */
  onWarning?: (message: string) => void;
  /** Default globalThis.fetch. */
  fetch?: typeof fetch;
}

/** The bytes that must arrive within every idle timeout; a drip of a few bytes a second does not count as alive. */
export const STALL_BYTES = 16 * 1024;
/** A GGUF download first reads its header from this many bytes (a 32k vocabulary takes about 1 MiB). */
const GGUF_FIRST_TRY_BYTES = 256 * 1024;

/**
 * Files under a URL prefix, fetched with progress, an idle deadline and size checks, and cached
 * once they pass checkFileBytes. A cached entry that no longer passes is dropped and downloaded again.
 * A URL whose path ends in `.gguf` is that one GGUF file: the prefix is its folder.
 */
export function urlSource(baseUrl: string, opts: UrlSourceOptions & { ggufFile?: string } = {}): ModelSource {
  let ggufFile = opts.ggufFile;
  let prefix = baseUrl;
  const url = parsedUrl(baseUrl);
  if (url && isGgufFileName(url.pathname)) {
    const u = url;
    u.search = '';
    u.hash = '';
    [, ggufFile] = splitLastSegment(u.pathname);
    prefix = u.href.slice(0, u.href.length - ggufFile.length);
  }
  const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
  const cache = opts.cache === undefined ? defaultCache() : opts.cache;
  const name = opts.name ?? baseUrl;
  const warn = opts.onWarning ?? ((m: string) => console.warn(m));
  const fromCache = new Map<string, string>(); // file → where its cached copy is
  const cacheStep = async <T>(what: string, step: () => Promise<T>): Promise<T | null> => {
    try {
      return await step();
    } catch (e) {
      warn(`${name}: the cache could not ${what} (${(e as Error).message}); going on without it`);
      return null;
    }
  };
  return {
    name,
    ggufFile,
    origin: (file) => fromCache.get(file) ?? null,
    async readFile(file, onProgress, readOpts = {}) {
      const key = cacheKey(base + file);
      const cached = cache ? await cacheStep(`read ${file}`, () => cache.get(key)) : null;
      const where = cache?.describe?.(key) ?? key; // after get: a disk cache knows its folder by then
      if (cached) {
        try {
          checkFileBytes(file, cached, `${fileLabel(name, file)} (cached at ${where})`);
          fromCache.set(file, `cached at ${where}`);
          onProgress?.({ file, loadedBytes: cached.length, totalBytes: cached.length, cached: true });
          return cached;
        } catch (e) {
          warn(`${(e as Error).message}; dropping the cached copy and downloading it again`);
          await cacheStep(`drop ${file}`, async () => cache?.delete?.(key));
        }
      }
      fromCache.delete(file);
      const bytes = await download(key, file, name, {
        idleTimeoutMs: opts.idleTimeoutMs ?? 30_000,
        maxBytes: Math.min(readOpts.maxBytes ?? Infinity, file.endsWith('.json') ? MAX_JSON_BYTES : Infinity),
        // bound: an unbound window.fetch throws "Illegal invocation" in the browser
        fetch: opts.fetch ?? ((input, init) => globalThis.fetch(input, init)),
        onProgress,
      });
      if (!bytes) return null;
      checkFileBytes(file, bytes, fileLabel(name, file));
      if (cache) await cacheStep(`store ${file}`, () => cache.put(key, bytes));
      return bytes;
    },
  };
}

/**
 * A Hugging Face Hub repo id such as `HuggingFaceTB/SmolLM2-135M-Instruct`; `ggufFile` picks one
 * GGUF file of the repo (`Q4_K_M/x.gguf` when it is in a folder) as the model. A GGUF file can also
 * be named after the repo id: `org/name/x.gguf`.
 */
export function hubSource(
  repoAndFile: string,
  opts: Omit<UrlSourceOptions, 'name'> & { revision?: string; endpoint?: string; ggufFile?: string } = {},
): ModelSource {
  const inRepo = HUB_GGUF.exec(repoAndFile);
  const repoId = inRepo ? inRepo[1] : repoAndFile;
  if (inRepo) opts = { ...opts, ggufFile: opts.ggufFile ?? inRepo[2] };
  if (!/^[\w.-]+\/[\w.-]+$/.test(repoId))
    throw new ModelSourceError(`'${repoId}' is not a Hugging Face repo id (org/name)`);
  if (opts.ggufFile !== undefined) checkGgufFileName(opts.ggufFile, repoId);
  const endpoint = opts.endpoint ?? 'https://huggingface.co';
  return urlSource(`${endpoint}/${repoId}/resolve/${opts.revision ?? 'main'}/`, { ...opts, name: repoId });
}

function parsedUrl(text: string): URL | null {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}

/** `org/name/x.gguf` (or `org/name/folder/x.gguf`): a hub repo id, then a GGUF file in it. */
const HUB_GGUF = /^([\w.-]+\/[\w.-]+)\/(.+\.gguf)$/i;

/** A GGUF file name given by a user (--gguf-file, hubSource's ggufFile): `x.gguf` or `folder/x.gguf`. */
function checkGgufFileName(file: string, where: string): void {
  const segments = file.split('/');
  if (!isGgufFileName(file) || file.includes('\\') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new ModelSourceError(`${where}: "${file}" is not a GGUF file name (name.gguf, or folder/name.gguf)`);
  }
}

function defaultCache(): FileCache | null {
  if (typeof caches !== 'undefined') return browserCache();
  if (typeof process !== 'undefined' && process.versions?.node) return diskCache();
  return null;
}

/**
 * A body's bytes in one buffer. Once the final size is known (an exact Content-Length, or a
 * safetensors header) the buffer is allocated once and chunks are copied in: a 1.5 GiB body
 * costs 1.5 GiB, not twice that.
 */
class BodyBuffer {
  private chunks: Uint8Array[] = [];
  private out: Uint8Array | null = null;
  length = 0;

  push(chunk: Uint8Array) {
    if (this.out) this.out.set(chunk, this.length);
    else this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The first n bytes (n ≤ length). */
  prefix(n: number): Uint8Array {
    if (this.out) return this.out.subarray(0, n);
    if (this.chunks.length === 1 || this.chunks[0].length >= n) return this.chunks[0].subarray(0, n);
    this.chunks = [this.concat(this.length)];
    return this.chunks[0].subarray(0, n);
  }

  /** From now on the body is exactly `size` bytes (size ≥ length). */
  fix(size: number) {
    if (this.out) return;
    this.out = new Uint8Array(size);
    this.out.set(this.concat(this.length));
    this.chunks = [];
  }

  bytes(): Uint8Array {
    if (this.out) return this.out.length === this.length ? this.out : this.out.subarray(0, this.length);
    return this.concat(this.length);
  }

  private concat(n: number): Uint8Array {
    if (this.chunks.length === 1 && this.chunks[0].length === n) return this.chunks[0];
    const all = new Uint8Array(n);
    let off = 0;
    for (const c of this.chunks) {
      all.set(c, off);
      off += c.length;
    }
    return all;
  }
}

/**
 * One GET with an idle deadline and size checks; null on 404. What bounds the body:
 *   Content-Length, when it counts the bytes we get (no Content-Encoding; a gzip response's
 *   Content-Length counts the compressed bytes and fetch hands us the decoded ones);
 *   for .safetensors, the size the header promises, known once 8 + N bytes are in;
 *   opts.maxBytes (an index's total_size, 256 MiB for a JSON file).
 */
async function download(
  url: string,
  file: string,
  name: string,
  opts: { idleTimeoutMs: number; maxBytes: number; fetch: typeof fetch; onProgress?: (p: LoadProgress) => void },
): Promise<Uint8Array | null> {
  const at = fileLabel(name, file);
  const controller = new AbortController();
  const buffer = new BodyBuffer();
  let total: number | undefined;
  let stalled = false;
  let lastChunkAt = Date.now();
  let deadlineFrom = Date.now(); // reset each time STALL_BYTES more have arrived
  let bytesAtDeadline = 0;
  const tick = Math.max(10, Math.min(1000, opts.idleTimeoutMs / 4));
  const timer = setInterval(() => {
    const now = Date.now();
    if (now - deadlineFrom >= opts.idleTimeoutMs) {
      stalled = true;
      controller.abort();
    } else if (now - lastChunkAt >= tick) {
      opts.onProgress?.({ file, loadedBytes: buffer.length, totalBytes: total, stalledMs: now - lastChunkAt });
    }
  }, tick);
  const stallError = () =>
    new ModelSourceError(
      `${at}: download stalled: ${buffer.length - bytesAtDeadline} bytes in the last ${opts.idleTimeoutMs / 1000} s ` +
        `(${buffer.length}${total === undefined ? '' : ` of ${total}`} bytes in all); check the network and retry`,
    );
  try {
    let res: Response;
    try {
      res = await opts.fetch(url, { signal: controller.signal });
    } catch (e) {
      if (stalled) throw stallError();
      throw new ModelSourceError(`${at}: download failed (${(e as Error).message}); check the network and retry`);
    }
    if (res.status === 404) return null;
    if (!res.ok) throw new ModelSourceError(`${at}: HTTP ${res.status} ${res.statusText}`);

    const encoding = res.headers.get('content-encoding')?.trim().toLowerCase() ?? null;
    const header = res.headers.get('content-length');
    // In a browser a cross-origin response may hide Content-Encoding: then the length proves nothing.
    const lengthCounts = encoding === 'identity' || (encoding === null && res.type !== 'cors');
    const exact = lengthCounts && header !== null && /^\d+$/.test(header.trim()) ? Number(header) : undefined;
    let limit = opts.maxBytes;
    if (exact !== undefined) {
      if (exact > limit) {
        throw new ModelSourceError(`${at}: Content-Length ${exact} is more than the ${limit} bytes it can be`);
      }
      total = exact;
      limit = exact;
      buffer.fix(exact);
    }
    let promised: number | null = null; // what a safetensors header says the file holds
    let needed = 8; // bytes before the header can be read: 8, then 8 + N
    // GGUF: the header is re-read from the start whenever twice the bytes of the last try are in,
    // so a bad magic or a lying count stops the download early; readGgufHeader says the least it needs.
    let ggufNeeded = isGgufFileName(file) ? GGUF_FIRST_TRY_BYTES : Infinity;
    const checkGgufHeader = () => {
      if (buffer.length < ggufNeeded) return;
      let read: ReturnType<typeof readGgufHeader>;
      try {
        read = readGgufHeader(buffer.prefix(buffer.length), { fileName: at, fileSize: exact });
      } catch (e) {
        throw new ModelSourceError((e as Error).message, { cause: e });
      }
      if (!read.done) {
        ggufNeeded = Math.max(read.needBytes, 2 * buffer.length);
        return;
      }
      ggufNeeded = Infinity;
      if (exact !== undefined && exact < read.header.minFileSize) {
        throw new ModelSourceError(
          `${at}: Content-Length is ${exact} bytes, but the GGUF header's tensors end at byte ` +
            `${read.header.minFileSize}`,
        );
      }
    };
    const checkPromise = () => {
      checkGgufHeader();
      if (promised !== null || !file.endsWith('.safetensors') || buffer.length < needed) return;
      try {
        if (needed === 8) {
          const v = new DataView(buffer.prefix(8).slice().buffer);
          needed = 8 + Math.min(v.getUint32(4, true) * 2 ** 32 + v.getUint32(0, true), MAX_HEADER_BYTES + 1);
          if (needed > 8 + MAX_HEADER_BYTES) safetensorsSizeFromPrefix(buffer.prefix(8), at); // throws: no such header
          if (buffer.length < needed) return;
        }
        promised = safetensorsSizeFromPrefix(buffer.prefix(needed), at);
      } catch (e) {
        throw new ModelSourceError((e as Error).message, { cause: e });
      }
      if (promised === null) return;
      if (exact !== undefined && exact !== promised) {
        throw new ModelSourceError(
          `${at}: Content-Length is ${exact} bytes but the safetensors header promises ${promised}`,
        );
      }
      if (promised > limit) {
        throw new ModelSourceError(`${at}: the safetensors header promises ${promised} bytes, more than ${limit}`);
      }
      if (buffer.length > promised) {
        throw new ModelSourceError(
          `${at}: the body runs past the ${promised} bytes its safetensors header promises; stopped there`,
        );
      }
      limit = promised;
      total = promised;
      buffer.fix(promised);
    };

    if (!res.body) {
      buffer.push(new Uint8Array(await res.arrayBuffer()));
      checkPromise();
    } else {
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (buffer.length + value.length > limit) {
            const why =
              promised !== null
                ? 'its safetensors header promises'
                : exact !== undefined
                  ? 'its Content-Length says'
                  : 'it can be';
            throw new ModelSourceError(`${at}: the body runs past the ${limit} bytes ${why}; stopped there`);
          }
          buffer.push(value);
          lastChunkAt = Date.now();
          if (buffer.length - bytesAtDeadline >= STALL_BYTES) {
            deadlineFrom = lastChunkAt;
            bytesAtDeadline = buffer.length;
          }
          checkPromise();
          opts.onProgress?.({ file, loadedBytes: buffer.length, totalBytes: total });
        }
      } catch (e) {
        await reader.cancel().catch(() => {});
        if (e instanceof ModelSourceError) throw e;
        if (stalled) throw stallError();
        const why = (e as Error).message;
        throw new ModelSourceError(`${at}: download cut off after ${buffer.length} bytes (${why}); retry`);
      }
    }
    if (total !== undefined && buffer.length !== total) {
      const what = promised !== null ? 'its safetensors header promises' : 'Content-Length says';
      throw new ModelSourceError(`${at}: got ${buffer.length} of the ${total} bytes ${what}; retry`);
    }
    return buffer.bytes();
  } finally {
    clearInterval(timer);
  }
}

export interface ModelFiles {
  source: string;
  config: unknown;
  tokenizer: unknown | null;
  /**
   * tokenizer_config.json, with `chat_template` taken from chat_template.jinja when there is one
   * (it wins, as in transformers), else from chat_template.json when the config has none.
   * An object holding only `chat_template` when the folder has a template file but no config.
   */
  tokenizerConfig: unknown | null;
  /** Where `tokenizerConfig.chat_template` came from ('chat_template.jinja', ...); null when there is none. */
  chatTemplateFile: string | null;
  generationConfig: unknown | null;
  shards: SafetensorsFile[];
  /** Where a tensor lives; null when no shard has it. */
  tensor(name: string): { file: SafetensorsFile; info: TensorInfo } | null;
  tensorNames(): string[];
  /**
   * A GGUF model: the whole file, parsed and checked. As loadModelFiles returns it, the fields above
   * are empty (config, tokenizer... null, no shards); ggufModelFiles() (src/model/ggufModelFiles.ts)
   * fills them from it: Transformer.load and Engine.load do that themselves.
   */
  gguf?: GgufFile | null;
}

/**
 * Loads everything a model needs from a source. Weights come from model.safetensors or the shards
 * an index names; each tensor must be in exactly the shard the index says.
 * `needTokenizer: false` loads config and weights only (the `logits` path works without text files).
 */
export async function loadModelFiles(
  source: ModelSource,
  opts: { onProgress?: (p: LoadProgress) => void; needTokenizer?: boolean; ggufFile?: string } = {},
): Promise<ModelFiles> {
  // A file that came from a cache says so: a stale cached copy is then easy to find and delete.
  const at = (file: string) => {
    const origin = source.origin?.(file);
    return `${source.name}: ${file}${origin ? ` (${origin})` : ''}`;
  };
  const ggufFile = opts.ggufFile ?? source.ggufFile;
  if (ggufFile !== undefined) return loadGgufModelFile(source, ggufFile, opts.onProgress);
  const json = async (file: string, required: boolean): Promise<unknown | null> => {
    const bytes = await source.readFile(file, opts.onProgress);
    if (!bytes) {
      if (required) throw new ModelSourceError(`${at(file)}: missing`);
      return null;
    }
    try {
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      throw new ModelSourceError(`${at(file)}: not valid JSON (${(e as Error).message})`);
    }
  };
  const config = await json('config.json', true);
  const tokenizer = await json('tokenizer.json', opts.needTokenizer === true);
  let tokenizerConfig = await json('tokenizer_config.json', false);
  const generationConfig = await json('generation_config.json', false);
  let chatTemplateFile: string | null = null;
  if (tokenizer !== null) {
    ({ tokenizerConfig, chatTemplateFile } = await withChatTemplateFiles(source, tokenizerConfig, opts.onProgress, at));
  }

  const shards: SafetensorsFile[] = [];
  const owner = new Map<string, SafetensorsFile>();
  const single = await source.readFile('model.safetensors', opts.onProgress);
  if (single) {
    const f = parseSafetensors(single, at('model.safetensors'));
    shards.push(f);
    for (const name of f.tensors.keys()) owner.set(name, f);
  } else {
    type Index = { weight_map?: Record<string, unknown>; metadata?: { total_size?: unknown } };
    const index = (await json('model.safetensors.index.json', false)) as Index | null;
    if (!index)
      throw new ModelSourceError(`${source.name}: neither model.safetensors nor model.safetensors.index.json found`);
    const map = index.weight_map;
    if (!map || typeof map !== 'object')
      throw new ModelSourceError(`${at('model.safetensors.index.json')}: no weight_map object`);
    const byFile = new Map<string, string[]>();
    for (const [tensor, file] of Object.entries(map)) {
      if (typeof file !== 'string' || !/^[\w.-]+\.safetensors$/.test(file)) {
        throw new ModelSourceError(
          `${at('model.safetensors.index.json')}: weight_map["${tensor}"] is not a shard file name`,
        );
      }
      byFile.set(file, [...(byFile.get(file) ?? []), tensor]);
    }
    // total_size counts the tensor bytes of all shards, so no shard is larger than it plus a header.
    const totalSize = index.metadata?.total_size;
    const maxBytes = typeof totalSize === 'number' && totalSize >= 0 ? totalSize + 8 + MAX_HEADER_BYTES : undefined;
    for (const [file, tensors] of byFile) {
      const bytes = await source.readFile(file, opts.onProgress, { maxBytes });
      if (!bytes) throw new ModelSourceError(`${at(file)}: missing (listed in model.safetensors.index.json)`);
      const f = parseSafetensors(bytes, at(file));
      shards.push(f);
      for (const t of tensors) {
        if (!f.tensors.has(t))
          throw new ModelSourceError(`${at(file)}: tensor "${t}" listed in the index is not in this shard`);
        owner.set(t, f);
      }
    }
  }
  return {
    source: source.name,
    config,
    tokenizer,
    tokenizerConfig,
    chatTemplateFile,
    generationConfig,
    shards,
    tensor(name) {
      const file = owner.get(name);
      return file ? { file, info: file.tensors.get(name)! } : null;
    },
    tensorNames: () => [...owner.keys()],
  };
}

/**
 * A GGUF model: the one file, read whole (as a safetensors shard is) and parsed strictly (the URL
 * source has checked it before caching it). A split GGUF (`split.count` > 1, the
 * `-00001-of-0000N.gguf` files of llama-gguf-split) is refused: its tensors are spread over files.
 */
async function loadGgufModelFile(
  source: ModelSource,
  file: string,
  onProgress: ((p: LoadProgress) => void) | undefined,
): Promise<ModelFiles> {
  checkGgufFileName(file, source.name);
  const where = () => {
    const origin = source.origin?.(file);
    return `${fileLabel(source.name, file)}${origin ? ` (${origin})` : ''}`;
  };
  const bytes = await source.readFile(file, onProgress);
  if (!bytes) throw new ModelSourceError(`${where()}: missing`);
  let gguf: GgufFile;
  try {
    gguf = parseGguf(bytes, where());
  } catch (e) {
    if (e instanceof GgufError) throw new ModelSourceError(e.message, { cause: e });
    throw e;
  }
  const split = gguf.metadata.get('split.count');
  if (split && split.type !== 'array' && Number(split.value) > 1) {
    throw new ModelSourceError(
      `${where()}: split.count is ${split.value}: one part of a split GGUF; merge the parts into one file ` +
        '(llama-gguf-split --merge first-part.gguf merged.gguf) and load that',
    );
  }
  return {
    source: source.name,
    config: null,
    tokenizer: null,
    tokenizerConfig: null,
    chatTemplateFile: null,
    generationConfig: null,
    shards: [],
    tensor: () => null,
    tensorNames: () => [],
    gguf,
  };
}

/**
 * The chat template as transformers finds it: chat_template.jinja (transformers ≥ 4.5x writes it
 * and drops the template from tokenizer_config.json) wins over tokenizer_config.json's
 * `chat_template`, which wins over chat_template.json's (the processor file, `{"chat_template": ...}`).
 */
async function withChatTemplateFiles(
  source: ModelSource,
  tokenizerConfig: unknown | null,
  onProgress: ((p: LoadProgress) => void) | undefined,
  at: (file: string) => string,
): Promise<{ tokenizerConfig: unknown | null; chatTemplateFile: string | null }> {
  const config = (tokenizerConfig ?? null) as Record<string, unknown> | null;
  const jinja = await source.readFile('chat_template.jinja', onProgress);
  if (jinja) {
    let template: string;
    try {
      template = new TextDecoder('utf-8', { fatal: true }).decode(jinja);
    } catch {
      throw new ModelSourceError(`${at('chat_template.jinja')}: not valid UTF-8`);
    }
    return { tokenizerConfig: { ...config, chat_template: template }, chatTemplateFile: 'chat_template.jinja' };
  }
  if (config && config.chat_template !== undefined && config.chat_template !== null) {
    return { tokenizerConfig: config, chatTemplateFile: 'tokenizer_config.json' };
  }
  const bytes = await source.readFile('chat_template.json', onProgress);
  if (!bytes) return { tokenizerConfig, chatTemplateFile: null };
  let wrapper: unknown;
  try {
    wrapper = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new ModelSourceError(`${at('chat_template.json')}: not valid JSON (${(e as Error).message})`);
  }
  const template = (wrapper as { chat_template?: unknown } | null)?.chat_template;
  if (typeof template !== 'string' && !Array.isArray(template)) {
    throw new ModelSourceError(`${at('chat_template.json')}: no "chat_template" string or list`);
  }
  return { tokenizerConfig: { ...config, chat_template: template }, chatTemplateFile: 'chat_template.json' };
}

/**
 * A source from what a user typed: an http(s) URL (a folder, or a `.gguf` file), an existing local
 * folder or `.gguf` file (Node), or a Hugging Face repo id `org/name` (`org/name/x.gguf`: a GGUF
 * file of the repo). A local folder without
 * config.json that holds exactly one `.gguf` file is that GGUF model. `ggufFile` names the GGUF
 * file inside a folder, URL prefix or repo (the CLI's --gguf-file).
 */
export async function resolveSource(model: string, opts: { ggufFile?: string } = {}): Promise<ModelSource> {
  const { ggufFile } = opts;
  if (ggufFile !== undefined) checkGgufFileName(ggufFile, model);
  if (/^https?:\/\//.test(model)) return urlSource(model, { ggufFile });
  if (typeof process !== 'undefined' && process.versions?.node) {
    const fs = await import('node:fs');
    if (fs.existsSync(model)) {
      if (!fs.statSync(model).isDirectory()) {
        if (isGgufFileName(model)) return folderSource(model);
        throw new ModelSourceError(`${model}: not a folder or a .gguf file (give the folder that holds config.json)`);
      }
      if (ggufFile !== undefined || fs.existsSync(`${model}/config.json`)) return folderSource(model, { ggufFile });
      const ggufs = fs.readdirSync(model).filter(isGgufFileName).sort();
      if (ggufs.length === 1) return folderSource(model, { ggufFile: ggufs[0] });
      if (ggufs.length > 1) {
        throw new ModelSourceError(
          `${model}: no config.json and ${ggufs.length} GGUF files (${ggufs.join(', ')}); pick one with --gguf-file`,
        );
      }
      return folderSource(model);
    }
  }
  if (/^[\w.-]+\/[\w.-]+$/.test(model) || HUB_GGUF.test(model)) return hubSource(model, { ggufFile });
  throw new ModelSourceError(`${model}: no such folder or file, and not a URL or a Hugging Face repo id (org/name)`);
}
