// The per-job supervisor: starts the job held before exec, protects it, releases it, watches it, records how it ended.
// The protocol it keeps (the record's moves, the gate, the handshake, cancel, queues, readers): docs/protocol.md.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type Claimed,
  claimIntoSlot,
  dispatcherForClaims,
  dispatcherLoop,
  dispatchRound,
  endThenClaim,
  ensureDispatcher,
  launchAll,
} from '../backend/local/dispatch.js';
import { crashAt, isBusy, JobqError } from '../domain/errors.js';
import { classifyExit, type JobRecord, type JobState, newToken, type OomCause, type Outcome, type ProcId, type Protection } from '../domain/job.js';
import { joblogLine } from '../domain/joblog.js';
import * as life from '../domain/lifecycle.js';
import { formatSize, formatSpan, shellWords, sleep } from '../domain/units.js';
import {
  type CgroupWatch,
  cgroupStats,
  createCgroups,
  detectFactsCached,
  enterCgroups,
  type IsolationPlan,
  kernelOomNamed,
  memoryHigh,
  oomdJournalLine,
  oomdReason,
  planIsolation,
  removeCgroupsWhenEmpty,
  scopeCgroupDir,
  scopeMemoryMax,
  setOomScoreAdj,
  splitScope,
  sweepLeftCgroups,
  thawScope,
  userManager,
  warmCgroupMoves,
  watchCgroup,
} from '../process/isolation.js';
import { awaitPhase, bootId, CLK_TCK, cgroupPids, isAlive, procId, readStat } from '../process/proc.js';
import type { JobTarget } from '../process/signals.js';
import { checkStartable, type HeldJob, restoreJobEnv, spawnHeld } from '../process/spawn.js';
import { awaitHandOff } from '../process/standby.js';
import { appendEvent, lightEvents } from '../store/events.js';
import { appendJoblog, loadLocking, openLogAppend, Store } from '../store/store.js';
import { TimelineWriter } from '../store/timeline.js';
import { PressureGuard } from './guard.js';
import { runOnExit } from './hooks.js';
import { appendLogLine, capLogFd } from './logcap.js';
import { type Ending, type MonitorInput, monitor } from './monitor.js';

const NONE: IsolationPlan = { kind: 'none', prefix: [], cgroupDirs: [] };
/** How long systemd-run may take to make the scope and exec the wrapper (a D-Bus round trip; seconds on a slow guest). */
const PREFIX_START_MS = 15_000;

/** One job under this supervisor, as it goes through the steps. */
interface Job {
  store: Store;
  id: string;
  rec: JobRecord;
  env: Record<string, string>;
  self: ProcId;
  prot: Protection;
  plan: IsolationPlan;
  logFd: number;
  held?: HeldJob;
  /** A scope's cgroup under watch: systemd removes it as the job ends, so what it said is kept. */
  watch?: CgroupWatch;
  scope?: string;
  target?: JobTarget;
  rlimitKb?: number;
  startedAt?: string;
  t0?: number;
  /** The log's size before the job wrote to it: what it wrote is the joblog's Receive. */
  logAt?: number;
  /** What was claimed under the dispatch lock its end was written in (undefined: no round yet). */
  claims?: Claimed[];
  /** Its end's joblog line is written (once, whatever tries the record takes). */
  joblogged?: boolean;
}

let handshakeOpen = true;

/** A warning for the record, once: a --retry's next attempt may find the same again. */
function warnOnce(prot: Protection, text: string): void {
  if (!prot.warnings.includes(text)) prot.warnings.push(text);
}

/** Tells the launcher (fd 3, a one-shot pipe) that the record now says what happened; a plain write, no stream. */
function notifyLauncher(): void {
  if (!handshakeOpen) return;
  handshakeOpen = false;
  try {
    fs.writeSync(3, 'ok\n');
    fs.closeSync(3);
  } catch {
    /* launcher gone or no pipe (started by hand): the record is the truth anyway */
  }
}

