// A history as users make one, for the bench: a few dozen real `jobq run` jobs (each state, command and log shape),
// then varied copies of them under proper ids, numbers and dirs, spread over weeks. `node scripts/history.mjs HOME N`.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'jobq');

/** Seeded PRNG (mulberry32): the same history for the same seed, run after run. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// What users run: each a command that ends its own way (exit code, signal, cancel, timeout) with its own output.
const TEMPLATES = [
  ['train-resnet50', [], 'for i in $(seq 1 200); do echo "epoch $i/200 loss 0.$i acc 0.9$i lr 3e-4"; done'],
  ['train-bert', ['--memsafe'], 'i=0; while [ $i -lt 300 ]; do printf "step %d/300 loss 1.%03d\\r" $i $i; i=$((i+1)); done; echo; echo saved'],
  ['eval', ['--env', 'SPLIT=val'], 'echo "split $SPLIT"; for i in $(seq 1 40); do echo "batch $i top1 0.7$i"; done'],
  ['preprocess', [], 'for f in $(seq 1 500); do echo "shard-$f.parquet: 10000 rows"; done'],
  ['render', [], 'echo frame 1; echo "Error: out of texture memory" >&2; exit 1'],
  ['etl-daily', [], 'echo loading; exit 2'],
  ['notebook-export', [], 'kill -9 $$'],
  ['download', ['--timeout', '1s'], 'echo fetching; sleep 20'],
  ['serve-dev', [], 'echo listening on :8000; sleep 60'],
  ['ft-llama', ['--idle-timeout', '1s'], 'echo loading weights; sleep 20'],
  ['lint', [], 'true'],
  ['backup', [], 'echo "rsync: 1832 files"; seq 1 2000'],
  ['bench-io', [], 'dd if=/dev/zero of=/dev/null bs=1M count=50 2>&1'],
  ['sweep', ['--array', '1-6'], 'echo "lr={}"; [ {} -ne 4 ] || exit 3; seq 1 {}00'],
  ['qjob', ['--queue', 'hist'], 'echo "queued work"; seq 1 50'],
];
const CANCELLED = new Set(['serve-dev']);

/** Runs the templates for real in `home` and returns their job dirs, each read once (record, log, side files). */
export function makeTemplates(home, env) {
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  const ids = [];
  for (const [name, opts, script] of TEMPLATES) {
    const out = execFileSync(bin, ['run', name, '-q', ...opts, '--', 'sh', '-c', script], { env, encoding: 'utf8' });
    ids.push(...out.trim().split('\n'));
  }
  execFileSync(bin, ['cancel', ...ids.filter((id) => CANCELLED.has(id.replace(/_\d{8}_\d{6}(-\d+)?$/, ''))), '--grace', '1s'], { env, stdio: 'ignore' });
  spawnSync(bin, ['wait', ...ids], { env, stdio: 'ignore' });
  return ids.map((id) => {
    const dir = path.join(home, 'jobs', id);
    const files = Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))]));
    return { id, files, rec: JSON.parse(files['job.json'].toString()) };
  });
}

// Users' names: a few they run all the time, many they ran a handful of times (variants, dates, experiment tags).
const VARIANTS = ['', '-v2', '-lr3e-4', '-bs64', '_ablation', '-seed1', '-seed2', '.fix', '-final', '-dbg', '-r3', '-large', '-small', '_tmp'];
function nameFor(base, r) {
  if (r() < 0.45) return base;
  const v = VARIANTS[Math.floor(r() * VARIANTS.length)];
  return r() < 0.3 ? `${base}${v}-${Math.floor(r() * 90) + 10}` : `${base}${v}`;
}

const pad = (v, w = 2) => String(v).padStart(w, '0');
const stamp = (d) => `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}_${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}`;

/** A log of about `size` bytes in the template's own lines. */
function logOf(tpl, size) {
  const src = tpl.files['output.log'] ?? Buffer.alloc(0);
  if (!src.length || size <= 0) return Buffer.alloc(0);
  const n = Math.ceil(size / src.length);
  return Buffer.concat(Array.from({ length: n }, () => src)).subarray(0, size);
}

