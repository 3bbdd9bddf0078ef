// The monitor's parts on real logs and real jobs: when a log is cut, what restarts the idle clock, when a timeout
// ends a job (and when a pause or a cancel holds it back), and the whole monitor ending jobs as they ask.

import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Protection } from '../../src/domain/job.js';
import { readStat } from '../../src/process/proc.js';
import type { JobTarget } from '../../src/process/signals.js';
import {
  capIfOver,
  capTrigger,
  checkIdle,
  type MonitorInput,
  monitor,
  newWatch,
  noteLog,
  sampleEvery,
  stopWatching,
  type Watch,
} from '../../src/supervisor/monitor.js';
import { alive, pollUntil } from '../helpers/jobq.js';

let dir: string;
let log: string;
let diag: string;
let logFd: number;
const jobs: ChildProcess[] = [];
const watches: Watch[] = [];
const fds: number[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-monitor-'));
  log = path.join(dir, 'output.log');
  diag = path.join(dir, 'supervisor.log');
  fs.writeFileSync(log, '');
  // As the supervisor holds it: O_RDWR, not O_APPEND, so a cut can rewrite the file in place.
  logFd = fs.openSync(log, 'r+');
  fds.push(logFd);
});

afterEach(() => {
  for (const w of watches.splice(0)) stopWatching(w);
  for (const c of jobs.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  for (const fd of fds.splice(0)) fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A job as the supervisor starts one: its own session and group, its output appended to the log. */
async function startJob(script: string): Promise<{ child: ChildProcess; target: JobTarget }> {
  const out = fs.openSync(log, 'a');
  fds.push(out);
  const child = spawn('sh', ['-c', script], { detached: true, stdio: ['ignore', out, out] });
  jobs.push(child);
  await new Promise((r) => child.once('spawn', r));
  const pid = child.pid!;
  return { child, target: { job: { pid, pgid: pid, startTicks: readStat(pid)!.startTicks } } };
}

/** The child's end as node saw it, polled up to a deadline. */
const ended = (c: ChildProcess, ms = 10_000) =>
  pollUntil(() => (c.exitCode !== null || c.signalCode !== null) && { code: c.exitCode, signal: c.signalCode }, ms, `job ${c.pid} to end`);

// No process behind it: every signal to it is refused (pid 0), so the parts that only read the log can run without one.
const NO_JOB: JobTarget = { job: { pid: 0, pgid: 0, startTicks: 0 } };

function input(over: Partial<Omit<MonitorInput, 'prot'>> & { prot?: Partial<Protection> } = {}): MonitorInput {
  const { prot, ...rest } = over;
  return {
    id: 'unit_1',
    child: undefined as unknown as ChildProcess,
    target: NO_JOB,
    logFd,
    diag,
    prot: { isolationMode: 'none', isolation: 'none', graceMs: 1000, stopSignal: 'SIGTERM', warnings: [], ...prot },
    ...rest,
  };
}

function watch(m: MonitorInput): Watch {
  const w = newWatch(m);
  watches.push(w);
  return w;
}

const diagLines = (): Array<{ msg: string; [k: string]: unknown }> =>
  fs.existsSync(diag)
    ? fs
        .readFileSync(diag, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
    : [];

describe('monitor parts', () => {
  it.each([
    [undefined, 0],
    [0, 0],
    [4, 3],
    [64 * 1024, 48 * 1024],
    [100 * 1024 ** 2, 99 * 1024 ** 2],
  ])('a %s byte cap starts its cut past %s bytes', (max, trigger) => {
    expect(capTrigger(max)).toBe(trigger);
  });

  it.each<[{ sampleMs?: number; idleTimeoutMs?: number }, number]>([
    [{}, 1000],
    [{ sampleMs: 200 }, 200],
    [{ idleTimeoutMs: 300 }, 100],
    [{ idleTimeoutMs: 2000 }, 400],
    [{ idleTimeoutMs: 60_000 }, 1000],
    [{ idleTimeoutMs: 2000, sampleMs: 250 }, 250],
  ])('the sampler for %o ticks every %s ms', ({ sampleMs, idleTimeoutMs }, every) => {
    expect(sampleEvery(input({ sampleMs, prot: { idleTimeoutMs } }))).toBe(every);
  });

  it('capIfOver leaves a log under the trigger alone; past it (under the cap itself) one cut at a time, noted', async () => {
    const w = watch(input({ maxLogBytes: 64 * 1024 }));
    const line = `${'x'.repeat(99)}\n`;
    fs.writeFileSync(log, line.repeat(400)); // 40 000 bytes: under the 49 152-byte trigger
    capIfOver(w);
    expect(w.capping).toBeUndefined();
    expect(fs.statSync(log).size).toBe(40_000);

    fs.appendFileSync(log, line.repeat(200)); // 60 000 bytes: past the trigger, not yet at the cap
    capIfOver(w);
    const cut = w.capping;
    expect(cut).toBeDefined();
    await cut;
    expect(w.capping).toBeUndefined();

    // While a cut is in flight, a log past the trigger again waits for it: never two cuts at once.
    fs.appendFileSync(log, line.repeat(400));
    const inFlight = Promise.resolve();
    w.capping = inFlight;
    const size = fs.statSync(log).size;
    capIfOver(w);
    expect(w.capping).toBe(inFlight);
    expect(fs.statSync(log).size).toBe(size);
    w.capping = undefined;
    capIfOver(w);
    await w.capping;
    expect(w.capping).toBeUndefined();
    const text = fs.readFileSync(log, 'utf8');
    expect(text).toMatch(/^\[jobq\] \d+ bytes of older output dropped at .* \(log cap 65536 bytes\)\n/);
    expect(text.length).toBeLessThanOrEqual(32 * 1024 + 200);
    expect(diagLines().find((l) => l.msg === 'log capped')).toMatchObject({ id: 'unit_1', frozen: false });

    // No cap: never cut, however big.
    const uncapped = watch(input());
    fs.appendFileSync(log, line.repeat(2000));
    capIfOver(uncapped);
    expect(uncapped.capping).toBeUndefined();
  });

  it('noteLog restarts the idle clock when the log grows, and only then', () => {
    const w = watch(input());
    noteLog(w);
    w.lastChange = 1;
    noteLog(w);
    expect(w.lastChange).toBe(1);
    const before = Date.now();
    fs.appendFileSync(log, 'progress\n');
    noteLog(w);
    expect(w.lastChange).toBeGreaterThanOrEqual(before);
  });

  it.each([
    { case: 'quiet past --idle-timeout: ended', quietMs: 5000, ends: true },
    { case: 'quiet for exactly --idle-timeout: ended', quietMs: 1000, ends: true },
    { case: 'output within --idle-timeout: left', quietMs: 200, ends: false },
    { case: 'no --idle-timeout: left', idleTimeoutMs: 0, quietMs: 60_000, ends: false },
    { case: 'paused: left, its clock restarted', paused: true, quietMs: 5000, ends: false },
    { case: 'a cancel under way: left to the cancel, retried', cancelled: true, quietMs: 5000, ends: false },
  ])('checkIdle, $case', async ({ quietMs, ends, idleTimeoutMs = 1000, paused = false, cancelled = false }) => {
    const { child, target } = await startJob('sleep 30');
    const w = watch(input({ child, target, prot: { idleTimeoutMs }, paused: () => paused, cancelled: () => cancelled }));
    const before = Date.now();
    w.lastChange = before - quietMs;
    checkIdle(w);
    if (!ends) {
      expect(w.ending).toBeUndefined();
      expect(w.timedOut).toBeUndefined();
      expect(alive(child.pid!)).toBe(true);
      if (paused) expect(w.lastChange).toBeGreaterThanOrEqual(before);
      expect(w.retry !== undefined).toBe(cancelled);
      return;
    }
    expect(w.timedOut).toBe('idle');
    await w.ending;
    expect(await ended(child)).toEqual({ code: null, signal: 'SIGTERM' });
    expect(diagLines().find((l) => l.msg === 'timeout')).toMatchObject({ reason: 'no output for 1s' });
    expect(diagLines().some((l) => l.msg === 'timeout ended the job')).toBe(true);
  });

  it('checkIdle: a timeout held back by a cancel fires after all once that cancel is gone', async () => {
    const { child, target } = await startJob('sleep 30');
    let cancelling = true;
    const w = watch(input({ child, target, prot: { idleTimeoutMs: 1000 }, cancelled: () => cancelling }));
    w.lastChange = Date.now() - 5000;
    checkIdle(w);
    expect(w.ending).toBeUndefined();
    cancelling = false;
    await pollUntil(() => w.ending !== undefined, 5000, 'the retried timeout');
    expect(w.timedOut).toBe('idle');
    await w.ending;
    expect(await ended(child)).toEqual({ code: null, signal: 'SIGTERM' });
  });
});

describe('monitor', () => {
  it('--timeout: TERM at the timeout, after the warning signal to the leader; memory sampled meanwhile', async () => {
    const { child, target } = await startJob(`trap 'echo warned' USR1; echo started; while :; do sleep 0.05; done`);
    await pollUntil(() => fs.readFileSync(log, 'utf8').includes('started'), 5000, 'the trap set');
    const t0 = Date.now();
    const e = await monitor(input({ child, target, sampleMs: 100, prot: { timeoutMs: 1500, graceMs: 2000, warnSignal: { signal: 'SIGUSR1', leadMs: 1000 } } }));
    expect(e).toMatchObject({ code: null, signal: 'SIGTERM', timedOut: 'wall' });
    expect(e.seenAt - t0).toBeGreaterThanOrEqual(1400);
    expect(e.peakBytes).toBeGreaterThan(0);
    expect(fs.readFileSync(log, 'utf8')).toContain('warned');
    const msgs = diagLines().map((l) => l.msg);
    expect(msgs.indexOf('warning signal')).toBeGreaterThanOrEqual(0);
    expect(msgs.indexOf('warning signal')).toBeLessThan(msgs.indexOf('timeout'));
    expect(diagLines().find((l) => l.msg === 'timeout')).toMatchObject({ reason: 'wall-clock timeout 1s500ms' });
  });

  it('--idle-timeout ends a silent job; a job that ends on its own is no timeout', async () => {
    const silent = await startJob('echo start; sleep 30');
    const e = await monitor(input({ ...silent, prot: { idleTimeoutMs: 400 } }));
    expect(e).toMatchObject({ code: null, signal: 'SIGTERM', timedOut: 'idle' });

    const done = await startJob('echo hi; exit 3');
    const d = await monitor(input({ ...done, prot: { idleTimeoutMs: 60_000, timeoutMs: 60_000 } }));
    expect(d).toMatchObject({ code: 3, signal: null });
    expect(d.timedOut).toBeUndefined();
  });

  it('a job writing past --max-log-size is cut within moments while it runs (the job sees it) and ends under the cap', async () => {
    // 100 lines of 2000 bytes, one each ~10 ms: the sampler alone (each second) would let the log reach ~130 KB.
    const seen = path.join(dir, 'max-seen');
    const job = await startJob(
      `line=$(head -c 1999 /dev/zero | tr '\\0' x); max=0; for i in $(seq 1 100); do echo "$line"; s=$(stat -c %s ${log}); ` +
        `[ "$s" -gt "$max" ] && max=$s; sleep 0.01; done; echo "$max" > ${seen}`,
    );
    const e = await monitor(input({ ...job, maxLogBytes: 64 * 1024 }));
    expect(e).toMatchObject({ code: 0, signal: null });
    expect(Number(fs.readFileSync(seen, 'utf8'))).toBeLessThanOrEqual(64 * 1024);
    const text = fs.readFileSync(log, 'utf8');
    expect(text.startsWith('[jobq] ')).toBe(true);
    expect(text.length).toBeLessThan(64 * 1024);
    expect(diagLines().filter((l) => l.msg === 'log capped').length).toBeGreaterThanOrEqual(2);
  });
});
