// Reads /proc: process identity (pid + start time), state, groups, descendants, memory.
import fs from 'node:fs';
import { isFinal, type JobState, type Owner, type ProcId } from '../domain/job.js';

/** The fields of /proc/PID/stat that jobq uses. */
export interface ProcStat {
  pid: number;
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  utimeTicks: number;
  stimeTicks: number;
  startTicks: number;
  rssPages: number;
}

/** Parses /proc/PID/stat; null if the process does not exist. Splits after the last ')' since comm may hold spaces. */
export function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state); field N is f[N - 3].
  return {
    pid,
    state: f[0]!,
    ppid: Number(f[1]),
    pgid: Number(f[2]),
    sid: Number(f[3]),
    utimeTicks: Number(f[11]),
    stimeTicks: Number(f[12]),
    startTicks: Number(f[19]),
    rssPages: Number(f[21]),
  };
}

/** This process's own id: its start time never changes, and a chain of jobs asks for it several times a job. */
let self: ProcId | undefined;

/** Identity of a live process, for recording it. */
export function procId(pid: number): ProcId | null {
  if (pid === process.pid && self) return { ...self };
  const st = readStat(pid);
  if (st && pid === process.pid) self = { pid, startTicks: st.startTicks };
  return st ? { pid, startTicks: st.startTicks } : null;
}

let boot: string | undefined;

/** This boot's id (/proc/sys/kernel/random/boot_id): pids and start times recorded under another boot mean nothing now. */
export function bootId(): string {
  if (boot === undefined) {
    try {
      boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
    } catch {
      boot = '';
    }
  }
  return boot;
}

/** Alive = exists, is not a zombie, and started when the record says (so a reused pid is not it). */
export function isAlive(id: ProcId | undefined): boolean {
  if (!id || !(id.pid > 1)) return false;
  const st = readStat(id.pid);
  return !!st && st.state !== 'Z' && st.state !== 'X' && st.startTicks === id.startTicks;
}

/** True when an owner's MCP session (a `jobq mcp` process) has ended, or ran before this boot. */
export function sessionGone(session: (ProcId & { boot: string }) | undefined): boolean {
  return !!session && (session.boot !== bootId() || !isAlive(session));
}

/** A live job whose owner's MCP session has gone (`status --orphans`): nobody is left to wait for it. */
export function isOrphan(v: { rec: { owner?: Owner }; state: JobState }): boolean {
  return !isFinal(v.state) && sessionGone(v.rec.owner?.session);
}

/** True when the pid exists now but is a different process than the record's (pid reused). */
export function isReused(id: ProcId | undefined): boolean {
  if (!id || !(id.pid > 1)) return false;
  const st = readStat(id.pid);
  return !!st && st.startTicks !== id.startTicks;
}

/** Every live (non-zombie) process on the system. */
export function allProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of fs.readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const st = readStat(Number(name));
    if (st && st.state !== 'Z' && st.state !== 'X') out.push(st);
  }
  return out;
}

/** Live members of a process group (zombies excluded). */
export function groupMembers(pgid: number, procs = allProcesses()): ProcStat[] {
  return procs.filter((p) => p.pgid === pgid);
}

