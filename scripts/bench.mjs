// npm run bench: medians of jobq's commands against `node -e 0`, the setsid/nohup floor and (where installed) nq and
// task-spooler, measured interleaved in one run so the machine's noise falls on every side alike. Prints one table.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeHistory, makeTemplates } from './history.mjs';
import { killTagged } from './tagged.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'jobq');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-bench-'));
const tag = `bench-${process.pid}`;
const node = process.execPath;
const envFor = (home) => ({ ...process.env, JOBQ_HOME: home, JOBQ_TEST_TAG: tag, NO_COLOR: '1' });
const emptyHome = path.join(tmp, 'empty');
const manyHome = path.join(tmp, 'many');
const hugeHome = path.join(tmp, 'huge');
const runHome = path.join(tmp, 'run');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 21);
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function timeOnce(argv, env) {
  const t = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { env, stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Anchors: install them if we may (root with apt), else skip cleanly.
if (process.getuid?.() === 0 && (!has('nq') || !has('tsp'))) {
  spawnSync(
    'sh',
    ['-c', 'apt-get install -y -qq nq task-spooler >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq nq task-spooler) >/dev/null 2>&1'],
    { stdio: 'ignore' },
  );
}
const hasNq = has('nq');
const hasTsp = has('tsp');

// Histories as users leave them: a few dozen real jobs (every end, command and log shape) copied under varied names,
// numbers, states and sizes, spread over six weeks (scripts/history.mjs): 2,000 and 20,000 finished jobs.
fs.mkdirSync(emptyHome, { mode: 0o700 });
execFileSync(bin, ['status'], { env: envFor(emptyHome), stdio: 'ignore' });
const templates = makeTemplates(path.join(tmp, 'templates'), envFor(path.join(tmp, 'templates')));
for (const [home, count] of [
  [manyHome, 2000],
  [hugeHome, 20000],
]) {
  execFileSync(bin, ['status'], { env: envFor(home), stdio: 'ignore' });
  makeHistory(home, templates, count);
  const listed = JSON.parse(execFileSync(bin, ['status', '--json'], { env: envFor(home), maxBuffer: 1 << 28 }).toString());
  if (listed.jobs.length + listed.hidden !== count) throw new Error(`${count}-job state dir did not list`);
}

// Start-up figures, interleaved round-robin, each with NODE_EXTRA_CA_CERTS unset and set (node loads that bundle at
// every start; bin/jobq starts the CLI without it): ratios are to `node -e 0` under the same setting, in this run.
const CA = process.env.NODE_EXTRA_CA_CERTS || ['/etc/ssl/certs/ca-certificates.crt'].find((f) => fs.existsSync(f));
const CA_SETTINGS = [['unset', (e) => Object.fromEntries(Object.entries(e).filter(([k]) => k !== 'NODE_EXTRA_CA_CERTS'))]];
if (CA) CA_SETTINGS.push(['set', (e) => ({ ...e, NODE_EXTRA_CA_CERTS: CA })]);
const STARTUP = [
  ['node -e 0', [node, '-e', '0'], emptyHome],
  ['jobq --version', [bin, '--version'], emptyHome],
  ['jobq status (no jobs)', [bin, 'status'], emptyHome],
  ['jobq status (2,000 jobs)', [bin, 'status'], manyHome],
  ['jobq status (20,000 jobs)', [bin, 'status'], hugeHome],
  ['jobq run NAME -q -- true', [bin, 'run', 'b', '-q', '--allow-duplicate', '--', 'true'], runHome],
  // The lever of docs/development.md, off: the supervisor starts after the CLI instead of beside it.
  ['jobq run NAME -q -- true (JOBQ_STANDBY=0)', [bin, 'run', 'b', '-q', '--allow-duplicate', '--', 'true'], runHome, { JOBQ_STANDBY: '0' }],
];
const cases = [];
for (const [ca, withCa] of CA_SETTINGS) for (const [k, argv, home, extra] of STARTUP) cases.push([`${k} | ${ca}`, argv, withCa({ ...envFor(home), ...extra })]);
cases.push(['setsid nohup sh -c true &', ['sh', '-c', 'setsid nohup sh -c true >/dev/null 2>&1 </dev/null &'], envFor(emptyHome)]);
if (hasNq) cases.push(['nq true', ['nq', '-q', 'true'], { ...envFor(emptyHome), NQDIR: path.join(tmp, 'nq1') }]);
if (hasTsp) cases.push(['tsp true', ['tsp', 'true'], { ...envFor(emptyHome), TS_SOCKET: path.join(tmp, 'ts1.sock'), TS_SAVELIST: '', TS_MAXFINISHED: '1000' }]);
fs.mkdirSync(path.join(tmp, 'nq1'));
const times = new Map(cases.map(([k]) => [k, []]));
for (let r = 0; r < ROUNDS; r++) for (const [k, argv, env] of cases) times.get(k).push(timeOnce(argv, env));
const med = new Map([...times].map(([k, v]) => [k, median(v)]));

// prune --older-than of the 20,000 (all ended over an hour ago): the whole command, once (it removes them).
const pruneT = process.hrtime.bigint();
const pruned = execFileSync(bin, ['prune', '--older-than', '30m'], { env: envFor(hugeHome), maxBuffer: 1 << 28 }).toString();
const pruneMs = Number(process.hrtime.bigint() - pruneT) / 1e6;
if (!pruned.includes('20000 jobs removed')) throw new Error(`prune of 20,000: ${pruned.trim().split('\n').at(-1)}`);

// What the card's packages that sit off the hot paths cost when they are loaded: pino (a supervisor loads it once its
// job runs; a CLI on its first event line), execa (only for Slurm). Import plus first use, against node -e 0.
const pinoLine = `require(${JSON.stringify(path.join(root, 'node_modules', 'pino'))})({}, { write() {} }).info('x')`;
const execaUse = `import(${JSON.stringify(path.join(root, 'node_modules', 'execa', 'index.js'))}).then((m) => m.execa('true'))`;
const unsetEnv = CA_SETTINGS[0][1](envFor(emptyHome));
const libCost = [];
for (const [label, code] of [
  ['pino: load + one line', pinoLine],
  ['execa: load + one run', execaUse],
]) {
  const xs = [];
  const base = [];
  for (let r = 0; r < ROUNDS; r++) {
    base.push(timeOnce([node, '-e', '0'], unsetEnv));
    xs.push(timeOnce([node, '-e', code], unsetEnv));
  }
  const rss = (c) =>
    Number(
      /VmHWM:\s+(\d+)/.exec(
        execFileSync(node, ['-e', `${c}; setTimeout(() => process.stdout.write(require('fs').readFileSync('/proc/self/status', 'utf8')), 50)`], {
          env: unsetEnv,
        }).toString(),
      )[1],
    ) / 1024;
  libCost.push([label, median(xs) - median(base), rss(code) - rss('0')]);
}

// 200 jobs submitted one after another, until all have finished.
function batch(label, submit, waitAll) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < 200; i++) submit(i);
  waitAll();
  return [label, Number(process.hrtime.bigint() - t) / 1e6];
}
const batchHome = path.join(tmp, 'batch');
const batches = [
  batch(
    '200 jobs: setsid nohup',
    () => spawnSync('sh', ['-c', 'setsid nohup sh -c "sleep 0.01" >/dev/null 2>&1 </dev/null &']),
    () => {
      while (spawnSync('pgrep', ['-f', '^sh -c sleep 0.01$']).status === 0) spawnSync('sleep', ['0.01']);
    },
  ),
  batch(
    '200 jobs: jobq',
    (i) => spawnSync(bin, ['run', `batch${i % 5}`, '-q', '--allow-duplicate', '--', 'sleep', '0.01'], { env: envFor(batchHome), stdio: 'ignore' }),
    () => {
      const ids = fs.readdirSync(path.join(batchHome, 'jobs'));
      spawnSync(bin, ['wait', ...ids], { env: envFor(batchHome), stdio: 'ignore' });
    },
  ),
];
// The same 200 through a 2-slot queue, submitted one run --queue at a time (what a make -j loop does).
const queueHome = path.join(tmp, 'queue');
fs.mkdirSync(queueHome, { mode: 0o700 });
execFileSync(bin, ['queue', 'set', 'bq', '--slots', '2'], { env: envFor(queueHome), stdio: 'ignore' });
batches.push(
  batch(
    '200 jobs: jobq --queue (2 slots)',
    (i) => spawnSync(bin, ['run', `q${i}`, '-q', '--queue', 'bq', '--', 'sleep', '0.01'], { env: envFor(queueHome), stdio: 'ignore' }),
    () => {
      const ids = fs.readdirSync(path.join(queueHome, 'jobs'));
      spawnSync(bin, ['wait', ...ids], { env: envFor(queueHome), stdio: 'ignore' });
    },
  ),
);
// And the drain alone: 200 `true` jobs already queued (queue paused while they are submitted), resumed at once.
const drainHome = path.join(tmp, 'drain');
fs.mkdirSync(drainHome, { mode: 0o700 });
for (const a of [
  ['queue', 'set', 'd', '--slots', '2'],
  ['queue', 'pause', 'd'],
])
  execFileSync(bin, [...a], { env: envFor(drainHome), stdio: 'ignore' });
