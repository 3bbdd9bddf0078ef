// jobq's own event log: pino-format JSON lines (level, time, pid, hostname, msg) appended in one write each.
import fs from 'node:fs';
import os from 'node:os';

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;
const ROTATE_BYTES = 10 * 1024 * 1024;
export type EventLevel = keyof typeof LEVELS;

/** Appends one event line; never throws (an event log must not break a job). */
export function appendEvent(file: string, level: EventLevel, msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level: LEVELS[level], time: Date.now(), pid: process.pid, hostname: os.hostname(), ...fields, msg });
  try {
    // One older generation is kept (events.log.1), so the log cannot grow without bound.
    if ((fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0) > ROTATE_BYTES) fs.renameSync(file, `${file}.1`);
    fs.appendFileSync(file, line + '\n', { mode: 0o600 });
  } catch {
    /* the event log is best effort */
  }
}

/** Name of a pino level number. */
export function levelName(n: number): string {
  return (Object.entries(LEVELS).find(([, v]) => v === n)?.[0] ?? String(n)) as string;
}
