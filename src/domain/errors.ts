// Typed errors: every failure jobq reports has a stable code and a documented exit code.

import fs from 'node:fs';

/** Exit codes jobq itself uses (docs/exit-codes.md). Job codes pass through `wait`/`tail -f`. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  timeout: 124,
  failedToStart: 127,
} as const;

export type ErrorCode = 'USAGE' | 'BAD_NAME' | 'NOT_FOUND' | 'CONFLICT' | 'STATE_DIR' | 'IO' | 'START_FAILED' | 'CONFIG' | 'UNSAFE' | 'BUSY';

const exitFor: Record<ErrorCode, number> = {
  USAGE: EXIT.usage,
  BAD_NAME: EXIT.usage,
  CONFIG: EXIT.usage,
  NOT_FOUND: EXIT.failure,
  CONFLICT: EXIT.failure,
  STATE_DIR: EXIT.failure,
  IO: EXIT.failure,
  START_FAILED: EXIT.failedToStart,
  UNSAFE: EXIT.failure,
  BUSY: EXIT.failure,
};

/** An error jobq reports as one line on stderr with a stable code and exit code. */
export class JobqError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'JobqError';
    this.code = code;
    this.exitCode = exitFor[code];
  }
}

/** Wraps a Node I/O error so the message names the action and the path. */
export function ioError(action: string, path: string, err: unknown): JobqError {
  const e = err as NodeJS.ErrnoException;
  const why = e?.code ? `${e.code}${e.message ? ': ' + e.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '') : ''}` : String(err);
  return new JobqError('IO', `cannot ${action} ${path}: ${why}`);
}

/** Whether an error is a lock another jobq held past the wait: a reason to leave the work to it, not a failure. */
export function isBusy(e: unknown): boolean {
  return e instanceof JobqError && e.code === 'BUSY';
}

/**
 * Fault injection for the tests' SIGKILL-at-every-step checks: JOBQ_TEST_CRASH_AT=STEP dies at STEP each time;
 * STEP:FILE only the first time (FILE marks it done).
 */
export function crashAt(step: string): void {
  const [at, marker] = (process.env.JOBQ_TEST_CRASH_AT ?? '').split(':');
  if (at !== step) return;
  if (marker) {
    try {
      fs.closeSync(fs.openSync(marker, 'wx'));
    } catch {
      return;
    }
  }
  process.kill(process.pid, 'SIGKILL');
}
