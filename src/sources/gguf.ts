/**
 * A strict GGUF reader and writer (llama.cpp's model file format; no dependency; browser and Node).
 *
 * Layout of a file (GGUF v2 and v3; little endian; every count and length is a u64):
 *   magic "GGUF" | version u32 | tensor_count u64 | kv_count u64
 *   kv_count  × { key: string, value_type u32, value }              the metadata
 *   tensor_count × { name: string, n_dims u32, dims u64[n_dims], type u32, offset u64 }
 *   padding to `general.alignment` (default 32)                       → dataOffset
 *   the data section: tensor t lives at [dataOffset + offset_t, + byteLength_t)
 * A string is { length u64, UTF-8 bytes }. An array value is { item_type u32, count u64, items }.
 * dims are in ggml order: dims[0] (ne0) is the row length, the fastest-varying index, so a torch
 * weight of shape [out, in] is stored with dims [in, out]. A row of a block type is a whole number
 * of blocks (ne0 % block values == 0), so rows start on block boundaries.
 * Worked example: 2 KVs and 1 tensor whose infos end at byte 301 → dataOffset = 320 (alignment 32);
 * a Q8_0 tensor with dims [64, 10] at offset 0 holds 64/32 · 34 · 10 = 680 bytes: [320, 1000).
 *
 * Checks (each failure is a GgufError naming the file, the field and its byte offset):
 *   - magic; version 2 or 3 (v1 and byte-swapped big-endian files are refused by name);
 *   - every count fits in the bytes left (a lying count is refused before anything is allocated);
 *     the header stays below MAX_HEADER_BYTES; strings are valid UTF-8; keys and tensor names are
 *     unique; value types are known; arrays hold scalars or strings (llama.cpp refuses nested ones);
 *     bools are 0 or 1;
 *   - `general.alignment`, when present, is a u32 power of two;
 *   - tensor names are 1..63 bytes (llama.cpp's GGML_MAX_NAME); 1 <= n_dims <= 4; the type is a
 *     known ggml type; ne0 is a multiple of the type's block; the size does not overflow; the offset
 *     is a multiple of the alignment; no two tensors overlap; every tensor ends inside the file.
 * Unlike llama.cpp, tensors may come in any order and with gaps between them (as safetensors.ts).
 *
 * Ranged reads: readGgufHeader takes the first bytes of a file and returns either the header or how
 * many bytes it needs at least, so a URL source can fetch the header alone and the tensors later.
 */
import { bf16ArrayToF32, f16ArrayToF32 } from './halfFloat';

/** Headers (metadata + tensor infos) above this are refused. A 262k-token vocabulary takes ~10 MB. */
export const MAX_HEADER_BYTES = 256 * 1024 * 1024;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** llama.cpp's GGML_MAX_NAME (64) counts the terminating NUL. */
export const GGUF_MAX_TENSOR_NAME_BYTES = 63;
export const GGUF_MAX_DIMS = 4;
const MAGIC = [0x47, 0x47, 0x55, 0x46]; // "GGUF"

/** Metadata value types, indexed by their id in the file. */
export const GGUF_VALUE_TYPES = [
  'uint8',
  'int8',
  'uint16',
  'int16',
  'uint32',
  'int32',
  'float32',
  'bool',
  'string',
  'array',
  'uint64',
  'int64',
  'float64',
] as const;
export type GgufValueType = (typeof GGUF_VALUE_TYPES)[number];
export type GgufScalarType = Exclude<GgufValueType, 'array'>;

const SCALAR_BYTES: Record<Exclude<GgufScalarType, 'string'>, number> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  bool: 1,
  uint64: 8,
  int64: 8,
  float64: 8,
};

/**
 * ggml tensor types by id: values per block and bytes per block (gguf-py's GGML_QUANT_SIZES; ids
 * 4, 5 and 31..38 were removed from ggml and are refused). Q8_1 and Q8_K are ggml's intermediate
 * types; they are listed because the format allows them.
 */
