/**
 * A GGUF file's header read from its first bytes only, so the page can price a GGUF model (its
 * ModelSpec, the bytes of its tensors, its KV bill) before downloading gigabytes of weights:
 *   picked files   File.slice
 *   a URL / hub    fetch with a Range header; a server that ignores it (200, the whole body) is
 *                  read only as far as needed and the rest of the body is cancelled
 * The prefix grows as readGgufHeader asks (256 KiB, then at least double: a header holding a
 * 128K-token vocabulary is several MB). A Llama 3.1+ file's `rope_freqs.weight` (its RoPE scaling,
 * a few hundred bytes) is read as one more range: ggufModelSpec needs its values.
 */
import { type GgufHeader, readGgufHeader } from '../src/sources/gguf';

/** Bytes [begin, end) of a file (fewer only where the file ends), and the file's size when known. */
export type RangeReader = (begin: number, end: number) => Promise<{ bytes: Uint8Array; size?: number }>;

export interface GgufPrefix {
  header: GgufHeader;
  /** The values of `rope_freqs.weight` when the file has one. */
  ropeFreqs?: Float32Array;
  /** The whole file's size, when the source said. */
  fileSize?: number;
  /** Bytes read to get here (the header and rope_freqs). */
  bytesRead: number;
}

const FIRST_TRY_BYTES = 256 * 1024;

/** The header (and rope_freqs) of the GGUF file `read` reads; GgufError when it is malformed. */
export async function readGgufPrefix(read: RangeReader, fileName: string): Promise<GgufPrefix> {
  let want = FIRST_TRY_BYTES;
  let bytesRead = 0;
  for (;;) {
    const { bytes, size } = await read(0, want);
    bytesRead += bytes.length;
    // Fewer bytes than asked: the file ends there (a source that did not say its size).
    const got = readGgufHeader(bytes, { fileName, fileSize: size ?? (bytes.length < want ? bytes.length : undefined) });
    if (got.done) {
      const rope = got.header.tensors.get('rope_freqs.weight');
      if (!rope) return { header: got.header, fileSize: size, bytesRead };
      if (rope.type !== 'F32') throw new Error(`${fileName}: rope_freqs.weight is ${rope.type}, not F32`);
      const r = await read(rope.begin, rope.end);
      if (r.bytes.length !== rope.byteLength) {
        throw new Error(`${fileName}: rope_freqs.weight: got ${r.bytes.length} of its ${rope.byteLength} bytes`);
      }
      const ropeFreqs = new Float32Array(r.bytes.slice().buffer); // little-endian hosts, as the loader
      return { header: got.header, ropeFreqs, fileSize: size, bytesRead: bytesRead + r.bytes.length };
    }
    if (bytes.length < want) throw new Error(`${fileName}: the file ended inside its GGUF header`);
    want = Math.max(got.needBytes, 2 * want);
  }
}

/** Ranges of a picked file. */
export function fileRangeReader(file: Blob): RangeReader {
  return async (begin, end) => ({
    bytes: new Uint8Array(await file.slice(begin, Math.min(end, file.size)).arrayBuffer()),
    size: file.size,
  });
}

/**
 * Ranges of a URL: `Range: bytes=begin-(end-1)`. A 206 gives the range (and the size, from
 * Content-Range); a 200 gives the whole file, of which the bytes up to `end` are read and the rest
 * cancelled.
 */
export function urlRangeReader(url: string, fetchFn: typeof fetch = (i, o) => globalThis.fetch(i, o)): RangeReader {
  return async (begin, end) => {
    const res = await fetchFn(url, { headers: { Range: `bytes=${begin}-${end - 1}` } });
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
    const partial = res.status === 206;
    const range = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '');
    const length = res.headers.get('content-length');
    const size = range ? Number(range[1]) : !partial && length && /^\d+$/.test(length) ? Number(length) : undefined;
    const skip = partial ? 0 : begin;
    const bytes = await readUpTo(res, skip + (end - begin));
    return { bytes: bytes.subarray(skip), size };
  };
}

/** The first `limit` bytes of a body (all of it if shorter); the rest is not downloaded. */
async function readUpTo(res: Response, limit: number): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(await res.arrayBuffer()).subarray(0, limit);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  while (n < limit) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    n += value.length;
  }
  if (n >= limit) await reader.cancel().catch(() => undefined);
  const out = new Uint8Array(Math.min(n, limit));
  let at = 0;
  for (const c of chunks) {
    const take = Math.min(c.length, out.length - at);
    out.set(c.subarray(0, take), at);
    at += take;
    if (at === out.length) break;
  }
  return out;
}
