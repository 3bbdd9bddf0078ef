// The per-job supervisor: starts the job held before exec, applies protection, waits, records the outcome.
// Lean on purpose: node built-ins only, no CLI framework, no colour, no logger.
import fs from 'node:fs';
import { classifyExit, type JobRecord, type JobState, type Outcome } from '../domain/job.js';
import { JobqError } from '../domain/errors.js';
import { Store, openLogAppend } from '../store/store.js';
import { appendEvent } from '../store/events.js';
import { procId, rssBytes, readStat, CLK_TCK } from '../process/proc.js';
import { restoreJobEnv, checkStartable, spawnHeld, heldPhase, type HeldJob } from '../process/spawn.js';
import { terminateJob, signalJob, jobProcesses, type JobTarget } from '../process/signals.js';
import { detectFacts, planIsolation, createCgroups, enterCgroups, cgroupStats, removeCgroups, scopeMemoryMax, type IsolationPlan } from '../process/isolation.js';
import { capLog } from '../output/logcap.js';
import { runOnExit } from './hooks.js';

const [home, id] = process.argv.slice(2) as [string, string];
let handshakeOpen = true;

// The job must outlive anyone signalling the supervisor by mistake; only the job's end ends it.
for (const sig of ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGPIPE'] as const) process.on(sig, () => undefined);

// Until the record is loaded there is nothing to finalize: log the error and go.
process.on('uncaughtException', (e) => {
  appendEvent(`${home}/events.log`, 'error', 'supervisor error before reading the record', { id, error: String(e?.stack ?? e) });
  process.exit(70);
});

const store = Store.open(home, { create: false });
const events = store.eventsLog;
let rec: JobRecord = store.readRecord(id);
process.removeAllListeners('uncaughtException');
process.on('uncaughtException', (e) => {
  appendEvent(events, 'error', 'supervisor error', { id, error: String(e?.stack ?? e) });
  if (rec.state.status === 'starting') failStart(e);
  process.exit(70);
});
const self = procId(process.pid)!;

function save(state: JobState, patch: Partial<JobRecord> = {}): void {
  rec = { ...rec, ...patch, state };
  store.writeRecord(rec);
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

function failStart(err: unknown): never {
  const msg = err instanceof JobqError ? err.message : `cannot start: ${(err as Error).message}`;
  save({ status: 'failed-to-start', error: msg, at: new Date().toISOString() }, { supervisor: self });
  store.setActive(id, false);
  appendEvent(events, 'warn', 'failed to start', { id, error: msg });
  notifyLauncher();
  process.exit(0);
}

const env = restoreJobEnv(process.env);
const prot = rec.protection;
let plan: IsolationPlan = { kind: 'none', prefix: [], cgroupDirs: [] };
let held: HeldJob;
let logFd: number;
try {
  checkStartable(rec.argv, rec.cwd, env);
  plan = planIsolation(prot.isolationMode, detectFacts(env), { id, memLimitBytes: prot.memLimitBytes });
  logFd = openLogAppend(rec.log);
} catch (e) {
  failStart(e);
}

let rlimitKb: number | undefined;
try {
  if (plan.cgroupDirs.length) {
    try {
      const { appliedLimit } = createCgroups(plan, prot.memLimitBytes);
      if (prot.memLimitBytes) {
        prot.memLimitHow = 'cgroup';
        if (!appliedLimit || appliedLimit > prot.memLimitBytes + 65536) prot.warnings.push(`memory limit not applied by the kernel (reads ${appliedLimit})`);
      }
    } catch (e) {
      prot.warnings.push(`cgroup setup failed (${(e as Error).message}); running without isolation`);
      removeCgroups(plan.cgroupDirs);
      plan = { kind: 'none', prefix: [], cgroupDirs: [] };
    }
  }
  held = spawnHeld(rec.argv, { cwd: rec.cwd, env, logFd: logFd!, prefix: plan.prefix });
} catch (e) {
  failStart(e);
}
fs.closeSync(logFd!);

const pid = held.pid;
if (plan.prefix.length && awaitPhase(pid, (p) => p !== 'prefix', 10_000) !== 'wrapper') {
  held.abort();
  failStart(new JobqError('START_FAILED', `${plan.prefix[0]} did not start the job (its error, if any, is in ${rec.log})`));
}
const stat = readStat(pid);
if (plan.cgroupDirs.length) enterCgroups(plan, pid);
if (prot.oomScoreAdj) {
  const want = prot.oomScoreAdj.requested;
  try {
    fs.writeFileSync(`/proc/${pid}/oom_score_adj`, String(want));
  } catch {
    /* read back below says what the kernel kept */
  }
  const actual = Number(fs.readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim());
  prot.oomScoreAdj.actual = actual;
  if (actual !== want) prot.warnings.push(`oom_score_adj ${want} refused by the kernel (lowering needs CAP_SYS_RESOURCE); it stays ${actual}`);
}
if (prot.memLimitBytes && plan.kind === 'systemd-scope') {
  // A user scope without delegation silently drops MemoryMax (systemd #10581): check what the kernel holds.
  const max = scopeMemoryMax(pid);
  if (max && max <= prot.memLimitBytes + 65536) prot.memLimitHow = 'cgroup';
  else prot.warnings.push('systemd scope ignored MemoryMax (no memory delegation); using RLIMIT_AS instead');
}
if (prot.memLimitBytes && !prot.memLimitHow) {
  prot.memLimitHow = 'rlimit-as';
  rlimitKb = Math.ceil(prot.memLimitBytes / 1024);
  if (plan.kind !== 'systemd-scope') prot.warnings.push('no cgroup here: --mem-limit falls back to RLIMIT_AS (caps virtual address space; allocations fail instead of an OOM kill)');
}
prot.isolation = plan.kind;
if (plan.cgroupDirs.length) prot.cgroups = plan.cgroupDirs;
if (plan.unit) prot.unit = plan.unit;

const target: JobTarget = { job: { pid, startTicks: stat?.startTicks ?? 0, pgid: pid }, cgroups: plan.cgroupDirs };
const startedAt = new Date().toISOString();
const t0 = Date.now();
save({ status: 'running', startedAt }, { supervisor: self, job: target.job, protection: prot });
held.release(rlimitKb);
// The launcher returns only once the command itself runs (or already ended), not merely the wrapper.
awaitPhase(pid, (p) => p !== 'wrapper', 2000);
appendEvent(events, 'info', 'started', { id, pid, isolation: plan.kind });
notifyLauncher();

/** Polls (bounded, 1 ms steps) the held process's phase until `done` accepts it; returns the last phase seen. */
function awaitPhase(p: number, done: (phase: ReturnType<typeof heldPhase>) => boolean, ms: number): ReturnType<typeof heldPhase> {
  const until = Date.now() + ms;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let phase = heldPhase(p);
  while (!done(phase) && phase !== 'gone' && Date.now() < until) {
    Atomics.wait(pause, 0, 0, 1);
    phase = heldPhase(p);
  }
  return phase;
}

// Monitoring: peak memory and CPU where no cgroup measures them, idle timeout, log cap.
let peakBytes = 0;
let cpuTicks = 0;
// Size and mtime together: a capped log shrinks, \r progress may rewrite in place; any change is output.
let lastLogMark = -1;
let lastLogChange = Date.now();
let timedOut: 'wall' | 'idle' | undefined;
let ending = false;
let lastMemScan = 0;

function sample(): void {
  // Without a cgroup, memory means a walk of /proc: every 2s is enough for a peak and cheap with many jobs.
  if (!plan.cgroupDirs.length && Date.now() - lastMemScan >= 2000) {
    lastMemScan = Date.now();
    const procs = jobProcesses(target).procs;
    peakBytes = Math.max(peakBytes, rssBytes(procs));
    const leader = procs.find((p) => p.pid === pid);
    if (leader) cpuTicks = Math.max(cpuTicks, leader.utimeTicks + leader.stimeTicks);
  }
  let mark = lastLogMark;
  try {
    const st = fs.statSync(rec.log);
    mark = st.size + st.mtimeMs;
    if (rec.maxLogBytes && st.size > rec.maxLogBytes) capLog(rec.log, rec.maxLogBytes);
  } catch {
    /* log removed: treat as no output */
  }
  if (mark !== lastLogMark) {
    lastLogMark = mark;
    lastLogChange = Date.now();
  } else if (prot.idleTimeoutMs && Date.now() - lastLogChange >= prot.idleTimeoutMs) {
    void end('idle');
  }
}

async function end(reason: 'wall' | 'idle'): Promise<void> {
  if (ending) return;
  ending = true;
  timedOut = reason;
  const what = reason === 'wall' ? `wall-clock timeout ${prot.timeoutMs}ms` : `no output for ${prot.idleTimeoutMs}ms`;
  appendEvent(events, 'warn', 'timeout', { id, reason: what });
  const res = await terminateJob(target, {
    signal: prot.stopSignal as NodeJS.Signals,
    graceMs: prot.graceMs,
    onEscalate: (left) => appendEvent(events, 'warn', 'escalated to SIGKILL', { id, left }),
  });
  appendEvent(events, 'info', 'timeout ended the job', { id, ...res });
}

const sampleEvery = prot.idleTimeoutMs ? Math.min(1000, Math.max(100, prot.idleTimeoutMs / 5)) : 1000;
const sampler = setInterval(sample, sampleEvery);
sample();
const timers: NodeJS.Timeout[] = [];
if (prot.timeoutMs) timers.push(setTimeout(() => void end('wall'), prot.timeoutMs));
if (prot.timeoutMs && prot.warnSignal && prot.warnSignal.leadMs < prot.timeoutMs) {
  const w = prot.warnSignal;
  timers.push(setTimeout(() => {
    appendEvent(events, 'info', 'warning signal', { id, signal: w.signal });
    signalJob(target, w.signal as NodeJS.Signals);
  }, prot.timeoutMs - w.leadMs));
}

held.child.on('exit', (code, signal) => {
  clearInterval(sampler);
  timers.forEach(clearTimeout);
  const cg = cgroupStats(plan.kind, plan.cgroupDirs);
  const outcome: Outcome = {
    exitCode: code,
    signal,
    endedAt: new Date().toISOString(),
    durationMs: Date.now() - t0,
    peakMemBytes: cg.peakBytes ?? (peakBytes || undefined),
    cpuMs: cg.cpuMs ?? Math.round((cpuTicks * 1000) / CLK_TCK),
  };
  const cancel = store.readCancel(id);
  const state = classifyExit(startedAt, outcome, {
    cancel,
    timeout: timedOut,
    oom: (cg.oomKills ?? 0) > 0,
    cgroupKnown: plan.cgroupDirs.length > 0,
  });
  if (plan.cgroupDirs.length) {
    const left = removeCgroups(plan.cgroupDirs);
    if (left.length) prot.warnings.push(`processes of the job still run in ${left[0]} after it ended`);
  }
  save(state, { protection: prot });
  store.setActive(id, false);
  appendEvent(events, 'info', 'recorded', { id, status: state.status, exitCode: code, signal });
  if (rec.onExit) runOnExit(rec, events);
});
