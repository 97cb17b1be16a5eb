/**
 * Node-only: get a WebGPU `GPU` object from Dawn (the `webgpu` package), finding a software Vulkan
 * driver by itself when the machine has no GPU.
 *
 * Driver choice, first match wins:
 *   1. `WEBATTN_VK_ICD` (a Vulkan ICD json, or several joined by ':') overrides everything;
 *   2. `VK_ICD_FILENAMES` already set by the user is respected;
 *   3. a machine with a GPU device node (/dev/dri/renderD*, /dev/nvidia0) keeps the system loader;
 *   4. otherwise lavapipe (Mesa 25), else the SwiftShader json Debian's chromium ships.
 *
 * The object `create()` returns is kept in a module-level variable for the life of the process:
 * if it is garbage-collected while a device lives, Dawn tears down underneath and the process dies
 * at random (segfaults, futex aborts). Reproduced here with both software drivers.
 */
import { NoWebGpuError } from './errors';

export const LAVAPIPE_ICD = '/usr/share/vulkan/icd.d/lvp_icd.json';
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

// Never cleared (see above). Kept on globalThis, not in a module variable alone, so that a test
// runner re-evaluating this module in the same process reuses it instead of dropping it.
const KEY = Symbol.for('webattn.dawnGpu');
const holder = globalThis as { [KEY]?: GPU };

export async function nodeGpu(): Promise<GPU> {
  if (holder[KEY]) return holder[KEY];
  const fs = await import('node:fs');
  const env = process.env;
  if (env.WEBATTN_VK_ICD) {
    env.VK_ICD_FILENAMES = env.WEBATTN_VK_ICD;
  } else if (!env.VK_ICD_FILENAMES) {
    const hasGpuNode =
      fs.existsSync('/dev/nvidia0') ||
      (fs.existsSync('/dev/dri') && fs.readdirSync('/dev/dri').some((f) => f.startsWith('renderD')));
    if (!hasGpuNode) {
      const icd = [LAVAPIPE_ICD, SWIFTSHADER_ICD].find((p) => fs.existsSync(p));
      if (icd) env.VK_ICD_FILENAMES = icd;
    }
  }
  // Quiets a loader warning about a missing runtime dir on headless machines.
  if (!env.XDG_RUNTIME_DIR) env.XDG_RUNTIME_DIR = (await import('node:os')).tmpdir();
  let mod: { create: (flags: string[]) => GPU; globals: object };
  try {
    const name = 'webgpu'; // a variable, so bundlers for the browser never try to resolve it
    mod = (await import(/* @vite-ignore */ name)) as typeof mod;
  } catch {
    throw new NoWebGpuError('webattn in Node needs the `webgpu` package (Dawn): npm install webgpu');
  }
  // WebGPU enums and classes (GPUBufferUsage, GPUMapMode, ...) as globals, as in a browser.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  holder[KEY] = mod.create([]);
  return holder[KEY];
}
