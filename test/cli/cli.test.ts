/**
 * End-to-end tests of the `webattn` binary: spawns `node bin/webattn.js` exactly as a user would.
 * The GPU cases run once src/api/attention.ts exists; they compare with a float64 attention
 * written out below (independent of src/reference).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSafetensors, readTensorF32, writeSafetensors } from '../../src/sources/safetensors';

const root = path.resolve(__dirname, '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'webattn-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function webattn(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(root, 'bin/webattn.js'), ...args],
      { cwd: root, timeout: 100_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

interface Case {
  H: number;
  Hkv: number;
  D: number;
  Dv: number;
  seqLensQ: number[];
  seqLensKV: number[];
  causal: boolean;
  scale?: number;
  window?: number;
}

const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);

function writeCase(name: string, c: Case, meta: Record<string, string> = {}) {
  const Tq = sum(c.seqLensQ);
  const Tk = sum(c.seqLensKV);
  const q = rand(Tq * c.H * c.D);
  const k = rand(Tk * c.Hkv * c.D);
  const v = rand(Tk * c.Hkv * c.Dv);
  const m: Record<string, string> = {
    numHeads: String(c.H),
    numKvHeads: String(c.Hkv),
    headDimQK: String(c.D),
    headDimV: String(c.Dv),
    seqLensQ: JSON.stringify(c.seqLensQ),
    seqLensKV: JSON.stringify(c.seqLensKV),
    causal: c.causal ? '1' : '0',
    ...(c.scale !== undefined ? { scale: String(c.scale) } : {}),
    ...(c.window !== undefined ? { window: String(c.window) } : {}),
    ...meta,
  };
  const file = path.join(dir, name);
  writeFileSync(
    file,
    writeSafetensors(
      {
        q: { dtype: 'F32', shape: [Tq, c.H, c.D], data: q },
        k: { dtype: 'F32', shape: [Tk, c.Hkv, c.D], data: k },
        v: { dtype: 'F32', shape: [Tk, c.Hkv, c.Dv], data: v },
      },
      m,
    ),
  );
  return { file, q, k, v };
}

/**
 * Plain float64 softmax attention. Query j of sequence i sits at key position
 * seqLensKV[i] - seqLensQ[i] + j; causal hides later keys, a window w keeps keys in (pos - w, pos].
 */
function attention64(c: Case, q: Float32Array, k: Float32Array, v: Float32Array) {
  const Tq = sum(c.seqLensQ);
  const out = new Float64Array(Tq * c.H * c.Dv);
  const lse = new Float64Array(Tq * c.H);
  const scale = c.scale ?? 1 / Math.sqrt(c.D);
  const group = c.H / c.Hkv;
  let q0 = 0;
  let k0 = 0;
  c.seqLensQ.forEach((qLen, s) => {
    const kvLen = c.seqLensKV[s];
    for (let j = 0; j < qLen; j++) {
      const pos = kvLen - qLen + j;
      for (let h = 0; h < c.H; h++) {
        const kh = Math.floor(h / group);
        const logits: number[] = [];
        const keys: number[] = [];
        for (let t = 0; t < kvLen; t++) {
          if (c.causal && t > pos) continue;
          if (c.window && t <= pos - c.window) continue;
          let dot = 0;
          for (let d = 0; d < c.D; d++) dot += q[((q0 + j) * c.H + h) * c.D + d] * k[((k0 + t) * c.Hkv + kh) * c.D + d];
          logits.push(dot * scale);
          keys.push(t);
        }
        const m = Math.max(...logits);
        const w = logits.map((x) => Math.exp(x - m));
        const z = sum(w);
        lse[(q0 + j) * c.H + h] = m + Math.log(z);
        for (let d = 0; d < c.Dv; d++) {
          let acc = 0;
          keys.forEach((t, i) => (acc += w[i] * v[((k0 + t) * c.Hkv + kh) * c.Dv + d]));
          out[((q0 + j) * c.H + h) * c.Dv + d] = acc / z;
        }
      }
    }
    q0 += qLen;
    k0 += kvLen;
  });
  return { out, lse };
}

function relL2(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / den);
}

const small: Case = { H: 4, Hkv: 2, D: 8, Dv: 8, seqLensQ: [3, 1], seqLensKV: [5, 6], causal: true };

