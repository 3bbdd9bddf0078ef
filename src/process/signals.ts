// The only place jobq sends signals: identity-checked, never to pid/pgid <= 1, TERM (+CONT) -> grace -> KILL.
import type { JobRecord, ProcId } from '../domain/job.js';
import { sleep } from '../domain/units.js';
import { canFreeze, freezeCgroups, isJobCgroup, thawCgroups } from './isolation.js';
import { allProcesses, bootId, cgroupPids, descendantsOf, groupMembers, type ProcStat, readStat } from './proc.js';

/** What jobq knows about a job's processes: the leader (pid = pgid = sid) and its cgroups. */
export interface JobTarget {
  job: ProcId & { pgid: number };
  cgroups?: string[];
  /** Processes found as the job's before (pid -> start time): still the job's once re-parented out of reach. */
  known?: Map<number, number>;
  /** Never the job's: a scope's keeper, beside the job in the scope (only ever spared, so a record may say it). */
  spare?: ProcId;
}

/** Sends a signal to one process or (negative) a group; refuses 0, 1, -1 and anything <= 1 in absolute value. */
export function safeKill(target: number, signal: NodeJS.Signals | 0): boolean {
  if (!Number.isInteger(target) || Math.abs(target) <= 1) return false;
  try {
    process.kill(target, signal);
    return true;
  } catch {
    return false;
  }
}

/** True when a record's numbers are plausible enough to act on at all. */
export function validTarget(t: JobTarget | undefined): t is JobTarget {
  const j = t?.job;
  return !!j && Number.isInteger(j.pid) && j.pid > 1 && Number.isInteger(j.pgid) && j.pgid > 1 && Number.isInteger(j.startTicks) && j.startTicks > 0;
}

/**
 * What a record lets jobq act on, treating it as data: nothing from another boot, nothing implausible, and only
 * cgroups that jobq itself makes for this job (under its own cgroup root, named for the job id).
 */
export function jobTarget(rec: JobRecord): JobTarget | undefined {
  if (!rec.job || (rec.boot && rec.boot !== bootId())) return undefined;
  const t: JobTarget = { job: rec.job, cgroups: (rec.protection?.cgroups ?? []).filter((d) => isJobCgroup(d, rec.id)), spare: rec.protection?.keeper };
  return validTarget(t) ? t : undefined;
}

/**
 * The live processes that provably belong to the job: members of its cgroups; members of its
 * group while the leader is the recorded process or gone (a pgid is not reused while members live);
 * and their descendants that left the group (setsid, double fork).
 */
export function jobProcesses(t: JobTarget, all: ProcStat[] = allProcesses()): { procs: ProcStat[]; groupOk: boolean } {
  if (!validTarget(t)) return { procs: [], groupOk: false };
  const byPid = new Map(all.map((p) => [p.pid, p]));
  const found = new Map<number, ProcStat>();
  for (const dir of t.cgroups ?? []) {
    for (const pid of cgroupPids(dir)) {
      // Forked since the snapshot: read now (its cgroup makes it the job's), or a process that hops pids hides.
      const p = byPid.get(pid) ?? readStat(pid);
      if (p) found.set(pid, p);
    }
  }
  const leader = readStat(t.job.pid);
  const leaderIsJob = !!leader && leader.startTicks === t.job.startTicks;
  const groupOk = leaderIsJob || !leader;
  if (groupOk) {
    for (const p of groupMembers(t.job.pgid, all)) {
      if (p.startTicks >= t.job.startTicks) found.set(p.pid, p);
    }
  }
  for (const [pid, ticks] of t.known ?? []) {
    const p = byPid.get(pid);
    if (p && p.startTicks === ticks) found.set(pid, p);
  }
  for (const p of descendantsOf([...found.keys()], all)) found.set(p.pid, p);
  if (t.spare && found.get(t.spare.pid)?.startTicks === t.spare.startTicks) found.delete(t.spare.pid);
  for (const p of found.values()) t.known?.set(p.pid, p.startTicks);
  return { procs: [...found.values()], groupOk: groupOk && [...found.values()].some((p) => p.pgid === t.job.pgid) };
}

/**
 * Signals every process of the job: the group at once, then any member outside it. With `wake`, a stopped
 * or frozen job is continued right after, so it can act on the signal (a TERM handler runs instead of
 * waiting for the KILL). Returns how many processes there were.
 */