const submitT = process.hrtime.bigint();
for (let i = 0; i < 200; i++) execFileSync(bin, ['run', `d${i}`, '-q', '--queue', 'd', '--', 'true'], { env: envFor(drainHome), stdio: 'ignore' });
const submitMs = Number(process.hrtime.bigint() - submitT) / 1e6;
const drainT = process.hrtime.bigint();
execFileSync(bin, ['queue', 'resume', 'd'], { env: envFor(drainHome), stdio: 'ignore' });
spawnSync(bin, ['wait', ...fs.readdirSync(path.join(drainHome, 'jobs'))], { env: envFor(drainHome), stdio: 'ignore' });
batches.push(['200 queued true: drain through 2 slots (target <= 10 s)', Number(process.hrtime.bigint() - drainT) / 1e6]);
batches.push(['200 separate run --queue: submission', submitMs]);
// One run --array of 200 elements (target < 2 s): records only, the queue held.
const arrayHome = path.join(tmp, 'array');
fs.mkdirSync(arrayHome, { mode: 0o700 });
execFileSync(bin, ['queue', 'pause', 'a'], { env: envFor(arrayHome), stdio: 'ignore' });
batches.push([
  'run --array 1-200: submission (target < 2 s)',
  timeOnce([bin, 'run', 'arr', '-q', '--array', '1-200', '--queue', 'a', '--', 'true'], envFor(arrayHome)),
]);
if (hasNq) {
  const nqEnv = { ...process.env, NQDIR: path.join(tmp, 'nq2') };
  fs.mkdirSync(nqEnv.NQDIR);
  batches.push(
    batch(
      '200 jobs: nq (runs them in series)',
      () => spawnSync('nq', ['-q', 'sleep', '0.01'], { env: nqEnv }),
      () => spawnSync('nq', ['-w'], { env: nqEnv }),
    ),
  );
}
if (hasTsp) {
  const tsEnv = { ...process.env, TS_SOCKET: path.join(tmp, 'ts2.sock'), TS_MAXFINISHED: '1000' };
  spawnSync('tsp', ['-S', '2'], { env: tsEnv });
  batches.push(
    batch(
      '200 jobs: task-spooler (2 slots)',
      () => spawnSync('tsp', ['sleep', '0.01'], { env: tsEnv }),
      () => spawnSync('tsp', ['-w'], { env: tsEnv }),
    ),
  );
  batches.push(
    batch(
      '200 true: task-spooler -S 2 (submit + drain)',
      () => spawnSync('tsp', ['true'], { env: tsEnv }),
      () => spawnSync('tsp', ['-w'], { env: tsEnv }),
    ),
  );
  spawnSync('tsp', ['-K'], { env: tsEnv });
}

