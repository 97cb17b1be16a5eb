import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  GGML_TYPES,
  GGUF_VALUE_TYPES,
  GgufError,
  type GgmlType,
  type GgufFile,
  type GgufHeader,
  type GgufKv,
  type GgufTensorToWrite,
  ggmlTypeInfo,
  ggufTensorBytes,
  MAX_HEADER_BYTES,
  parseGguf,
  readGgufHeader,
  readGgufTensorF32,
  writeGguf,
} from '../../src/sources/gguf';

const REALWORLD = new URL('../../../shared/realworld/', import.meta.url).pathname;
const F = 'bad.gguf';

/** The invariants any successfully parsed header must satisfy. */
function checkConsistent(h: GgufHeader, fileSize?: number): void {
  expect(h.dataOffset % h.alignment).toBe(0);
  const ranges: [number, number][] = [];
  for (const [name, t] of h.tensors) {
    expect(t.name).toBe(name);
    const info = ggmlTypeInfo(t.type);
    expect(t.dims.length).toBeGreaterThanOrEqual(1);
    expect(t.dims.length).toBeLessThanOrEqual(4);
    expect(t.dims[0] % info.blockValues).toBe(0);
    expect(t.shape).toEqual([...t.dims].reverse());
    expect(t.byteLength).toBe((t.dims.reduce((a, b) => a * b, 1) / info.blockValues) * info.blockBytes);
    expect(t.offset % h.alignment).toBe(0);
    expect(t.begin).toBe(h.dataOffset + t.offset);
    expect(t.end).toBe(t.begin + t.byteLength);
    expect(t.end).toBeLessThanOrEqual(h.minFileSize);
    if (fileSize !== undefined) expect(t.end).toBeLessThanOrEqual(fileSize);
    if (t.byteLength > 0) ranges.push([t.begin, t.end]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) expect(ranges[i][0]).toBeGreaterThanOrEqual(ranges[i - 1][1]);
}

/** Parses, and demands either a consistent file or a GgufError naming the file, nothing else. */
function parseOrError(bytes: Uint8Array): GgufFile | GgufError {
  let f: GgufFile;
  try {
    f = parseGguf(bytes, 'fuzz.gguf');
  } catch (e) {
    if (!(e instanceof GgufError)) throw new Error(`threw a non-GgufError: ${String(e)}`);
    expect(e.message.startsWith('fuzz.gguf: ')).toBe(true);
    expect(e.message).toMatch(/ at byte \d+: /);
    return e;
  }
  checkConsistent(f, bytes.length);
  for (const t of f.tensors.values()) expect(ggufTensorBytes(f, t.name).length).toBe(t.byteLength);
  return f;
}

/** Reads a file the way a URL source would: a small prefix, then as many bytes as asked for. */
function readByPrefixes(bytes: Uint8Array, fileSize?: number): { header: GgufHeader; reads: number } {
  let len = Math.min(64, bytes.length);
  for (let reads = 1; ; reads++) {
    const r = readGgufHeader(bytes.subarray(0, len), { fileName: 'p.gguf', fileSize });
    if (r.done) return { header: r.header, reads };
    expect(r.needBytes).toBeGreaterThan(len);
    expect(r.needBytes).toBeLessThanOrEqual(bytes.length);
    len = Math.min(bytes.length, Math.max(r.needBytes, 2 * len));
  }
}

const f32Bytes = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);
const kv = (type: GgufKv['type'], value: unknown, itemType?: string): GgufKv =>
  ({ type, value, ...(itemType ? { itemType } : {}) }) as GgufKv;

/** A small valid file: two KVs and two tensors. */
function sampleFile(): Uint8Array {
  return writeGguf({
    metadata: [
      ['general.architecture', kv('string', 'llama')],
      ['llama.block_count', kv('uint32', 2)],
    ],
    tensors: [
      ['a.weight', { type: 'F32', dims: [4, 2], data: f32Bytes([1, 2, 3, 4, 5, 6, 7, 8]) }],
      ['b.weight', { type: 'Q8_0', dims: [32], data: new Uint8Array(34).fill(1) }],
    ],
  });
}

