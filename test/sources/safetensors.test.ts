import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  DTYPE_BITS,
  MAX_HEADER_BYTES,
  parseSafetensors,
  readTensorF32,
  SafetensorsError,
  writeSafetensors,
  type SafetensorsFile,
} from '../../src/sources/safetensors';
import { f16BitsToF32, f32ToF16Bits } from '../../src/sources/halfFloat';

const enc = new TextEncoder();

/** A file from a raw header string and data bytes, exactly as given (no padding). */
function rawFile(header: string, data: Uint8Array | number = 0, headerLen?: number): Uint8Array {
  const json = enc.encode(header);
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  const dv = new DataView(out.buffer);
  const n = headerLen ?? json.length;
  dv.setUint32(0, n % 2 ** 32, true);
  dv.setUint32(4, Math.floor(n / 2 ** 32), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

const entry = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });
const headerOf = (o: Record<string, unknown>) => JSON.stringify(o);

/** The invariants any successfully parsed file must satisfy. */
function checkConsistent(f: SafetensorsFile): void {
  const dv = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength);
  const n = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  expect(f.dataOffset).toBe(8 + n);
  expect(f.dataOffset).toBeLessThanOrEqual(f.bytes.length);
  for (const v of Object.values(f.metadata)) expect(typeof v).toBe('string');
  const ranges: [number, number][] = [];
  for (const [name, t] of f.tensors) {
    expect(t.name).toBe(name);
    expect(DTYPE_BITS[t.dtype]).toBeGreaterThan(0);
    expect(t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)).toBe(true);
    expect(t.begin).toBeGreaterThanOrEqual(f.dataOffset);
    expect(t.begin).toBeLessThanOrEqual(t.end);
    expect(t.end).toBeLessThanOrEqual(f.bytes.length);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    expect((t.end - t.begin) * 8).toBe(numel * DTYPE_BITS[t.dtype]);
    if (t.end > t.begin) ranges.push([t.begin, t.end]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) expect(ranges[i][0]).toBeGreaterThanOrEqual(ranges[i - 1][1]);
}

/** Parses, and demands either a consistent result or a SafetensorsError, nothing else. */
function parseOrError(bytes: Uint8Array): SafetensorsFile | SafetensorsError {
  let f: SafetensorsFile;
  try {
    f = parseSafetensors(bytes, 'fuzz.safetensors');
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw new Error(`threw a non-SafetensorsError: ${String(e)}`);
    expect(e.message.startsWith('fuzz.safetensors: ')).toBe(true);
    return e;
  }
  checkConsistent(f);
  // every tensor of a float dtype reads back without throwing
  for (const t of f.tensors.values()) {
    if (t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16') {
      expect(readTensorF32(f, t.name).length).toBe(t.shape.reduce((a, b) => a * b, 1));
    }
  }
  return f;
}

