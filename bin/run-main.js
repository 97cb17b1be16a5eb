// Runs a built ES module's `main(argv): Promise<number>` and exits with its code: what run-ts.js
// does for TypeScript sources, for the package's dist/cli.js (no Vite needed). Errors print one
// line (the stack with WEBATTN_DEBUG=1) and exit 1. The process always ends with process.exit():
// a live WebGPU device (Dawn) keeps Node's event loop alive.
import module from 'node:module';

module.enableCompileCache?.();

export async function runMainAndExit(load, argv, { name } = {}) {
  let code = 1;
  try {
    const mod = await load();
    if (typeof mod.main !== 'function') throw new Error('the CLI module does not export main(argv)');
    const r = await mod.main(argv);
    code = typeof r === 'number' && Number.isInteger(r) ? r : 0;
  } catch (err) {
    if (process.env.WEBATTN_DEBUG) console.error(err);
    else console.error(`${name ? `${name}: ` : ''}${err instanceof Error ? err.message : String(err)}`);
  }
  exitAfterDrain(code);
}

/** process.exit(code) once stdout and stderr have drained (at most 1 s later). */
export function exitAfterDrain(code) {
  process.exitCode = code;
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
  setTimeout(() => process.exit(code), 1000).unref();
}
