// jobq's own logs, written with pino: events.log (what jobq did: one line per state change, cancels, queues) and each
// job's supervisor.log (what its supervisor decided and why). pino is loaded on the first line a process writes —
// never by status or run (a queued one too) — and a supervisor, until its job has started, writes pino's lines without pino.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;
const ROTATE_BYTES = 10 * 1024 * 1024;
export type EventLevel = keyof typeof LEVELS;

const load = createRequire(import.meta.url);
// Until the job runs: lines are written as pino writes them, without loading pino (a kill then loses none).
let light = false;
const APPEND = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW;
let logger: Logger | undefined;
// Where the next line goes, and the time it happened: set around each call.
let target = '';
let at = 0;

/**
 * The one pino logger of this process, for every file. pino formats; each line is appended by path (open, one
 * write, close): no descriptor is held, so a rotation by another process, a removed file or a remount never
 * strands a long-lived writer, and a supervisor that runs many jobs keeps one logger, not one per job.
 */
function theLogger(): Logger {
  if (!logger) {
    const pino = load('pino') as typeof import('pino');
    logger = pino(
      { base: { pid: process.pid, hostname: hostname() }, timestamp: () => `,"time":${at || Date.now()}` },
      { write: (line: string) => appendLine(target, line) },
    );
  }
  return logger;
}

function appendLine(file: string, line: string): void {
  const fd = fs.openSync(file, APPEND, 0o600);
  try {
    fs.writeSync(fd, line);
  } finally {
    fs.closeSync(fd);
  }
}

let host: string | undefined;
function hostname(): string {
  if (host === undefined) {
    try {
      host = process.env.HOSTNAME || fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();
    } catch {
      host = 'localhost';
    }
  }
  return host;
}

/** Appends one line, dated now or at `time`; never throws. */
export function appendEvent(file: string, level: EventLevel, msg: string, fields: Record<string, unknown> = {}, time = Date.now()): void {
  try {
    // One older generation is kept (events.log.1), so the log cannot grow without bound.
    if ((fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0) > ROTATE_BYTES) fs.renameSync(file, `${file}.1`);
    if (light) {
      appendLine(file, `${JSON.stringify({ level: LEVELS[level], time, pid: process.pid, hostname: hostname(), ...fields, msg })}\n`);
      return;
    }
    const log = theLogger();
    target = file;
    at = time;
    try {
      log[level](fields, msg);
    } finally {
      at = 0;
    }
  } catch {
    /* jobq's own logs are best effort: they must never break a job */
  }
}

/** Whether lines are written without loading pino (a supervisor, until its job runs: loading must not delay it). */
export function lightEvents(on: boolean): void {
  light = on;
}

/** Name of a pino level number. */
export function levelName(n: number): string {
  return (Object.entries(LEVELS).find(([, v]) => v === n)?.[0] ?? String(n)) as string;
}
