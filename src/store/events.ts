// jobq's own logs, written with pino: events.log (what jobq did: one line per state change, cancels, queues) and each
// job's supervisor.log (what its supervisor decided and why). pino is loaded on the first line a process writes —
// never by status or a plain run — and a supervisor holds its lines until its job has started, then writes them.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;
const ROTATE_BYTES = 10 * 1024 * 1024;
export type EventLevel = keyof typeof LEVELS;

const load = createRequire(import.meta.url);
let held: Array<[string, EventLevel, string, Record<string, unknown>, number]> | undefined;
const APPEND = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW;
let logger: Logger | undefined;
// Where the next line goes, and the time it happened (held lines keep theirs): set around each call.
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
    const dest = {
      write(line: string) {
        const fd = fs.openSync(target, APPEND, 0o600);
        try {
          fs.writeSync(fd, line);
        } finally {
          fs.closeSync(fd);
        }
      },
    };
    logger = pino({ base: { pid: process.pid, hostname: process.env.HOSTNAME || readHostname() }, timestamp: () => `,"time":${at || Date.now()}` }, dest);
  }
  return logger;
}

function readHostname(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();
  } catch {
    return 'localhost';
  }
}

function write(file: string, level: EventLevel, msg: string, fields: Record<string, unknown>, time: number): void {
  try {
    const log = theLogger();
    // One older generation is kept (events.log.1), so the log cannot grow without bound.
    if ((fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0) > ROTATE_BYTES) fs.renameSync(file, `${file}.1`);
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

/** Appends one line (held in memory while holdEvents() is on), dated now or at `time`; never throws. */
export function appendEvent(file: string, level: EventLevel, msg: string, fields: Record<string, unknown> = {}, time = Date.now()): void {
  if (held) held.push([file, level, msg, fields, time]);
  else write(file, level, msg, fields, time);
}

/** Holds lines in memory (a supervisor, until its job runs: loading the logger must not delay the job). */
export function holdEvents(): void {
  held ??= [];
}

/** Writes the held lines, in order, with the times they happened, and writes at once from now on. */
export function releaseEvents(): void {
  const lines = held ?? [];
  held = undefined;
  for (const [file, level, msg, fields, time] of lines) write(file, level, msg, fields, time);
}

/** Name of a pino level number. */
export function levelName(n: number): string {
  return (Object.entries(LEVELS).find(([, v]) => v === n)?.[0] ?? String(n)) as string;
}