/** prepare: takes the claim over (or stands down), checks the command, plans isolation, opens the log. */
async function prepare(store: Store, id: string, token: string, env?: Record<string, string>): Promise<Job | undefined> {
  const self = procId(process.pid)!;
  const claimed = life.claimedBy(token);
  // A standby was recorded as the supervisor when the record was made: nothing to take over.
  let rec = store.readRecord(id);
  if (!(claimed(rec) && rec.supervisor?.pid === self.pid && rec.supervisor.startTicks === self.startTicks && rec.boot === bootId())) {
    const reg = await store.transition(id, life.adopt(token, self, bootId()));
    if (!reg.changed) {
      appendEvent(store.eventsLog, 'warn', 'supervisor stood down', { id, status: reg.rec.state.status });
      return undefined;
    }
    rec = reg.rec;
  }
  // A job run at once: its launcher left the `submitted` line to us, dated when it was made.
  if (rec.state.status === 'starting' && !rec.state.claim?.requeue)
    appendEvent(store.eventsLog, 'info', 'submitted', { id, argv: rec.argv }, Date.parse(rec.createdAt));
  // GPUs given at the claim: only they are visible to the job, numbered as nvidia-smi numbers them.
  if (rec.gpus?.length) env = { ...(env ?? restoreJobEnv(process.env)), CUDA_VISIBLE_DEVICES: rec.gpus.join(','), CUDA_DEVICE_ORDER: 'PCI_BUS_ID' };
  // Its reservation (bytes per GPU), for a job that caps itself (torch.cuda.set_per_process_memory_fraction).
  if (rec.gpus?.length && rec.admission?.gpuMemBytes) env = { ...env!, JOBQ_GPU_MEM: String(rec.admission.gpuMemBytes) };
  const job: Job = { store, id, rec, self, env: env ?? restoreJobEnv(process.env), prot: rec.protection, plan: NONE, logFd: -1 };
  // --retry: the job knows which attempt it is (1, 2, …), e.g. to resume from its checkpoint.
  if (rec.retry) job.env = { ...job.env, JOBQ_ATTEMPT: String((rec.attempts?.length ?? 0) + 1) };
  try {
    checkStartable(rec.argv, rec.cwd, job.env);
    job.plan = planIsolation(job.prot.isolationMode, detectFactsCached(job.env), {
      id,
      memLimitBytes: job.prot.memLimitBytes,
      memHighBytes: job.prot.memHighBytes,
      argv: rec.argv,
      attempt: (rec.attempts?.length ?? 0) + 1,
    });
    const bare = job.plan.kind === 'none' && job.prot.isolationMode === 'auto' ? noIsolationWarning(job.env) : undefined;
    if (bare) warnOnce(job.prot, bare);
    warmCgroupMoves(job.plan);
    job.logFd = openLogAppend(rec.log);
    job.logAt = fs.fstatSync(job.logFd).size;
  } catch (e) {
    await failStart(job, e);
    return undefined;
  }
  return job;
}

/** What a job without a cgroup of its own lacks, and the one thing that gets it one here. */
function noIsolationWarning(env: Record<string, string>): string {
  const why = userManager(env);
  const fix =
    fs.existsSync('/run/systemd/system') && process.getuid?.() !== 0
      ? `log in with ssh or a desktop (not su/sudo) and run \`loginctl enable-linger ${env.USER ?? '$USER'}\``
      : 'run jobq as root, or give it a delegated cgroup v2 subtree';
  return `no cgroup of its own for this job (${why ?? 'no systemd user manager'}; no writable cgroup): no OOM attribution, no freezer, and the OOM killer or systemd-oomd may pick your session instead; fix: ${fix}, or --isolation none to accept this`;
}

/** Records that the job could not start (nothing of it ran) and tells the launcher. */
async function failStart(job: Job, err: unknown): Promise<void> {
  const msg = err instanceof JobqError ? err.message : `cannot start: ${(err as Error).message}`;
  const fail = life.failStart(msg);
  await job.store.transition(job.id, (rec) => {
    const next = fail(rec);
    // In the joblog as parallel writes a command it could not run (exit 127, no time), before the record: a `wait`
    // that sees the end finds the line.
    if (next) joblogEnd(rec, { startedAt: new Date().toISOString(), durationMs: 0, receivedBytes: 0, exitCode: 127, signal: null });
    return next;
  });
  notifyLauncher();
}

/** start: creates the cgroups and spawns the job held before exec, output on the log. */
function startHeld(job: Job): void {
  const { prot } = job;
  if (job.plan.cgroupDirs.length) {
    try {
      const { appliedLimit, appliedHigh } = createCgroups(job.plan, prot.memLimitBytes, prot.memHighBytes);
      if (appliedHigh && prot.memHighBytes && appliedHigh <= prot.memHighBytes + 65536) prot.memHighHow = 'cgroup';
      if (prot.memLimitBytes) {
        prot.memLimitHow = 'cgroup';
        if (!appliedLimit || appliedLimit > prot.memLimitBytes + 65536) warnOnce(prot, `memory limit not applied by the kernel (reads ${appliedLimit})`);
      }
    } catch (e) {
      warnOnce(prot, `cgroup setup failed (${(e as Error).message}); running without isolation`);
      void removeCgroupsWhenEmpty(job.plan.cgroupDirs, 0);
      job.plan = NONE;
    }
  }
  const gateFd = job.store.openGate(job.id);
  try {
    job.held = spawnHeld(job.rec.argv, { cwd: job.rec.cwd, env: job.env, logFd: job.logFd, gateFd, prefix: job.plan.prefix });
  } finally {
    fs.closeSync(gateFd);
  }
  // From here on the supervisor watches the file through a descriptor of its own, not through the path.
  const rw = fs.openSync(`/proc/self/fd/${job.logFd}`, fs.constants.O_RDWR);
  fs.closeSync(job.logFd);
  job.logFd = rw;
}

