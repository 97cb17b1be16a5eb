/**
 * A minimal GGUF v3 reader for tests: the tensor table (name, dims, GGML type, data bytes) of a
 * file, skipping the metadata values. Enough to take real quantized blocks out of the files in
 * ../shared/realworld/gguf; the strict loader is a separate issue.
 *   header: "GGUF", u32 version, u64 tensor count, u64 kv count; kv: string key, u32 type, value;
 *   tensor info: string name, u32 n_dims, u64 dims[n_dims] (dims[0] = row length), u32 type, u64 offset;
 *   data starts at the next multiple of general.alignment (32 by default) after the infos.
 */
import { readFileSync } from 'node:fs';

export interface GgufTensor {
  name: string;
  /** dims[0] is the row length (values per row), as ggml's ne0. */
  dims: number[];
  ggmlType: number;
  data: Uint8Array;
}

export function readGgufTensors(path: string): Map<string, GgufTensor> {
  const bytes = new Uint8Array(readFileSync(path));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 0;
  const u32 = () => {
    p += 4;
    return view.getUint32(p - 4, true);
  };
  const u64 = () => {
    p += 8;
    return Number(view.getBigUint64(p - 8, true));
  };
  const str = () => {
    const n = u64();
    p += n;
    return new TextDecoder().decode(bytes.subarray(p - n, p));
  };
  // Sizes of the fixed-size GGUF value types 0..12 (8 string and 9 array are variable).
  const SIZES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skip = (type: number): number | undefined => {
    if (type === 8) return void str();
    if (type === 9) {
      const t = u32();
      const n = u64();
      for (let i = 0; i < n; i++) skip(t);
      return undefined;
    }
    const size = SIZES[type];
    if (size === undefined) throw new Error(`${path}: unknown GGUF value type ${type}`);
    const v = size === 4 ? view.getUint32(p, true) : undefined;
    p += size;
    return v;
  };
  if (u32() !== 0x46554747) throw new Error(`${path}: not a GGUF file`);
  const version = u32();
  if (version !== 3) throw new Error(`${path}: GGUF version ${version}, expected 3`);
  const tensorCount = u64();
  const kvCount = u64();
  let alignment = 32;
  for (let i = 0; i < kvCount; i++) {
    const key = str();
    const v = skip(u32());
    if (key === 'general.alignment' && v !== undefined) alignment = v;
  }
  const infos: { name: string; dims: number[]; ggmlType: number; offset: number }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = str();
    const nd = u32();
    const dims = Array.from({ length: nd }, u64);
    infos.push({ name, dims, ggmlType: u32(), offset: u64() });
  }
  const base = Math.ceil(p / alignment) * alignment;
  // A tensor's bytes end where the next one (by offset) starts, or at the end of the file.
  const sorted = [...infos].sort((a, b) => a.offset - b.offset);
  const out = new Map<string, GgufTensor>();
  sorted.forEach((t, i) => {
    const end = i + 1 < sorted.length ? base + sorted[i + 1].offset : bytes.length;
    out.set(t.name, { name: t.name, dims: t.dims, ggmlType: t.ggmlType, data: bytes.subarray(base + t.offset, end) });
  });
  return out;
}
