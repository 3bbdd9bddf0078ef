// npm run stress: 200 concurrent mixed jobs under a status loop, then the fault suite; prints one line of figures.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { killTagged } from './tagged.mjs';

const exec = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'jobq');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-stress-'));
const tag = `stress-${process.pid}`;
const env = { ...process.env, JOBQ_HOME: home, JOBQ_TEST_TAG: tag, NO_COLOR: '1' };
const jobq = (args) =>
  exec(bin, args, { env, maxBuffer: 1 << 28 }).then(
    (r) => ({ code: 0, ...r }),
    (e) => ({ code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  );

const N = 200;
const kinds = [
  { argv: ['true'], want: 'succeeded' },
  { argv: ['sleep', '0.5'], want: 'succeeded' },
  { argv: ['sh', '-c', 'exit 3'], want: 'failed' },
  { argv: ['sh', '-c', 'kill -TERM $$'], want: 'killed' },
];

const t0 = Date.now();
let stop = false;
let statusCalls = 0;
let statusBad = 0;
const loop = (async () => {
  while (!stop) {
    const r = await jobq(['status', '--all', '--json']);
    statusCalls++;
    try {
      const j = JSON.parse(r.stdout);
      if (r.code !== 0 || j.broken.length || j.jobs.some((x) => !x.id || !x.state?.status)) statusBad++;
    } catch {
      statusBad++;
    }
  }
})();
const runs = await Promise.all(Array.from({ length: N }, (_, i) => jobq(['run', `stress${i % 9}`, '-q', '--allow-duplicate', '--', ...kinds[i % 4].argv])));
const submitMs = Date.now() - t0;
const ids = runs.map((r) => r.stdout.trim());
await jobq(['wait', ...ids.filter(Boolean), '--timeout', '120s']);
stop = true;
await loop;
const totalMs = Date.now() - t0;

let recorded = 0;
let corrupt = 0;
let lost = 0;
let wrong = 0;
ids.forEach((id, i) => {
  if (!id) return;
  let rec;
  try {
    rec = JSON.parse(fs.readFileSync(path.join(home, 'jobs', id, 'job.json'), 'utf8'));
  } catch {
    corrupt++;
    return;
  }
  recorded++;
  if (rec.state.status === 'lost') lost++;
  else if (rec.state.status !== kinds[i % 4].want) wrong++;
});
const distinct = new Set(ids.filter(Boolean)).size;

// Faults: the fault tests of the suite (records-and-recovery's `faults`, security's `never signals pid 0…`), each with
// real processes, counted from vitest's JSON report.
const report = path.join(home, 'faults.json');
spawnSync(
  process.execPath,
  [
    path.join(root, 'node_modules', 'vitest', 'vitest.mjs'),
    'run',
    'test/e2e/records-and-recovery.test.ts',
    'test/e2e/security.test.ts',
    '-t',
    'faults|never signals',
    '--reporter=json',
    `--outputFile=${report}`,
  ],
  { cwd: root, stdio: 'ignore' },
);
let faultsPassed = 0;
let faultsTotal = 0;
try {
  const j = JSON.parse(fs.readFileSync(report, 'utf8'));
  for (const f of j.testResults)
    for (const a of f.assertionResults)
      if (a.status !== 'skipped' && a.status !== 'pending') {
        faultsTotal++;
        if (a.status === 'passed') faultsPassed++;
      }
} catch {
  /* report missing: counts stay 0 */
}

killTagged(tag);
fs.rmSync(home, { recursive: true, force: true });

console.log(
  `jobs ${recorded}/${N} recorded, ${distinct} distinct ids, ${corrupt} corrupt, ${lost} lost, ${wrong} wrong state; ` +
    `status --json ${statusCalls} calls, ${statusBad} bad; submit ${(submitMs / 1000).toFixed(1)}s, all done ${(totalMs / 1000).toFixed(1)}s; ` +
    `faults ${faultsPassed}/${faultsTotal} survived`,
);
process.exitCode = recorded === N && distinct === N && !corrupt && !lost && !wrong && !statusBad && faultsPassed === faultsTotal && faultsTotal > 0 ? 0 : 1;