describe('writeSafetensors + parseSafetensors', () => {
  it('round-trips F32 and F16 tensors and metadata', () => {
    const a = Float32Array.from({ length: 6 }, (_, i) => (i - 2.5) * 0.37);
    const bValues = new Float32Array([1, -2, 0.5, 65504, 1e-5, -0]);
    const cBits = new Uint16Array([0x3c00, 0xc000, 0x7c00]);
    const bytes = writeSafetensors(
      {
        a: { dtype: 'F32', shape: [2, 3], data: a },
        b: { dtype: 'F16', shape: [6], data: bValues },
        c: { dtype: 'F16', shape: [3, 1], data: cBits },
        empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
        scalar: { dtype: 'F32', shape: [], data: new Float32Array([7]) },
      },
      { format: 'pt', note: 'héllo "quoted"' },
    );
    const f = parseSafetensors(bytes, 'rt.safetensors');
    expect(f.fileName).toBe('rt.safetensors');
    expect({ ...f.metadata }).toEqual({ format: 'pt', note: 'héllo "quoted"' });
    expect(f.dataOffset % 8).toBe(0);
    expect(new TextDecoder().decode(bytes.subarray(8, f.dataOffset))).toMatch(/^\{.*\} *$/);
    expect([...f.tensors.keys()].sort()).toEqual(['a', 'b', 'c', 'empty', 'scalar']);
    expect(f.tensors.get('a')).toMatchObject({ dtype: 'F32', shape: [2, 3] });
    expect(f.tensors.get('c')).toMatchObject({ dtype: 'F16', shape: [3, 1] });
    expect(readTensorF32(f, 'a')).toEqual(a);
    expect([...readTensorF32(f, 'b')]).toEqual([...bValues].map((x) => Math.fround(f16BitsToF32(f32ToF16Bits(x)))));
    expect([...readTensorF32(f, 'c')]).toEqual([1, -2, Infinity]);
    expect(readTensorF32(f, 'empty').length).toBe(0);
    expect([...readTensorF32(f, 'scalar')]).toEqual([7]);
    // every tensor starts aligned to its element size in the file (F32 laid out before F16)
    for (const t of f.tensors.values()) expect(t.begin % (DTYPE_BITS[t.dtype] / 8)).toBe(0);
    checkConsistent(f);
  });

  it('writes the same bytes as the reference implementation', () => {
    // safetensors.numpy.save({"b": np.array([1, 2], np.float16), "a": np.array([[1, 2], [3, 4]], np.float32)},
    //                        metadata={"format": "np"})
    const header =
      '{"__metadata__":{"format":"np"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},' +
      '"b":{"dtype":"F16","shape":[2],"data_offsets":[16,20]}}';
    const padded = header + ' '.repeat((8 - (header.length % 8)) % 8);
    const data = new Uint8Array([...new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer), 0x00, 0x3c, 0x00, 0x40]);
    const expected = rawFile(padded, data);
    const got = writeSafetensors(
      {
        b: { dtype: 'F16', shape: [2], data: new Float32Array([1, 2]) },
        a: { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
      },
      { format: 'np' },
    );
    expect(got).toEqual(expected);
  });

  it('reads BF16 and F16 tensors at unaligned offsets, gaps and any order', () => {
    // an odd header length makes the data start at an odd byte; "x" comes after "y" in the data
    let header = headerOf({
      x: entry('BF16', [2], [7, 11]),
      y: entry('F16', [1, 2], [1, 5]),
      z: entry('I32', [1], [12, 16]),
    });
    if (header.length % 2 === 0) header += ' ';
    const data = new Uint8Array(16);
    new DataView(data.buffer).setUint16(7, 0x3f80, true); // bf16 1
    new DataView(data.buffer).setUint16(9, 0xc040, true); // bf16 -3
    new DataView(data.buffer).setUint16(1, f32ToF16Bits(0.25), true);
    new DataView(data.buffer).setUint16(3, f32ToF16Bits(-8), true);
    const f = parseSafetensors(rawFile(header, data));
    expect(f.dataOffset % 2).toBe(1);
    expect([...readTensorF32(f, 'x')]).toEqual([1, -3]);
    expect([...readTensorF32(f, 'y')]).toEqual([0.25, -8]);
    expect(() => readTensorF32(f, 'z')).toThrow(
      '<buffer>: tensor "z": has dtype I32; only F32, F16 and BF16 convert to float',
    );
  });

  it('reads from a Node Buffer at a non-zero offset in a larger pool (as readFile returns)', () => {
    const bytes = writeSafetensors({
      a: { dtype: 'F32', shape: [3], data: new Float32Array([1.5, -2, 3]) },
      h: { dtype: 'F16', shape: [2], data: new Float32Array([0.5, -4]) },
    });
    const pool = Buffer.alloc(bytes.length + 13);
    pool.fill(0xee);
    pool.set(bytes, 13);
    const view = pool.subarray(13); // a Buffer whose slice() is a view, not a copy
    const f = parseSafetensors(view);
    const a = readTensorF32(f, 'a');
    expect([...a]).toEqual([1.5, -2, 3]);
    expect([...readTensorF32(f, 'h')]).toEqual([0.5, -4]);
    a[0] = 99; // a copy: the file is untouched
    expect(readTensorF32(f, 'a')[0]).toBe(1.5);
  });

  it('accepts every dtype of the format and a header with only metadata', () => {
    for (const [dtype, bits] of Object.entries(DTYPE_BITS)) {
      const n = 8; // 8 elements is a whole number of bytes for every width incl. F4 and F6
      const f = parseSafetensors(rawFile(headerOf({ t: entry(dtype, [2, 4], [0, (n * bits) / 8]) }), (n * bits) / 8));
      expect(f.tensors.get('t')!.dtype).toBe(dtype);
    }
    const f = parseSafetensors(rawFile('{"__metadata__":{"k":"v"}}'));
    expect(f.tensors.size).toBe(0);
    expect(f.metadata.k).toBe('v');
  });

  it('keeps a "__proto__" metadata key as a key', () => {
    const f = parseSafetensors(rawFile('{"__metadata__":{"__proto__":"x"}}'));
    expect(Object.keys(f.metadata)).toEqual(['__proto__']);
    expect(f.metadata['__proto__']).toBe('x');
  });
});

