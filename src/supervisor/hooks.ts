// Runs a job's --on-exit command with the outcome in its environment; its result never touches the record.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { exitCodeOf, type JobRecord } from '../domain/job.js';
import { appendEvent } from '../store/events.js';

/** Starts the hook (sh -c CMD, output appended to the job's log) and logs how it ended. */
export function runOnExit(rec: JobRecord, eventsLog: string): void {
  const s = rec.state;
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    JOBQ_JOB_ID: rec.id,
    JOBQ_JOB_NAME: rec.name,
    JOBQ_JOB_STATE: s.status,
    JOBQ_JOB_EXIT_CODE: String(exitCodeOf(s)),
    JOBQ_JOB_SIGNAL: ('signal' in s && s.signal) || '',
    JOBQ_LOG: rec.log,
  };
  delete env.JOBQ_SUPERVISOR_SAVED_ENV;
  let fd: number | 'ignore' = 'ignore';
  try {
    fd = fs.openSync(rec.log, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW);
  } catch {
    /* no log: discard the hook's output */
  }
  const child = spawn('/bin/sh', ['-c', rec.onExit!], { cwd: rec.cwd, env, detached: true, stdio: ['ignore', fd, fd] });
  if (typeof fd === 'number') fs.closeSync(fd);
  const timer = setTimeout(() => child.unref(), 10 * 60_000);
  child.on('error', (e) => appendEvent(eventsLog, 'warn', 'on-exit failed to start', { id: rec.id, error: e.message }));
  child.on('exit', (code, signal) => {
    clearTimeout(timer);
    appendEvent(eventsLog, code === 0 ? 'info' : 'warn', 'on-exit finished', { id: rec.id, exitCode: code, signal });
  });
}