/** Byte offsets of the fields of a valid file, found by walking it (test-side, independent of the reader). */
function fieldOffsets(bytes: Uint8Array): Record<string, number> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at: Record<string, number> = { version: 4, tensor_count: 8, kv_count: 16 };
  let p = 24;
  const u64 = () => {
    const v = Number(dv.getBigUint64(p, true));
    p += 8;
    return v;
  };
  const sizes: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const nkv = Number(dv.getBigUint64(16, true));
  const nt = Number(dv.getBigUint64(8, true));
  for (let i = 0; i < nkv; i++) {
    at[`kv${i}.keylen`] = p;
    const keyLen = u64(); // (not `p += u64()`: that would add to the p from before the call)
    p += keyLen;
    at[`kv${i}.type`] = p;
    const t = dv.getUint32(p, true);
    p += 4;
    at[`kv${i}.value`] = p;
    if (t === 8) {
      const len = u64();
      p += len;
    } else if (t === 9) {
      const it = dv.getUint32(p, true);
      p += 4;
      at[`kv${i}.count`] = p;
      const n = u64();
      for (let j = 0; j < n; j++) {
        if (it === 8) {
          if (j === 0) at[`kv${i}.item0len`] = p;
          const len = u64();
          p += len;
        } else p += sizes[it];
      }
    } else p += sizes[t];
  }
  for (let i = 0; i < nt; i++) {
    at[`t${i}.namelen`] = p;
    const nameLen = u64();
    p += nameLen;
    at[`t${i}.ndims`] = p;
    const nd = dv.getUint32(p, true);
    p += 4;
    at[`t${i}.dims`] = p;
    p += 8 * nd;
    at[`t${i}.type`] = p;
    p += 4;
    at[`t${i}.offset`] = p;
    p += 8;
  }
  at.end = p;
  return at;
}

function expectGgufError(bytes: Uint8Array, message: string | RegExp): GgufError {
  let err: unknown;
  try {
    parseGguf(bytes, F);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GgufError);
  const m = (err as Error).message;
  expect(m.startsWith(`${F}: `)).toBe(true);
  if (typeof message === 'string') expect(m).toContain(message);
  else expect(m).toMatch(message);
  return err as GgufError;
}

const setU32 = (b: Uint8Array, at: number, v: number) => new DataView(b.buffer, b.byteOffset).setUint32(at, v, true);
const setU64 = (b: Uint8Array, at: number, v: bigint) => new DataView(b.buffer, b.byteOffset).setBigUint64(at, v, true);
const patched = (f: (b: Uint8Array, at: Record<string, number>) => void, base = sampleFile()) => {
  const b = base.slice();
  f(b, fieldOffsets(base));
  return b;
};