/**
 * A scope's own cgroup (named for the job), split into the job's part and a keeper's, then watched: systemd removes
 * a scope as soon as it is empty, and the keeper holds it until jobq has read how the job ended. Returns the scope.
 */
async function holdScope(job: Job, pid: number): Promise<string | undefined> {
  const dir = scopeCgroupDir(pid, job.plan.unit!);
  if (!dir) {
    warnOnce(job.prot, "the scope's cgroup is not on a cgroup v2 hierarchy here: no OOM attribution, peak memory or freezer from it");
    return undefined;
  }
  const parts = splitScope(dir, pid);
  if (parts) {
    job.held!.keep(parts.keep);
    const until = Date.now() + 3000;
    while (!cgroupPids(parts.keep).length && Date.now() < until) await sleep(5);
    // The keeper is spared by name (pid + start time); anything else that gets into `keep` is the job's.
    const keeper = procId(cgroupPids(parts.keep)[0] ?? 0);
    if (keeper) job.prot.keeper = keeper;
  }
  job.scope = dir;
  job.plan.cgroupDirs = parts ? [parts.job, parts.keep] : [dir];
  const watch = watchCgroup(dir, parts?.job);
  job.watch = watch;
  // The first exit listener, before the monitor's: the figures are read at once.
  job.held!.child.once('exit', () => watch.last());
  return dir;
}

/** --mem-high as the kernel holds it: a scope's MemoryHigh= read back; elsewhere a warning saying why it is not applied. */
function memHighReadBack(prot: Protection, kind: IsolationPlan['kind'], scope: string | undefined): void {
  if (kind === 'systemd-scope') {
    const high = memoryHigh(scope);
    if (high && high <= prot.memHighBytes! + 65536) prot.memHighHow = 'cgroup';
  }
  if (prot.memHighHow === 'cgroup') return;
  prot.memHighHow = 'none';
  const why =
    kind === 'cgroup-v1'
      ? '--mem-high needs cgroup v2 (memory.high); this machine has cgroup v1: not applied (--mem-limit is)'
      : kind === 'none'
        ? 'no cgroup here: --mem-high not applied'
        : '--mem-high not held by the kernel (no memory delegation?): not applied';
  warnOnce(prot, why);
}

/** protect: moves the held job into its cgroups, sets oom_score_adj and the memory limit, reads back what holds. */
async function protect(job: Job): Promise<boolean> {
  const { prot, plan } = job;
  const pid = job.held!.pid;
  // A prefix (systemd-run) must have become the wrapper, in its scope: the wrapper's own byte says so, bounded.
  if (plan.prefix.length && !(await job.held!.ready(PREFIX_START_MS))) return false;
  const scope = plan.kind === 'systemd-scope' ? await holdScope(job, pid) : undefined;
  if (plan.kind !== 'systemd-scope' && plan.cgroupDirs.length) enterCgroups(plan, pid);
  if (prot.oomScoreAdj) {
    const want = prot.oomScoreAdj.requested;
    const actual = setOomScoreAdj(pid, want);
    prot.oomScoreAdj.actual = actual;
    if (actual !== want) warnOnce(prot, `oom_score_adj ${want} refused by the kernel (lowering needs CAP_SYS_RESOURCE); it stays ${actual}`);
  }
  if (prot.memLimitBytes && plan.kind === 'systemd-scope') {
    // A user scope without delegation silently drops MemoryMax (systemd #10581): check what the kernel holds.
    const max = scopeMemoryMax(scope);
    if (max && max <= prot.memLimitBytes + 65536) prot.memLimitHow = 'cgroup';
    else warnOnce(prot, 'systemd scope ignored MemoryMax (no memory delegation); using RLIMIT_AS instead');
  }
  if (prot.memHighBytes) memHighReadBack(prot, plan.kind, scope);
  if (prot.memLimitBytes && !prot.memLimitHow) {
    prot.memLimitHow = 'rlimit-as';
    job.rlimitKb = Math.ceil(prot.memLimitBytes / 1024);
    if (plan.kind !== 'systemd-scope')
      warnOnce(prot, 'no cgroup here: --mem-limit falls back to RLIMIT_AS (caps virtual address space; allocations fail instead of an OOM kill)');
  }
  prot.isolation = plan.kind;
  if (plan.cgroupDirs.length) prot.cgroups = plan.cgroupDirs;
  if (plan.unit) prot.unit = plan.unit;
  const diag = job.store.paths(job.id).diag;
  appendEvent(diag, 'info', 'isolation', { id: job.id, asked: prot.isolationMode, chosen: plan.kind, cgroups: plan.cgroupDirs, unit: plan.unit });
  appendEvent(diag, 'info', 'limits read back', {
    id: job.id,
    memLimitBytes: prot.memLimitBytes,
    memLimitHow: prot.memLimitHow,
    memHighBytes: prot.memHighBytes,
    memHighHow: prot.memHighHow,
    oomScoreAdj: prot.oomScoreAdj,
    timeoutMs: prot.timeoutMs,
    idleTimeoutMs: prot.idleTimeoutMs,
  });
  for (const w of prot.warnings) appendEvent(diag, 'warn', 'warning', { id: job.id, warning: w });
  job.target = { job: { pid, startTicks: readStat(pid)?.startTicks ?? 0, pgid: pid }, cgroups: plan.cgroupDirs, spare: prot.keeper };
  return true;
}

