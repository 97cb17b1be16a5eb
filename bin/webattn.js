#!/usr/bin/env node
// The `webattn` CLI. In an installed package it runs the built dist/cli.js (plain JavaScript: no
// Vite, no TypeScript at run time). In the repository, where dist/ may be missing or stale, it runs
// src/cli/main.ts through the TypeScript launcher in run-ts.js (Vite's module runner), so `npm run bench`
// and the tests need no build. WEBATTN_CLI=dist or =src forces one.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const built = path.join(root, 'dist', 'cli.js');
const source = path.join(root, 'src', 'cli', 'main.ts');
const argv = process.argv.slice(2);

const mode = process.env.WEBATTN_CLI ?? (existsSync(source) ? 'src' : 'dist');
if (mode === 'dist') {
  const { runMainAndExit } = await import('./run-main.js');
  await runMainAndExit(() => import(pathToFileURL(built).href), argv, { name: 'webattn' });
} else {
  const { runTsAndExit } = await import('./run-ts.js');
  await runTsAndExit(source, argv, { name: 'webattn' });
}