/** One copy of a template as job `id`, number `seq`, made at `at` and ending after `durMs`; returns its record. */
function writeCopy(home, tpl, id, name, seq, at, durMs, logSize, array) {
  const dir = path.join(home, 'jobs', id);
  fs.mkdirSync(dir, { mode: 0o700 });
  const rec = JSON.parse(
    JSON.stringify(tpl.rec)
      .split(tpl.id)
      .join(id)
      .split(path.dirname(path.dirname(path.dirname(tpl.rec.log))))
      .join(home),
  );
  rec.name = name;
  rec.seq = seq;
  rec.createdAt = new Date(at).toISOString();
  if (rec.env?.added?.JOBQ_JOB_NAME) rec.env.added.JOBQ_JOB_NAME = name;
  if (array) rec.admission = { ...rec.admission, array };
  else if (rec.admission?.array) delete rec.admission.array;
  const s = rec.state;
  if ('startedAt' in s) s.startedAt = new Date(at + 40).toISOString();
  for (const k of ['endedAt', 'at', 'detectedAt']) if (typeof s[k] === 'string') s[k] = new Date(at + 40 + durMs).toISOString();
  if ('durationMs' in s) s.durationMs = durMs;
  for (const [f, data] of Object.entries(tpl.files)) {
    if (f === 'job.json' || f === 'lock') continue;
    fs.writeFileSync(path.join(dir, f), f === 'output.log' ? logOf(tpl, logSize) : data, { mode: 0o600 });
  }
  fs.writeFileSync(path.join(dir, 'job.json'), JSON.stringify(rec, null, 2) + '\n', { mode: 0o600 });
  fs.writeFileSync(path.join(home, 'seq', String(seq)), id + '\n', { mode: 0o600 });
  return rec;
}

/**
 * Fills `home` (made by a `jobq status`, so its layout is jobq's own) with `count` finished jobs copied from the
 * templates: varied names, states, sizes and numbers, ids one per second or more, spread over `weeks` up to an hour ago.
 */
export function makeHistory(home, templates, count, { seed = 1, weeks = 6, now = Date.now() } = {}) {
  const r = rng(seed);
  fs.mkdirSync(path.join(home, 'seq'), { recursive: true, mode: 0o700 });
  const bases = templates.filter((t) => !t.rec.admission?.array);
  const sweeps = templates.filter((t) => t.rec.admission?.array);
  const names = Array.from({ length: 60 }, (_, i) => ({ tpl: bases[i % bases.length], name: nameFor(bases[i % bases.length].rec.name, r) }));
  const span = weeks * 7 * 86_400_000;
  const start = now - 3_600_000 - span;
  const gap = span / count;
  let at = start;
  const used = new Set();
  const events = [];
  let seq = 1;
  while (seq <= count) {
    // Some arrays (a sweep: elements made in one second), mostly single runs; a few names run far more often.
    const sweep = r() < 0.04 && sweeps.length;
    const size = sweep ? Math.min(count - seq + 1, 3 + Math.floor(r() * 20)) : 1;
    const pick = names[Math.floor(r() ** 2 * names.length)];
    const base = sweep ? `sweep-${Math.floor(r() * 50)}` : pick.name;
    const run = Math.floor(r() * 2 ** 40).toString(36);
    for (let k = 1; k <= size; k++) {
      const tpl = sweep ? sweeps[Math.floor(r() * sweeps.length)] : pick.tpl;
      const name = sweep ? `${base}.${k}` : base;
      let id = `${name}_${stamp(new Date(at))}`;
      for (let n = 2; used.has(id); n++) id = `${name}_${stamp(new Date(at))}-${n}`;
      used.add(id);
      // Seconds to hours, and ended: the newest are made an hour ago at most and end by then.
      const durMs = Math.min(Math.round(Math.exp(r() * 14) * 20), Math.max(0, now - 3_600_000 - at - 40));
      const logSize = Math.round(Math.exp(r() * 12)) - 1;
      const array = sweep ? { name: base, index: k, value: String(k), size, run } : undefined;
      const rec = writeCopy(home, tpl, id, name, seq++, at, durMs, logSize, array);
      events.push(JSON.stringify({ t: rec.createdAt, level: 'info', msg: rec.state.status, id, from: 'running' }));
    }
    // Evenly spread on average, unevenly in detail: bursts of runs minutes apart, then quiet hours.
    at = Math.max(at + 1000, Math.min(now - 3_600_000, start + gap * (seq - 1) + (r() < 0.5 ? r() * gap : r() * 20 * gap)));
  }
  fs.writeFileSync(path.join(home, 'seq', 'next'), `${seq}\n`, { mode: 0o600 });
  fs.appendFileSync(path.join(home, 'events.log'), events.join('\n') + '\n', { mode: 0o600 });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [home, count = '2000'] = process.argv.slice(2);
  if (!home) throw new Error('usage: node scripts/history.mjs HOME [COUNT]');
  const env = { ...process.env, JOBQ_HOME: `${home}-templates`, NO_COLOR: '1' };
  const t = Date.now();
  const tpls = makeTemplates(env.JOBQ_HOME, env);
  execFileSync(bin, ['status'], { env: { ...env, JOBQ_HOME: home }, stdio: 'ignore' });
  makeHistory(home, tpls, Number(count));
  console.log(`${count} jobs from ${tpls.length} templates in ${home} (${Date.now() - t} ms)`);
}