export const GGML_TYPES = {
  0: { name: 'F32', blockValues: 1, blockBytes: 4 },
  1: { name: 'F16', blockValues: 1, blockBytes: 2 },
  2: { name: 'Q4_0', blockValues: 32, blockBytes: 18 },
  3: { name: 'Q4_1', blockValues: 32, blockBytes: 20 },
  6: { name: 'Q5_0', blockValues: 32, blockBytes: 22 },
  7: { name: 'Q5_1', blockValues: 32, blockBytes: 24 },
  8: { name: 'Q8_0', blockValues: 32, blockBytes: 34 },
  9: { name: 'Q8_1', blockValues: 32, blockBytes: 36 },
  10: { name: 'Q2_K', blockValues: 256, blockBytes: 84 },
  11: { name: 'Q3_K', blockValues: 256, blockBytes: 110 },
  12: { name: 'Q4_K', blockValues: 256, blockBytes: 144 },
  13: { name: 'Q5_K', blockValues: 256, blockBytes: 176 },
  14: { name: 'Q6_K', blockValues: 256, blockBytes: 210 },
  15: { name: 'Q8_K', blockValues: 256, blockBytes: 292 },
  16: { name: 'IQ2_XXS', blockValues: 256, blockBytes: 66 },
  17: { name: 'IQ2_XS', blockValues: 256, blockBytes: 74 },
  18: { name: 'IQ3_XXS', blockValues: 256, blockBytes: 98 },
  19: { name: 'IQ1_S', blockValues: 256, blockBytes: 50 },
  20: { name: 'IQ4_NL', blockValues: 32, blockBytes: 18 },
  21: { name: 'IQ3_S', blockValues: 256, blockBytes: 110 },
  22: { name: 'IQ2_S', blockValues: 256, blockBytes: 82 },
  23: { name: 'IQ4_XS', blockValues: 256, blockBytes: 136 },
  24: { name: 'I8', blockValues: 1, blockBytes: 1 },
  25: { name: 'I16', blockValues: 1, blockBytes: 2 },
  26: { name: 'I32', blockValues: 1, blockBytes: 4 },
  27: { name: 'I64', blockValues: 1, blockBytes: 8 },
  28: { name: 'F64', blockValues: 1, blockBytes: 8 },
  29: { name: 'IQ1_M', blockValues: 256, blockBytes: 56 },
  30: { name: 'BF16', blockValues: 1, blockBytes: 2 },
  34: { name: 'TQ1_0', blockValues: 256, blockBytes: 54 },
  35: { name: 'TQ2_0', blockValues: 256, blockBytes: 66 },
  39: { name: 'MXFP4', blockValues: 32, blockBytes: 17 },
} as const satisfies Record<number, { name: string; blockValues: number; blockBytes: number }>;
export type GgmlTypeId = keyof typeof GGML_TYPES;
export type GgmlType = (typeof GGML_TYPES)[GgmlTypeId]['name'];
export const GGML_TYPE_IDS = Object.fromEntries(
  Object.entries(GGML_TYPES).map(([id, t]) => [t.name, Number(id)]),
) as Record<GgmlType, GgmlTypeId>;

export function ggmlTypeInfo(type: GgmlType): { id: GgmlTypeId; blockValues: number; blockBytes: number } {
  const id = GGML_TYPE_IDS[type];
  if (id === undefined) throw new Error(`gguf: unknown ggml type ${String(type)}`);
  return { id, blockValues: GGML_TYPES[id].blockValues, blockBytes: GGML_TYPES[id].blockBytes };
}

export type GgufNumberArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array;

/**
 * One metadata value with its type. uint64/int64 scalars are numbers when they are safe integers,
 * else bigints; numeric arrays are typed arrays of their item type; bool arrays boolean[].
 */
export type GgufKv =
  | { type: Exclude<GgufScalarType, 'string' | 'bool' | 'uint64' | 'int64'>; value: number }
  | { type: 'uint64' | 'int64'; value: number | bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: Exclude<GgufScalarType, 'string' | 'bool'>; value: GgufNumberArray }
  | { type: 'array'; itemType: 'bool'; value: boolean[] }
  | { type: 'array'; itemType: 'string'; value: string[] };

