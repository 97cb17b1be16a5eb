/**
 * The README's examples are the files under examples/ that the package test runs: every block
 * marked `<!-- example: PATH -->` must equal that file, so the README cannot drift from what is tested.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/<!-- example: (\S+) -->\n```\w*\n([\s\S]*?)\n```/g)].map((m) => ({
  file: m[1],
  code: m[2],
}));

describe('README examples', () => {
  it('shows the browser, Node and kernel-only examples', () => {
    expect(blocks.map((b) => b.file).sort()).toEqual([
      'examples/browser-chat.js',
      'examples/kernels-only.mjs',
      'examples/node-generate.mjs',
    ]);
  });
  it.each(blocks)('$file is copied verbatim', ({ file, code }) => {
    expect(code).toBe(readFileSync(path.join(root, file), 'utf8').replace(/\n$/, ''));
  });
});
