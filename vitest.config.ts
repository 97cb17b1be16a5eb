import { defineConfig } from 'vitest/config';

// GPU tests share one Dawn instance per worker process; keep workers few (2 cores, software GPU).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    fileParallelism: true,
  },
});
