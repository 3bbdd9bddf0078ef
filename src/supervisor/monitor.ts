// Watches a running job until it exits: its log (through the supervisor's own descriptor), memory, timeouts.

import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { GPU_MEM_PAST, type GuardEnd, type Protection } from '../domain/job.js';
import { formatSize, formatSpan } from '../domain/units.js';
import { canFreeze, cgroupStats, freezeCgroups, isFrozen, thawCgroups } from '../process/isolation.js';
import { CLK_TCK, cgroupPids, type ProcStat, readStat, rssBytes } from '../process/proc.js';
import { type JobTarget, jobProcesses, signalLeader, terminateJob } from '../process/signals.js';
import { appendEvent } from '../store/events.js';
import { sharedGpuApps } from '../store/gpuapps.js';
import type { TimelineWriter } from '../store/timeline.js';
import { capLogFd } from './logcap.js';

/** What the monitor saw by the time the job's leader exited. */
export interface Ending {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** When the exit was seen: a cancel asked for after this did not end the job. */
  seenAt: number;
  timedOut?: 'wall' | 'idle';
  /** Ended by a guard: memory pressure (`pressure: some avg10 63% > 40% for 30s`), or GPU memory past --gpu-mem. */
  guardEnd?: GuardEnd;
  peakBytes: number;
  cpuTicks: number;
  /** The most GPU memory its processes held at a sample (bytes), where it holds GPUs and nvidia-smi answered. */
  peakVramBytes?: number;
}

export interface MonitorInput {
  id: string;
  child: ChildProcess;
  target: JobTarget;
  prot: Protection;
  maxLogBytes?: number;
  /** The supervisor's own O_RDWR descriptor of the log: the file the job writes, whatever happens to its path. */
  logFd: number;
  /** The job's supervisor.log: caps, timeouts, signals and why. */
  diag: string;
  /** True while the job is paused (its idle time does not count). */
  paused?: () => boolean;
  /** True once a cancel was asked for: a timeout then is not the cause, and must not signal over the cancel's grace. */
  cancelled?: () => boolean;
  /** Where memory and CPU samples go, and how often (ms). */
  timeline?: TimelineWriter;
  sampleMs?: number;
  /** It holds GPUs (their UUIDs where known): its GPU memory is sampled too, through the state dir's shared answer in `cache`. */
  gpus?: { cache: string; uuids?: string[] };
  /** Its --gpu-mem reservation per GPU, and how many it holds: past it, `over` is told once, and with `enforce` the job ends. */
  vramLimit?: { perGpu: number; gpus: number; enforce: boolean; over(text: string): void };
  /** The memory pressure guard, ticked with the sampler; `end` ends the job for pressure. */
  guard?: { tick(end: (reason: string) => void): void };
}

// Node's timers hold at most 2^31-1 ms (~24.8 days); longer waits are chained.
const MAX_TIMER = 2 ** 31 - 1;

/** A timeout of any length, cancellable. */
export function longTimeout(fn: () => void, ms: number): { clear(): void } {
  let t: NodeJS.Timeout;
  const arm = (left: number) => {
    t = setTimeout(() => (left > MAX_TIMER ? arm(left - MAX_TIMER) : fn()), Math.min(left, MAX_TIMER));
  };
  arm(Math.max(0, ms));
  return { clear: () => clearTimeout(t) };
}

const fstatSize = (fd: number): number | undefined => {
  try {
    return fs.fstatSync(fd).size;
  } catch {
    return undefined; // cannot fail on an open descriptor; never let it end the supervisor
  }
};

/** What the monitor's parts share while the job runs: its clocks, its figures, and what is in flight. */
export interface Watch {
  m: MonitorInput;
  cgroups: string[];
  freezable: boolean;
  started: number;
  /** The log size past which a cut starts (see capTrigger). */
  trigger: number;
  peakBytes: number;
  cpuTicks: number;
  /** The log's size + mtime when last looked at, and when that last changed (the idle clock). */
  lastMark: number;
  lastChange: number;
  lastMemScan: number;
  /** GPU memory at the last answer of nvidia-smi, its peak, and whether a question is out. */
  vram?: number;
  peakVram?: number;
  askingVram?: boolean;
  vramOver?: boolean;
  /** The job's pids at the last sample that listed them (no cgroup to count by): VRAM is matched to them without a second scan. */
  pids?: number[];
  timedOut?: 'wall' | 'idle';
  guardEnd?: GuardEnd;
  ending?: Promise<void>;
  capping?: Promise<void>;
  retry?: NodeJS.Timeout;
  watcher?: fs.FSWatcher;
  poll?: NodeJS.Timeout;
  sampler?: NodeJS.Timeout;
  timers: Array<{ clear(): void }>;
  /** Set once the leader exited: nothing starts after that. */
  done: boolean;
}