/** release: starting -> running under the lock, only if the claim is still ours and no cancel came; then exec. */
async function release(job: Job): Promise<boolean> {
  const { store, id } = job;
  job.startedAt = new Date().toISOString();
  job.t0 = Date.now();
  const r = await store.transition(
    id,
    life.release(job.self, job.target!.job, job.prot, job.startedAt, () => !!store.readCancel(id)),
    {
      event: { pid: job.held!.pid, isolation: job.plan.kind },
    },
  );
  if (!r.changed) {
    // Never exec'd: the wrapper exits 125 without running anything.
    job.held!.abort();
    // Someone else decided first (run gave up on us): as a supervisor that found no claim would, say so.
    if (r.rec.state.status !== 'starting' || r.rec.supervisor?.pid !== job.self.pid)
      appendEvent(store.eventsLog, 'warn', 'supervisor stood down', { id, status: r.rec.state.status });
    await store.transition(id, life.abortStart(store.readCancel(id)));
    await removeCgroupsWhenEmpty(job.plan.cgroupDirs);
    notifyLauncher();
    return false;
  }
  job.rec = r.rec;
  crashAt('running');
  job.held!.release(job.rlimitKb);
  // Its environment is in the job now; a queued job's copy on disk (secrets included) goes. Not before the release: a
  // supervisor dying in between leaves a job that never ran, which waits again and needs it. Kept (written, for a
  // job that never waited) while a lost end would be retried: the next attempt starts without this process.
  const policy = job.rec.retry;
  if (policy?.on.includes('lost') && (job.rec.attempts?.length ?? 0) < policy.max) housekeep(() => store.writeEnv(id, job.env));
  else store.removeEnv(id);
  // The launcher returns only once the command itself runs (or already ended), not merely the wrapper; a chained job has none.
  if (handshakeOpen) awaitPhase(job.held!.pid, (p) => p !== 'wrapper', 2000);
  notifyLauncher();
  // The job runs: now pino may load.
  lightEvents(false);
  return true;
}

/** Best-effort bookkeeping: a full or read-only state dir must never cost a job its recorded outcome. */
function housekeep(fn: () => void): void {
  try {
    fn();
  } catch {
    /* tried again at a later job's end */
  }
}

/** The one line a log gets when jobq, the kernel or a timeout ended the job rather than the job itself. */
function endMarker(state: JobState, prot: Protection): string | undefined {
  const done = life.outcomeOf(state);
  const at = done?.endedAt ?? new Date().toISOString();
  const peak = done?.peakMemBytes ? `, peak ${formatSize(done.peakMemBytes)}` : '';
  const code = done && done.exitCode !== null ? `, exit code ${done.exitCode}` : done?.signal ? `, ${done.signal}` : '';
  switch (state.status) {
    case 'oom':
      return `[jobq] oom-killed at ${at}${peak}${prot.memLimitBytes ? ` of ${formatSize(prot.memLimitBytes)} limit` : ''}`;
    case 'timeout':
      return `[jobq] ${state.reason === 'idle' ? `idle timeout (no output for ${formatSpan(prot.idleTimeoutMs ?? 0)})` : `timeout after ${formatSpan(prot.timeoutMs ?? 0)}`} at ${at}${code}`;
    case 'cancelled':
      return `[jobq] cancelled at ${at} by ${state.cancel.by} (${state.cancel.signal})${code}`;
    default:
      return undefined;
  }
}

