// Builds dist/: the CLI and the lean supervisor as CommonJS bundles (dist/lib/), loaders that run each with V8's code
// cache (dist/cli.js, dist/supervisor.js), and the caches themselves, made here by running jobq (docs/development.md).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
rmSync(dist, { recursive: true, force: true });

/** A build-time stand-in: `request`, when `importer` (a package dir) asks for it, resolves to `contents` instead. */
const standIn = (name, request, importer, contents) => ({
  name,
  setup(b) {
    b.onResolve({ filter: request }, (args) => (importer.test(args.importer) ? { path: args.path, namespace: name } : undefined));
    b.onLoad({ filter: /.*/, namespace: name }, () => ({ contents, loader: 'js' }));
  },
});
// commander requires node:child_process at load for a feature jobq does not use (executable subcommands): give it a
// stand-in that loads the real module on first use, so a command that spawns nothing never pays for it.
const lazyChildProcessForCommander = standIn(
  'lazy-child-process-for-commander',
  /^(node:)?child_process$/,
  /[\\/]node_modules[\\/]commander[\\/]/,
  "module.exports = new Proxy({}, { get: (_, k) => require('node:child_process')[k] });",
);
// chalk sniffs the terminal (supports-color: tty, env) when loaded; jobq always gives it a level (output/color.ts).
const noColorSniffingInChalk = standIn(
  'no-color-sniffing-in-chalk',
  /^#supports-color$/,
  /[\\/]chalk[\\/]/,
  'export default { stdout: false, stderr: false }; export function createSupportsColor() { return false; }',
);
// proper-lockfile loads graceful-fs, which patches node:fs (and loads its streams) to queue opens past EMFILE; jobq's
// locks are a few mkdir/stat/rmdir calls, so plain node:fs serves, without that cost at every lock's first use.
const plainFsForLockfile = standIn(
  'plain-fs-for-proper-lockfile',
  /^graceful-fs$/,
  /[\\/]node_modules[\\/]proper-lockfile[\\/]/,
  "module.exports = require('node:fs');",
);

// Loaded from node_modules only by the command that needs them: pino on a process's first log line, the MCP
// SDK and zod by `jobq mcp` (about 1 MB that no other command should read).
// execa (ES module only) the same way, through import(), when a command talks to Slurm.
const lazyPackages = ['pino', 'execa', '@modelcontextprotocol/sdk', '@modelcontextprotocol/sdk/*', 'zod'];

// Each command defines itself at the end of its own file, and src/program.ts imports every definition. Bundled as
// they are, those imports would run every command's module, and all it imports (the MCP SDK, node:http...), at each
// start. So program.ts gets each file's definition alone: the file built on its own, keeping `command` and only what
// it uses (imports of unused names dropped); the whole file still loads when the command runs, through its `load`.
const definitionsAlone = {
  name: 'command-definitions-alone',
  setup(b) {
    b.onResolve({ filter: /^\.\/commands\/[\w-]+\.js$/ }, (args) =>
      args.kind === 'import-statement' && /[\\/]src[\\/]program\.ts$/.test(args.importer)
        ? { path: path.join(args.resolveDir, args.path.replace(/\.js$/, '.ts')), namespace: 'command-definition' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'command-definition' }, async (args) => {
      const file = args.path;
      const alone = await build({
        stdin: { contents: `export { command } from ${JSON.stringify(file)};`, resolveDir: root, loader: 'ts' },
        bundle: true,
        write: false,
        metafile: true,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        logLevel: 'silent',
        plugins: [
          {
            name: 'only-this-file',
            setup(only) {
              // Everything the file imports stays an import, resolved by the main build; unused ones go.
              only.onResolve({ filter: /.*/ }, (a) => (a.importer === '<stdin>' ? undefined : { path: a.path, external: true, sideEffects: false }));
            },
          },
        ],
      });
      const kept = Object.values(alone.metafile.outputs).flatMap((o) => o.imports.map((i) => i.path));
      const heavy = kept.filter((p) => lazyPackages.some((l) => (l.endsWith('/*') ? p.startsWith(l.slice(0, -1)) : p === l || p.startsWith(`${l}/`))));
      if (heavy.length) throw new Error(`${path.relative(root, file)}: its command definition would load ${heavy.join(', ')} at every start`);
      return { contents: alone.outputFiles[0].text, loader: 'js', resolveDir: path.dirname(file) };
    });
  },
};

await build({
  entryPoints: { cli: 'src/cli.ts', supervisor: 'src/supervisor/main.ts' },
  absWorkingDir: root,
  outdir: 'dist/lib',
  bundle: true,
  // CommonJS loads synchronously and can use a code cache (Node 20 has none for ES modules): measured faster.
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: lazyPackages,
  define: { JOBQ_VERSION: JSON.stringify(pkg.version), 'import.meta.url': '__jobqUrl' },
  banner: { js: "const __jobqUrl = require('node:url').pathToFileURL(__filename).href;" },
  // Smaller code parses faster at every start; identifiers stay readable in stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  plugins: [definitionsAlone, lazyChildProcessForCommander, noColorSniffingInChalk, plainFsForLockfile],
  logLevel: 'warning',
});
// The dashboard's page script, for the browser: the server inlines it into the page (src/ui/page.ts).
await build({
  entryPoints: ['src/ui/client.ts'],
  absWorkingDir: root,
  outfile: 'dist/ui-client.js',
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'chrome100',
  minify: true,
  logLevel: 'warning',
});
// The package is ESM ("type": "module"); dist/ holds CommonJS.
writeFileSync(path.join(dist, 'package.json'), '{ "type": "commonjs" }\n');
for (const entry of ['cli.js', 'supervisor.js']) writeFileSync(path.join(dist, entry), readFileSync(path.join(root, 'scripts', 'boot.cjs'), 'utf8'));
// bin/jobq answers --version from this file without starting node.
writeFileSync(path.join(dist, 'VERSION'), `${pkg.version}\n`);

// The code caches: what V8 compiled while jobq ran a real job (the supervisor's, under its own V8 flags) and then
// `status` (the CLI's: the last CLI process to exit writes it), so later starts skip that compile. Made here, into
// dist/ (as trusted as the code); jobq itself never writes them. One that does not fit the running node is ignored.
const home = mkdtempSync(path.join(os.tmpdir(), 'jobq-build-'));
try {
  const env = { ...process.env, JOBQ_HOME: path.join(home, 'state'), XDG_CONFIG_HOME: home, JOBQ_WRITE_CODE_CACHE: 'cli.js,supervisor.js' };
  delete env.NODE_OPTIONS;
  const jobq = (...args) => execFileSync(process.execPath, [path.join(dist, 'cli.js'), ...args], { env, stdio: 'ignore', cwd: home, timeout: 60_000 });
  // Through bin/jobq, as users run it: the supervisor's cache then covers the standby's path (bin/jobq-run).
  execFileSync(path.join(root, 'bin', 'jobq'), ['run', 'warm', '-q', '--isolation', 'none', '--', 'true'], {
    env,
    stdio: 'ignore',
    cwd: home,
    timeout: 60_000,
  });
  jobq('wait', 'warm');
  jobq('status');
  // The supervisor writes its cache as it exits, a moment after the record says the job ended.
  const until = Date.now() + 10_000;
  while (!existsSync(path.join(dist, 'lib', 'supervisor.js.cache')) && Date.now() < until) execFileSync('sleep', ['0.05']);
} catch (e) {
  console.warn(`build: no code cache (${e.message.split('\n')[0]}); jobq works, starting a little slower`);
} finally {
  rmSync(home, { recursive: true, force: true });
}