/** A monitor's starting state: its own part so that tests can drive the other parts on a real log and job. */
export function newWatch(m: MonitorInput): Watch {
  const cgroups = m.target.cgroups ?? [];
  return {
    m,
    cgroups,
    freezable: canFreeze(cgroups),
    started: Date.now(),
    trigger: capTrigger(m.maxLogBytes),
    peakBytes: 0,
    cpuTicks: 0,
    lastMark: -1,
    lastChange: Date.now(),
    lastMemScan: 0,
    timers: [],
    done: false,
  };
}

/** Where a cut starts: a little before the cap, as a fast writer adds more while the supervisor wakes and freezes it. */
export function capTrigger(maxLogBytes: number | undefined): number {
  return maxLogBytes ? maxLogBytes - Math.min(1024 * 1024, Math.floor(maxLogBytes / 4)) : 0;
}

/** Starts a cut once the log passes the trigger: one at a time, whatever wakes the monitor meanwhile. */
export function capIfOver(w: Watch): void {
  const max = w.m.maxLogBytes;
  if (!max || w.capping !== undefined) return;
  if ((fstatSize(w.m.logFd) ?? 0) <= w.trigger) return;
  w.capping = capLog(w, max).finally(() => {
    w.capping = undefined;
  });
}

/** Cuts the log to the cap, the job frozen around the cut where it can be, and says so in the diag log. */
async function capLog(w: Watch, max: number): Promise<void> {
  const { m, cgroups } = w;
  // Frozen, the job cannot append between the copy's last check and the truncate; it cannot tell it was held.
  const freeze = w.freezable && !isFrozen(cgroups);
  const held = freeze ? await freezeCgroups(cgroups, 200) : false;
  try {
    const dropped = capLogFd(m.logFd, max, w.trigger);
    if (dropped) appendEvent(m.diag, 'info', 'log capped', { id: m.id, dropped, frozen: held });
  } catch (e) {
    appendEvent(m.diag, 'warn', 'log cap failed', { id: m.id, error: (e as Error).message });
  } finally {
    // Thawed even when the freeze did not complete in time: a job must never stay frozen by a cap.
    if (freeze) thawCgroups(cgroups);
  }
}

/** Looks at the log: a new size or mtime restarts the idle clock, and a log past the trigger is cut. */
export function noteLog(w: Watch): void {
  let mark = w.lastMark;
  try {
    const st = fs.fstatSync(w.m.logFd);
    mark = st.size + st.mtimeMs;
  } catch {
    /* cannot fail on an open descriptor; keep the last mark */
  }
  if (mark !== w.lastMark) {
    w.lastMark = mark;
    w.lastChange = Date.now();
  }
  capIfOver(w);
}

/**
 * Memory and CPU every sampleMs (2 s by default): the cgroup's own counts, else a walk of /proc for the job's
 * processes; the first, at its start, reads the leader alone (all the job is yet: a walk costs ~4 ms, a short job
 * paid it for nothing).
 */
export function sampleUsage(w: Watch, atStart = false): void {
  const { m, cgroups } = w;
  if (Date.now() - w.lastMemScan < (m.sampleMs ?? 2000)) return;
  w.lastMemScan = Date.now();
  let mem: number;
  let cpu: number;
  const cg = cgroups.length ? cgroupStats(m.prot.isolation, cgroups) : {};
  if (cg.currentBytes !== undefined) {
    mem = cg.currentBytes;
    cpu = cg.cpuMs ?? 0;
  } else {
    const procs = atStart ? leaderOf(m.target) : jobProcesses(m.target).procs;
    w.pids = procs.map((p) => p.pid);
    mem = rssBytes(procs);
    w.peakBytes = Math.max(w.peakBytes, mem);
    const ticks = procs.reduce((n, p) => n + p.utimeTicks + p.stimeTicks, 0);
    const leader = procs.find((p) => p.pid === m.target.job.pid);
    if (leader) w.cpuTicks = Math.max(w.cpuTicks, leader.utimeTicks + leader.stimeTicks);
    cpu = (ticks * 1000) / CLK_TCK;
  }
  // With a --mem-high, the throttle count so far: the chart shows when the job was slowed.
  const high = m.prot.memHighBytes && cg.highEvents !== undefined ? { high: cg.highEvents } : {};
  if (m.gpus) askVram(w);
  m.timeline?.add({ t: (Date.now() - w.started) / 1000, mem, cpu, ...high, ...(w.vram !== undefined ? { vram: w.vram } : {}) });
}

/** The job's leader, if it still is the process recorded. */
function leaderOf(t: JobTarget): ProcStat[] {
  const p = readStat(t.job.pid);
  return p && p.startTicks === t.job.startTicks ? [p] : [];
}