/** Live descendants of the given roots, found by following parent links. */
export function descendantsOf(roots: number[], procs = allProcesses()): ProcStat[] {
  const children = new Map<number, ProcStat[]>();
  for (const p of procs) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const seen = new Set<number>(roots);
  const out: ProcStat[] = [];
  const queue = [...roots];
  while (queue.length) {
    for (const child of children.get(queue.pop()!) ?? []) {
      if (seen.has(child.pid)) continue;
      seen.add(child.pid);
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

/** Pids listed in a cgroup's cgroup.procs (empty when the cgroup is gone). */
export function cgroupPids(dir: string): number[] {
  try {
    return fs.readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

let pageSize: number | undefined;

/** The page size (AT_PAGESZ is not exposed by Node): smaps' first KernelPageSize, read once, 4 KiB of it only. */
function pageBytes(): number {
  if (pageSize === undefined) {
    pageSize = 4096;
    let fd: number | undefined;
    try {
      fd = fs.openSync('/proc/self/smaps', 'r');
      const buf = Buffer.alloc(4096);
      const m = /KernelPageSize:\s+(\d+) kB/.exec(buf.toString('latin1', 0, fs.readSync(fd, buf, 0, buf.length, null)));
      if (m) pageSize = Number(m[1]) * 1024;
    } catch {
      /* keep 4 KiB */
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
  return pageSize;
}

/** Resident memory of the given processes, in bytes. */
export function rssBytes(procs: ProcStat[]): number {
  return procs.reduce((sum, p) => sum + p.rssPages * pageBytes(), 0);
}

/** Clock ticks per second for /proc times (USER_HZ, fixed at 100 on Linux). */
export const CLK_TCK = 100;

/** Pids whose command line shows a jobq supervisor for the given job id. */
export function findSupervisors(jobId: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let cmd: string;
    try {
      cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'latin1');
    } catch {
      continue;
    }
    const args = cmd.split('\0');
    if (args.some((a) => a.endsWith('supervisor.js')) && args.includes(jobId)) out.push(Number(name));
  }
  return out;
}

/**
 * The held job's first program (spawn.ts). It says it is here with one byte on fd 4 (it writes it itself, so any
 * prefix such as systemd-run has exec'd into it: no guess from /proc while an exec is half done), then takes lines
 * on fd 3: `keep:DIR` starts the scope's keeper (in its own session, reading fd 5 until the supervisor closes it, in
 * cgroup DIR), `rlimit:KB` caps address space, `go` marks the gate file on fd 6 (`g`) and runs the command.
 * Anything else, or fd 3 closed: exit 125.
 */
export const HELD_WRAPPER =
  'printf r >&4 && exec 4>&- || exit 125; while IFS= read -r w <&3; do case "$w" in go) printf g >&6; exec 3<&- 5<&- 6>&-; exec "$@" ;; ' +
  'keep:*) (setsid sh -c \'echo 0 >"$1/cgroup.procs" && read -r k\' jobq-keeper "${w#keep:}" <&5 >/dev/null 2>&1 3<&- 6>&- &) ;; ' +
  'rlimit:*) ulimit -v "${w#rlimit:}" || exit 125 ;; *) exit 125 ;; esac; done; exit 125';

/** What the held process is now: still a prefix (systemd-run), the waiting wrapper, mid-exec, the job itself, or gone. */
export function heldPhase(pid: number): 'prefix' | 'wrapper' | 'exec' | 'job' | 'gone' {
  let args: string[];
  try {
    args = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
  } catch {
    return 'gone';
  }
  if (args.length <= 1 && !args[0]) {
    // An empty cmdline is a zombie, or a process between the two halves of an exec (seen for ~3 ms on a slow guest).
    const st = readStat(pid);
    return st && st.state !== 'Z' && st.state !== 'X' ? 'exec' : 'gone';
  }
  if (args[0] === '/bin/sh' && args[1] === '-c' && args[2] === HELD_WRAPPER) return 'wrapper';
  return args[0] === 'systemd-run' ? 'prefix' : 'job';
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Blocks this thread for `ms` (fractions too: a timer cannot wait under 1 ms). */
export function pauseSync(ms: number): void {
  Atomics.wait(pause, 0, 0, ms);
}

/** Polls (bounded, 0.25 ms steps: an exec takes about 1 ms) the held process's phase until `done` accepts it. */
export function awaitPhase(pid: number, done: (phase: ReturnType<typeof heldPhase>) => boolean, ms: number): ReturnType<typeof heldPhase> {
  const until = Date.now() + ms;
  let phase = heldPhase(pid);
  while ((phase === 'exec' || !done(phase)) && phase !== 'gone' && Date.now() < until) {
    pauseSync(0.25);
    phase = heldPhase(pid);
  }
  return phase;
}

let pendingClose: (() => number[]) | undefined;

/**
 * The CLI: what it inherited above fd 2 (a caller's lock, a pipe a reader waits on) is closed before its first detached
 * child starts, so it never reaches a dispatcher, supervisor or job; `keep` says what must stay (the standby's pipe).
 * Not at start: reading commands that start nothing skip the cost (~0.5 ms). Never in a supervisor: fds 3, 4 are its pipes.
 */
export function closeInheritedBeforeChildren(keep: () => number[]): void {
  pendingClose = keep;
}

/** Called before a detached child starts: does what closeInheritedBeforeChildren asked, once. */
export function beforeChild(): void {
  const keep = pendingClose;
  pendingClose = undefined;
  if (keep) closeInherited(keep());
}

/** Closes every descriptor above 2 that this process inherited (those without close-on-exec: Node opens all of its own with it), except `keep`. */
function closeInherited(keep: number[]): void {
  let fds: string[];
  try {
    fds = fs.readdirSync('/proc/self/fd');
  } catch {
    return;
  }
  for (const name of fds) {
    const fd = Number(name);
    if (fd <= 2 || keep.includes(fd)) continue;
    try {
      const flags = /^flags:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'));
      if (flags && !(Number.parseInt(flags[1]!, 8) & 0o2000000)) fs.closeSync(fd);
    } catch {
      /* the readdir's own descriptor, already gone */
    }
  }
}