describe('parseSafetensors errors', () => {
  const F = 'bad.safetensors';
  const cases: [string, Uint8Array, string][] = [
    ['file too short', new Uint8Array(5), `${F}: file is 5 bytes, too short for the 8-byte header length`],
    [
      'header past the end',
      rawFile('{}', 0, 100),
      `${F}: header length 100 runs past the end of the file (10 bytes; truncated?)`,
    ],
    [
      'header above the cap',
      rawFile('{}', 0, MAX_HEADER_BYTES + 1),
      `header length ${MAX_HEADER_BYTES + 1} is above the ${MAX_HEADER_BYTES}-byte cap`,
    ],
    ['header length with high bits', rawFile('{}', 0, 2 ** 40), `header length ${2 ** 40} is above`],
    ['empty header', rawFile(''), `${F}: header length 0 is too short for a JSON object`],
    [
      'invalid UTF-8',
      (() => {
        const b = rawFile('{"\u00e9":1}');
        b[10] = 0xff;
        return b;
      })(),
      `${F}: header is not valid UTF-8`,
    ],
    ['invalid JSON', rawFile('{"a": '), `${F}: header is not valid JSON (`],
    ['JSON array', rawFile('[1, 2]'), `${F}: header must be a JSON object, got an array`],
    ['JSON number', rawFile('42'), `${F}: header must be a JSON object, got 42`],
    [
      'metadata not an object',
      rawFile('{"__metadata__": ["a"]}'),
      `${F}: __metadata__ must be an object of strings, got ["a"]`,
    ],
    [
      'metadata value not a string',
      rawFile('{"__metadata__": {"numHeads": 4}}'),
      `${F}: __metadata__.numHeads must be a string, got 4`,
    ],
    ['entry not an object', rawFile('{"w": 3}'), `${F}: tensor "w": entry must be an object`],
    [
      'missing dtype',
      rawFile(headerOf({ w: { shape: [1], data_offsets: [0, 4] } }), 4),
      `${F}: tensor "w": dtype is missing`,
    ],
    [
      'unknown dtype',
      rawFile(headerOf({ w: entry('F99', [1], [0, 4]) }), 4),
      `${F}: tensor "w": dtype "F99" is not a known safetensors dtype`,
    ],
    [
      'lower-case dtype',
      rawFile(headerOf({ w: entry('f32', [1], [0, 4]) }), 4),
      `tensor "w": dtype "f32" is not a known`,
    ],
    [
      'missing shape',
      rawFile(headerOf({ w: { dtype: 'F32', data_offsets: [0, 4] } }), 4),
      `${F}: tensor "w": shape is missing`,
    ],
    [
      'shape not an array',
      rawFile(headerOf({ w: entry('F32', 4, [0, 4]) }), 4),
      `${F}: tensor "w": shape must be an array, got 4`,
    ],
    [
      'negative dim',
      rawFile(headerOf({ w: entry('F32', [2, -1], [0, 4]) }), 4),
      `${F}: tensor "w": shape[1] must be a non-negative integer, got -1`,
    ],
    [
      'fractional dim',
      rawFile(headerOf({ w: entry('F32', [1.5], [0, 4]) }), 4),
      `tensor "w": shape[0] must be a non-negative integer, got 1.5`,
    ],
    [
      'string dim',
      rawFile(headerOf({ w: entry('F32', ['1'], [0, 4]) }), 4),
      `tensor "w": shape[0] must be a non-negative integer, got "1"`,
    ],
    [
      'unsafe dim',
      rawFile(headerOf({ w: entry('F32', [2 ** 60], [0, 4]) }), 4),
      `tensor "w": shape[0] must be a non-negative integer`,
    ],
    [
      'huge shape',
      rawFile(headerOf({ w: entry('F32', [2 ** 30, 2 ** 30], [0, 4]) }), 4),
      `tensor "w": shape [1073741824,1073741824] has too many elements`,
    ],
    [
      'missing data_offsets',
      rawFile(headerOf({ w: { dtype: 'F32', shape: [1] } }), 4),
      `${F}: tensor "w": data_offsets is missing`,
    ],
    [
      'data_offsets of 3',
      rawFile(headerOf({ w: entry('F32', [1], [0, 4, 8]) }), 8),
      `tensor "w": data_offsets must be [begin, end], got [0,4,8]`,
    ],
    [
      'negative offset',
      rawFile(headerOf({ w: entry('F32', [1], [-4, 0]) }), 4),
      `tensor "w": data_offsets must be non-negative integers, got [-4,0]`,
    ],
    [
      'begin after end',
      rawFile(headerOf({ w: entry('F32', [0], [8, 4]) }), 8),
      `tensor "w": data_offsets [8, 4] has begin after end`,
    ],
    [
      'past the data',
      rawFile(headerOf({ w: entry('F32', [3], [0, 12]) }), 8),
      `${F}: tensor "w": data_offsets [0, 12] runs past the data section (8 bytes; truncated?)`,
    ],
    [
      'size mismatch',
      rawFile(headerOf({ w: entry('F32', [2, 3], [0, 20]) }), 24),
      `${F}: tensor "w": shape [2,3] of F32 needs 24 bytes but data_offsets [0, 20] hold 20`,
    ],
    [
      'dtype size mismatch',
      rawFile(headerOf({ w: entry('F16', [4], [0, 16]) }), 16),
      `tensor "w": shape [4] of F16 needs 8 bytes`,
    ],
    [
      'partial bytes',
      rawFile(headerOf({ w: entry('F4', [3], [0, 2]) }), 2),
      `tensor "w": shape [3] of F4 is not a whole number of bytes`,
    ],
    [
      'overlap',
      rawFile(headerOf({ a: entry('F32', [2], [0, 8]), b: entry('F32', [2], [4, 12]) }), 12),
      `${F}: tensor "b": data_offsets [4, 12] overlap tensor "a" at [0, 8]`,
    ],
    [
      'identical ranges',
      rawFile(headerOf({ a: entry('F32', [2], [0, 8]), b: entry('I32', [2], [0, 8]) }), 8),
      `overlap tensor`,
    ],
  ];
  for (const [what, bytes, message] of cases) {
    it(`${what}`, () => {
      let err: unknown;
      try {
        parseSafetensors(bytes, F);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SafetensorsError);
      expect((err as Error).message).toContain(message);
      expect((err as Error).message.startsWith(`${F}: `)).toBe(true);
    });
  }

  it('allows empty tensors anywhere, even inside another range', () => {
    const f = parseSafetensors(rawFile(headerOf({ a: entry('F32', [2], [0, 8]), e: entry('F32', [0], [4, 4]) }), 8));
    expect(f.tensors.size).toBe(2);
  });

  it('readTensorF32 names the file and the tensor when it is missing', () => {
    const f = parseSafetensors(rawFile(headerOf({ a: entry('F32', [1], [0, 4]) }), 4), 'w.safetensors');
    expect(() => readTensorF32(f, 'q')).toThrow(SafetensorsError);
    expect(() => readTensorF32(f, 'q')).toThrow('w.safetensors: tensor "q": no such tensor (it has "a")');
  });

  it('writeSafetensors refuses inconsistent input', () => {
    expect(() => writeSafetensors({ a: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } })).toThrow(
      'tensor "a": shape [2,2] has 4 elements but data has 3',
    );
    expect(() => writeSafetensors({ a: { dtype: 'F32', shape: [1], data: new Uint16Array(1) } })).toThrow(
      'F32 data must be a Float32Array',
    );
    expect(() => writeSafetensors({ __metadata__: { dtype: 'F32', shape: [1], data: new Float32Array(1) } })).toThrow(
      'reserved',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzz: valid files truncated at every length, random header bytes flipped, header fields replaced
// by arbitrary JSON. The parser must return a consistent file or throw SafetensorsError.

const tensorArb = fc.record({
  dtype: fc.constantFrom<'F32' | 'F16'>('F32', 'F16'),
  shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
});
const filesArb = fc
  .tuple(
    fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), tensorArb, { minKeys: 1, maxKeys: 4 }),
    fc.option(fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }), {
      nil: undefined,
    }),
  )
  .map(([specs, meta]) => {
    const tensors: Parameters<typeof writeSafetensors>[0] = {};
    for (const [name, s] of Object.entries(specs)) {
      if (name === '__metadata__') continue;
      const n = s.shape.reduce((a, b) => a * b, 1);
      tensors[name] = { dtype: s.dtype, shape: s.shape, data: Float32Array.from({ length: n }, (_, i) => i * 0.5 - 1) };
    }
    return writeSafetensors(tensors, meta);
  });