/** Asks nvidia-smi (without waiting on it) what GPU memory the job's processes hold; the answer is the next sample's. */
function askVram(w: Watch): void {
  if (w.askingVram || w.done) return;
  w.askingVram = true;
  // An answer from this sample interval will do: the supervisors of a state dir share one nvidia-smi per interval.
  void sharedGpuApps(w.m.gpus!.cache, sampleEvery(w.m) * 0.8)
    .then((apps) => {
      if (w.done) return;
      // No answer: no figure, rather than the last one shown as now.
      if (!apps) {
        w.vram = undefined;
        return;
      }
      // Its cgroup lists every process of the job without a scan of /proc (which costs more than nvidia-smi here).
      // On cgroup v1 each controller's dir lists the same pids: each counts once.
      const pids = new Set(w.cgroups.length ? w.cgroups.flatMap(cgroupPids) : (w.pids ?? jobProcesses(w.m.target).procs.map((p) => p.pid)));
      const onGpu = new Map<string, number>();
      let total = 0;
      for (const a of apps) {
        if (!pids.has(a.pid)) continue;
        total += a.bytes;
        if (a.uuid) onGpu.set(a.uuid, (onGpu.get(a.uuid) ?? 0) + a.bytes);
      }
      w.vram = total;
      w.peakVram = Math.max(w.peakVram ?? 0, total);
      checkVram(w, total, onGpu);
    })
    .catch(() => undefined)
    .finally(() => {
      w.askingVram = false;
    });
}

/**
 * GPU memory past the --gpu-mem reservation, on any one of its GPUs where nvidia-smi named them (else over all of
 * them): said once (nothing holds VRAM to a reservation); ended with --gpu-mem-enforce.
 */
export function checkVram(w: Watch, total: number, onGpu: Map<string, number> = new Map()): void {
  const lim = w.m.vramLimit;
  if (!lim || w.done) return;
  const uuids = w.m.gpus?.uuids ?? [];
  const [used, limit] = uuids.length ? [Math.max(0, ...uuids.map((u) => onGpu.get(u) ?? 0)), lim.perGpu] : [total, lim.perGpu * lim.gpus];
  if (used <= limit) return;
  const past = `${formatSize(used)} > ${formatSize(limit)} reserved`;
  if (!w.vramOver) {
    w.vramOver = true;
    lim.over(`${GPU_MEM_PAST} (${past}): nothing holds VRAM to a reservation, so jobs sharing its GPU may run out`);
  }
  if (lim.enforce) endForGuard(w, { by: 'gpu-mem', reason: `gpu-mem: ${past}` });
}

/** The idle clock's decision: a job quiet for --idle-timeout ends; paused time is not idle time. */
export function checkIdle(w: Watch): void {
  const { m } = w;
  if (!m.prot.idleTimeoutMs) return;
  // Paused time is not idle time: the clock restarts when the job is resumed.
  if (m.paused?.()) w.lastChange = Date.now();
  else if (Date.now() - w.lastChange >= m.prot.idleTimeoutMs) endFor(w, 'idle');
}

/** One tick of the sampler: usage, the log, then the idle clock (which the log just moved), then memory pressure. */
function sample(w: Watch, atStart = false): void {
  sampleUsage(w, atStart);
  noteLog(w);
  checkIdle(w);
  if (!w.ending && !w.done) w.m.guard?.tick((reason) => endForGuard(w, { by: 'pressure', reason }));
}

/** Ends the job for a guard (pressure, or GPU memory): TERM -> grace -> KILL, unless a cancel or timeout owns the end. */
export function endForGuard(w: Watch, end: GuardEnd): void {
  if (w.ending || w.done || w.m.cancelled?.()) return;
  w.guardEnd = end;
  const { m } = w;
  w.ending = terminateJob(m.target, {
    signal: m.prot.stopSignal as NodeJS.Signals,
    graceMs: m.prot.graceMs,
    onEscalate: (left) => appendEvent(m.diag, 'warn', 'escalated to SIGKILL', { id: m.id, left }),
  }).then((res) => appendEvent(m.diag, 'info', `${end.by} ended the job`, { id: m.id, reason: end.reason, ...res }));
}

/** Ends the job for a timeout once: a cancel under way owns the ending, so the timeout waits behind it. */
export function endFor(w: Watch, reason: 'wall' | 'idle'): void {
  if (w.ending || w.done) return;
  // A cancel under way owns the ending; should its jobq die before the job does, the timeout fires after all.
  if (w.m.cancelled?.()) {
    clearTimeout(w.retry);
    w.retry = setTimeout(() => endFor(w, reason), 500);
    return;
  }
  w.ending = terminateFor(w, reason);
}

