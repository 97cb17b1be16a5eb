/**
 * A strict safetensors reader and writer (no dependency; runs in the browser and in Node).
 *
 * Layout of a file:
 *   bytes [0, 8)          N, the header length: u64 little-endian
 *   bytes [8, 8 + N)      UTF-8 JSON object, optionally padded with trailing spaces
 *   bytes [8 + N, end)    the data section; every tensor owns one byte range of it
 *
 * The JSON maps tensor name → { dtype, shape, data_offsets: [begin, end] } with offsets relative to
 * the start of the data section, plus an optional "__metadata__" object of string → string.
 * Worked example: N = 120, tensor "q" with data_offsets [64, 128] lives at bytes [192, 256).
 *
 * Checks (each failure is a SafetensorsError naming the file and the tensor/field):
 *   - N fits in the file and is below MAX_HEADER_BYTES; the header is valid UTF-8 JSON object;
 *   - dtype is a known safetensors dtype; shape is an array of non-negative safe integers;
 *   - numel(shape) · bits(dtype) / 8 == end - begin; 0 <= begin <= end <= data section length;
 *   - no two tensors' byte ranges overlap (gaps and any order are allowed, unlike the reference
 *     implementation, which also demands that the ranges tile the data section exactly);
 *   - "__metadata__" is an object whose values are all strings.
 * Unknown fields inside a tensor entry are ignored, as the reference implementation does.
 */
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToF16 } from './halfFloat';

/** Headers above this are refused before any decoding (the reference implementation uses 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bits per element of every dtype the format defines. */
export const DTYPE_BITS = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  I64: 64,
  U64: 64,
  F64: 64,
  C64: 64,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
} as const;

export type Dtype = keyof typeof DTYPE_BITS;

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Absolute byte range in `SafetensorsFile.bytes` (data offsets + dataOffset). */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  fileName: string;
  metadata: Record<string, string>;
  /** In header order. */
  tensors: Map<string, TensorInfo>;
  /** Absolute byte offset of the data section: 8 + N. */
  dataOffset: number;
  bytes: Uint8Array;
}

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
  constructor(
    readonly fileName: string,
    /** The tensor the problem is in, when there is one. */
    readonly tensor: string | undefined,
    detail: string,
  ) {
    super(`${fileName}: ${tensor !== undefined ? `tensor ${JSON.stringify(tensor)}: ` : ''}${detail}`);
  }
}

const METADATA_KEY = '__metadata__';

function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && Object.hasOwn(DTYPE_BITS, s);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Short, bounded rendering of a JSON value for error messages. */
function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * The file size a safetensors file's start promises: 8 + N + the largest data_offsets end, or
 * null while `prefix` is too short to tell (less than 8 + N bytes). Lets a download stop a body
 * that runs past it, or a Content-Length that disagrees, long before the whole file is in.
 * Throws SafetensorsError for a start that cannot be a safetensors file. Worked example: N = 120
 * and tensors ending at 64 and 256 → 8 + 120 + 256 = 384.
 */
export function safetensorsSizeFromPrefix(prefix: Uint8Array, fileName = '<buffer>'): number | null {
  if (prefix.length < 8) return null;
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const headerLen = view.getUint32(4, true) * 2 ** 32 + view.getUint32(0, true);
  if (headerLen > MAX_HEADER_BYTES || headerLen < 2) {
    throw new SafetensorsError(fileName, undefined, `header length ${headerLen} is not a safetensors header length`);
  }
  if (prefix.length < 8 + headerLen) return null;
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(prefix.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new SafetensorsError(fileName, undefined, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) throw new SafetensorsError(fileName, undefined, 'header must be a JSON object');
  let end = 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    const offsets = isPlainObject(entry) ? entry.data_offsets : undefined;
    const last = Array.isArray(offsets) ? offsets[1] : undefined;
    if (!isCount(last)) {
      throw new SafetensorsError(fileName, name, `data_offsets must be [begin, end], got ${show(offsets)}`);
    }
    end = Math.max(end, last);
  }
  return 8 + headerLen + end;
}

