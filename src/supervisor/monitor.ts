// Watches a running job until it exits: its log (through the supervisor's own descriptor), memory, timeouts.

import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { Protection } from '../domain/job.js';
import { formatSpan } from '../domain/units.js';
import { canFreeze, cgroupStats, freezeCgroups, isFrozen, thawCgroups } from '../process/isolation.js';
import { CLK_TCK, rssBytes } from '../process/proc.js';
import { type JobTarget, jobProcesses, signalLeader, terminateJob } from '../process/signals.js';
import { appendEvent } from '../store/events.js';
import type { TimelineWriter } from '../store/timeline.js';
import { capLogFd } from './logcap.js';

/** What the monitor saw by the time the job's leader exited. */
export interface Ending {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** When the exit was seen: a cancel asked for after this did not end the job. */
  seenAt: number;
  timedOut?: 'wall' | 'idle';
  peakBytes: number;
  cpuTicks: number;
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

/** Monitors the job until its leader exits; caps the log, enforces timeouts, tracks memory and CPU. */
export function monitor(m: MonitorInput): Promise<Ending> {
  const { prot, target } = m;
  const cgroups = target.cgroups ?? [];
  let peakBytes = 0;
  let cpuTicks = 0;
  let lastMark = -1;
  let lastChange = Date.now();
  let timedOut: 'wall' | 'idle' | undefined;
  let ending: Promise<void> | undefined;
  let capping: Promise<void> | undefined;
  let lastMemScan = 0;
  const started = Date.now();
  const freezable = canFreeze(cgroups);

  // Cut a little before the cap: a fast writer adds more while the supervisor wakes and freezes it.
  const trigger = m.maxLogBytes ? m.maxLogBytes - Math.min(1024 * 1024, Math.floor(m.maxLogBytes / 4)) : 0;
  const capIfOver = () => {
    if (!m.maxLogBytes || capping !== undefined) return;
    if ((fstatSize(m.logFd) ?? 0) <= trigger) return;
    capping = cap(m.maxLogBytes).finally(() => {
      capping = undefined;
    });
  };
  const cap = async (max: number) => {
    // Frozen, the job cannot append between the copy's last check and the truncate; it cannot tell it was held.
    const freeze = freezable && !isFrozen(cgroups);
    const held = freeze ? await freezeCgroups(cgroups, 200) : false;
    try {
      const dropped = capLogFd(m.logFd, max, trigger);
      if (dropped) appendEvent(m.diag, 'info', 'log capped', { id: m.id, dropped, frozen: held });
    } catch (e) {
      appendEvent(m.diag, 'warn', 'log cap failed', { id: m.id, error: (e as Error).message });
    } finally {
      // Thawed even when the freeze did not complete in time: a job must never stay frozen by a cap.
      if (freeze) thawCgroups(cgroups);
    }
  };

  const noteLog = () => {
    let mark = lastMark;
    try {
      const st = fs.fstatSync(m.logFd);
      mark = st.size + st.mtimeMs;
    } catch {
      /* cannot fail on an open descriptor; keep the last mark */
    }
    if (mark !== lastMark) {
      lastMark = mark;
      lastChange = Date.now();
    }
    capIfOver();
  };

  const sample = () => {
    // Memory and CPU every sampleMs (2 s by default): the cgroup's own counts, else a walk of /proc for the job's processes.
    if (Date.now() - lastMemScan >= (m.sampleMs ?? 2000)) {
      lastMemScan = Date.now();
      let mem: number;
      let cpu: number;
      const cg = cgroups.length ? cgroupStats(prot.isolation, cgroups) : {};
      if (cg.currentBytes !== undefined) {
        mem = cg.currentBytes;
        cpu = cg.cpuMs ?? 0;
      } else {
        const procs = jobProcesses(target).procs;
        mem = rssBytes(procs);
        peakBytes = Math.max(peakBytes, mem);
        const ticks = procs.reduce((n, p) => n + p.utimeTicks + p.stimeTicks, 0);
        const leader = procs.find((p) => p.pid === target.job.pid);
        if (leader) cpuTicks = Math.max(cpuTicks, leader.utimeTicks + leader.stimeTicks);
        cpu = (ticks * 1000) / CLK_TCK;
      }
      m.timeline?.add({ t: (Date.now() - started) / 1000, mem, cpu });
    }
    noteLog();
    if (!prot.idleTimeoutMs) return;
    // Paused time is not idle time: the clock restarts when the job is resumed.
    if (m.paused?.()) lastChange = Date.now();
    else if (Date.now() - lastChange >= prot.idleTimeoutMs) end('idle');
  };

  let retry: NodeJS.Timeout | undefined;
  const end = (reason: 'wall' | 'idle') => {
    if (ending || done) return;
    // A cancel under way owns the ending; should its jobq die before the job does, the timeout fires after all.
    if (m.cancelled?.()) {
      clearTimeout(retry);
      retry = setTimeout(() => end(reason), 500);
      return;
    }
    ending = terminate(reason);
  };
  const terminate = async (reason: 'wall' | 'idle') => {
    timedOut = reason;
    const what = reason === 'wall' ? `wall-clock timeout ${formatSpan(prot.timeoutMs ?? 0)}` : `no output for ${formatSpan(prot.idleTimeoutMs ?? 0)}`;
    appendEvent(m.diag, 'warn', 'timeout', { id: m.id, reason: what });
    const res = await terminateJob(target, {
      signal: prot.stopSignal as NodeJS.Signals,
      graceMs: prot.graceMs,
      onEscalate: (left) => appendEvent(m.diag, 'warn', 'escalated to SIGKILL', { id: m.id, left }),
    });
    appendEvent(m.diag, 'info', 'timeout ended the job', { id: m.id, ...res });
  };

  // Quiet log: inotify (through /proc/self/fd) wakes us on the first write. Busy log: a 1 ms poll instead of a
  // callback per write, so a chatty job costs the supervisor little CPU and a flood is still cut within ms.
  let watcher: fs.FSWatcher | undefined;
  let poll: NodeJS.Timeout | undefined;
  let done = false;
  const watchQuiet = () => {
    if (done) return;
    try {
      watcher = fs.watch(`/proc/self/fd/${m.logFd}`, { persistent: false }, () => {
        watcher?.close();
        watcher = undefined;
        pollBusy(0);
      });
      watcher.on('error', () => undefined);
    } catch {
      /* no inotify: the sampler below still checks */
    }
  };
  const pollBusy = (still: number) => {
    if (done) return;
    const before = lastMark;
    noteLog();
    // 100 polls (~100 ms) without a change: back to waiting for inotify.
    const next = lastMark === before ? still + 1 : 0;
    if (next >= 100) watchQuiet();
    else poll = setTimeout(() => pollBusy(next), 1);
  };
  watchQuiet();
  const every = Math.min(m.sampleMs ?? 2000, prot.idleTimeoutMs ? Math.min(1000, Math.max(100, prot.idleTimeoutMs / 5)) : 1000);
  const sampler = setInterval(sample, every);
  sample();
  const timers: Array<{ clear(): void }> = [];
  if (prot.timeoutMs) timers.push(longTimeout(() => end('wall'), prot.timeoutMs));
  const w = prot.warnSignal;
  if (prot.timeoutMs && w && w.leadMs < prot.timeoutMs) {
    timers.push(
      longTimeout(() => {
        appendEvent(m.diag, 'info', 'warning signal', { id: m.id, signal: w.signal });
        // To the main process only, as Slurm's --signal=B: does: USR1 would kill DataLoader workers that do not handle it.
        signalLeader(target, w.signal as NodeJS.Signals);
      }, prot.timeoutMs - w.leadMs),
    );
  }

  return new Promise((resolve) => {
    m.child.on('exit', (code, signal) => {
      const seenAt = Date.now();
      done = true;
      clearInterval(sampler);
      clearTimeout(poll);
      watcher?.close();
      for (const t of timers) t.clear();
      clearTimeout(retry);
      // A timeout's TERM-grace-KILL (a straggler may ignore TERM) or a cut in flight goes on past the leader's exit: wait.
      void Promise.allSettled([ending, capping]).then(() => resolve({ code, signal, seenAt, timedOut, peakBytes, cpuTicks }));
    });
  });
}