/** A timeout's TERM -> grace -> KILL of the whole job, with why and how it went in the diag log. */
async function terminateFor(w: Watch, reason: 'wall' | 'idle'): Promise<void> {
  const { m } = w;
  const { prot } = m;
  w.timedOut = reason;
  const what = reason === 'wall' ? `wall-clock timeout ${formatSpan(prot.timeoutMs ?? 0)}` : `no output for ${formatSpan(prot.idleTimeoutMs ?? 0)}`;
  appendEvent(m.diag, 'warn', 'timeout', { id: m.id, reason: what });
  const res = await terminateJob(m.target, {
    signal: prot.stopSignal as NodeJS.Signals,
    graceMs: prot.graceMs,
    onEscalate: (left) => appendEvent(m.diag, 'warn', 'escalated to SIGKILL', { id: m.id, left }),
  });
  appendEvent(m.diag, 'info', 'timeout ended the job', { id: m.id, ...res });
}

// Quiet log: inotify (through /proc/self/fd) wakes us on the first write. Busy log: a 1 ms poll instead of a
// callback per write, so a chatty job costs the supervisor little CPU and a flood is still cut within ms.

/** Waits for the log's next write through inotify, then polls it while it is busy. */
function watchQuiet(w: Watch): void {
  if (w.done) return;
  try {
    w.watcher = fs.watch(`/proc/self/fd/${w.m.logFd}`, { persistent: false }, () => {
      w.watcher?.close();
      w.watcher = undefined;
      pollBusy(w, 0);
    });
    w.watcher.on('error', () => undefined);
  } catch {
    /* no inotify: the sampler below still checks */
  }
}

/** Looks at a busy log every 1 ms; `still` counts the polls that saw no change. */
function pollBusy(w: Watch, still: number): void {
  if (w.done) return;
  const before = w.lastMark;
  noteLog(w);
  // 100 polls (~100 ms) without a change: back to waiting for inotify.
  const next = w.lastMark === before ? still + 1 : 0;
  if (next >= 100) watchQuiet(w);
  else w.poll = setTimeout(() => pollBusy(w, next), 1);
}

/** How often the sampler ticks: often enough for the idle timeout (a fifth of it, 100 ms to 1 s) and for sampleMs. */
export function sampleEvery(m: Pick<MonitorInput, 'prot' | 'sampleMs'>): number {
  const idle = m.prot.idleTimeoutMs;
  return Math.min(m.sampleMs ?? 2000, idle ? Math.min(1000, Math.max(100, idle / 5)) : 1000);
}

/** Arms --timeout and the warning signal its lead time before it. */
function armTimeouts(w: Watch): void {
  const { m } = w;
  const { prot } = m;
  if (prot.timeoutMs) w.timers.push(longTimeout(() => endFor(w, 'wall'), prot.timeoutMs));
  const s = prot.warnSignal;
  if (prot.timeoutMs && s && s.leadMs < prot.timeoutMs) {
    w.timers.push(
      longTimeout(() => {
        appendEvent(m.diag, 'info', 'warning signal', { id: m.id, signal: s.signal });
        // To the main process only, as Slurm's --signal=B: does: USR1 would kill DataLoader workers that do not handle it.
        signalLeader(m.target, s.signal as NodeJS.Signals);
      }, prot.timeoutMs - s.leadMs),
    );
  }
}

/** Stops every watch, poll and timer once the leader exited: nothing may act on the job after that. */
export function stopWatching(w: Watch): void {
  w.done = true;
  clearInterval(w.sampler);
  clearTimeout(w.poll);
  w.watcher?.close();
  for (const t of w.timers) t.clear();
  clearTimeout(w.retry);
}

/** Monitors the job until its leader exits; caps the log, enforces timeouts, tracks memory and CPU. */
export function monitor(m: MonitorInput): Promise<Ending> {
  const w = newWatch(m);
  watchQuiet(w);
  w.sampler = setInterval(() => sample(w), sampleEvery(m));
  sample(w, true);
  armTimeouts(w);
  return new Promise((resolve) => {
    m.child.on('exit', (code, signal) => {
      const seenAt = Date.now();
      stopWatching(w);
      // A timeout's TERM-grace-KILL (a straggler may ignore TERM) or a cut in flight goes on past the leader's exit: wait.
      void Promise.allSettled([w.ending, w.capping]).then(() =>
        resolve({
          code,
          signal,
          seenAt,
          timedOut: w.timedOut,
          guardEnd: w.guardEnd,
          peakBytes: w.peakBytes,
          cpuTicks: w.cpuTicks,
          ...(w.peakVram !== undefined ? { peakVramBytes: w.peakVram } : {}),
        }),
      );
    });
  });
}
