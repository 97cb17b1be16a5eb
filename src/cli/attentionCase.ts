/**
 * An attention case file: the input of `webattn attention`, a safetensors file holding
 *
 *   tensors (F32; F16/BF16 are widened):  q [Tq, H, Dqk]   k [Tk, Hkv, Dqk]   v [Tk, Hkv, Dv]
 *   __metadata__ (all strings):
 *     numHeads H, numKvHeads Hkv, headDimQK Dqk, headDimV Dv   positive integers, H % Hkv == 0
 *     seqLensQ, seqLensKV   JSON arrays of non-negative integers, one entry per sequence;
 *                           Tq = sum(seqLensQ), Tk = sum(seqLensKV), seqLensQ[i] <= seqLensKV[i]
 *     causal                "1" or "0"
 *     scale                 optional float (default 1/sqrt(Dqk))
 *     window                optional non-negative integer, "0" = no sliding window
 *     variant               optional: "mla", or "mha" / "gqa" / "mqa" (the head counts decide)
 *   MLA (variant "mla"): latentDim d_c and ropeDim d_rope (integers) replace numKvHeads, headDimQK
 *     and headDimV (if given they must be 1, d_c + d_rope and d_c), and one tensor
 *     kv [Tk, d_c + d_rope] (the latent rows [c_kv | k_pe]) replaces k and v; q is [Tq, H, d_c + d_rope].
 *
 * Worked example (GQA, two sequences, a prefill of 3 and a decode of 1):
 *   numHeads "4", numKvHeads "2", headDimQK "8", headDimV "8", seqLensQ "[3,1]", seqLensKV "[5,6]"
 *   → q [4, 4, 8], k [11, 2, 8], v [11, 2, 8]; the result holds out [4, 4, 8] and lse [4, 4].
 *
 * parseAttentionCase checks all of it and throws a CaseError naming the first field that is wrong.
 */
import type { AttentionArgs } from '../api/attention';
import { readTensorF32, SafetensorsError, type SafetensorsFile } from '../sources/safetensors';

export class CaseError extends Error {
  override name = 'CaseError';
  constructor(
    /** The metadata field or tensor that is wrong, e.g. "numHeads", "seqLensQ[1]", "k". */
    readonly field: string,
    detail: string,
  ) {
    super(`${field}: ${detail}`);
  }
}

const INTEGER = /^(0|[1-9][0-9]*)$/;
const FLOAT = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/;

/** Bounded rendering of a user string for messages (one line). */
function quote(s: string): string {
  const q = JSON.stringify(s);
  return q.length > 40 ? `${q.slice(0, 37)}..."` : q;
}

function field(meta: Record<string, string>, name: string): string | undefined {
  return Object.hasOwn(meta, name) ? meta[name] : undefined;
}

function required(meta: Record<string, string>, name: string): string {
  const v = field(meta, name);
  if (v === undefined) throw new CaseError(name, 'missing from __metadata__');
  return v;
}

function integer(name: string, s: string, min: number): number {
  const n = INTEGER.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new CaseError(name, `must be an integer >= ${min}, got ${quote(s)}`);
  }
  return n;
}

function lengths(name: string, s: string): number[] {
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    throw new CaseError(name, `must be a JSON array of non-negative integers, got ${quote(s)} (not JSON)`);
  }
  if (!Array.isArray(v)) throw new CaseError(name, `must be a JSON array of non-negative integers, got ${quote(s)}`);
  if (v.length === 0) throw new CaseError(name, 'must list at least one sequence');
  v.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) {
      throw new CaseError(`${name}[${i}]`, `must be a non-negative integer, got ${JSON.stringify(x)}`);
    }
  });
  return v as number[];
}

const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);

/** Reads a float tensor and checks its shape against `want` (names of the dims for the message). */
function tensor(file: SafetensorsFile, name: 'q' | 'k' | 'v' | 'kv', want: [string, number][]): Float32Array {
  const t = file.tensors.get(name);
  if (!t) throw new CaseError(name, 'tensor is missing from the file');
  const shape = `[${t.shape.join(', ')}]`;
  const expected = `[${want.map(([label, n]) => `${label}=${n}`).join(', ')}]`;
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i][1])) {
    throw new CaseError(name, `shape ${shape} does not match ${expected}`);
  }
  try {
    return readTensorF32(file, name);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CaseError(name, `dtype ${t.dtype}: must be F32 (or F16/BF16)`);
    throw e;
  }
}

