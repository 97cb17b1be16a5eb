/**
 * `npm run shaders:dump [dir]`: writes every kernel as the GPU compiles it, snippets assembled
 * (src/kernels/sources.ts), one file per kernel and variant, to `dir` (default shaders-dump/):
 *   shaders-dump/flashPrefill.f16packed.wgsl, shaders-dump/mlaDecode.f32+subgroups.wgsl, ...
 * Each part starts with a `// ---- shaders/<file> ----` line, so a line of the dump can be traced
 * back to its snippet. `override` constants keep their WGSL defaults (the wrappers set them).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { allKernelSources } from '../src/kernels/sources';

export async function main(argv: string[]): Promise<number> {
  const dir = path.resolve(argv[0] ?? 'shaders-dump');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const sources = allKernelSources();
  for (const src of sources) {
    // The directive parts (`enable ...;`) must stay before every declaration: comments only before them.
    const code = src.parts
      .map((p) => `// ---- ${p.file} ----\n${p.code.endsWith('\n') ? p.code : `${p.code}\n`}`)
      .join('');
    await writeFile(path.join(dir, `${src.name}.${src.variant}.wgsl`), code);
  }
  console.log(`${sources.length} kernels written to ${path.relative(process.cwd(), dir) || '.'}`);
  return 0;
}
