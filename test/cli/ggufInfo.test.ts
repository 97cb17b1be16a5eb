/**
 * `webattn info` on GGUF models (no GPU): a .gguf path, a folder with --gguf-file, and the errors
 * for a folder of several GGUF files and a bad --gguf-file, each naming what to do.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main';

const GGUF = path.resolve(__dirname, '../../../shared/realworld/gguf');

async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((s: unknown) => void out.push(String(s)));
  vi.spyOn(console, 'error').mockImplementation((s: unknown) => void err.push(String(s)));
  const code = await main(args);
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

afterEach(() => vi.restoreAllMocks());

describe.skipIf(!existsSync(GGUF))('webattn info --model x.gguf', () => {
  it('describes a GGUF model as it describes its safetensors folder', async () => {
    const gguf = await run(['info', '--model', path.join(GGUF, 'kjv-gqa-Q4_K_M.gguf')]);
    const folder = await run(['info', '--model', path.resolve(__dirname, '../../models/kjv-gqa')]);
    expect(gguf.code).toBe(0);
    const body = (s: string) => s.split('\n').slice(1).join('\n'); // all but the line naming the source
    expect(body(gguf.stdout)).toBe(body(folder.stdout));
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
