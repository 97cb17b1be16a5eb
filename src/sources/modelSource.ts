/**
 * Where a model's files come from, and loading them into parsed form. A ModelSource only knows how
 * to fetch a file by name; loadModelFiles() decides which files a model needs:
 *   config.json                          required
 *   model.safetensors                    or the shards listed in model.safetensors.index.json
 *   tokenizer.json, tokenizer_config.json, generation_config.json   optional (text needs the first)
 * Sources: a folder (Node), a URL prefix, a Hugging Face repo id (`org/name`, from
 * https://huggingface.co/<id>/resolve/<revision>/<file>), or files picked in a page. URL and hub
 * sources cache what they download (Cache API in the browser, a folder on disk in Node) so a second
 * load reads no network. Every failure names the source and the file.
 */
import { parseSafetensors, type SafetensorsFile, type TensorInfo } from './safetensors';

export class ModelSourceError extends Error {
  override name = 'ModelSourceError';
}

export interface LoadProgress {
  file: string;
  loadedBytes: number;
  /** From Content-Length or the file size; undefined when unknown. */
  totalBytes: number | undefined;
}

export interface ModelSource {
  /** Shown in messages: a path, a URL or a repo id. */
  readonly name: string;
  /** The file's bytes, or null when the source has no such file. Other failures throw. */
  readFile(file: string, onProgress?: (p: LoadProgress) => void): Promise<Uint8Array | null>;
}

/** A local folder (Node only). */
export function folderSource(dir: string): ModelSource {
  return {
    name: dir,
    async readFile(file, onProgress) {
      const fs = await import('node:fs/promises');
      const path = await import('node:path');
      try {
        const bytes = new Uint8Array(await fs.readFile(path.join(dir, file)));
        onProgress?.({ file, loadedBytes: bytes.length, totalBytes: bytes.length });
        return bytes;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw new ModelSourceError(`${dir}: cannot read ${file}: ${(e as Error).message}`);
      }
    },
  };
}

/** Files picked in a page (`<input type=file webkitdirectory>` or a drop): matched by base name. */
export function filesSource(files: readonly File[], name = 'picked files'): ModelSource {
  return {
    name,
    async readFile(file, onProgress) {
      const f = files.find((x) => x.name === file || x.webkitRelativePath?.endsWith(`/${file}`));
      if (!f) return null;
      const bytes = new Uint8Array(await f.arrayBuffer());
      onProgress?.({ file, loadedBytes: bytes.length, totalBytes: bytes.length });
      return bytes;
    },
  };
}

/** A cache of downloaded files: the Cache API in a browser, a folder in Node. */
export interface FileCache {
  get(key: string): Promise<Uint8Array | null>;
  put(key: string, bytes: Uint8Array): Promise<void>;
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
  };
}

/** Node: files under `dir` (default ~/.cache/webattn), one per URL, written atomically. */
export function diskCache(dir?: string): FileCache {
  const where = async () => {
    const os = await import('node:os');
    const path = await import('node:path');
    return dir ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'webattn');
  };
  const fileFor = async (key: string) => {
    const path = await import('node:path');
    return path.join(await where(), key.replace(/^https?:\/\//, '').replace(/[^A-Za-z0-9._/-]/g, '_'));
  };
  return {
    async get(key) {
      const fs = await import('node:fs/promises');
      try {
        return new Uint8Array(await fs.readFile(await fileFor(key)));
      } catch {
        return null;
      }
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
  };
}

/** Files under a URL prefix, fetched with progress and cached. */
export function urlSource(baseUrl: string, opts: { cache?: FileCache | null; name?: string } = {}): ModelSource {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const cache = opts.cache === undefined ? defaultCache() : opts.cache;
  const name = opts.name ?? baseUrl;
  return {
    name,
    async readFile(file, onProgress) {
      const url = base + file;
      const cached = await cache?.get(url);
      if (cached) {
        onProgress?.({ file, loadedBytes: cached.length, totalBytes: cached.length });
        return cached;
      }
      let res: Response;
      try {
        res = await fetch(url);
      } catch (e) {
        throw new ModelSourceError(`${name}: ${file}: download failed (${(e as Error).message}); check the network and retry`);
      }
      if (res.status === 404) return null;
      if (!res.ok) throw new ModelSourceError(`${name}: ${file}: HTTP ${res.status} ${res.statusText}`);
      const bytes = await readBody(res, file, name, onProgress);
      await cache?.put(url, bytes);
      return bytes;
    },
  };
}

/** A Hugging Face Hub repo id such as `HuggingFaceTB/SmolLM2-135M-Instruct`. */
export function hubSource(repoId: string, opts: { revision?: string; cache?: FileCache | null; endpoint?: string } = {}): ModelSource {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repoId)) throw new ModelSourceError(`'${repoId}' is not a Hugging Face repo id (org/name)`);
  const endpoint = opts.endpoint ?? 'https://huggingface.co';
  return urlSource(`${endpoint}/${repoId}/resolve/${opts.revision ?? 'main'}/`, { cache: opts.cache, name: repoId });
}