describe('parseSafetensors fuzz', () => {
  it('valid files parse; every truncation is a SafetensorsError (or consistent)', () => {
    fc.assert(
      fc.property(filesArb, (bytes) => {
        const full = parseOrError(bytes);
        expect(full).not.toBeInstanceOf(SafetensorsError);
        const f = full as SafetensorsFile;
        const dataLen = bytes.length - f.dataOffset;
        for (let len = 0; len < bytes.length; len++) {
          const r = parseOrError(bytes.subarray(0, len));
          // the writer tiles the data section exactly, so losing any byte loses data or header
          if (dataLen > 0 || len < f.dataOffset) expect(r).toBeInstanceOf(SafetensorsError);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('random byte flips in the length prefix and the header never escape as other errors', () => {
    fc.assert(
      fc.property(
        filesArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (bytes, flips) => {
          const f = parseSafetensors(bytes);
          const copy = bytes.slice();
          for (const [pos, value] of flips) copy[pos % f.dataOffset] = value;
          parseOrError(copy);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('arbitrary JSON in place of a field, an entry or the whole header never escapes', () => {
    fc.assert(
      fc.property(
        filesArb,
        fc.jsonValue({ maxDepth: 3 }),
        fc.nat(),
        fc.constantFrom('dtype', 'shape', 'data_offsets', 'entry', 'header', 'metadata'),
        (bytes, junk, pick, where) => {
          const f = parseSafetensors(bytes);
          const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, f.dataOffset)));
          const names = Object.keys(header).filter((k) => k !== '__metadata__');
          const name = names[pick % names.length];
          let mutated: unknown = header;
          if (where === 'header') mutated = junk;
          else if (where === 'entry') header[name] = junk;
          else if (where === 'metadata') header.__metadata__ = junk;
          else header[name][where] = junk;
          parseOrError(rawFile(JSON.stringify(mutated), bytes.subarray(f.dataOffset)));
        },
      ),
      { numRuns: 3000 },
    );
  });
});
