/**
 * `npm run lint:lines`: no source line over 120 characters (the formatter wraps code; long strings,
 * comments, HTML and CSS it leaves alone, so this check names them). Files come from git (tracked and
 * untracked, .gitignore respected); shipped models, fixtures and bench results are data, not source.
 *
 *   node scripts/check-line-length.mjs [--max N]   exit 1 listing file:line (length) of each long line
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const maxArg = process.argv.indexOf('--max');
const MAX = maxArg >= 0 ? Number(process.argv[maxArg + 1]) : 120;
const SOURCE = /\.(ts|mts|js|mjs|cjs|wgsl|html|css|sh|py)$|^\.ci\/run$/;
const DATA = /^(models|bench\/results|test\/fixtures)\//;

const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' })
  .split('\n')
  .filter((f) => f && SOURCE.test(f) && !DATA.test(f));
const long = [];
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    continue; // listed by git but deleted in the working tree
  }
  // Characters, not UTF-16 units or bytes: '·' and '→' count one each.
  text.split('\n').forEach((line, i) => {
    const n = [...line].length;
    if (n > MAX) long.push(`${file}:${i + 1} (${n})`);
  });
}
if (long.length) {
  console.error(`${long.length} source lines over ${MAX} characters:\n  ${long.join('\n  ')}`);
  process.exit(1);
}
console.log(`lint:lines: no source line over ${MAX} characters (${files.length} files)`);