describe('writeGguf + parseGguf', () => {
  it('round-trips every value type, string arrays and tensors of several types', () => {
    const metadata: [string, GgufKv][] = [
      ['u8', kv('uint8', 250)],
      ['i8', kv('int8', -5)],
      ['u16', kv('uint16', 65000)],
      ['i16', kv('int16', -30000)],
      ['u32', kv('uint32', 4000000000)],
      ['i32', kv('int32', -2000000000)],
      ['f32', kv('float32', Math.fround(0.1))],
      ['bool', kv('bool', true)],
      ['str', kv('string', 'héllo "GGUF" 🦙')],
      ['u64', kv('uint64', 2 ** 40)],
      ['u64big', kv('uint64', 2n ** 63n + 5n)],
      ['i64', kv('int64', -(2 ** 40))],
      ['f64', kv('float64', 0.1)],
      ['tokens', kv('array', ['a', '', 'ü', '<0x0A>'], 'string')],
      ['scores', kv('array', new Float32Array([0, -1.5, 2]), 'float32')],
      ['types', kv('array', new Int32Array([1, 2, 3]), 'int32')],
      ['flags', kv('array', [true, false], 'bool')],
      ['big', kv('array', new BigUint64Array([1n, 2n ** 64n - 1n]), 'uint64')],
      ['empty', kv('array', new Uint8Array(0), 'uint8')],
      ['__proto__', kv('string', 'kept as a key')],
    ];
    const tensors: [string, GgufTensorToWrite][] = [
      ['f32', { type: 'F32', dims: [3, 2], data: f32Bytes([1, 2, 3, 4, 5, 6]) }],
      ['f16', { type: 'F16', dims: [2], data: new Uint8Array([0x00, 0x3c, 0x00, 0xc0]) }],
      ['q4k', { type: 'Q4_K', dims: [256, 2], data: new Uint8Array(288).fill(7) }],
      ['q5', { type: 'Q5_0', dims: [64], data: new Uint8Array(44).fill(9) }],
    ];
    for (const version of [2, 3] as const) {
      const bytes = writeGguf({ version, metadata, tensors });
      const f = parseGguf(bytes, 'rt.gguf');
      expect(f.version).toBe(version);
      expect(f.alignment).toBe(32);
      expect([...f.metadata.keys()]).toEqual(metadata.map(([k]) => k));
      for (const [k, v] of metadata) expect(f.metadata.get(k)).toEqual(v);
      expect([...f.tensors.keys()]).toEqual(['f32', 'f16', 'q4k', 'q5']);
      expect(f.tensors.get('q4k')).toMatchObject({ type: 'Q4_K', dims: [256, 2], shape: [2, 256], byteLength: 288 });
      for (const [name, t] of tensors) expect(ggufTensorBytes(f, name)).toEqual(t.data);
      expect([...readGgufTensorF32(f, 'f32')]).toEqual([1, 2, 3, 4, 5, 6]);
      expect([...readGgufTensorF32(f, 'f16')]).toEqual([1, -2]);
      expect(() => readGgufTensorF32(f, 'q5')).toThrow('is Q5_0; only F32, F16 and BF16 convert to float here');
      expect(() => ggufTensorBytes(f, 'nope')).toThrow('no such tensor (it has "f32", "f16", "q4k", "q5")');
      checkConsistent(f, bytes.length);
      // the writer's output parses back to the same bytes
      expect(writeGguf({ version, metadata: f.metadata, tensors })).toEqual(bytes);
    }
  });

  it('reads from a Node Buffer at a non-zero offset in a larger pool (as readFile returns)', () => {
    const bytes = writeGguf({
      metadata: [
        ['i8', kv('array', Int8Array.from([-1, 2, -3]), 'int8')],
        ['u8', kv('array', Uint8Array.from([7, 8]), 'uint8')],
        ['f32', kv('array', Float32Array.from([1.5, -2]), 'float32')],
      ],
      tensors: [['t', { type: 'F32', dims: [2], data: f32Bytes([3, 4]) }]],
    });
    const pool = Buffer.alloc(bytes.length + 13, 0xee);
    pool.set(bytes, 13);
    const f = parseGguf(pool.subarray(13));
    expect([...(f.metadata.get('i8')!.value as Int8Array)]).toEqual([-1, 2, -3]);
    expect([...(f.metadata.get('u8')!.value as Uint8Array)]).toEqual([7, 8]);
    expect([...(f.metadata.get('f32')!.value as Float32Array)]).toEqual([1.5, -2]);
    expect([...readGgufTensorF32(f, 't')]).toEqual([3, 4]);
  });

  it('honours general.alignment for the data offset and tensor offsets', () => {
    const bytes = writeGguf({
      metadata: [['general.alignment', kv('uint32', 64)]],
      tensors: [
        ['a', { type: 'F32', dims: [3], data: f32Bytes([1, 2, 3]) }],
        ['b', { type: 'F32', dims: [1], data: f32Bytes([4]) }],
      ],
    });
    const f = parseGguf(bytes);
    expect(f.alignment).toBe(64);
    expect(f.dataOffset % 64).toBe(0);
    expect(f.tensors.get('b')!.offset).toBe(64);
    expect([...readGgufTensorF32(f, 'b')]).toEqual([4]);
  });

  it('knows the size of every ggml type the format defines and refuses removed ids', () => {
    for (const [id, t] of Object.entries(GGML_TYPES)) {
      const bytes = writeGguf({
        metadata: [],
        tensors: [
          ['t', { type: t.name as GgmlType, dims: [t.blockValues * 2], data: new Uint8Array(2 * t.blockBytes) }],
        ],
      });
      const f = parseGguf(bytes);
      expect(f.tensors.get('t')!.byteLength).toBe(2 * t.blockBytes);
      expect(ggmlTypeInfo(t.name as GgmlType).id).toBe(Number(id));
    }
    for (const removed of [4, 5, 31, 32, 33, 36, 37, 38, 40, 1000]) {
      const e = expectGgufError(
        patched((b, at) => setU32(b, at['t0.type'], removed)),
        `tensor[0] "a.weight" type at byte `,
      );
      expect(e.message).toContain(`unknown ggml type ${removed}`);
    }
  });
});