/** Why the job ended for memory, if it did: its cgroup counted an OOM kill, or systemd-oomd's journal names it. */
async function oomCause(job: Job, cg: ReturnType<typeof cgroupStats>, end: Ending, byJobq: boolean): Promise<OomCause | undefined> {
  const limit = job.prot.memLimitBytes;
  if ((cg.oomKills ?? 0) > 0) {
    if (limit && (cg.limitHits ?? 1) > 0) return { by: 'memory-limit', reason: `the job reached its memory limit (${formatSize(limit)})` };
    return { by: 'kernel', reason: "the kernel's OOM killer: the machine ran out of memory" };
  }
  // Inferred causes only where jobq itself sent no KILL (a cancel's or a timeout's).
  if (byJobq || end.signal !== 'SIGKILL' || !job.plan.unit) return undefined;
  // systemd-oomd logs its kill just after it: a few short tries, bounded (only for a KILL nobody here explains).
  let line: string | undefined;
  for (let i = 0; i < 4 && !line; i++) {
    if (i) await sleep(400);
    line = oomdJournalLine(job.plan.unit, job.t0 ?? Date.now());
  }
  if (line) return { by: 'systemd-oomd', reason: oomdReason(line) };
  if (job.watch?.machineOomNearEnd()) {
    // The scope went with the job before its count could be read: the kernel's log names it, where the user may read it.
    if (kernelOomNamed(job.plan.unit, job.t0 ?? Date.now())) return { by: 'kernel', reason: "the kernel's OOM killer: the machine ran out of memory" };
    return {
      by: 'kernel',
      reason: "the kernel's OOM killer, most likely: the machine's OOM count rose as the job died (its cgroup was gone before jobq could read it)",
    };
  }
  return undefined;
}

/** record: classifies the end, marks the log, removes the cgroups, and saves the final state until it holds. */
async function record(job: Job, end: Ending): Promise<JobRecord> {
  const { store, id, prot, plan } = job;
  // Events already queued with the exit (inotify on the scope's cgroup) are handled first.
  if (job.watch) await new Promise((r) => setImmediate(r));
  const cg = job.watch ? job.watch.last() : cgroupStats(plan.kind, plan.cgroupDirs);
  const outcome: Outcome = {
    exitCode: end.code,
    signal: end.signal,
    endedAt: new Date(end.seenAt).toISOString(),
    durationMs: end.seenAt - job.t0!,
    peakMemBytes: Math.max(cg.peakBytes ?? 0, end.peakBytes) || undefined,
    ...(end.peakVramBytes !== undefined ? { peakVramBytes: end.peakVramBytes } : {}),
    cpuMs: cg.cpuMs ?? Math.round((end.cpuTicks * 1000) / CLK_TCK),
    ...(prot.memHighHow === 'cgroup' && cg.highEvents !== undefined ? { memHighEvents: cg.highEvents } : {}),
  };
  const asked = store.readCancel(id);
  // A cancel asked for after the job had already exited did not end it.
  const cancel = asked && Date.parse(asked.at) <= end.seenAt ? asked : undefined;
  const state = classifyExit(job.startedAt!, outcome, {
    cancel,
    timeout: end.timedOut,
    guard: end.guardEnd,
    oom: await oomCause(job, cg, end, !!cancel || !!end.timedOut || !!end.guardEnd),
    cgroupKnown: plan.cgroupDirs.length > 0,
  });
  // All read: the scope's keeper goes (thawed, if the job froze its whole scope), and systemd removes the scope.
  job.watch?.close();
  if (job.scope) thawScope(job.scope);
  job.held?.dismiss();
  appendEvent(store.paths(id).diag, 'info', 'ended', {
    id,
    status: state.status,
    exitCode: end.code,
    signal: end.signal,
    timedOut: end.timedOut,
    cancel: cancel?.by,
  });
  const marker = endMarker(state, prot);
  if (marker) appendLogLine(job.logFd, marker);
  // --retry: this end may send the job back to wait for another attempt (the record keeps this one's end).
  const again = life.isDone(state) ? life.nextAttempt({ ...job.rec, protection: prot }, state, Date.now(), os.totalmem()) : undefined;
  if (again) appendLogLine(job.logFd, retryMarker(job.rec, state, again));
  if (job.rec.maxLogBytes) capLogFd(job.logFd, job.rec.maxLogBytes);
  if (plan.cgroupDirs.length) {
    const left = await removeCgroupsWhenEmpty(plan.cgroupDirs);
    if (left.length) {
      warnOnce(prot, `processes of the job still ran in ${left[0]} after it ended`);
      // Swept by a later job's end once the stray processes are gone.
      housekeep(() => job.store.setCgroupsLeft(job.id, left));
    }
  }
  return writeEnd(job, state, again, { exitCode: end.code, signal: end.signal });
}

