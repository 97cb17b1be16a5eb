// Adds file extensions to the relative imports of the emitted .d.ts files (dist/types):
//   from './gpu/context'  ->  from './gpu/context.js'      from '../kv'  ->  from '../kv/index.js'
// The sources import without extensions (Vite resolves them), and tsc copies those specifiers into
// the declarations as they are. A consumer compiling with moduleResolution node16 / nodenext (Node's
// ESM rules) cannot resolve extensionless paths and would silently see `any` for every type.
//
//   node scripts/dts-extensions.mjs dist/types
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(process.argv[2] ?? 'dist/types');
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]*)\2/g;

function withExtension(file, spec) {
  if (/\.(js|mjs|cjs|json)$/.test(spec)) return spec;
  const target = path.resolve(path.dirname(file), spec);
  if (existsSync(`${target}.d.ts`)) return `${spec}.js`;
  if (existsSync(path.join(target, 'index.d.ts'))) return `${spec}/index.js`;
  throw new Error(`${path.relative(root, file)}: cannot resolve '${spec}' to a declaration file`);
}

let files = 0;
let rewritten = 0;
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.d.ts')) {
      files++;
      const text = readFileSync(p, 'utf8');
      const out = text.replace(SPECIFIER, (_m, pre, q, spec) => {
        const s = withExtension(p, spec);
        if (s !== spec) rewritten++;
        return `${pre}${q}${s}${q}`;
      });
      if (out !== text) writeFileSync(p, out);
    }
  }
};
walk(root);
console.log(`dts-extensions: ${rewritten} relative imports in ${files} declaration files now name their .js file`);
