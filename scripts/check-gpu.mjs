/**
 * `npm test` runs this first (the `pretest` script): it fails within seconds, naming the command that
 * fixes it, when the machine lacks what the suite needs:
 *   - a WebGPU adapter in Node (Dawn, the `webgpu` package) through every software Vulkan driver that
 *     vitest.config.ts will make a project for (lavapipe, SwiftShader), or through the system's own
 *     driver when neither is installed (a machine with a GPU);
 *   - Chromium for the browser tests (WEBATTN_CHROMIUM, else /usr/bin/chromium).
 *
 *   node scripts/check-gpu.mjs               check all of it (exit 1 with what is missing)
 *   node scripts/check-gpu.mjs --probe ICD   exit 0 if Dawn finds an adapter through that Vulkan ICD json
 *                                            ('' = the system loader); used by scripts/setup-gpu.sh
 * Each probe runs in its own process: the Vulkan driver is chosen once per process.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

// The same two paths as vitest.config.ts and src/gpu/node.ts.
const SOFTWARE_ICDS = [
  ['lavapipe', '/usr/share/vulkan/icd.d/lvp_icd.json'],
  ['SwiftShader', '/usr/lib/chromium/vk_swiftshader_icd.json'],
];
const CHROMIUM = process.env.WEBATTN_CHROMIUM ?? '/usr/bin/chromium';
const FIX = 'npm run setup:gpu';
const PROBE_TIMEOUT_MS = 60_000; // Dawn on a busy 2-core machine takes a few seconds to start

/** In this process: does Dawn hand out an adapter? Prints its description; exits. */
async function probe(icd) {
  if (icd) process.env.VK_ICD_FILENAMES = icd;
  process.env.XDG_RUNTIME_DIR ??= tmpdir(); // quiets a loader warning on headless machines
  try {
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    const gpu = create([]);
    globalThis.keepDawnAlive = gpu; // collected while in use, Dawn tears down underneath
    const adapter = await gpu.requestAdapter();
    if (!adapter) throw new Error('no adapter');
    const { vendor, architecture, description } = adapter.info;
    console.log([vendor, architecture, description].filter(Boolean).join(' '));
    process.exit(0);
  } catch (e) {
    console.log(e instanceof Error ? e.message : String(e));
    process.exit(1);
  }
}

/** Runs `probe(icd)` in a child process: { ok, text }. */
function probeInChild(icd) {
  return new Promise((resolve) => {
    const self = fileURLToPath(import.meta.url);
    execFile(process.execPath, [self, '--probe', icd], { timeout: PROBE_TIMEOUT_MS }, (err, stdout) => {
      resolve({ ok: !err, text: stdout.trim() || (err?.killed ? 'timed out' : String(err?.message ?? '')) });
    });
  });
}

async function checkAll() {
  const problems = [];
  if (!existsSync(new URL('../node_modules/webgpu/package.json', import.meta.url))) {
    problems.push('the `webgpu` package (Dawn) is not installed: run `npm ci` first');
  } else {
    const present = SOFTWARE_ICDS.filter(([, icd]) => existsSync(icd));
    const targets = present.length ? present : [['the system Vulkan/Metal/D3D driver', '']];
    const results = await Promise.all(targets.map(([, icd]) => probeInChild(icd)));
    targets.forEach(([name, icd], i) => {
      const { ok, text } = results[i];
      if (ok) console.log(`check-gpu: ${name}: ${text}`);
      else problems.push(`no WebGPU adapter through ${name}${icd ? ` (${icd})` : ''}: ${text}`);
    });
  }
  if (!existsSync(CHROMIUM)) problems.push(`${CHROMIUM} is missing (the browser tests; WEBATTN_CHROMIUM overrides)`);
  if (problems.length) {
    console.error(`npm test needs a WebGPU adapter and Chromium:\n  - ${problems.join('\n  - ')}`);
    console.error(`Run \`${FIX}\` (installs SwiftShader and lavapipe where no adapter is found), then \`npm test\`.`);
    process.exit(1);
  }
}

const i = process.argv.indexOf('--probe');
if (i >= 0) await probe(process.argv[i + 1] ?? '');
else await checkAll();