/** Writes the end (or the move to the next --retry attempt): the outcome lives in memory until it is on disk. */
async function writeEnd(job: Job, state: JobState, again: life.NextAttempt | undefined, event: Record<string, unknown>): Promise<JobRecord> {
  const { store, id } = job;
  // The next element of its array claimed into this slot first; else, while jobs wait, the end and a round under one
  // dispatch lock (a failure here is retried below, without it). Not with an --on-exit hook: the next job would wait for it.
  if (!job.rec.onExit) {
    const next = again ? undefined : await claimIntoSlot(store, job.rec).catch(() => undefined);
    if (next) job.claims = [next];
    else if (store.anyWaiting()) {
      const r = await endThenClaim(store, () => endOnce(job, state, again, event)).catch(() => undefined);
      if (r) {
        job.claims = r.claims;
        return r.rec;
      }
    }
  }
  // A full or read-only state dir is retried, with backoff.
  for (let delay = 100, tries = 1; ; tries++, delay = Math.min(delay * 2, 30_000)) {
    try {
      return await endOnce(job, state, again, event);
    } catch (e) {
      // The job dir itself is gone (its state dir removed by hand): no one can ever read an outcome, so stop.
      if (!fs.existsSync(path.dirname(store.paths(id).record))) return { ...job.rec, protection: job.prot, state };
      if (tries === 1) {
        appendEvent(store.eventsLog, 'error', 'cannot record the outcome; retrying', { id, error: (e as Error).message });
        // The log may be what filled the disk: deleting it must free its space, so it is not held open while waiting.
        closeLog(job);
      }
      appendEvent(store.paths(id).diag, 'warn', 'record retry', { id, try: tries, nextInMs: delay, error: (e as Error).message });
      await sleep(delay);
    }
  }
}

/** One try at writing the end; its joblog line first, once, so a `wait` that sees the end finds the line. */
async function endOnce(job: Job, state: JobState, again: life.NextAttempt | undefined, event: Record<string, unknown>): Promise<JobRecord> {
  const { store, id, prot } = job;
  if (!job.joblogged) {
    job.joblogged = true;
    joblogged(job, state);
  }
  if (again) store.writeEnv(id, job.env);
  const r =
    again && life.isDone(state)
      ? await store.transition(
          id,
          life.retry(state, prot, again, () => !!store.readCancel(id)),
          { event: { ...event, ended: state.status, attempt: again.attempt, at: again.at } },
        )
      : undefined;
  if (r?.changed) return r.rec;
  const f = await store.transition(id, life.finish(state, prot), { event });
  // Once the outcome is safe: the environment kept for a retry after a loss, and cgroups ended jobs left in use,
  // removed once empty (usually none are noted).
  housekeep(() => {
    store.removeEnv(id);
    for (const { id: other, dirs } of sweepLeftCgroups(store.cgroupsLeft().filter((l) => l.id !== id))) store.setCgroupsLeft(other, dirs);
  });
  return f.rec;
}

/** Appends the end to the job's joblog (GNU parallel's format), just before it is recorded; a joblog that fails costs nothing else. */
function joblogged(job: Job, state: JobState): void {
  const done = life.outcomeOf(state);
  const rec = job.rec;
  if (rec.joblog && done) {
    let size = 0;
    housekeep(() => {
      size = fs.fstatSync(job.logFd).size;
    });
    const received = Math.max(0, size - (job.logAt ?? 0));
    joblogEnd(rec, {
      startedAt: done.startedAt ?? job.startedAt!,
      durationMs: done.durationMs,
      receivedBytes: received,
      exitCode: done.exitCode,
      signal: done.signal,
    });
  }
}

/** One run's line in the job's joblog: its Seq is an array element's index, else the job's number. */
function joblogEnd(rec: JobRecord, run: Omit<Parameters<typeof joblogLine>[0], 'seq' | 'command'>): void {
  if (!rec.joblog) return;
  const line = joblogLine({ ...run, seq: rec.admission?.array?.index ?? rec.seq ?? 0, command: shellWords(rec.argv) });
  housekeep(() => appendJoblog(rec.joblog!, line));
}