describe('parseGguf errors name the field and the byte offset', () => {
  const cases: [string, () => Uint8Array, string | RegExp][] = [
    ['empty file', () => new Uint8Array(0), `${F}: magic at byte 0: needs 1 bytes but only 0 remain`],
    ['bad magic', () => patched((b) => b.set([0x47, 0x47, 0x4d, 0x4c])), `${F}: magic at byte 0: expected "GGUF"`],
    ['safetensors file', () => new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 123, 125]), 'magic at byte 0: expected "GGUF"'],
    [
      'version 1',
      () => patched((b) => setU32(b, 4, 1)),
      'version at byte 4: 1: GGUF v1 (32-bit counts) is not supported',
    ],
    ['version 4', () => patched((b) => setU32(b, 4, 4)), 'version at byte 4: 4: only GGUF v2 and v3 are supported'],
    ['big-endian', () => patched((b) => setU32(b, 4, 0x03000000)), 'looks like a big-endian GGUF v3'],
    ['truncated counts', () => sampleFile().subarray(0, 20), 'kv_count at byte 16: needs 8 bytes but only 4 remain'],
    [
      'absurd kv_count',
      () => patched((b) => setU64(b, 16, 2n ** 50n)),
      /kv_count at byte 16: 1125899906842624 KVs and 2 tensor infos need at least \d+ bytes, more than the/,
    ],
    [
      'kv_count past u53',
      () => patched((b) => setU64(b, 16, 2n ** 63n)),
      'kv_count at byte 16: value 9223372036854775808 is too large',
    ],
    [
      'absurd tensor_count',
      () => patched((b) => setU64(b, 8, 10n ** 9n)),
      'tensor_count at byte 8: 2 KVs and 1000000000 tensor infos',
    ],
    [
      'string length past the end',
      () => patched((b, at) => setU64(b, at['kv0.keylen'], 10n ** 6n)),
      'kv[0] key at byte 32: needs 1000000 bytes of string but only',
    ],
    [
      'unknown value type',
      () => patched((b, at) => setU32(b, at['kv0.type'], 13)),
      'kv[0] "general.architecture" value type at byte',
    ],
    [
      'invalid UTF-8 key',
      () => patched((b, at) => b.set([0xff], at['kv0.keylen'] + 8)),
      `kv[0] key at byte 24: is not valid UTF-8 (20 bytes)`,
    ],
    [
      'duplicate key',
      () =>
        writeGguf({
          metadata: [
            ['k', kv('uint8', 1)],
            ['k', kv('uint8', 2)],
          ],
        }),
      'kv[1] key at byte 38: duplicate key "k"',
    ],
    [
      'bool not 0 or 1',
      () => patched((b, at) => (b[at['kv0.value']] = 2), writeGguf({ metadata: [['b', kv('bool', true)]] })),
      'kv[0] "b" value at byte 37: bool must be 0 or 1, got 2',
    ],
    [
      'nested array',
      () =>
        patched(
          (b, at) => setU32(b, at['kv0.value'], 9),
          writeGguf({ metadata: [['a', kv('array', new Uint8Array(2), 'uint8')]] }),
        ),
      'kv[0] "a" value item type at byte 37: arrays of arrays are not supported',
    ],
    [
      'absurd array count',
      () =>
        patched(
          (b, at) => setU64(b, at['kv0.count'], 2n ** 45n),
          writeGguf({ metadata: [['a', kv('array', ['x'], 'string')]] }),
        ),
      /kv\[0\] "a" value count at byte 41: 35184372088832 items of string need at least \d+ bytes, above the/,
    ],
    [
      'lying array count',
      () =>
        patched(
          (b, at) => setU64(b, at['kv0.count'], 1000n),
          writeGguf({ metadata: [['a', kv('array', new Int32Array(3), 'int32')]] }),
        ),
      'kv[0] "a" value items at byte 49: needs at least 4000 bytes for 1000 items of int32 but only',
    ],
    [
      'alignment of the wrong type',
      () => writeGguf({ metadata: [['general.alignment', kv('uint64', 32)]] }),
      'general.alignment at byte 0: must be a uint32, got a uint64',
    ],
    [
      'alignment not a power of two',
      () => writeGguf({ metadata: [['general.alignment', kv('uint32', 48)]] }),
      'general.alignment at byte 0: must be a power of two, got 48',
    ],
    [
      'empty tensor name',
      () => patched((b, at) => setU64(b, at['t0.namelen'], 0n)),
      /tensor\[0\] name length at byte \d+: must be 1\.\.63 bytes, got 0/,
    ],
    ['long tensor name', () => patched((b, at) => setU64(b, at['t0.namelen'], 64n)), 'must be 1..63 bytes, got 64'],
    [
      'n_dims 0',
      () => patched((b, at) => setU32(b, at['t0.ndims'], 0)),
      /tensor\[0\] "a.weight" n_dims at byte \d+: must be 1\.\.4, got 0/,
    ],
    ['n_dims 5', () => patched((b, at) => setU32(b, at['t0.ndims'], 5)), 'must be 1..4, got 5'],
    [
      'row not whole blocks',
      () => patched((b, at) => setU64(b, at['t1.dims'], 48n)),
      /tensor\[1\] "b.weight" dims\[0\] at byte \d+: 48 is not a multiple of Q8_0's 32-value block/,
    ],
    [
      'huge dims',
      () =>
        patched((b, at) => {
          setU64(b, at['t0.dims'], 2n ** 40n);
          setU64(b, at['t0.dims'] + 8, 2n ** 40n);
        }),
      'tensor[0] "a.weight" dims at byte',
    ],
    [
      'misaligned offset',
      () => patched((b, at) => setU64(b, at['t1.offset'], 40n)),
      'tensor[1] "b.weight" offset at byte',
    ],
    [
      'overlap',
      () => patched((b, at) => setU64(b, at['t1.offset'], 0n)),
      /tensor\[\d\] "[ab].weight" offset at byte \d+: data \[\d+, \d+\) overlaps tensor "[ab].weight"/,
    ],
    [
      'tensor past the end',
      () => patched((b, at) => setU64(b, at['t1.offset'], 4096n)),
      'runs past the end of the file',
    ],
    [
      'truncated tensor data',
      () => sampleFile().subarray(0, sampleFile().length - 40),
      'tensor[1] "b.weight" offset at byte',
    ],
    [
      'duplicate tensor name',
      () =>
        writeGguf({
          metadata: [],
          tensors: [
            ['t', { type: 'F32', dims: [1], data: f32Bytes([1]) }],
            ['t', { type: 'F32', dims: [1], data: f32Bytes([2]) }],
          ],
        }),
      /tensor\[1\] name at byte \d+: duplicate tensor name "t"/,
    ],
  ];
  for (const [what, make, message] of cases) it(what, () => expectGgufError(make(), message));

  it('the error carries the field and offset as properties', () => {
    const e = expectGgufError(
      patched((b) => setU32(b, 4, 7)),
      'version',
    );
    expect(e.field).toBe('version');
    expect(e.offset).toBe(4);
    expect(e.fileName).toBe(F);
  });
});

