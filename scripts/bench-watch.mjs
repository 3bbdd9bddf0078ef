// npm run bench (third part): what a supervisor's extra watching costs on a calm machine. Ten `sleep` jobs each
// side, sampled every 500 ms (four times the default): plain; with the pressure guard on (JOBQ_PRESSURE_GUARD=1);
// and holding GPU memory (--gpu-mem 4G on a fake 80G GPU, so each sample asks nvidia-smi for per-process VRAM).
// Their supervisors' CPU over 20 s (their nvidia-smi children included), and the guard's actions (none expected).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { killTagged } from './tagged.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'jobq');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-bench-watch-'));
const tag = `bench-watch-${process.pid}`;
const JOBS = 10;
const WINDOW_MS = 20_000;

/** A fake nvidia-smi: one 80G GPU, and each listed job's main process holding 3 GiB (the pids in a file). */
function fakeSmi() {
  const dir = path.join(tmp, 'smi');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'apps.csv'), '');
  fs.writeFileSync(path.join(dir, 'nvidia-smi'), `#!/bin/sh\ncase "$*" in *compute-apps*) cat ${dir}/apps.csv;; *) echo "0, GPU-bench, 0, 81920";; esac\n`, {
    mode: 0o755,
  });
  return dir;
}

function side(name, { guard = false, gpu = false } = {}) {
  const home = path.join(tmp, name);
  const cfg = path.join(tmp, `${name}-cfg`);
  fs.mkdirSync(path.join(cfg, 'jobq'), { recursive: true });
  fs.writeFileSync(path.join(cfg, 'jobq', 'config.json'), JSON.stringify({ sampleInterval: '500ms' }));
  const env = { ...process.env, JOBQ_HOME: home, XDG_CONFIG_HOME: cfg, JOBQ_TEST_TAG: tag, JOBQ_PRESSURE_GUARD: guard ? '1' : '0' };
  delete env.NODE_EXTRA_CA_CERTS;
  const smi = gpu ? fakeSmi() : undefined;
  if (smi) env.PATH = `${smi}:${env.PATH}`;
  const extra = gpu ? ['--gpu-mem', '4G'] : [];
  const ids = [];
  for (let i = 0; i < JOBS; i++) ids.push(execFileSync(bin, ['run', `calm${i}`, '-q', ...extra, '--', 'sleep', '60'], { env, encoding: 'utf8' }).trim());
  if (smi) {
    const pid = (id) => JSON.parse(fs.readFileSync(path.join(home, 'jobs', id, 'job.json'), 'utf8')).job?.pid;
    fs.writeFileSync(path.join(smi, 'apps.csv'), ids.map((id) => `${pid(id)}, GPU-bench, 3072\n`).join(''));
  }
  return { name, home, env };
}

/** utime + stime (clock ticks) of each supervisor of a state dir, by pid from the records. */
function ticks(home) {
  let sum = 0;
  for (const id of fs.readdirSync(path.join(home, 'jobs'))) {
    const rec = JSON.parse(fs.readFileSync(path.join(home, 'jobs', id, 'job.json'), 'utf8'));
    try {
      const f = fs.readFileSync(`/proc/${rec.supervisor.pid}/stat`, 'latin1').split(') ')[1].split(' ');
      // utime, stime, and the waited-for children's (nvidia-smi).
      sum += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      /* gone */
    }
  }
  return sum;
}

try {
  const sides = [side('plain'), side('guard', { guard: true }), side('vram', { gpu: true })];
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
  const vram = JSON.parse(execFileSync(bin, ['status', 'calm0', '--json'], { env: sides[2].env, encoding: 'utf8' })).vramBytes;
  const row = (label, xs) => console.log(`${label.padEnd(41)}${xs.map((x) => String(x).padEnd(15)).join('')}`);
  console.log(`\njobq bench: a supervisor's watching on a calm machine (${JOBS} jobs each side, sampled every 500 ms, ${WINDOW_MS / 1000} s; ${psi})`);
  row('figure', ['plain', 'pressure guard', 'VRAM sampled']);
  row('supervisor CPU, ticks over the window', used);
  row('per supervisor, % of a core', used.map(pct));
  row('guard actions (events)', actions);
  console.log(`(VRAM side: a fake nvidia-smi, so its cost is a fork+exec per sample; calm0 shows vramBytes ${vram})`);
  for (const s of sides) execFileSync(bin, ['cancel', '--all'], { env: s.env, stdio: 'ignore' });
} finally {
  killTagged(tag);
  fs.rmSync(tmp, { recursive: true, force: true });
}
