// The guest suite: run by `bash scripts/systemd-vm.sh test` inside a Debian 12 VM (systemd PID 1, cgroup v2), as the
// user alice from a plain ssh login. Outside that guest its files skip, saying why.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The repository root, wherever vitest is started from.
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/guest/**/*.test.ts'],
    pool: 'forks',
    // The guest has two slow TCG vCPUs: one file at a time.
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