// Issue 27's sweep of small tasks, side by side in this run: 1,000 `true`, 2 at a time, submitted and drained. jobq: one
// run --array (a supervisor runs the next element itself); task-spooler: 1,000 `tsp true` into its 2 slots.
const sweep = [];
{
  const home = path.join(tmp, 'sweep');
  fs.mkdirSync(home, { mode: 0o700 });
  const t = process.hrtime.bigint();
  execFileSync(bin, ['run', 'sw', '-q', '--array', '1-1000%2', '--', 'true'], { env: envFor(home), stdio: 'ignore' });
  spawnSync(bin, ['wait', 'sw'], { env: envFor(home), stdio: 'ignore' });
  sweep.push(['run --array 1-1000%2 -- true: submit + drain', Number(process.hrtime.bigint() - t) / 1e6]);
  if (hasTsp) {
    const tsEnv = { ...process.env, TS_SOCKET: path.join(tmp, 'ts3.sock'), TS_MAXFINISHED: '2000' };
    spawnSync('tsp', ['-S', '2'], { env: tsEnv });
    const t2 = process.hrtime.bigint();
    for (let i = 0; i < 1000; i++) spawnSync('tsp', ['true'], { env: tsEnv });
    spawnSync('tsp', ['-w'], { env: tsEnv });
    sweep.push(['1,000 true: task-spooler -S 2 (submit + drain)', Number(process.hrtime.bigint() - t2) / 1e6]);
    spawnSync('tsp', ['-K'], { env: tsEnv });
  }
}