export function signalJob(t: JobTarget, signal: NodeJS.Signals, opts: { wake?: boolean } = {}): number {
  const { procs, groupOk } = jobProcesses(t);
  if (procs.length === 0) return 0;
  const sigs: NodeJS.Signals[] = opts.wake && signal !== 'SIGKILL' && signal !== 'SIGCONT' ? [signal, 'SIGCONT'] : [signal];
  for (const sig of sigs) {
    if (groupOk) safeKill(-t.job.pgid, sig);
    for (const p of procs) {
      if (groupOk && p.pgid === t.job.pgid) continue;
      // Re-check identity right before signalling: the pid must still be that process.
      const now = readStat(p.pid);
      if (now && now.startTicks === p.startTicks && now.state !== 'Z') safeKill(p.pid, sig);
    }
  }
  // A frozen cgroup holds signals until it thaws.
  if (opts.wake && t.cgroups?.length) thawCgroups(t.cgroups);
  return procs.length;
}

/** Signals the job's main process alone (identity-checked): a warning its workers, whose default is to die, must not get. */
export function signalLeader(t: JobTarget, signal: NodeJS.Signals): boolean {
  if (!validTarget(t)) return false;
  const now = readStat(t.job.pid);
  return !!now && now.startTicks === t.job.startTicks && now.state !== 'Z' && safeKill(t.job.pid, signal);
}

/** Result of ending a job. */
export interface TerminateResult {
  signalled: number;
  escalated: boolean;
  remaining: number;
  elapsedMs: number;
}

/** Polls until nothing of the job lives or the deadline passes; returns what is left. */
export async function waitGone(t: JobTarget, deadlineMs: number, stepMs = 15): Promise<number> {
  for (;;) {
    const left = jobProcesses(t).procs.length;
    if (left === 0 || Date.now() >= deadlineMs) return left;
    await sleep(stepMs);
  }
}

/** Ends a job: `signal` (and CONT) to all of it, up to `graceMs` for it to go, then SIGKILL; returns once nothing is left. */
export async function terminateJob(
  t: JobTarget,
  opts: { signal: NodeJS.Signals; graceMs: number; onEscalate?: (left: number) => void },
): Promise<TerminateResult> {
  const start = Date.now();
  // What it signals stays the job's: a child the leader's death re-parents to init cannot drop out of the KILL.
  t = { ...t, known: t.known ?? new Map() };
  const signalled = signalJob(t, opts.signal, { wake: true });
  let left = signalled ? await waitGone(t, start + opts.graceMs) : 0;
  let escalated = false;
  if (left > 0 && opts.signal !== 'SIGKILL') {
    escalated = true;
    opts.onEscalate?.(left);
  }
  for (let round = 0; left > 0 && round < 50; round++) {
    // Frozen, nothing of it can fork between the listing and the KILL; signalJob's wake thaws it (even a freeze
    // that did not complete in time), and the KILLs land.
    if (t.cgroups?.length && canFreeze(t.cgroups)) await freezeCgroups(t.cgroups, 500);
    signalJob(t, 'SIGKILL', { wake: true });
    left = await waitGone(t, Date.now() + 100);
  }
  return { signalled, escalated, remaining: left, elapsedMs: Date.now() - start };
}

/** Stops every process of the job: its cgroup freezer where it has one (the job cannot tell), else SIGSTOP to all of it. */
export async function holdJob(t: JobTarget): Promise<'freezer' | 'signal'> {
  if (t.cgroups?.length && canFreeze(t.cgroups)) {
    if (await freezeCgroups(t.cgroups, 2000)) return 'freezer';
    // Not frozen in time (a process in uninterruptible sleep): thawed again, or resume's SIGCONT could not free it.
    thawCgroups(t.cgroups);
  }
  signalJob(t, 'SIGSTOP');
  // SIGSTOP lands when each process next runs: wait (bounded) until all of them show state T.
  for (const until = Date.now() + 2000; Date.now() < until; await sleep(5)) {
    if (jobProcesses(t).procs.every((p) => p.state === 'T' || p.state === 't')) break;
  }
  return 'signal';
}

/** Lets a held job go on: thaw, or SIGCONT to all of it. */
export function releaseJob(t: JobTarget, how: 'freezer' | 'signal'): void {
  if (how === 'freezer' && t.cgroups?.length) thawCgroups(t.cgroups);
  else signalJob(t, 'SIGCONT');
}