export function parseAttentionCase(file: SafetensorsFile): AttentionArgs {
  const meta = file.metadata;
  const variant = field(meta, 'variant');
  if (variant !== undefined && !['mha', 'gqa', 'mqa', 'mla'].includes(variant)) {
    throw new CaseError('variant', `must be "mla", "mha", "gqa" or "mqa", got ${quote(variant)}`);
  }
  const mla = variant === 'mla';
  const numHeads = integer('numHeads', required(meta, 'numHeads'), 1);
  let latentDim = 0;
  let ropeDim = 0;
  if (mla) {
    latentDim = integer('latentDim', required(meta, 'latentDim'), 1);
    ropeDim = integer('ropeDim', required(meta, 'ropeDim'), 0);
  }
  // MLA derives these; when given they must agree.
  const derived = (name: string, value: number, min: number): number => {
    const text = mla ? field(meta, name) : required(meta, name);
    if (text === undefined) return value;
    const n = integer(name, text, min);
    if (mla && n !== value)
      throw new CaseError(name, `MLA needs ${value} (from latentDim ${latentDim}, ropeDim ${ropeDim}), got ${n}`);
    return n;
  };
  const numKvHeads = derived('numKvHeads', 1, 1);
  const headDimQK = derived('headDimQK', latentDim + ropeDim, 1);
  const headDimV = derived('headDimV', latentDim, 1);
  if (numHeads % numKvHeads !== 0) {
    throw new CaseError('numKvHeads', `${numKvHeads} does not divide numHeads ${numHeads}`);
  }

  const seqLensQ = lengths('seqLensQ', required(meta, 'seqLensQ'));
  const seqLensKV = lengths('seqLensKV', required(meta, 'seqLensKV'));
  if (seqLensQ.length !== seqLensKV.length) {
    throw new CaseError('seqLensKV', `has ${seqLensKV.length} sequences but seqLensQ has ${seqLensQ.length}`);
  }
  seqLensQ.forEach((n, i) => {
    if (n > seqLensKV[i]) {
      throw new CaseError(`seqLensQ[${i}]`, `${n} queries exceed seqLensKV[${i}] = ${seqLensKV[i]} keys`);
    }
  });

  const causalText = required(meta, 'causal');
  if (causalText !== '0' && causalText !== '1')
    throw new CaseError('causal', `must be "1" or "0", got ${quote(causalText)}`);

  let scale: number | undefined;
  const scaleText = field(meta, 'scale');
  if (scaleText !== undefined) {
    scale = FLOAT.test(scaleText) ? Number(scaleText) : NaN;
    if (!Number.isFinite(scale) || scale <= 0)
      throw new CaseError('scale', `must be a positive finite number, got ${quote(scaleText)}`);
  }
  const windowText = field(meta, 'window');
  const window = windowText === undefined ? undefined : integer('window', windowText, 0);

  const Tq = sum(seqLensQ);
  const Tk = sum(seqLensKV);
  const q = tensor(file, 'q', [
    ['Tq=sum(seqLensQ)', Tq],
    ['numHeads', numHeads],
    ['headDimQK', headDimQK],
  ]);
  const args: AttentionArgs = {
    q,
    numHeads,
    numKvHeads,
    headDimQK,
    headDimV,
    seqLensQ,
    seqLensKV,
    causal: causalText === '1',
  };
  if (mla) {
    Object.assign(args, { variant, latentDim, ropeDim });
    args.kv = tensor(file, 'kv', [
      ['Tk=sum(seqLensKV)', Tk],
      ['latentDim+ropeDim', headDimQK],
    ]);
  } else {
    args.k = tensor(file, 'k', [
      ['Tk=sum(seqLensKV)', Tk],
      ['numKvHeads', numKvHeads],
      ['headDimQK', headDimQK],
    ]);
    args.v = tensor(file, 'v', [
      ['Tk=sum(seqLensKV)', Tk],
      ['numKvHeads', numKvHeads],
      ['headDimV', headDimV],
    ]);
  }
  if (scale !== undefined) args.scale = scale;
  if (window !== undefined) args.window = window;
  return args;
}