describe('readGgufHeader on a prefix (ranged reads)', () => {
  it('asks for more bytes until the header is in, then gives the same header as the whole file', () => {
    const bytes = writeGguf({
      metadata: [
        [
          'tokenizer.ggml.tokens',
          kv(
            'array',
            Array.from({ length: 300 }, (_, i) => `tok${i}`),
            'string',
          ),
        ],
        ['x', kv('float32', 1.5)],
      ],
      tensors: [['w', { type: 'F32', dims: [64, 4], data: new Uint8Array(1024) }]],
    });
    const whole = parseGguf(bytes);
    for (const fileSize of [undefined, bytes.length]) {
      const { header, reads } = readByPrefixes(bytes, fileSize);
      expect(reads).toBeGreaterThan(1);
      expect(header.metadata).toEqual(whole.metadata);
      expect(header.tensors).toEqual(whole.tensors);
      expect(header.dataOffset).toBe(whole.dataOffset);
      expect(header.minFileSize).toBe(bytes.length);
    }
    // a prefix that ends exactly at the end of the tensor infos is enough; one byte less is not
    const end = fieldOffsets(bytes).end;
    expect(readGgufHeader(bytes.subarray(0, end)).done).toBe(true);
    const short = readGgufHeader(bytes.subarray(0, end - 1));
    expect(short).toEqual({ done: false, needBytes: end });
  });

  it('with the file size, a count that cannot fit is an error at once, not a request for more', () => {
    const b = patched((x, at) => setU64(x, at['kv0.keylen'], 5000n));
    expect(readGgufHeader(b.subarray(0, 40))).toEqual({ done: false, needBytes: 32 + 5000 });
    expect(() => readGgufHeader(b.subarray(0, 40), { fileSize: b.length })).toThrow(
      'kv[0] key at byte 32: needs 5000 bytes of string but only',
    );
    expect(() => readGgufHeader(b, { fileSize: b.length - 1 })).toThrow('is longer than the file');
  });

  it('never asks for more than the header cap', () => {
    const b = patched((x, at) => setU64(x, at['kv0.keylen'], BigInt(MAX_HEADER_BYTES)));
    expect(() => readGgufHeader(b.subarray(0, 64))).toThrow('header cap');
  });
});