export interface GgufTensorInfo {
  name: string;
  type: GgmlType;
  /** ggml order, as in the file: dims[0] = ne0 is the row length. */
  dims: number[];
  /** Row-major (torch / safetensors) order: dims reversed. */
  shape: number[];
  numel: number;
  byteLength: number;
  /** As stored: relative to the data section. */
  offset: number;
  /** Absolute byte range in the file: dataOffset + offset, + byteLength. */
  begin: number;
  end: number;
}

export interface GgufHeader {
  fileName: string;
  version: 2 | 3;
  /** In file order. */
  metadata: Map<string, GgufKv>;
  /** In file order. */
  tensors: Map<string, GgufTensorInfo>;
  alignment: number;
  /** Absolute byte offset of the data section: the end of the tensor infos, padded to `alignment`. */
  dataOffset: number;
  /** The least size the file can have: the end of the last tensor (the header's end without tensors). */
  minFileSize: number;
}

export interface GgufFile extends GgufHeader {
  bytes: Uint8Array;
}

export class GgufError extends Error {
  override name = 'GgufError';
  constructor(
    readonly fileName: string,
    /** What was being read: 'version', 'kv[3] "general.name" value', 'tensor[0] "token_embd.weight" type', ... */
    readonly field: string,
    /** Absolute byte offset of that field in the file. */
    readonly offset: number,
    detail: string,
  ) {
    super(`${fileName}: ${field} at byte ${offset}: ${detail}`);
  }
}

/** Thrown inside the reader when a prefix ends before the header does; never escapes it. */
class NeedMoreBytes {
  constructor(readonly atLeast: number) {}
}

export type GgufHeaderRead =
  | { done: true; header: GgufHeader }
  /** The prefix ended inside the header: read again with at least `needBytes` bytes (the whole prefix). */
  | { done: false; needBytes: number };

export interface GgufReadOptions {
  fileName?: string;
  /**
   * The size of the whole file, when known (Content-Length, File.size). Reads past it are errors
   * (truncation), reads past the prefix but inside it ask for more bytes. Without it, the prefix
   * is taken as possibly partial and only MAX_HEADER_BYTES bounds the counts.
   */
  fileSize?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The byte reader: every read first checks the bytes exist, naming the field when they do not. */
class Cursor {
  pos = 0;
  private readonly view: DataView;
  /** Reads past this are errors: the file size, or the header cap when that is smaller. */
  private readonly limit: number;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly fileName: string,
    /** Whether `bytes` is the whole file (so running past its end is truncation). */
    private readonly whole: boolean,
    fileSize: number | undefined,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.limit = whole ? bytes.length : (fileSize ?? Number.POSITIVE_INFINITY);
  }

  fail(field: string, detail: string, at = this.pos): never {
    throw new GgufError(this.fileName, field, at, detail);
  }

