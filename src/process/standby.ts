// The standby supervisor: for `run`, bin/jobq starts the job's supervisor beside the CLI (both Node starts overlap),
// with a pipe from the CLI's fd 4 to the standby's fd 4; the CLI records the job with the standby as its supervisor
// and hands it over (one JSON line), or closes the pipe and the standby exits. docs/development.md: what it saves.
import fs from 'node:fs';
import { JobqError } from '../domain/errors.js';
import type { JobRecord, ProcId } from '../domain/job.js';
import { awaitPhase, isAlive, pauseSync, readStat } from './proc.js';

/** The pipe's fd on both sides: the CLI writes to its fd 4, the standby reads its fd 4 (its stdio is /dev/null). */
const FD = 4;

/** What the CLI hands over: the supervisor's argv of the spawned path, plus the job's environment. */
export interface HandOff {
  home: string;
  id: string;
  token: string;
  env: Record<string, string>;
}

let standby: ProcId | undefined;
let pipeOpen = false;

/**
 * In the CLI, before anything else: takes the standby bin/jobq announced in JOBQ_STANDBY (its pid) if it provably is
 * ours — our own child with a pipe on fd 4 — and drops the variable, so no job or tool sees it.
 */
export function adoptStandby(env: NodeJS.ProcessEnv = process.env): void {
  const v = env.JOBQ_STANDBY;
  delete env.JOBQ_STANDBY;
  if (!v || !/^\d+$/.test(v)) return;
  const st = readStat(Number(v));
  if (!st || st.ppid !== process.pid || st.state === 'Z') return;
  try {
    // The very pipe the standby reads (its fd 4, or fd 0 before it moved it), held write-only: where bash could not
    // make it, fd 4 may be a pipe of node's own, which must never be written to or closed.
    const mine = fs.fstatSync(FD);
    const flags = /^flags:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${FD}`, 'latin1'));
    if (!mine.isFIFO() || !flags || (Number.parseInt(flags[1]!, 8) & 3) !== fs.constants.O_WRONLY) return;
    const same = (fd: number) => {
      try {
        const theirs = fs.statSync(`/proc/${st.pid}/fd/${fd}`);
        return theirs.ino === mine.ino && theirs.dev === mine.dev;
      } catch {
        return false;
      }
    };
    if (!same(4) && !same(0)) return;
  } catch {
    return;
  }
  standby = { pid: st.pid, startTicks: st.startTicks };
  pipeOpen = true;
}

/** The descriptor of the pipe to an adopted standby, while it is open. */
export function standbyFd(): number | undefined {
  return pipeOpen ? FD : undefined;
}

/** The standby for a job about to be recorded as started at once (its identity goes in the record), at most once. */
export function takeStandby(): ProcId | undefined {
  const s = standby;
  standby = undefined;
  return s;
}

/** Lets a standby not taken go: it exits when its pipe closes (as it does when this process exits). */
export function dismissStandby(): void {
  if (!standby) return;
  standby = undefined;
  closePipe();
}

function closePipe(): void {
  if (!pipeOpen) return;
  pipeOpen = false;
  try {
    fs.closeSync(FD);
  } catch {
    /* already closed */
  }
}

/** Gives the recorded job to the standby; false if it is gone (nothing was handed over). */
export function handOff(msg: HandOff): boolean {
  if (!pipeOpen) return false;
  const buf = Buffer.from(JSON.stringify(msg) + '\n');
  try {
    for (let off = 0; off < buf.length; ) off += fs.writeSync(FD, buf, off);
    return true;
  } catch {
    return false;
  } finally {
    closePipe();
  }
}

/** In the standby: waits (blocking: it has nothing else to do) for the CLI's one line; undefined if it sent none. */
export function awaitHandOff(fd = FD): HandOff | undefined {
  let text: string;
  try {
    // Reads to EOF: the CLI closes the pipe once it wrote the line (or without writing it).
    text = fs.readFileSync(fd, 'utf8');
  } catch {
    return undefined;
  } finally {
    try {
      fs.closeSync(fd);
    } catch {
      /* closed */
    }
  }
  if (!text.endsWith('\n')) return undefined;
  try {
    const m = JSON.parse(text) as HandOff;
    const ok =
      typeof m.home === 'string' &&
      typeof m.id === 'string' &&
      typeof m.token === 'string' &&
      !!m.env &&
      typeof m.env === 'object' &&
      Object.values(m.env).every((x) => typeof x === 'string');
    return ok ? m : undefined;
  } catch {
    return undefined;
  }
}

/** How long `run` waits for the supervisor's word: JOBQ_START_TIMEOUT (a duration in ms or with a unit), else 30s. */
export function startTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const m = /^(\d+)(ms|s)?$/.exec(env.JOBQ_START_TIMEOUT ?? '');
  if (!m) return 30_000;
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

// The first moments in fine steps (the job starts within tens of ms; a timer cannot wait under 1 ms), then 2 ms.
const nap = (waited: number) => (waited < 200 ? pauseSync(0.25) : new Promise((r) => setTimeout(r, 2)));

/**
 * In the CLI, after the hand-off: 'done' once the record says what happened and a job released to run has exec'd its
 * command (what the spawned supervisor's fd 3 word says); 'gone' if the standby died with the job not started (the
 * caller starts a supervisor instead); START_FAILED past the timeout.
 */
export async function awaitStandby(read: () => JobRecord, standby: ProcId, timeoutMs = startTimeoutMs()): Promise<'done' | 'gone'> {
  const t0 = Date.now();
  const until = t0 + timeoutMs;
  for (;;) {
    let rec: JobRecord | undefined;
    try {
      rec = read();
    } catch {
      /* mid-change or unreadable: the standby's fate decides */
    }
    if (rec && rec.state.status !== 'starting') {
      // Released: the command itself runs within moments, waited for as the supervisor waits for it (up to 2 s).
      if (rec.state.status === 'running' && rec.job) awaitPhase(rec.job.pid, (p) => p !== 'wrapper', 2000);
      return 'done';
    } else if (!isAlive(standby)) return rec ? 'gone' : 'done';
    if (Date.now() > until) throw new JobqError('START_FAILED', `the supervisor did not report within ${timeoutMs / 1000}s`);
    await nap(Date.now() - t0);
  }
}
