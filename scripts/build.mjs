// Builds dist/: an ESM bundle of the CLI (code-split so each command loads only what it needs) and the lean supervisor.

import { readFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: { cli: 'src/cli.ts', supervisor: 'src/supervisor/main.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunks/[name]-[hash]',
  // pino is required from node_modules on the first log line a process writes, so no start-up parses it.
  external: ['pino'],
  define: { JOBQ_VERSION: JSON.stringify(pkg.version) },
  // CJS dependencies (proper-lockfile) call require(): give the ESM bundle one.
  banner: { js: "import { createRequire as __jobqCreateRequire } from 'node:module'; const require = __jobqCreateRequire(import.meta.url);" },
  // Smaller code parses faster at every start; identifiers stay readable in stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});
