import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: two files at a time keeps real-process tests from starving each other.
    maxWorkers: 2,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    projects: [
      // test/guest runs only inside the systemd VM (scripts/systemd-vm.sh test), under its own config.
      { extends: true, test: { name: 'main', include: ['test/**/*.test.ts'], exclude: ['test/e2e/alone/**', 'test/guest/**'], sequence: { groupOrder: 0 } } },
      // Timing-sensitive checks run after the rest has finished, one file at a time.
      { extends: true, test: { name: 'alone', include: ['test/e2e/alone/**/*.test.ts'], sequence: { groupOrder: 1 }, fileParallelism: false } },
    ],
  },
});