describe('webattn CLI', () => {
  it('--help lists the commands and exits 0', async () => {
    const r = await webattn(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('usage: webattn <command>');
    expect(r.stdout).toMatch(/^\s+attention\s+/m);
    const a = await webattn(['attention', '--help']);
    expect(a.code).toBe(0);
    expect(a.stdout).toContain('--kv-dtype');
  });

  it('unknown commands, options and missing files are one-line usage errors (exit 2)', async () => {
    for (const [args, needle] of [
      [['frobnicate'], "unknown command 'frobnicate'"],
      [['attention', '--in', 'x.safetensors'], '--out is required'],
      [['attention', '--in', 'x', '--out', 'y', '--wat'], "'--wat'"],
      [['attention', '--in', path.join(dir, 'nope.safetensors'), '--out', 'y'], 'no such file'],
      [['attention', '--in', 'x', '--out', 'y', '--kv-dtype', 'f8'], '--kv-dtype must be f32 or f16'],
      [['attention', '--in', 'x', '--out', 'y', '--page-size', '0'], '--page-size must be a positive integer'],
    ] as [string[], string][]) {
      const r = await webattn(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toContain(needle);
    }
  });

  it('generate refuses bad sampling options before it reads the model: exit 2, option and range named', async () => {
    // The model folder does not exist: had the options been checked after loading, the error would name it.
    const generate = ['generate', '--model', path.join(dir, 'no-such-model'), '--prompt', 'hi'];
    for (const [flags, message] of [
      [['--top-p', '5'], "--top-p must be a number in (0, 1] (1 = off), got '5'"],
      [['--min-p', '2'], "--min-p must be a number in [0, 1] (0 = off), got '2'"],
      [['--repetition-penalty', '0'], "--repetition-penalty must be a number > 0 (1 = off), got '0'"],
      [['--max-new-tokens', '1000000000'], "--max-new-tokens must be an integer in [1, 1048576], got '1000000000'"],
      [['--seed', 'NaN'], "--seed must be an integer in [0, 4294967295], got 'NaN'"],
      [['--seed', '4294967296'], "--seed must be an integer in [0, 4294967295], got '4294967296'"],
    ] as [string[], string][]) {
      const r = await webattn([...generate, ...flags]);
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.stderr.trim()).toBe(`webattn generate: ${message}`);
    }
  });

  it('a malformed case is one line on stderr naming the field, exit 2', async () => {
    const { file } = writeCase('bad-lens.safetensors', small, { seqLensKV: '[5,7]' });
    const r = await webattn(['attention', '--in', file, '--out', path.join(dir, 'never.safetensors')]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^webattn attention: .*bad-lens\.safetensors: k: shape \[11, 2, 8\] does not match \[Tk=sum\(seqLensKV\)=12/,
    );
    expect(existsSync(path.join(dir, 'never.safetensors'))).toBe(false);

    const { file: f2 } = writeCase('bad-json.safetensors', small, { seqLensQ: '[3, 1' });
    const r2 = await webattn(['attention', '--in', f2, '--out', path.join(dir, 'never.safetensors')]);
    expect(r2.code).toBe(2);
    expect(r2.stderr.trim().split('\n')).toHaveLength(1);
    expect(r2.stderr).toContain('seqLensQ: must be a JSON array');

    const notSt = path.join(dir, 'garbage.safetensors');
    writeFileSync(notSt, 'this is not a safetensors file at all');
    const r3 = await webattn(['attention', '--in', notSt, '--out', path.join(dir, 'never.safetensors')]);
    expect(r3.code).toBe(2);
    expect(r3.stderr.trim().split('\n')).toHaveLength(1);
    expect(r3.stderr).toContain('garbage.safetensors: header length');
  });

  const hasAttention = existsSync(path.join(root, 'src/api/attention.ts'));
  describe.runIf(hasAttention)('on the GPU', () => {
    const cases: [string, Case, string[], number][] = [
      ['GQA, causal prefill + decode, f32 KV', small, [], 1e-4],
      [
        'MQA, non-causal, scale and window, Dqk != Dv, f16 KV, page size 3',
        { H: 4, Hkv: 1, D: 16, Dv: 8, seqLensQ: [5, 2, 0], seqLensKV: [7, 9, 3], causal: false, scale: 0.3, window: 4 },
        ['--kv-dtype', 'f16', '--page-size', '3'],
        5e-3,
      ],
      ['decode only (split-KV path)', { ...small, seqLensQ: [1, 1], seqLensKV: [19, 6] }, ['--page-size', '4'], 1e-4],
    ];
    cases.forEach(([what, c, flags, tol], i) => {
      it(`${what}: out and lse match float64 attention`, async () => {
        const { file, q, k, v } = writeCase(`case${i}.safetensors`, c);
        const outFile = path.join(dir, `result${i}.safetensors`);
        const r = await webattn(['attention', '--in', file, '--out', outFile, ...flags]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toMatch(/adapter: \S/);
        const res = parseSafetensors(readFileSync(outFile), outFile);
        const Tq = sum(c.seqLensQ);
        expect(res.tensors.get('out')).toMatchObject({ dtype: 'F32', shape: [Tq, c.H, c.Dv] });
        expect(res.tensors.get('lse')).toMatchObject({ dtype: 'F32', shape: [Tq, c.H] });
        const want = attention64(c, q, k, v);
        expect(relL2(readTensorF32(res, 'out'), want.out)).toBeLessThan(tol);
        expect(relL2(readTensorF32(res, 'lse'), want.lse)).toBeLessThan(tol);
      });
    });
  });
});
