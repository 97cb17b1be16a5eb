#!/usr/bin/env node
// Runs a TypeScript entry file in Node with no build step:
//
//   node bin/run-ts.js path/to/entry.ts [args...]
//
// The entry is loaded through Vite's module runner (the machinery behind SSR and `runnerImport`),
// so TypeScript, extensionless relative imports and `import x from '../shaders/x.wgsl?raw'` work
// exactly as they do in vitest and in the browser build. Packages (`webgpu`, `vite`, ...) are left
// to Node's own loader. The entry exports `main(argv: string[]): Promise<number>`; the process
// exits with that number. An uncaught error prints its message (the stack only with
// WEBATTN_DEBUG=1) and exits 1.
//
// The process always ends with process.exit(): a live WebGPU device (Dawn) keeps Node's event loop
// alive, so returning from main is not enough.
//
// One environment, no HTTP server, no file watcher, no dependency optimiser: start-up costs one
// `resolveConfig` plus transforming the modules the entry actually imports.
import { realpathSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { exitAfterDrain } from './run-main.js';

// Node >= 22.1 can cache compiled code (vite's own chunks are most of the start-up); harmless elsewhere.
module.enableCompileCache?.();

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Loads `entryFile` (a path, relative to the cwd or absolute), calls its `main(argv)` and returns
 * the exit code. Errors are printed (prefixed with `name: ` when given) and give 1.
 * Never exits the process itself: see runTsAndExit.
 */
export async function runTs(entryFile, argv, { name } = {}) {
  const prefix = name ? `${name}: ` : '';
  let environment;
  try {
    const [{ createRunnableDevEnvironment, createServerModuleRunnerTransport, resolveConfig }, runnerLib] =
      await Promise.all([import('vite'), import('vite/module-runner')]);
    const config = await resolveConfig(
      {
        configFile: false,
        envFile: false,
        root: repoRoot,
        logLevel: 'error',
        clearScreen: false,
        environments: {
          node: {
            consumer: 'server',
            dev: { moduleRunnerTransform: true },
            // bare imports (npm packages, node: builtins) go to Node's own loader
            resolve: { external: true, conditions: ['node'], mainFields: [] },
          },
        },
      },
      'serve',
    );
    environment = createRunnableDevEnvironment('node', config, {
      hot: false,
      runner: (env) => createRunner(env, runnerLib, createServerModuleRunnerTransport),
    });
    await environment.init();

    const abs = path.resolve(entryFile);
    // Vite addresses files inside the root by their root-relative URL and the rest through /@fs/.
    const rel = path.relative(repoRoot, abs);
    const outside = rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel);
    const id = outside ? `/@fs${abs}` : `/${rel.split(path.sep).join('/')}`;
    const mod = await environment.runner.import(id);
    if (typeof mod.main !== 'function') {
      throw new Error(`${entryFile} does not export main(argv: string[]): Promise<number>`);
    }
    const code = await mod.main(argv);
    return typeof code === 'number' && Number.isInteger(code) ? code : 0;
  } catch (err) {
    printError(prefix, err);
    return 1;
  } finally {
    if (environment) {
      // closing must not decide whether we exit: give it a moment, then go anyway
      await Promise.race([environment.close().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
    }
  }
}

/**
 * The module runner Vite's createServerModuleRunner would make, except for import.meta: Vite's Node
 * version registers a module-resolution hook up front (on Node < 22.15 that starts a loader worker
 * thread, ~100 ms) so that import.meta.resolve works. Ours registers it only if some module calls
 * import.meta.resolve.
 */
function createRunner(
  env,
  { ModuleRunner, ESModulesEvaluator, createDefaultImportMeta, createNodeImportMeta },
  transport,
) {
  return new ModuleRunner(
    {
      rolldownRuntime: env.config.isBundled,
      transport: transport({ channel: env.hot }),
      hmr: false,
      sourcemapInterceptor: 'setSourceMapsEnabled' in process ? 'node' : 'prepareStackTrace',
      createImportMeta(modulePath) {
        const meta = createDefaultImportMeta(modulePath);
        let nodeMeta;
        return {
          ...meta,
          main: false,
          resolve(id, parent) {
            nodeMeta ??= createNodeImportMeta(modulePath);
            return nodeMeta.resolve(id, parent);
          },
        };
      },
    },
    new ESModulesEvaluator(),
  );
}

function printError(prefix, err) {
  if (process.env.WEBATTN_DEBUG) {
    console.error(err);
    return;
  }
  console.error(prefix + errorLine(err));
}

/** The message only; a Vite/oxc transform error becomes "file:line:col: first line of the message". */
function errorLine(err) {
  if (!(err instanceof Error)) return String(err);
  const inner = Array.isArray(err.errors) && err.errors[0] instanceof Error ? err.errors[0] : err;
  const loc = inner.loc ?? err.loc;
  const id = inner.id ?? err.id;
  if (typeof id === 'string' && loc && typeof loc.line === 'number') {
    const first = inner.message.split('\n').find((l) => l.trim() !== '') ?? inner.message;
    return `${path.relative(process.cwd(), id)}:${loc.line}:${(loc.column ?? 0) + 1}: ${first.trim()}`;
  }
  return err.message;
}

/** runTs, then process.exit with its code once stdout and stderr have drained. */
export async function runTsAndExit(entryFile, argv, opts) {
  exitAfterDrain(await runTs(entryFile, argv, opts));
}

function isMainModule() {
  if (!process.argv[1]) return false;
  try {
    return pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isMainModule()) {
  const [entry, ...args] = process.argv.slice(2);
  if (!entry || entry === '--help' || entry === '-h') {
    console.error(
      'usage: node bin/run-ts.js path/to/entry.ts [args...]  (the entry exports main(argv): Promise<number>)',
    );
    process.exit(entry ? 0 : 2);
  }
  await runTsAndExit(entry, args);
}
