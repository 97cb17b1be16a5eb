/**
 * `webattn info` (no GPU): the weights' GPU bytes per format and --json on a shipped folder; on GGUF
 * models, a .gguf path, a folder with --gguf-file, the file's own tensor bytes, and the errors for a
 * folder of several GGUF files and a bad --gguf-file, each naming what to do.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main';
import { parseConfig } from '../../src/model/config';
import { runtimeTensors } from '../../src/model/expectedTensors';
import { weightBytesAt } from '../../src/model/weights';

const GGUF = path.resolve(__dirname, '../../../shared/realworld/gguf');
const KJV_GQA = path.resolve(__dirname, '../../models/kjv-gqa');

async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((s: unknown) => void out.push(String(s)));
  vi.spyOn(console, 'error').mockImplementation((s: unknown) => void err.push(String(s)));
  const code = await main(args);
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

afterEach(() => vi.restoreAllMocks());

describe('webattn info: weight bytes per format', () => {
  it('prints the GPU bytes of f32, f16, q8 and q4 weights, and --json carries them', async () => {
    const spec = parseConfig(JSON.parse(readFileSync(path.join(KJV_GQA, 'config.json'), 'utf8')));
    const bytes = (dtype: 'f32' | 'f16' | 'q8' | 'q4') => weightBytesAt(runtimeTensors(spec), dtype);
    // kjv-gqa: 1,016,960 parameters; q4 keeps the embedding (a third of them) at q8. Block formats in
    // packed rows (src/kernels/quantLayout.ts): rows of 128 values pad their f16 scales to 16 bytes.
    expect([bytes('f32'), bytes('f16'), bytes('q8'), bytes('q4')]).toEqual([4067840, 2033920, 1136896, 760064]);
    const text = await run(['info', '--model', KJV_GQA]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('weights on the GPU: 3.9 MiB in f32, 1.9 MiB in f16, 1.1 MiB in q8, 0.7 MiB in q4');
    expect(text.stdout).not.toContain('GGUF');
    vi.restoreAllMocks();
    const json = await run(['info', '--model', KJV_GQA, '--json', '--context', '100']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report.weightBytes).toEqual({ f32: 4067840, f16: 2033920, q8: 1136896, q4: 760064 });
    expect(report.largestWeight.q4).toEqual({ name: 'model.embed_tokens.weight', bytes: 294912 });
    expect(report).toMatchObject({ family: 'llama', layers: 4, attention: 'gqa', parameters: 1016960, context: 100 });
    expect(report.kvBytesPerToken.f16).toBe(512); // 4 layers x 2 KV heads x (16 + 16) x 2 bytes
    // Every KV dtype: q8 rows of 16 codes + an f16 scale, q4 8 bytes of nibbles + one scale per 32 values.
    expect(report.kvBytesPerToken).toEqual({ f16: 512, f32: 1024, q8: 4 * 2 * 2 * 18, q4: 4 * 2 * 2 * 10 });
    expect(report.kvBytes.f16).toBe(51200);
    expect(report.ggufStored).toBeUndefined();
  });
});

describe.skipIf(!existsSync(GGUF))('webattn info --model x.gguf', () => {
  it('describes a GGUF model as it describes its safetensors folder', async () => {
    const gguf = await run(['info', '--model', path.join(GGUF, 'kjv-gqa-Q4_K_M.gguf')]);
    const folder = await run(['info', '--model', path.resolve(__dirname, '../../models/kjv-gqa')]);
    expect(gguf.code).toBe(0);
    // All but the line naming the source and the GGUF file's own tensor bytes, which a folder has not.
    const stored = /^weights as the GGUF file stores them: .*$/m;
    const body = (s: string) => s.replace(stored, '').trimEnd().split('\n').slice(1).join('\n');
    expect(body(gguf.stdout)).toBe(body(folder.stdout));
    // Q4_K_M: llama.cpp's Q5_0 / Q8_0 blocks (the header's tensor bytes: 904992 less header and padding).
    expect(gguf.stdout).toMatch(stored);
    expect(gguf.stdout.match(stored)![0]).toBe(
      'weights as the GGUF file stores them: 0.8 MiB (Q5_0 24, F32 9, Q8_0 5)',
    );
    expect(gguf.stdout).toMatch(/^.*kjv-gqa-Q4_K_M\.gguf: llama, 4 layers, hidden 128, vocab 2048\nattention: GQA/);
    const picked = await run(['info', '--model', GGUF, '--gguf-file', 'stories260K-Q6_K.gguf']);
    expect(picked.stdout).toMatch(
      /llama, 5 layers, hidden 64, vocab 512\nattention: GQA, 8 query heads, 4 KV heads of 8/,
    );
  });

  it('a folder of several GGUF files, or a --gguf-file that is not one, exits 2 saying why', async () => {
    const several = await run(['info', '--model', GGUF]);
    expect(several.code).toBe(2);
    expect(several.stderr).toMatch(/no config\.json and 10 GGUF files .*pick one with --gguf-file/);
    const bad = await run(['info', '--model', GGUF, '--gguf-file', 'README.md']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/"README\.md" is not a GGUF file name/);
    const missing = await run(['info', '--model', GGUF, '--gguf-file', 'nope.gguf']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.gguf: missing/);
  });
});