  /** Demands `n` more bytes at pos for `field` (n may be a lower bound, e.g. count × item size). */
  need(n: number, field: string, what = `${n} bytes`): void {
    const end = this.pos + n;
    if (end > this.limit) {
      const left = Math.max(0, this.limit - this.pos);
      this.fail(
        field,
        `needs ${what} but only ${left} remain before the end of the file (${this.limit} bytes; truncated?)`,
      );
    }
    if (end > MAX_HEADER_BYTES) {
      this.fail(field, `needs ${what}, which runs past the ${MAX_HEADER_BYTES}-byte header cap`);
    }
    if (end > this.bytes.length) {
      if (this.whole) this.fail(field, `needs ${what} past the end of the file`);
      throw new NeedMoreBytes(end);
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.bytes[this.pos++];
  }
  u32(field: string): number {
    this.need(4, field);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  /** A u64 as a number, refused when it is not a safe integer (no real count or size is). */
  u64(field: string): number {
    this.need(8, field);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    if (hi > 0x1fffff) this.fail(field, `value ${this.view.getBigUint64(this.pos, true)} is too large`);
    this.pos += 8;
    return hi * 2 ** 32 + lo;
  }
  string(field: string): string {
    const at = this.pos;
    const len = this.u64(`${field} length`);
    this.need(len, field, `${len} bytes of string`);
    let s: string;
    try {
      s = utf8.decode(this.bytes.subarray(this.pos, this.pos + len));
    } catch {
      return this.fail(field, `is not valid UTF-8 (${len} bytes)`, at);
    }
    this.pos += len;
    return s;
  }

  scalar(type: Exclude<GgufScalarType, 'string'>, field: string): number | bigint | boolean {
    this.need(SCALAR_BYTES[type], field);
    const p = this.pos;
    const v = this.view;
    this.pos += SCALAR_BYTES[type];
    switch (type) {
      case 'uint8':
        return v.getUint8(p);
      case 'int8':
        return v.getInt8(p);
      case 'uint16':
        return v.getUint16(p, true);
      case 'int16':
        return v.getInt16(p, true);
      case 'uint32':
        return v.getUint32(p, true);
      case 'int32':
        return v.getInt32(p, true);
      case 'float32':
        return v.getFloat32(p, true);
      case 'float64':
        return v.getFloat64(p, true);
      case 'bool': {
        const b = v.getUint8(p);
        if (b > 1) this.fail(field, `bool must be 0 or 1, got ${b}`, p);
        return b === 1;
      }
      case 'uint64':
        return safeOrBig(v.getBigUint64(p, true));
      case 'int64':
        return safeOrBig(v.getBigInt64(p, true));
    }
  }

  numberArray(type: Exclude<GgufScalarType, 'string' | 'bool'>, n: number): GgufNumberArray {
    const size = SCALAR_BYTES[type];
    const p = this.pos;
    const v = this.view;
    this.pos += n * size;
    // DataView per element: the data may start at any byte, and the host may be big-endian.
    switch (type) {
      // a copy (not bytes.slice: on a Node Buffer, what readFile returns, slice is a view)
      case 'uint8':
        return new Uint8Array(this.bytes.subarray(p, p + n));
      case 'int8':
        return new Int8Array(new Uint8Array(this.bytes.subarray(p, p + n)).buffer);
      case 'uint16':
        return Uint16Array.from({ length: n }, (_, i) => v.getUint16(p + 2 * i, true));
      case 'int16':
        return Int16Array.from({ length: n }, (_, i) => v.getInt16(p + 2 * i, true));
      case 'uint32':
        return Uint32Array.from({ length: n }, (_, i) => v.getUint32(p + 4 * i, true));
      case 'int32':
        return Int32Array.from({ length: n }, (_, i) => v.getInt32(p + 4 * i, true));
      case 'float32': {
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = v.getFloat32(p + 4 * i, true);
        return out;
      }
      case 'float64': {
        const out = new Float64Array(n);
        for (let i = 0; i < n; i++) out[i] = v.getFloat64(p + 8 * i, true);
        return out;
      }
      case 'uint64': {
        const out = new BigUint64Array(n);
        for (let i = 0; i < n; i++) out[i] = v.getBigUint64(p + 8 * i, true);
        return out;
      }
      case 'int64': {
        const out = new BigInt64Array(n);
        for (let i = 0; i < n; i++) out[i] = v.getBigInt64(p + 8 * i, true);
        return out;
      }
    }
  }
}

function safeOrBig(x: bigint): number | bigint {
  return x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x;
}

function valueType(c: Cursor, field: string): GgufValueType {
  const at = c.pos;
  const id = c.u32(field);
  const t = GGUF_VALUE_TYPES[id];
  if (t === undefined) c.fail(field, `unknown value type ${id} (known: 0..${GGUF_VALUE_TYPES.length - 1})`, at);
  return t;
}

function readValue(c: Cursor, field: string): GgufKv {
  const type = valueType(c, `${field} type`);
  if (type === 'string') return { type, value: c.string(field) };
  if (type !== 'array') return { type, value: c.scalar(type, field) } as GgufKv;

  const itemTypeAt = c.pos;
  const itemType = valueType(c, `${field} item type`);
  if (itemType === 'array')
    c.fail(`${field} item type`, 'arrays of arrays are not supported (llama.cpp refuses them too)', itemTypeAt);
  const countAt = c.pos;
  const n = c.u64(`${field} count`);
  // The least bytes n items take: a string is at least its 8-byte length. Checked before allocating.
  const least = itemType === 'string' ? 8 : SCALAR_BYTES[itemType];
  if (n * least > MAX_HEADER_BYTES) {
    c.fail(
      `${field} count`,
      `${n} items of ${itemType} need at least ${n * least} bytes, above the ${MAX_HEADER_BYTES}-byte header cap`,
      countAt,
    );
  }
  c.need(n * least, `${field} items`, `at least ${n * least} bytes for ${n} items of ${itemType}`);
  if (itemType === 'string') {
    const items: string[] = [];
    for (let i = 0; i < n; i++) items.push(c.string(`${field}[${i}]`));
    return { type, itemType, value: items };
  }
  if (itemType === 'bool') {
    const items: boolean[] = [];
    for (let i = 0; i < n; i++) items.push(c.scalar('bool', `${field}[${i}]`) as boolean);
    return { type, itemType, value: items };
  }
  return { type, itemType, value: c.numberArray(itemType, n) };
}

function parseHeader(c: Cursor, fileName: string, fileSize: number | undefined): GgufHeader {
  for (let i = 0; i < 4; i++) {
    const b = c.u8('magic');
    if (b !== MAGIC[i]) {
      c.fail(
        'magic',
        `expected "GGUF" (47 47 55 46), got byte ${b.toString(16).padStart(2, '0')} at position ${i} ` +
          '(not a GGUF file?)',
        0,
      );
    }
  }
  const version = c.u32('version');
  if (version !== 2 && version !== 3) {
    const swapped =
      ((version & 0xff) << 24) | (((version >>> 8) & 0xff) << 16) | (((version >>> 16) & 0xff) << 8) | (version >>> 24);
    const why =
      version === 1
        ? 'GGUF v1 (32-bit counts) is not supported; convert the model again with a current llama.cpp'
        : swapped === 2 || swapped === 3
          ? `this looks like a big-endian GGUF v${swapped}; only little-endian files are supported`
          : 'only GGUF v2 and v3 are supported';
    c.fail('version', `${version}: ${why}`, 4);
  }

  const tensorCountAt = c.pos;
  const tensorCount = c.u64('tensor_count');
  const kvCountAt = c.pos;
  const kvCount = c.u64('kv_count');
  // The least bytes of a KV: key length 8 + value type 4 + a 1-byte value; of a tensor info:
  // name length 8 + n_dims 4 + type 4 + offset 8.
  const leastHeader = 24 + kvCount * 13 + tensorCount * 24;
  if (leastHeader > MAX_HEADER_BYTES || (fileSize !== undefined && leastHeader > fileSize)) {
    const at = kvCount * 13 > tensorCount * 24 ? kvCountAt : tensorCountAt;
    const field = at === kvCountAt ? 'kv_count' : 'tensor_count';
    const room =
      fileSize !== undefined && fileSize < MAX_HEADER_BYTES
        ? `the ${fileSize}-byte file`
        : `the ${MAX_HEADER_BYTES}-byte header cap`;
    c.fail(
      field,
      `${kvCount} KVs and ${tensorCount} tensor infos need at least ${leastHeader} bytes, more than ${room}`,
      at,
    );
  }

  const metadata = new Map<string, GgufKv>();
  for (let i = 0; i < kvCount; i++) {
    const keyAt = c.pos;
    const key = c.string(`kv[${i}] key`);
    if (metadata.has(key)) c.fail(`kv[${i}] key`, `duplicate key ${JSON.stringify(key)}`, keyAt);
    metadata.set(key, readValue(c, `kv[${i}] ${JSON.stringify(key)} value`));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const align = metadata.get('general.alignment');
  if (align !== undefined) {
    if (align.type !== 'uint32') c.fail('general.alignment', `must be a uint32, got a ${align.type}`, 0);
    const a = align.value as number;
    if (a === 0 || (a & (a - 1)) !== 0) c.fail('general.alignment', `must be a power of two, got ${a}`, 0);
    alignment = a;
  }

  const tensors = new Map<string, GgufTensorInfo>();
  const infoAt: number[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const at = c.pos;
    infoAt.push(at);
    const nameLen = c.u64(`tensor[${i}] name length`);
    if (nameLen === 0 || nameLen > GGUF_MAX_TENSOR_NAME_BYTES) {
      c.fail(`tensor[${i}] name length`, `must be 1..${GGUF_MAX_TENSOR_NAME_BYTES} bytes, got ${nameLen}`, at);
    }
    c.pos = at;
    const name = c.string(`tensor[${i}] name`);
    const label = `tensor[${i}] ${JSON.stringify(name)}`;
    if (tensors.has(name)) c.fail(`tensor[${i}] name`, `duplicate tensor name ${JSON.stringify(name)}`, at);
    const nDimsAt = c.pos;
    const nDims = c.u32(`${label} n_dims`);
    if (nDims < 1 || nDims > GGUF_MAX_DIMS)
      c.fail(`${label} n_dims`, `must be 1..${GGUF_MAX_DIMS}, got ${nDims}`, nDimsAt);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.u64(`${label} dims[${d}]`));
    const typeAt = c.pos;
    const typeId = c.u32(`${label} type`);
    const t = (GGML_TYPES as Record<number, { name: GgmlType; blockValues: number; blockBytes: number }>)[typeId];
    if (t === undefined) {
      c.fail(`${label} type`, `unknown ggml type ${typeId} (known: ${Object.keys(GGML_TYPES).join(', ')})`, typeAt);
    }
    if (dims[0] % t.blockValues !== 0) {
      c.fail(
        `${label} dims[0]`,
        `${dims[0]} is not a multiple of ${t.name}'s ${t.blockValues}-value block`,
        typeAt - 8 * nDims,
      );
    }
    let numel = 1;
    for (const d of dims) numel *= d;
    const byteLength = (numel / t.blockValues) * t.blockBytes;
    if (!Number.isSafeInteger(numel) || !Number.isSafeInteger(byteLength)) {
      c.fail(`${label} dims`, `[${dims.join(', ')}] of ${t.name} is too large`, nDimsAt + 4);
    }
    const offsetAt = c.pos;
    const offset = c.u64(`${label} offset`);
    if (offset % alignment !== 0) {
      c.fail(
        `${label} offset`,
        `${offset} is not a multiple of the alignment ${alignment} (misaligned data)`,
        offsetAt,
      );
    }
    tensors.set(name, {
      name,
      type: t.name,
      dims,
      shape: [...dims].reverse(),
      numel,
      byteLength,
      offset,
      begin: 0,
      end: 0,
    });
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  let minFileSize = tensorCount > 0 ? dataOffset : c.pos;
  for (const t of tensors.values()) {
    t.begin = dataOffset + t.offset;
    t.end = t.begin + t.byteLength;
    if (!Number.isSafeInteger(t.end)) c.fail(`tensor ${JSON.stringify(t.name)} offset`, `${t.offset} is too large`, 0);
    minFileSize = Math.max(minFileSize, t.end);
  }
  const order = [...tensors.values()];
  const indexOf = new Map(order.map((t, i) => [t, i]));
  const infoOffset = (t: GgufTensorInfo) => infoAt[indexOf.get(t)!];
  if (fileSize !== undefined) {
    for (const t of order) {
      if (t.end > fileSize) {
        const i = indexOf.get(t)!;
        c.fail(
          `tensor[${i}] ${JSON.stringify(t.name)} offset`,
          `data [${t.begin}, ${t.end}) runs past the end of the file (${fileSize} bytes; truncated?)`,
          infoOffset(t),
        );
      }
    }
  }
  const ranges = order.filter((t) => t.byteLength > 0).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1];
    const cur = ranges[i];
    if (cur.begin < prev.end) {
      c.fail(
        `tensor[${indexOf.get(cur)}] ${JSON.stringify(cur.name)} offset`,
        `data [${cur.begin}, ${cur.end}) overlaps tensor ${JSON.stringify(prev.name)} at [${prev.begin}, ${prev.end})`,
        infoOffset(cur),
      );
    }
  }
  return { fileName, version, metadata, tensors, alignment, dataOffset, minFileSize };
}

/**
 * Reads the header from the first bytes of a GGUF file (the whole file works too). Returns the
 * header, or `{ done: false, needBytes }` when the prefix ends inside it: read at least that many
 * bytes from the start and call again (doubling the request is a good habit; a header can hold a
 * 10 MB vocabulary). Malformed input throws GgufError.
 */
export function readGgufHeader(prefix: Uint8Array, opts: GgufReadOptions = {}): GgufHeaderRead {
  const fileName = opts.fileName ?? '<buffer>';
  const { fileSize } = opts;
  if (fileSize !== undefined && prefix.length > fileSize) {
    throw new GgufError(
      fileName,
      'file size',
      0,
      `prefix of ${prefix.length} bytes is longer than the file (${fileSize})`,
    );
  }
  const whole = fileSize !== undefined && prefix.length === fileSize;
  try {
    return { done: true, header: parseHeader(new Cursor(prefix, fileName, whole, fileSize), fileName, fileSize) };
  } catch (e) {
    if (e instanceof NeedMoreBytes) return { done: false, needBytes: e.atLeast };
    throw e;
  }
}

/** Parses a whole GGUF file held in memory; every tensor must lie inside it. Views alias `bytes`. */
export function parseGguf(bytes: Uint8Array, fileName = '<buffer>'): GgufFile {
  const read = readGgufHeader(bytes, { fileName, fileSize: bytes.length });
  if (!read.done) throw new Error('unreachable: a whole file never asks for more bytes');
  return { ...read.header, bytes };
}

function tensorOf(file: GgufFile, name: string): GgufTensorInfo {
  const t = file.tensors.get(name);
  if (t) return t;
  const names = [...file.tensors.keys()];
  const list =
    names.length === 0
      ? 'it has none'
      : `it has ${names
          .slice(0, 8)
          .map((n) => JSON.stringify(n))
          .join(', ')}${names.length > 8 ? ', ...' : ''}`;
  throw new GgufError(file.fileName, `tensor ${JSON.stringify(name)}`, 0, `no such tensor (${list})`);
}

/** The raw bytes of a tensor (a view into the file: block data as stored). */
export function ggufTensorBytes(file: GgufFile, name: string): Uint8Array {
  const t = tensorOf(file, name);
  return file.bytes.subarray(t.begin, t.end);
}

/** An F32, F16 or BF16 tensor as a new Float32Array, in row-major order (shape). */
export function readGgufTensorF32(file: GgufFile, name: string): Float32Array {
  const t = tensorOf(file, name);
  const raw = new Uint8Array(t.byteLength);
  raw.set(file.bytes.subarray(t.begin, t.end));
  const dv = new DataView(raw.buffer);
  if (t.type === 'F32') return Float32Array.from({ length: t.numel }, (_, i) => dv.getFloat32(4 * i, true));
  if (t.type === 'F16' || t.type === 'BF16') {
    const bits = Uint16Array.from({ length: t.numel }, (_, i) => dv.getUint16(2 * i, true));
    return t.type === 'F16' ? f16ArrayToF32(bits) : bf16ArrayToF32(bits);
  }
  throw new GgufError(
    file.fileName,
    `tensor ${JSON.stringify(name)}`,
    t.begin,
    `is ${t.type}; only F32, F16 and BF16 convert to float here`,
  );
}

// ---------------------------------------------------------------------------------------------
// Writer: what the reader returns goes back in, so reading what it writes gives the same header.

export interface GgufTensorToWrite {
  type: GgmlType;
  /** ggml order (ne0 first). */
  dims: number[];
  /** The stored bytes: f32 / f16 values little endian, or whole blocks. */
  data: Uint8Array;
}

export interface GgufToWrite {
  version?: 2 | 3;
  /** In write order. `general.alignment`, when given, sets the alignment. */
  metadata: Iterable<[string, GgufKv]>;
  /** In write order; data is laid out in this order, each tensor padded to the alignment. */
  tensors?: Iterable<[string, GgufTensorToWrite]>;
}

/** Serialises metadata and tensors to GGUF bytes, as gguf-py's GGUFWriter lays them out. */
export function writeGguf(file: GgufToWrite): Uint8Array {
  const metadata = [...file.metadata];
  const tensors = [...(file.tensors ?? [])];
  const alignKv = metadata.find(([k]) => k === 'general.alignment')?.[1];
  const alignment = alignKv ? Number(alignKv.value) : GGUF_DEFAULT_ALIGNMENT;
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  const push = (n: number, f: (dv: DataView) => void) => {
    const b = new Uint8Array(n);
    f(new DataView(b.buffer));
    chunks.push(b);
  };
  const u32 = (v: number) => push(4, (dv) => dv.setUint32(0, v, true));
  const u64 = (v: number | bigint) => push(8, (dv) => dv.setBigUint64(0, BigInt(v), true));
  const str = (s: string) => {
    const b = enc.encode(s);
    u64(b.length);
    chunks.push(b);
  };
  const scalar = (type: Exclude<GgufScalarType, 'string'>, v: number | bigint | boolean) =>
    push(SCALAR_BYTES[type], (dv) => {
      switch (type) {
        case 'uint8':
          return dv.setUint8(0, v as number);
        case 'int8':
          return dv.setInt8(0, v as number);
        case 'uint16':
          return dv.setUint16(0, v as number, true);
        case 'int16':
          return dv.setInt16(0, v as number, true);
        case 'uint32':
          return dv.setUint32(0, v as number, true);
        case 'int32':
          return dv.setInt32(0, v as number, true);
        case 'float32':
          return dv.setFloat32(0, v as number, true);
        case 'float64':
          return dv.setFloat64(0, v as number, true);
        case 'bool':
          return dv.setUint8(0, v ? 1 : 0);
        case 'uint64':
          return dv.setBigUint64(0, BigInt(v as number | bigint), true);
        case 'int64':
          return dv.setBigInt64(0, BigInt(v as number | bigint), true);
      }
    });
  const typeId = (t: GgufValueType) => GGUF_VALUE_TYPES.indexOf(t);

  chunks.push(new Uint8Array(MAGIC));
  u32(file.version ?? 3);
  u64(tensors.length);
  u64(metadata.length);
  for (const [key, kv] of metadata) {
    str(key);
    u32(typeId(kv.type));
    if (kv.type === 'string') str(kv.value);
    else if (kv.type === 'array') {
      u32(typeId(kv.itemType));
      u64(kv.value.length);
      if (kv.itemType === 'string') for (const s of kv.value as string[]) str(s);
      else {
        const items = kv.value as ArrayLike<number | bigint | boolean>;
        for (let i = 0; i < items.length; i++) scalar(kv.itemType, items[i]);
      }
    } else scalar(kv.type, kv.value);
  }
  let offset = 0;
  const placed: [number, Uint8Array][] = [];
  for (const [name, t] of tensors) {
    const { id, blockValues, blockBytes } = ggmlTypeInfo(t.type);
    const numel = t.dims.reduce((a, b) => a * b, 1);
    const expected = (numel / blockValues) * blockBytes;
    if (t.dims[0] % blockValues !== 0 || expected !== t.data.length) {
      throw new Error(
        `writeGguf: tensor ${JSON.stringify(name)}: dims [${t.dims}] of ${t.type} need ${expected} bytes, ` +
          `got ${t.data.length}`,
      );
    }
    str(name);
    u32(t.dims.length);
    for (const d of t.dims) u64(d);
    u32(id);
    u64(offset);
    placed.push([offset, t.data]);
    offset += Math.ceil(t.data.length / alignment) * alignment;
  }
  const headerLen = chunks.reduce((a, b) => a + b.length, 0);
  const dataOffset = tensors.length > 0 ? Math.ceil(headerLen / alignment) * alignment : headerLen;
  const out = new Uint8Array(dataOffset + offset);
  let at = 0;
  for (const b of chunks) {
    out.set(b, at);
    at += b.length;
  }
  for (const [o, data] of placed) out.set(data, dataOffset + o);
  return out;
}
