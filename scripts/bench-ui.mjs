// npm run bench (second part): the dashboard under load. 1,000 queued jobs, 200 live pages connected to
// /api/events, then the time /api/jobs takes to answer (median and worst of 20, one after another), the server's CPU
// over 10 s of that, and the time a changed job takes to reach all 200 pages. Figures, not a timed test.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { killTagged } from './tagged.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'jobq');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-bench-ui-'));
const tag = `bench-ui-${process.pid}`;
const home = path.join(tmp, 'state');
const env = { ...process.env, JOBQ_HOME: home, JOBQ_TEST_TAG: tag, NO_COLOR: '1' };
delete env.NODE_EXTRA_CA_CERTS;
const jobq = (...args) => execFileSync(bin, args, { env, stdio: ['ignore', 'pipe', 'inherit'] }).toString();
const VIEWERS = 200;
const QUEUED = 1000;

// 1,000 waiting jobs: one real queued job (its queue paused) copied under 1,000 ids, each marked active and waiting.
jobq('queue', 'set', 'idle', '--slots', '1');
jobq('queue', 'pause', 'idle');
const seedId = jobq('run', 'seed', '-q', '--queue', 'idle', '--', 'true').trim();
const seedRec = fs.readFileSync(path.join(home, 'jobs', seedId, 'job.json'), 'utf8');
const p = (n) => String(n).padStart(2, '0');
const base = Date.now() - 3_600_000;
for (let i = 0; i < QUEUED; i++) {
  const d = new Date(base + i * 1000);
  const id = `wait${i % 50}_${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}_${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
  const dir = path.join(home, 'jobs', id);
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.writeFileSync(
    path.join(dir, 'job.json'),
    seedRec
      .split(seedId)
      .join(id)
      .replace(/"name":"seed"/, `"name":"wait${i % 50}"`),
    { mode: 0o600 },
  );
  fs.writeFileSync(path.join(dir, 'output.log'), '', { mode: 0o600 });
  fs.writeFileSync(path.join(home, 'active', id), '');
  fs.writeFileSync(path.join(home, 'waiting', id), '');
}

const server = spawn(process.execPath, [path.join(root, 'dist', 'cli.js'), 'ui', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
server.stdout.on('data', (d) => (out += d));
const until = Date.now() + 20_000;
while (!/dashboard: (\S+)/.test(out)) {
  if (Date.now() > until) throw new Error('the dashboard did not start');
  await new Promise((r) => setTimeout(r, 20));
}
const url = new URL(/dashboard: (\S+)/.exec(out)[1]);
const token = url.searchParams.get('token');

/** A live page's event stream: resolves once it has the first jobs event; `has(text)` says whether the latest holds it. */
function viewer() {
  return new Promise((resolve, reject) => {
    let buf = '';
    let last = '';
    const req = http.get({ host: '127.0.0.1', port: url.port, path: '/api/events', headers: { 'x-jobq-token': token }, agent: false }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d) => {
        const frames = (buf + d).split('\n\n');
        buf = frames.pop();
        for (const f of frames) if (f.startsWith('event: jobs\n')) last = f;
        if (last) resolve({ has: (t) => last.includes(t), close: () => req.destroy() });
      });
      res.on('error', () => undefined);
    });
    req.on('error', reject);
  });
}

function get(pathAndQuery) {
  const t = process.hrtime.bigint();
  return new Promise((resolve, reject) =>
    http
      .get({ host: '127.0.0.1', port: url.port, path: pathAndQuery, agent: false }, (res) => {
        let n = 0;
        res.on('data', (d) => (n += d.length));
        res.on('end', () => resolve({ ms: Number(process.hrtime.bigint() - t) / 1e6, bytes: n, code: res.statusCode }));
      })
      .on('error', reject),
  );
}

const ticks = () => {
  const f = fs.readFileSync(`/proc/${server.pid}/stat`, 'latin1').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  const cold = await get(`/api/jobs?token=${token}`);
  const viewers = await Promise.all(Array.from({ length: VIEWERS }, viewer));
  const times = [];
  let bytes = 0;
  for (let i = 0; i < 20; i++) {
    const r = await get(`/api/jobs?token=${token}`);
    if (r.code !== 200) throw new Error(`/api/jobs answered ${r.code}`);
    times.push(r.ms);
    bytes = r.bytes;
  }
  // Just after a change: the answer waits for a snapshot newer than it (one computation, shared).
  const changed = [];
  for (let i = 0; i < 5; i++) {
    jobq('queue', 'set', 'idle', '--slots', String(1 + (i % 2)));
    changed.push((await get(`/api/jobs?token=${token}`)).ms);
  }
  const t0 = ticks();
  const w0 = Date.now();
  await new Promise((r) => setTimeout(r, 10_000));
  const cpu = ((ticks() - t0) / 100 / ((Date.now() - w0) / 1000)) * 100;
  // A change reaches every page: a new job, until all 200 list it.
  const s = process.hrtime.bigint();
  const fresh = jobq('run', 'fresh', '-q', '--', 'sleep', '30').trim();
  while (!viewers.every((v) => v.has(`"id":"${fresh}"`))) await new Promise((r) => setTimeout(r, 10));
  const reach = Number(process.hrtime.bigint() - s) / 1e6;
  for (const v of viewers) v.close();
  const page = await get(`/?token=${token}`);
  console.log(`\njobq bench: the dashboard, ${QUEUED} queued jobs, ${VIEWERS} live pages (${os.cpus().length} cores, node ${process.version})`);
  const rows = [
    ['figure', 'value', 'target'],
    ['/api/jobs, first answer (no snapshot yet)', `${cold.ms.toFixed(0)} ms`, ''],
    [`/api/jobs with ${VIEWERS} pages live: median, worst of 20`, `${median(times).toFixed(0)} ms, ${Math.max(...times).toFixed(0)} ms`, '< 1000 ms'],
    ['/api/jobs just after a change (a new snapshot): median of 5', `${median(changed).toFixed(0)} ms`, '< 1000 ms'],
    ['/api/jobs answer size', `${(bytes / 1024).toFixed(0)} KiB`, ''],
    [`server CPU with ${VIEWERS} pages live, nothing changing`, `${cpu.toFixed(1)} % of a core`, ''],
    [`a new job reaches all ${VIEWERS} pages (run included)`, `${reach.toFixed(0)} ms`, ''],
    ['the page (HTML, CSS and script)', `${(page.bytes / 1024).toFixed(1)} KiB in ${page.ms.toFixed(0)} ms`, ''],
  ];
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows)
    console.log(
      r
        .map((c, i) => c.padEnd(w[i]))
        .join('  ')
        .trimEnd(),
    );
} finally {
  server.kill('SIGINT');
  await new Promise((r) => server.once('exit', r));
  jobq('cancel', 'fresh');
  killTagged(tag);
  fs.rmSync(tmp, { recursive: true, force: true });
}