/** Parses a whole safetensors file held in memory. The result's views alias `bytes`. */
export function parseSafetensors(bytes: Uint8Array, fileName = '<buffer>'): SafetensorsFile {
  const fail = (detail: string, tensor?: string): never => {
    throw new SafetensorsError(fileName, tensor, detail);
  };

  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const headerLen = hi * 2 ** 32 + lo; // exact up to 2^53; anything that large is refused below
  if (headerLen > MAX_HEADER_BYTES) {
    fail(`header length ${headerLen} is above the ${MAX_HEADER_BYTES}-byte cap (not a safetensors file?)`);
  }
  if (8 + headerLen > bytes.length) {
    fail(`header length ${headerLen} runs past the end of the file (${bytes.length} bytes; truncated?)`);
  }
  if (headerLen < 2) fail(`header length ${headerLen} is too short for a JSON object`);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header))
    fail(`header must be a JSON object, got ${Array.isArray(header) ? 'an array' : show(header)}`);
  const entries = header as Record<string, unknown>;

  const dataOffset = 8 + headerLen;
  const dataLen = bytes.length - dataOffset;

  const metadata: Record<string, string> = Object.create(null); // a "__proto__" key stays a key
  if (Object.hasOwn(entries, METADATA_KEY)) {
    const meta = entries[METADATA_KEY];
    if (!isPlainObject(meta)) fail(`${METADATA_KEY} must be an object of strings, got ${show(meta)}`);
    for (const [k, v] of Object.entries(meta as Record<string, unknown>)) {
      if (typeof v !== 'string') fail(`${METADATA_KEY}.${k} must be a string, got ${show(v)}`);
      metadata[k] = v as string;
    }
  }

  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(entries)) {
    if (name === METADATA_KEY) continue;
    if (!isPlainObject(entry))
      fail(`entry must be an object with dtype, shape, data_offsets, got ${show(entry)}`, name);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;

    if (dtype === undefined) fail('dtype is missing', name);
    if (!isDtype(dtype)) fail(`dtype ${show(dtype)} is not a known safetensors dtype (F32, F16, BF16, I64, ...)`, name);
    const dt = dtype as Dtype;

    if (shape === undefined) fail('shape is missing', name);
    if (!Array.isArray(shape)) fail(`shape must be an array, got ${show(shape)}`, name);
    const dims = shape as unknown[];
    for (let i = 0; i < dims.length; i++) {
      if (!isCount(dims[i])) fail(`shape[${i}] must be a non-negative integer, got ${show(dims[i])}`, name);
    }
    const numel = elementCount(dims as number[]);
    if (numel === undefined) fail(`shape ${show(shape)} has too many elements`, name);

    if (offsets === undefined) fail('data_offsets is missing', name);
    if (!Array.isArray(offsets) || offsets.length !== 2)
      fail(`data_offsets must be [begin, end], got ${show(offsets)}`, name);
    const [begin, end] = offsets as unknown[];
    if (!isCount(begin) || !isCount(end))
      fail(`data_offsets must be non-negative integers, got ${show(offsets)}`, name);
    const b = begin as number;
    const e = end as number;
    if (b > e) fail(`data_offsets [${b}, ${e}] has begin after end`, name);
    if (e > dataLen) fail(`data_offsets [${b}, ${e}] runs past the data section (${dataLen} bytes; truncated?)`, name);

    const bits = numel! * DTYPE_BITS[dt];
    if (bits % 8 !== 0) fail(`shape ${show(shape)} of ${dt} is not a whole number of bytes`, name);
    if (bits / 8 !== e - b) {
      fail(`shape ${show(shape)} of ${dt} needs ${bits / 8} bytes but data_offsets [${b}, ${e}] hold ${e - b}`, name);
    }

    tensors.set(name, { name, dtype: dt, shape: dims as number[], begin: dataOffset + b, end: dataOffset + e });
  }

  // Overlap check: sort the non-empty ranges by begin; each must start at or after the previous end.
  const ranges = [...tensors.values()].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1];
    const cur = ranges[i];
    if (cur.begin < prev.end) {
      const rel = (t: TensorInfo) => `[${t.begin - dataOffset}, ${t.end - dataOffset}]`;
      fail(`data_offsets ${rel(cur)} overlap tensor ${JSON.stringify(prev.name)} at ${rel(prev)}`, cur.name);
    }
  }

  return { fileName, metadata, tensors, dataOffset, bytes };
}