/** The log's line when a job is run again: which attempt ended how, and when the next one starts. */
function retryMarker(rec: JobRecord, state: JobState, next: life.NextAttempt): string {
  const of = rec.retry ? ` of ${rec.retry.max + 1}` : '';
  const wait = Math.max(0, Date.parse(next.at) - Date.now());
  const mem = next.memLimitBytes ? `, --mem-limit ${formatSize(next.memLimitBytes)}` : '';
  const code = life.outcomeOf(state)?.exitCode;
  return `[jobq] attempt ${next.attempt - 1}${of} ended ${state.status}${code != null ? ` (${code})` : ''}; attempt ${next.attempt} ${wait ? `in ${formatSpan(wait)}` : 'now'}${mem}`;
}

/** Supervises one claimed job from its claim to its recorded end; false if it never started. */
async function supervise(store: Store, id: string, token: string, env?: Record<string, string>): Promise<Claimed[] | undefined> {
  crashAt('begun');
  // Fault injection for the tests: a supervisor slower than its launcher's patience (JOBQ_START_TIMEOUT).
  if (process.env.JOBQ_TEST_STALL_MS) await sleep(Number(process.env.JOBQ_TEST_STALL_MS));
  const job = await prepare(store, id, token, env);
  if (!job) return undefined;
  try {
    startHeld(job);
  } catch (e) {
    await removeCgroupsWhenEmpty(job.plan.cgroupDirs, 0);
    await failStart(job, e);
    return undefined;
  }
  crashAt('held');
  if (!(await protect(job))) {
    job.held!.abort();
    // Still our own unreaped child (a hung systemd-run): it is provably ours, so it goes.
    if (job.held!.child.exitCode === null && job.held!.child.signalCode === null) job.held!.child.kill('SIGKILL');
    await failStart(job, new JobqError('START_FAILED', `${job.plan.prefix[0]} did not start the job (its error, if any, is in ${job.rec.log})`));
    return undefined;
  }
  const guard = new PressureGuard({ store, rec: { ...job.rec, protection: job.prot }, target: job.target!, diag: store.paths(id).diag });
  const a = job.rec.admission;
  // Watching starts before the release: a job that writes at once is capped from its first megabyte.
  const watching = monitor({
    id,
    child: job.held!.child,
    target: job.target!,
    prot: job.prot,
    maxLogBytes: job.rec.maxLogBytes,
    logFd: job.logFd,
    diag: store.paths(id).diag,
    timeline: new TimelineWriter(store.paths(id).samples),
    sampleMs: job.rec.sampleMs,
    paused: () => {
      try {
        return store.readRecord(id).state.status === 'paused';
      } catch {
        return false;
      }
    },
    cancelled: () => {
      const c = store.readCancel(id);
      return !!c && (!c.asker || isAlive(c.asker));
    },
    guard,
    ...(job.rec.gpus?.length ? { gpus: { cache: path.join(store.home, 'gpu-apps.json'), ...(job.rec.gpuUuids ? { uuids: job.rec.gpuUuids } : {}) } } : {}),
    ...(a?.gpuMemBytes && job.rec.gpus?.length ? { vramLimit: vramLimit(job, a.gpuMemBytes, job.rec.gpus.length, !!a.gpuMemEnforce) } : {}),
  });
  if (!(await release(job))) {
    await watching;
    return undefined;
  }
  const rec = await record(job, await watching);
  // The guard's turn goes with a job it was acting on: the next job under pressure may be acted on.
  if (guard.acting()) await guard.giveTurn().catch(() => undefined);
  // A job sent back for another attempt has not ended: its hook runs at its last end.
  if (rec.onExit && rec.state.status !== 'queued') {
    const fd = hookLogFd(job);
    await runOnExit(rec, job.env, fd, store.eventsLog);
    if (fd !== undefined) fs.closeSync(fd);
  }
  closeLog(job);
  return job.claims;
}

/** Its --gpu-mem reservation for the monitor: past it is a warning in the record, its supervisor.log and the event log. */
function vramLimit(job: Job, perGpu: number, gpus: number, enforce: boolean): NonNullable<MonitorInput['vramLimit']> {
  return {
    perGpu,
    gpus,
    enforce,
    over: (text) => {
      warnOnce(job.prot, text);
      for (const log of [job.store.eventsLog, job.store.paths(job.id).diag])
        appendEvent(log, 'warn', 'gpu memory past its reservation', { id: job.id, warning: text, enforce });
      void job.store.transition(job.id, life.warn(text)).catch(() => undefined);
    },
  };
}

function closeLog(job: Job): void {
  if (job.logFd < 0) return;
  fs.closeSync(job.logFd);
  job.logFd = -1;
}

