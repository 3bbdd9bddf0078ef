// npm run bench (third part): what the memory pressure guard costs on a calm machine. Ten `sleep` jobs with the
// guard off and ten with it on (JOBQ_PRESSURE_GUARD=1), sampled every 500 ms so the guard ticks four times as
// often as by default; their supervisors' CPU over 20 s, side by side, and the guard's actions (none expected).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { killTagged } from './tagged.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'jobq');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-bench-guard-'));
const tag = `bench-guard-${process.pid}`;
const JOBS = 10;
const WINDOW_MS = 20_000;

function side(name, guard) {
  const home = path.join(tmp, name);
  const cfg = path.join(tmp, `${name}-cfg`);
  fs.mkdirSync(path.join(cfg, 'jobq'), { recursive: true });
  fs.writeFileSync(path.join(cfg, 'jobq', 'config.json'), JSON.stringify({ sampleInterval: '500ms' }));
  const env = { ...process.env, JOBQ_HOME: home, XDG_CONFIG_HOME: cfg, JOBQ_TEST_TAG: tag, JOBQ_PRESSURE_GUARD: guard ? '1' : '0' };
  delete env.NODE_EXTRA_CA_CERTS;
  for (let i = 0; i < JOBS; i++) execFileSync(bin, ['run', `calm${i}`, '-q', '--', 'sleep', '60'], { env, stdio: 'ignore' });
  return { name, home, env };
}

/** utime + stime (clock ticks) of each supervisor of a state dir, by pid from the records. */
function ticks(home) {
  let sum = 0;
  for (const id of fs.readdirSync(path.join(home, 'jobs'))) {
    const rec = JSON.parse(fs.readFileSync(path.join(home, 'jobs', id, 'job.json'), 'utf8'));
    try {
      const f = fs.readFileSync(`/proc/${rec.supervisor.pid}/stat`, 'latin1').split(') ')[1].split(' ');
      sum += Number(f[11]) + Number(f[12]);
    } catch {
      /* gone */
    }
  }
  return sum;
}

try {
  const sides = [side('off', false), side('on', true)];
  await new Promise((r) => setTimeout(r, 2000));
  const before = sides.map((s) => ticks(s.home));
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const used = sides.map((s, i) => ticks(s.home) - before[i]);
  const actions = sides.map((s) => {
    const log = path.join(s.home, 'events.log');
    return fs.existsSync(log)
      ? fs
          .readFileSync(log, 'utf8')
          .split('\n')
          .filter((l) => l.includes('"msg":"pressure')).length
      : 0;
  });
  const hz = 100;
  const pct = (t) => ((t / hz / (WINDOW_MS / 1000) / JOBS) * 100).toFixed(3);
  const psi = fs.existsSync('/proc/pressure/memory') ? fs.readFileSync('/proc/pressure/memory', 'utf8').split('\n')[0] : 'no PSI';
  console.log(`\njobq bench: the pressure guard on a calm machine (${JOBS} jobs each side, sampled every 500 ms, ${WINDOW_MS / 1000} s; ${psi})`);
  console.log('figure                                   guard off      guard on');
  console.log(`supervisor CPU, ticks over the window   ${String(used[0]).padEnd(14)} ${used[1]}`);
  console.log(`per supervisor, % of a core             ${pct(used[0]).padEnd(14)} ${pct(used[1])}`);
  console.log(`guard actions (events)                  ${String(actions[0]).padEnd(14)} ${actions[1]}`);
  for (const s of sides) execFileSync(bin, ['cancel', '--all'], { env: s.env, stdio: 'ignore' });
} finally {
  killTagged(tag);
  fs.rmSync(tmp, { recursive: true, force: true });
}
