import { defineConfig } from 'vitest/config';

// One config, one project per kind of test, so `--project unit` runs with nothing else up.
export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    projects: [
      // Property tests run long operation sequences against their models: seconds, not ms.
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 60_000 } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          testTimeout: 120_000,
          // The first run installs Debian chromium (apt) besides starting Cassandra and the gateway.
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