function defaultCache(): FileCache | null {
  if (typeof caches !== 'undefined') return browserCache();
  if (typeof process !== 'undefined' && process.versions?.node) return diskCache();
  return null;
}

async function readBody(res: Response, file: string, name: string, onProgress?: (p: LoadProgress) => void) {
  const header = res.headers.get('content-length');
  const total = header === null ? undefined : Number(header);
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.length;
      onProgress?.({ file, loadedBytes: loaded, totalBytes: total });
    }
  } catch (e) {
    throw new ModelSourceError(`${name}: ${file}: download cut off after ${loaded} bytes (${(e as Error).message}); retry`);
  }
  if (total !== undefined && loaded !== total) {
    throw new ModelSourceError(`${name}: ${file}: got ${loaded} of ${total} bytes; retry`);
  }
  const out = new Uint8Array(loaded);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

export interface ModelFiles {
  source: string;
  config: unknown;
  tokenizer: unknown | null;
  tokenizerConfig: unknown | null;
  generationConfig: unknown | null;
  shards: SafetensorsFile[];
  /** Where a tensor lives; null when no shard has it. */
  tensor(name: string): { file: SafetensorsFile; info: TensorInfo } | null;
  tensorNames(): string[];
}

/**
 * Loads everything a model needs from a source. Weights come from model.safetensors or the shards
 * an index names; each tensor must be in exactly the shard the index says.
 * `needTokenizer: false` loads config and weights only (the `logits` path works without text files).
 */
export async function loadModelFiles(
  source: ModelSource,
  opts: { onProgress?: (p: LoadProgress) => void; needTokenizer?: boolean } = {},
): Promise<ModelFiles> {
  const at = (file: string) => `${source.name}: ${file}`;
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
  const tokenizerConfig = await json('tokenizer_config.json', false);
  const generationConfig = await json('generation_config.json', false);

  const shards: SafetensorsFile[] = [];
  const owner = new Map<string, SafetensorsFile>();
  const single = await source.readFile('model.safetensors', opts.onProgress);
  if (single) {
    const f = parseSafetensors(single, at('model.safetensors'));
    shards.push(f);
    for (const name of f.tensors.keys()) owner.set(name, f);
  } else {
    const index = (await json('model.safetensors.index.json', false)) as { weight_map?: Record<string, unknown> } | null;
    if (!index) throw new ModelSourceError(`${source.name}: neither model.safetensors nor model.safetensors.index.json found`);
    const map = index.weight_map;
    if (!map || typeof map !== 'object') throw new ModelSourceError(`${at('model.safetensors.index.json')}: no weight_map object`);
    const byFile = new Map<string, string[]>();
    for (const [tensor, file] of Object.entries(map)) {
      if (typeof file !== 'string' || !/^[\w.-]+\.safetensors$/.test(file)) {
        throw new ModelSourceError(`${at('model.safetensors.index.json')}: weight_map["${tensor}"] is not a shard file name`);
      }
      byFile.set(file, [...(byFile.get(file) ?? []), tensor]);
    }
    for (const [file, tensors] of byFile) {
      const bytes = await source.readFile(file, opts.onProgress);
      if (!bytes) throw new ModelSourceError(`${at(file)}: missing (listed in model.safetensors.index.json)`);
      const f = parseSafetensors(bytes, at(file));
      shards.push(f);
      for (const t of tensors) {
        if (!f.tensors.has(t)) throw new ModelSourceError(`${at(file)}: tensor "${t}" listed in the index is not in this shard`);
        owner.set(t, f);
      }
    }
  }
  return {
    source: source.name,
    config,
    tokenizer,
    tokenizerConfig,
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
 * A source from what a user typed: an http(s) URL, an existing local folder (Node), or a Hugging
 * Face repo id `org/name`.
 */
export async function resolveSource(model: string): Promise<ModelSource> {
  if (/^https?:\/\//.test(model)) return urlSource(model);
  if (typeof process !== 'undefined' && process.versions?.node) {
    const fs = await import('node:fs');
    if (fs.existsSync(model)) {
      if (!fs.statSync(model).isDirectory()) throw new ModelSourceError(`${model}: not a folder (give the folder that holds config.json)`);
      return folderSource(model);
    }
  }
  if (/^[\w.-]+\/[\w.-]+$/.test(model)) return hubSource(model);
  throw new ModelSourceError(`${model}: no such folder, and not a URL or a Hugging Face repo id (org/name)`);
}