// Supervisor memory with 10 jobs running (pino loaded in each): PSS summed over mappings other than the node
// binary's, and RSS.
const memHome = path.join(tmp, 'mem');
for (let i = 0; i < 10; i++) execFileSync(bin, ['run', `mem${i}`, '-q', '--', 'sleep', '120'], { env: envFor(memHome), stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 1500));
const exe = fs.realpathSync(node);
const sup = fs
  .readdirSync(path.join(memHome, 'jobs'))
  .map((id) => JSON.parse(fs.readFileSync(path.join(memHome, 'jobs', id, 'job.json'), 'utf8')).supervisor.pid);
const memOf = (pid) => {
  let pss = 0;
  let exePss = 0;
  let current = '';
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) current = head[1];
    const m = /^Pss:\s+(\d+) kB/.exec(line);
    if (m) {
      pss += Number(m[1]);
      if (current === exe) exePss += Number(m[1]);
    }
  }
  const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  return { pssNoExe: (pss - exePss) / 1024, rss: rss / 1024 };
};
const mems = sup.map(memOf);
const pssPerJob = mems.reduce((s, m) => s + m.pssNoExe, 0) / mems.length;
const rssMax = Math.max(...mems.map((m) => m.rss));
execFileSync(bin, ['cancel', '--all', '--grace', '1s'], { env: envFor(memHome), stdio: 'ignore' });

// tail -f latency: time from a write to the follower seeing it.
const tailHome = path.join(tmp, 'tail');
const trig = path.join(tmp, 'trigger');
fs.mkdirSync(trig);
execFileSync(
  node,
  [bin, 'run', 'tl', '-q', '--', 'sh', '-c', `for i in $(seq 1 12); do while [ ! -e ${trig}/$i ]; do sleep 0.005; done; echo "tick $i"; done`],
  { env: envFor(tailHome), stdio: 'ignore' },
);
const follower = spawn(bin, ['tail', '-f', 'tl'], { env: envFor(tailHome) });
let seen = '';
follower.stdout.on('data', (d) => (seen += d));
await new Promise((r) => setTimeout(r, 800));
const tailLat = [];
for (let i = 1; i <= 12; i++) {
  const t = performance.now();
  fs.writeFileSync(path.join(trig, String(i)), '');
  while (!seen.includes(`tick ${i}\n`)) await new Promise((r) => setTimeout(r, 1));
  tailLat.push(performance.now() - t);
}
await new Promise((r) => follower.on('exit', r));

// cancel of a job that exits on SIGTERM: wall time of `jobq cancel`.
const cancelHome = path.join(tmp, 'cancel');
const cancelT = [];
for (let i = 0; i < 9; i++) {
  execFileSync(bin, ['run', 'c', '-q', '--', 'sleep', '60'], { env: envFor(cancelHome), stdio: 'ignore' });
  cancelT.push(timeOnce([bin, 'cancel', 'c'], envFor(cancelHome)));
}

// Log cap in flight: a job floods 200 MB under a 10M cap; how far past the cap the log gets before the cut (the
// test only holds the end, and that it is cut while it runs: this is a matter of ms of CPU, so a figure here).
const capHome = path.join(tmp, 'cap');
const capOver = [];
for (let i = 0; i < 5; i++) {
  const id = execFileSync(bin, ['run', `cap${i}`, '-q', '--max-log-size', '10M', '--', 'sh', '-c', 'sleep 0.2; head -c 200M /dev/zero | tr "\\0" x'], {
    env: envFor(capHome),
    encoding: 'utf8',
  }).trim();
  const log = path.join(capHome, 'jobs', id, 'output.log');
  let max = 0;
  const rec = () => JSON.parse(fs.readFileSync(path.join(capHome, 'jobs', id, 'job.json'), 'utf8')).state.status;
  for (let n = 0; ['starting', 'running'].includes(rec()) && n < 20_000; n++) {
    try {
      max = Math.max(max, fs.statSync(log).size);
    } catch {}
    await new Promise((r) => setTimeout(r, 1));
  }
  capOver.push(Math.max(0, max - 10 * 2 ** 20) / 2 ** 20);
}

killTagged(tag);
fs.rmSync(tmp, { recursive: true, force: true });

