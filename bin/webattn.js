#!/usr/bin/env node
// The `webattn` CLI: runs src/cli.ts (its main(argv)) through the TypeScript launcher in run-ts.js.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTsAndExit } from './run-ts.js';

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.ts');
await runTsAndExit(cli, process.argv.slice(2), { name: 'webattn' });
