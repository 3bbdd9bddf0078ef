// The one place jobq signals, tried on real process groups: what it may act on, what it finds, how it ends a job.
import { type ChildProcess, spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobRecord } from '../../src/domain/job.js';
import { bootId, readStat } from '../../src/process/proc.js';
import { holdJob, type JobTarget, jobProcesses, jobTarget, releaseJob, safeKill, signalLeader, terminateJob } from '../../src/process/signals.js';
import { pollUntil } from '../helpers/jobq.js';
import { makeRecord } from '../helpers/records.js';

const groups: number[] = [];

afterEach(() => {
  for (const g of groups.splice(0)) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/** A job as jobq starts one: its own session and group (pid = pgid = sid), running `script`; its target once its children are up. */
async function group(script: string, children: number): Promise<{ t: JobTarget; leader: ChildProcess }> {
  const leader = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  const pid = leader.pid!;
  groups.push(pid);
  const stat = (await pollUntil(() => readStat(pid), 5000, 'the leader'))!;
  const t: JobTarget = { job: { pid, startTicks: stat.startTicks, pgid: pid } };
  await pollUntil(() => jobProcesses(t).procs.length >= children + 1, 5000, `${children} children`);
  return { t, leader };
}

const alive = (pid: number) => {
  const s = readStat(pid);
  return !!s && s.state !== 'Z';
};

describe('safeKill', () => {
  it('refuses 0, 1, -1 and anything not a whole number: never the whole session or init', () => {
    for (const target of [0, 1, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) expect(safeKill(target, 0), String(target)).toBe(false);
    expect(safeKill(process.pid, 0)).toBe(true);
  });
});

describe('jobTarget: a record is data, not authority', () => {
  const rec = (patch: Partial<JobRecord>) =>
    makeRecord({
      state: { status: 'running', startedAt: '2026-12-05T10:00:00.000Z' },
      boot: bootId(),
      job: { pid: 4242, startTicks: 9, pgid: 4242 },
      ...patch,
    });

  it('acts on a plausible job of this boot, and on none of another boot, pid or group <= 1, or no start time', () => {
    expect(jobTarget(rec({}))?.job.pid).toBe(4242);
    expect(jobTarget(rec({ boot: '00000000-0000-0000-0000-000000000000' }))).toBeUndefined();
    for (const job of [
      { pid: 1, startTicks: 9, pgid: 4242 },
      { pid: 4242, startTicks: 9, pgid: 1 },
      { pid: 4242, startTicks: 9, pgid: 0 },
      { pid: 4242, startTicks: 0, pgid: 4242 },
      { pid: -5, startTicks: 9, pgid: 4242 },
    ])
      expect(jobTarget(rec({ job })), JSON.stringify(job)).toBeUndefined();
  });

  it("keeps only cgroups jobq makes for this very job: a planted path (another job's, the root) is dropped", () => {
    const r = rec({});
    r.protection = { ...r.protection, cgroups: ['/sys/fs/cgroup', '/sys/fs/cgroup/memory/jobq/other_20261205_100000', '/tmp/x'] };
    expect(jobTarget(r)?.cgroups).toEqual([]);
  });
});

describe('jobProcesses: what provably belongs to the job', () => {
  it('the group while its leader is the recorded process; nothing of it once the pid names another start time', async () => {
    const { t } = await group('sleep 100 & sleep 100 & wait', 2);
    expect(jobProcesses(t).procs.map((p) => p.pid)).toContain(t.job.pid);
    expect(jobProcesses(t)).toMatchObject({ groupOk: true });
    // The same pid with another start time: a reused pid, not the job.
    const reused = { job: { ...t.job, startTicks: t.job.startTicks - 1 } };
    expect(jobProcesses(reused)).toEqual({ procs: [], groupOk: false });
  });

  it('a child that left the group (setsid) is still the job, as a descendant; once known, even re-parented', async () => {
    const { t } = await group('setsid sleep 100 & sleep 100 & wait', 2);
    const away = jobProcesses(t).procs.find((p) => p.pgid !== t.job.pgid);
    expect(away).toBeDefined();
    groups.push(away!.pid);
    const known = { ...t, known: new Map<number, number>() };
    jobProcesses(known);
    expect(known.known.get(away!.pid)).toBe(away!.startTicks);
  });
});

describe('terminateJob: signal, grace, KILL', () => {
  it('a job that handles TERM ends in its grace, unescalated', async () => {
    const { t } = await group("trap 'exit 0' TERM; sleep 100 & wait", 1);
    const r = await terminateJob(t, { signal: 'SIGTERM', graceMs: 5000 });
    expect(r).toMatchObject({ escalated: false, remaining: 0 });
    expect(r.signalled).toBeGreaterThanOrEqual(1);
    expect(alive(t.job.pid)).toBe(false);
  });

  it('a job that ignores TERM, with a grandchild that ignores it too and one that left the group: all KILLed after the grace', async () => {
    const { t } = await group("trap '' TERM; sh -c \"trap '' TERM; sleep 100\" & setsid sh -c \"trap '' TERM; sleep 100\" & wait", 4);
    const before = jobProcesses(t).procs.map((p) => p.pid);
    for (const p of jobProcesses(t).procs) if (p.pgid !== t.job.pgid) groups.push(p.pgid);
    let told = -1;
    const r = await terminateJob(t, { signal: 'SIGTERM', graceMs: 300, onEscalate: (left) => (told = left) });
    expect(r).toMatchObject({ escalated: true, remaining: 0 });
    expect(told).toBeGreaterThan(0);
    expect(r.elapsedMs).toBeGreaterThanOrEqual(300);
    await pollUntil(() => before.every((pid) => !alive(pid)), 5000, 'every process of the job to be gone');
  });

  it('a stopped job still gets its TERM handler run (TERM is followed by CONT), not a KILL', async () => {
    const { t } = await group("trap 'exit 0' TERM; while :; do sleep 0.05; done", 1);
    safeKill(-t.job.pgid, 'SIGSTOP');
    await pollUntil(() => readStat(t.job.pid)?.state === 'T', 5000, 'the job to stop');
    expect(await terminateJob(t, { signal: 'SIGTERM', graceMs: 5000 })).toMatchObject({ escalated: false, remaining: 0 });
  });
});

describe('the leader alone, and holding a job', () => {
  it('signalLeader warns the main process only; its workers, whose default is to die, do not get it', async () => {
    const { t } = await group("trap 'echo warned' USR1; sleep 100 & sleep 100 & while :; do wait; done", 2);
    const workers = jobProcesses(t)
      .procs.filter((p) => p.pid !== t.job.pid)
      .map((p) => p.pid);
    expect(signalLeader(t, 'SIGUSR1')).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(workers.every(alive)).toBe(true);
    expect(alive(t.job.pid)).toBe(true);
    expect(signalLeader({ job: { ...t.job, startTicks: t.job.startTicks + 1 } }, 'SIGUSR1')).toBe(false);
  });

  it('hold stops every process of a job without a cgroup (SIGSTOP), release lets all of them go on', async () => {
    const { t } = await group('sleep 100 & sleep 100 & wait', 2);
    expect(await holdJob(t)).toBe('signal');
    expect(jobProcesses(t).procs.every((p) => p.state === 'T')).toBe(true);
    releaseJob(t, 'signal');
    await pollUntil(() => jobProcesses(t).procs.every((p) => p.state !== 'T'), 5000, 'every process to go on');
  });
});