describe('real GGUF files', () => {
  const readme = readFileSync(`${REALWORLD}gguf/README.md`, 'utf8');
  const models = readdirSync(`${REALWORLD}gguf`).filter((f) => f.endsWith('.gguf'));
  const vocabs = readdirSync(`${REALWORLD}gguf-vocab`).filter((f) => f.endsWith('.gguf'));

  it('finds all ten models and five vocabularies', () => {
    expect(models.length).toBe(10);
    expect(vocabs.length).toBe(5);
  });

  for (const file of models) {
    it(`${file}: parses, tensor types as its README lists, ranged read agrees`, () => {
      const bytes = readFileSync(`${REALWORLD}gguf/${file}`);
      const f = parseGguf(bytes, file);
      checkConsistent(f, bytes.length);
      expect(f.version).toBe(3);
      expect(f.alignment).toBe(32);
      // llama-quantize pads the last tensor to the alignment too
      expect(bytes.length - f.minFileSize).toBeGreaterThanOrEqual(0);
      expect(bytes.length - f.minFileSize).toBeLessThan(32);
      // README row: | `file` | bytes | sha | file_type | F16 36, F32 11 |
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${file}\``))!;
      const cells = row.split('|').map((c) => c.trim());
      expect(Number(cells[2])).toBe(bytes.length);
      expect(f.metadata.get('general.file_type')!.value).toBe(Number(cells[4]));
      const counts: Record<string, number> = {};
      for (const t of f.tensors.values()) counts[t.type] = (counts[t.type] ?? 0) + 1;
      const listed = Object.fromEntries(cells[5].split(', ').map((s) => [s.split(' ')[0], Number(s.split(' ')[1])]));
      expect(counts).toEqual(listed);
      const { header } = readByPrefixes(bytes, bytes.length);
      expect(header.tensors).toEqual(f.tensors);
      // every truncation of the header part, and of the last tensor, is refused
      const cut = [1, 7, 23, f.dataOffset - 1, f.dataOffset + 1, f.minFileSize - 1];
      for (const len of cut) expect(parseOrError(bytes.subarray(0, len))).toBeInstanceOf(GgufError);
    });
  }

  it('stories260K-F32 holds llama2.c stories260K.bin byte for byte (token_embd, attn_q of layer 0)', () => {
    const f = parseGguf(readFileSync(`${REALWORLD}gguf/stories260K-F32.gguf`));
    const bin = readFileSync(`${REALWORLD}stories260K/stories260K.bin`);
    const dim = 64;
    const vocab = 512;
    const embd = bin.subarray(28, 28 + vocab * dim * 4);
    expect(Buffer.compare(ggufTensorBytes(f, 'token_embd.weight'), embd)).toBe(0);
    const layers = 5;
    const wq0 = 28 + (vocab * dim + layers * dim) * 4;
    const wq = new Uint8Array(bin.subarray(wq0, wq0 + dim * dim * 4));
    expect(new Uint8Array(ggufTensorBytes(f, 'blk.0.attn_q.weight'))).toEqual(wq);
  });

  for (const file of vocabs) {
    it(`${file}: parses (vocabulary only, no tensors)`, () => {
      const bytes = readFileSync(`${REALWORLD}gguf-vocab/${file}`);
      const f = parseGguf(bytes, file);
      expect(f.tensors.size).toBe(0);
      expect(f.minFileSize).toBe(bytes.length);
      const tokens = f.metadata.get('tokenizer.ggml.tokens')!;
      expect(tokens.type === 'array' && tokens.itemType === 'string').toBe(true);
      expect(readByPrefixes(bytes).header.metadata).toEqual(f.metadata);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Fuzz: valid files truncated at every length, header bytes flipped, count and length fields
// replaced by lies. The parser must return a consistent file or throw GgufError, and never hang.

const scalarTypes = GGUF_VALUE_TYPES.filter((t) => t !== 'array' && t !== 'string');
const kvArb: fc.Arbitrary<GgufKv> = fc.oneof(
  fc.string({ maxLength: 6 }).map((s) => kv('string', s)),
  fc.integer({ min: 0, max: 255 }).map((v) => kv('uint8', v)),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((v) => kv('int32', v)),
  fc.boolean().map((v) => kv('bool', v)),
  fc.double({ noNaN: true }).map((v) => kv('float64', v)),
  fc.array(fc.string({ maxLength: 4 }), { maxLength: 5 }).map((v) => kv('array', v, 'string')),
  fc
    .array(fc.integer({ min: -1000, max: 1000 }), { maxLength: 5 })
    .map((v) => kv('array', Int32Array.from(v), 'int32')),
  fc.constantFrom(...scalarTypes).map((t) => kv('array', t === 'bool' ? [] : new Uint8Array(0), t)),
);
const tensorTypes: GgmlType[] = ['F32', 'F16', 'Q8_0', 'Q4_0', 'Q5_0', 'Q4_K', 'Q6_K', 'BF16'];
const tensorArb = fc
  .record({
    type: fc.constantFrom(...tensorTypes),
    blocks: fc.integer({ min: 1, max: 3 }),
    rows: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 }),
  })
  .map(({ type, blocks, rows }): GgufTensorToWrite => {
    const { blockValues, blockBytes } = ggmlTypeInfo(type);
    const dims = [blocks * blockValues, ...rows];
    const n = rows.reduce((a, b) => a * b, blocks);
    return { type, dims, data: Uint8Array.from({ length: n * blockBytes }, (_, i) => (i * 31) & 255) };
  });
const filesArb = fc
  .tuple(
    fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), kvArb), { maxLength: 4, selector: ([k]) => k }),
    fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), tensorArb), {
      maxLength: 3,
      selector: ([k]) => k,
    }),
    fc.constantFrom<2 | 3>(2, 3),
  )
  .map(([metadata, tensors, version]) => writeGguf({ version, metadata, tensors }));