/** Product of the dims, or undefined when it could overflow the size arithmetic (it then can't fit a file). */
function elementCount(shape: number[]): number | undefined {
  if (shape.some((d) => d === 0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER / 64) return undefined;
  }
  return n;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A copy of a tensor's bytes in a fresh (aligned) ArrayBuffer of exactly that size. Not
 * `bytes.slice()`: on a Node Buffer (what readFile returns) slice is a view, not a copy.
 */
function tensorBytes(file: SafetensorsFile, t: TensorInfo): Uint8Array {
  const copy = new Uint8Array(t.end - t.begin);
  copy.set(file.bytes.subarray(t.begin, t.end));
  return copy;
}

/** Reads an F32, F16 or BF16 tensor as a new Float32Array (always a copy). */
export function readTensorF32(file: SafetensorsFile, name: string): Float32Array {
  const t = file.tensors.get(name);
  if (!t) {
    const names = [...file.tensors.keys()];
    const list =
      names.length === 0
        ? 'it has none'
        : `it has ${names
            .slice(0, 10)
            .map((n) => JSON.stringify(n))
            .join(', ')}${names.length > 10 ? ', ...' : ''}`;
    throw new SafetensorsError(file.fileName, name, `no such tensor (${list})`);
  }
  const raw = tensorBytes(file, t);
  const n = (t.end - t.begin) / (DTYPE_BITS[t.dtype] / 8);
  if (t.dtype === 'F32') {
    if (LITTLE_ENDIAN_HOST) return new Float32Array(raw.buffer, 0, n);
    const dv = new DataView(raw.buffer);
    return Float32Array.from({ length: n }, (_, i) => dv.getFloat32(4 * i, true));
  }
  if (t.dtype === 'F16' || t.dtype === 'BF16') {
    let bits = new Uint16Array(raw.buffer, 0, n);
    if (!LITTLE_ENDIAN_HOST) {
      const dv = new DataView(raw.buffer);
      bits = Uint16Array.from({ length: n }, (_, i) => dv.getUint16(2 * i, true));
    }
    return t.dtype === 'F16' ? f16ArrayToF32(bits) : bf16ArrayToF32(bits);
  }
  throw new SafetensorsError(file.fileName, name, `has dtype ${t.dtype}; only F32, F16 and BF16 convert to float`);
}

export interface TensorToWrite {
  dtype: 'F32' | 'F16';
  shape: number[];
  /** F32: a Float32Array. F16: f16 bit patterns (Uint16Array) or values to round (Float32Array). */
  data: Float32Array | Uint16Array;
}

/**
 * Serialises tensors (and optional string metadata) to safetensors bytes. Like the reference
 * implementation, tensors are laid out by element size, largest first, then by name, so every tensor
 * starts aligned to its element size; the header is padded with spaces so the data starts at a
 * multiple of 8.
 */
export function writeSafetensors(
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Uint8Array {
  const fail = (detail: string, tensor?: string): never => {
    throw new SafetensorsError('<writeSafetensors>', tensor, detail);
  };
  const names = Object.keys(tensors).sort((a, b) => {
    const d = DTYPE_BITS[tensors[b].dtype] - DTYPE_BITS[tensors[a].dtype];
    return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
  });

  const header: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') fail(`${METADATA_KEY}.${k} must be a string, got ${show(v)}`);
    }
    header[METADATA_KEY] = metadata;
  }

  const payloads: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY) fail(`${METADATA_KEY} is reserved and cannot name a tensor`);
    const t = tensors[name];
    if (t.dtype !== 'F32' && t.dtype !== 'F16') fail(`dtype ${show(t.dtype)} cannot be written (F32 or F16)`, name);
    if (!Array.isArray(t.shape) || !t.shape.every(isCount))
      fail(`shape ${show(t.shape)} must be non-negative integers`, name);
    const numel = elementCount(t.shape);
    if (numel === undefined || numel !== t.data.length) {
      fail(`shape ${show(t.shape)} has ${numel ?? 'too many'} elements but data has ${t.data.length}`, name);
    }
    let payload: Uint8Array;
    if (t.dtype === 'F32') {
      if (!(t.data instanceof Float32Array)) fail('F32 data must be a Float32Array', name);
      payload = littleEndianBytes(t.data as Float32Array);
    } else {
      const bits = t.data instanceof Float32Array ? f32ArrayToF16(t.data) : t.data;
      payload = littleEndianBytes(bits);
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + payload.length] };
    payloads.push(payload);
    offset += payload.length;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLen % 2 ** 32, true);
  view.setUint32(4, Math.floor(headerLen / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen); // space padding
  let at = 8 + headerLen;
  for (const p of payloads) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function littleEndianBytes(a: Float32Array | Uint16Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const out = new Uint8Array(a.byteLength);
  const dv = new DataView(out.buffer);
  if (a instanceof Float32Array) a.forEach((x, i) => dv.setFloat32(4 * i, x, true));
  else a.forEach((x, i) => dv.setUint16(2 * i, x, true));
  return out;
}