/** Where the --on-exit hook writes: the job's log, through our descriptor or (once let go) its path if it is still there. */
function hookLogFd(job: Job): number | undefined {
  const flags = fs.constants.O_WRONLY | fs.constants.O_APPEND;
  try {
    if (job.logFd >= 0) return fs.openSync(`/proc/self/fd/${job.logFd}`, flags);
    // Never a planted link or FIFO, and never a new file: only the log as it is.
    const fd = fs.openSync(job.rec.log, flags | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    if (fs.fstatSync(fd).isFile()) return fd;
    fs.closeSync(fd);
  } catch {
    /* gone: the hook runs with its output discarded */
  }
  return undefined;
}

/**
 * The slot runner: its job's end frees a slot, and the claims made under the lock that end was written in (or a
 * dispatch round after it) are started — the first claim in this same process, so a queue of short jobs costs no
 * Node start per job — and a dispatcher is kept alive while jobs still wait. It exits when nothing is left for it.
 */
async function runSlots(store: Store, first: { id: string; token: string }, firstEnv?: Record<string, string>): Promise<void> {
  let next: Claimed | undefined = first;
  let env = firstEnv;
  for (let queue: string | undefined; next; ) {
    const made = await supervise(store, next.id, next.token, env);
    queue = next.queue ?? store.readRecord(next.id).queue;
    // A dispatcher made sure of while the claims are still under the lock: if this process dies holding one, someone
    // sees it, and that dispatcher cannot take the slot from under this process before it claims.
    // A dispatch lock held past a short wait: the one who holds it dispatches, and the dispatcher below takes the
    // queue; nothing failed.
    const claims: Claimed[] =
      made ??
      (await dispatchRound(store, { waitMs: 2000, whileHeld: dispatcherForClaims(store) }).catch((e: unknown) => {
        if (isBusy(e)) return [];
        throw e;
      }));
    if (claims.length) crashAt('slot-claimed');
    next = claims.find((c) => c.queue === queue) ?? claims[0];
    await launchAll(
      store,
      claims.filter((c) => c !== next),
    );
    // A claim made sure of a dispatcher under the lock just now; with none, this process may be the last to look.
    if (!claims.length) await ensureDispatcher(store);
    env = next ? store.readEnv(next.id) : undefined;
    if (next && !env) {
      // Nothing to start it with: launchAll records why.
      await launchAll(store, [next]);
      next = undefined;
    }
  }
}

/** Where an error is told: the state dir (and job) this process serves, once known. */
const serving = process.argv[2] === '--dispatch' ? { home: process.argv[3] } : { home: process.argv[2], id: process.argv[3] };

async function main(): Promise<void> {
  // The job must outlive anyone signalling the supervisor by mistake; only the job's end ends it.
  for (const sig of ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGPIPE'] as const) process.on(sig, () => undefined);
  let [home, id, token = newToken()] = process.argv.slice(2) as [string, string, string?];
  let env: Record<string, string> | undefined;
  if (home === '--standby') {
    // Started by bin/jobq beside the CLI: the job comes down the pipe, or nothing does and there is nothing to do.
    // Its cwd is / from now on, as a spawned supervisor's (bin/jobq-run leaves it, so a relative path to jobq works).
    process.chdir('/');
    // While the CLI still works: what the first transition needs loads, and the kernel's wait for a cgroup move starts.
    await loadLocking();
    warmCgroupMoves();
    // Fault injection for the tests: a standby that dies before its job comes, or once it came.
    if (process.env.JOBQ_TEST_CRASH_AT === 'standby') process.kill(process.pid, 'SIGKILL');
    const h = awaitHandOff();
    if (!h) return;
    if (process.env.JOBQ_TEST_CRASH_AT === 'standby-handed') process.kill(process.pid, 'SIGKILL');
    ({ home, id, token, env } = h);
    Object.assign(serving, { home, id });
  }
  const store = Store.open(home === '--dispatch' ? id : home, { create: false });
  process.on('uncaughtException', (e) => {
    appendEvent(store.eventsLog, 'error', 'supervisor error', { id, error: String(e?.stack ?? e) });
    process.exit(70);
  });
  if (home === '--dispatch') await dispatcherLoop(store);
  else {
    lightEvents(true);
    await runSlots(store, { id, token }, env);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    try {
      if (serving.home?.startsWith('/'))
        appendEvent(`${serving.home}/events.log`, 'error', 'supervisor failed', { id: serving.id, error: String((e as Error)?.stack ?? e) });
    } finally {
      process.exit(70);
    }
  },
);