describe('parseGguf fuzz', () => {
  it('valid files parse; every truncation is a GgufError; every prefix reads or asks for more', () => {
    fc.assert(
      fc.property(filesArb, (bytes) => {
        const full = parseOrError(bytes);
        expect(full).not.toBeInstanceOf(GgufError);
        const f = full as GgufFile;
        for (let len = 0; len < bytes.length; len++) {
          const r = parseOrError(bytes.subarray(0, len));
          if (len < f.minFileSize) expect(r).toBeInstanceOf(GgufError);
          const pre = readGgufHeader(bytes.subarray(0, len));
          if (pre.done) expect(pre.header.tensors).toEqual(f.tensors);
          else expect(pre.needBytes).toBeGreaterThan(len);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('random byte flips in the header never escape as other errors', () => {
    fc.assert(
      fc.property(
        filesArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (bytes, flips) => {
          const end = fieldOffsets(bytes).end;
          const copy = bytes.slice();
          for (const [pos, value] of flips) copy[pos % end] = value;
          parseOrError(copy);
          try {
            const pre = readGgufHeader(copy.subarray(0, Math.min(copy.length, 40)));
            if (!pre.done) expect(pre.needBytes).toBeLessThanOrEqual(MAX_HEADER_BYTES);
          } catch (e) {
            if (!(e instanceof GgufError)) throw e;
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('lying counts, lengths, dims and offsets are refused or read consistently', () => {
    const lies = fc.oneof(
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.bigInt({ min: 0n, max: 4096n }),
      fc.constantFrom(0n, 1n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n),
    );
    fc.assert(
      fc.property(filesArb, fc.nat(), lies, (bytes, pick, lie) => {
        const at = fieldOffsets(bytes);
        const u64Fields = Object.entries(at).filter(([k]) => /count|len|dims|offset/.test(k) && k !== 'end');
        const [, pos] = u64Fields[pick % u64Fields.length];
        const copy = bytes.slice();
        setU64(copy, pos, lie);
        parseOrError(copy);
      }),
      { numRuns: 3000 },
    );
  });
});
