import { existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

// The GPU suite runs once per software adapter present, each in its own project with
// WEBATTN_VK_ICD set (the Vulkan driver is chosen per process): SwiftShader exercises the
// packed-f16 path, lavapipe the shader-f16 path. With neither installed it runs once on whatever
// createContext() finds (a real GPU), and fails loudly if there is none.
const adapters = [
  ['lavapipe', '/usr/share/vulkan/icd.d/lvp_icd.json'],
  ['swiftshader', '/usr/lib/chromium/vk_swiftshader_icd.json'],
].filter(([, icd]) => existsSync(icd));

const gpuProjects = (adapters.length ? adapters : [['default', '']]).map(([name, icd]) => ({
  extends: true as const,
  test: {
    name: `gpu-${name}`,
    include: ['test/gpu/**/*.test.ts'],
    env: icd ? { WEBATTN_VK_ICD: icd } : {},
  },
}));

// Tests that start a process, a browser or `npm pack`, and need an adapter (the CLI runs kernels): not
// in `unit`, so `npm run test:unit` (vitest project unit) stays GPU-free and takes seconds.
const endToEnd = [
  'test/browser/**/*.test.ts',
  'test/package/pack.test.ts',
  'test/cli/cli.test.ts',
  'test/cli/engineCli.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: ['test/gpu/**', ...endToEnd] } },
      ...gpuProjects,
      { extends: true, test: { name: 'e2e', include: endToEnd } },
    ],
  },
});