const floor = med.get('setsid nohup sh -c true &');
const f = (x) => x.toFixed(1);
const at = (k, ca) => med.get(`${k} | ${ca}`);
const noJobs = (ca) => at('jobq status (no jobs)', ca);
const target = {
  'jobq --version': ['<= 1.2x node', (ca) => at('jobq --version', ca) / at('node -e 0', ca)],
  'jobq status (no jobs)': ['<= 1.5x node', (ca) => noJobs(ca) / at('node -e 0', ca)],
  'jobq status (2,000 jobs)': ['<= 1.3x status (no jobs)', (ca) => at('jobq status (2,000 jobs)', ca) / noJobs(ca)],
  'jobq status (20,000 jobs)': ['<= 1.3x status (no jobs)', (ca) => at('jobq status (20,000 jobs)', ca) / noJobs(ca)],
  'jobq run NAME -q -- true': ['<= 3x node', (ca) => at('jobq run NAME -q -- true', ca) / at('node -e 0', ca)],
};
const cas = CA_SETTINGS.map(([ca]) => ca);
const rows = [['figure', ...cas.flatMap((ca) => [`CA ${ca}: median`, 'x node']), 'target', ...cas.map((ca) => `CA ${ca}: vs target`)]];
for (const [k] of STARTUP) {
  const t = target[k];
  rows.push([
    k,
    ...cas.flatMap((ca) => [`${f(at(k, ca))} ms`, (at(k, ca) / at('node -e 0', ca)).toFixed(2)]),
    t ? t[0] : '',
    ...cas.map((ca) => (t ? `${t[1](ca).toFixed(2)}x` : '')),
  ]);
}
if (cas.includes('set')) {
  // Node pays for the variable at every start; jobq must not pay more than node does (it pays nothing).
  const extra = (k) => at(k, 'set') - at(k, 'unset');
  rows.push(['added by NODE_EXTRA_CA_CERTS: node -e 0', `${f(extra('node -e 0'))} ms`, '', '', '', '', '', '']);
  for (const k of STARTUP.slice(1).map(([k]) => k))
    rows.push([`added by NODE_EXTRA_CA_CERTS: ${k}`, `${f(extra(k))} ms`, '', '', '', `<= ${f(extra('node -e 0'))} ms`, '', '']);
}
const more = [['figure', 'value', 'x setsid floor', 'target']];
for (const k of ['setsid nohup sh -c true &', 'nq true', 'tsp true'])
  if (med.has(k)) more.push([k, `${f(med.get(k))} ms`, (med.get(k) / floor).toFixed(1), '']);
for (const [k, v] of batches) more.push([k, `${f(v / 1000)} s total`, (v / batches[0][1]).toFixed(1), '']);
for (const [k, v] of sweep) more.push([k, `${f(v / 1000)} s total`, '', '']);
if (sweep.length === 2) more.push(['1,000-element sweep: jobq / task-spooler', `${(sweep[0][1] / sweep[1][1]).toFixed(1)}x`, '', '<= 3x']);
const tspSubmit = batches.find(([k]) => k.startsWith('200 true: task-spooler'));
const jobqSubmit = batches.find(([k]) => k === '200 separate run --queue: submission');
if (tspSubmit && jobqSubmit)
  more.push(['200 run --queue submissions: jobq / task-spooler (submit + drain)', `${(jobqSubmit[1] / tspSubmit[1]).toFixed(1)}x`, '', '<= 3x']);
more.push(['prune --older-than of 20,000 finished jobs (whole command)', `${f(pruneMs / 1000)} s`, '', 'seconds']);
more.push(['supervisor PSS per job (10 running, node binary excluded)', `${f(pssPerJob)} MiB`, '', '<= 12 MiB']);
more.push(['supervisor RSS (max of 10)', `${f(rssMax)} MiB`, '', '']);
for (const [label, ms, mib] of libCost) more.push([`${label} (off the hot paths)`, `+${f(ms)} ms, +${f(mib)} MiB RSS`, '', '']);
more.push(['tail -f: write to shown', `${f(median(tailLat))} ms`, '', '<= 200 ms']);
more.push(['cancel of a TERM-obeying job (whole command)', `${f(median(cancelT))} ms`, '', '<= 200 ms']);
more.push(['log past a 10M cap in flight (200 MB flood; median, max of 5)', `${f(median(capOver))} MiB, ${f(Math.max(...capOver))} MiB`, '', 'ends <= cap']);
const print = (table) => {
  const w = table[0].map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  for (const r of table)
    console.log(
      r
        .map((c, i) => (c ?? '').padEnd(w[i]))
        .join('  ')
        .trimEnd(),
    );
};
console.log(
  `jobq bench: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, ${os.type()} ${os.release()}, ${ROUNDS} rounds${CA ? `, CA bundle ${CA}` : ', no CA bundle to test with'}${hasNq ? '' : ', nq not installed'}${hasTsp ? '' : ', task-spooler not installed'}`,
);
print(rows);
console.log('');
print(more);
