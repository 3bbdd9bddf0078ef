// Runs a job's --on-exit command with the job's environment plus its outcome; its result never touches the record.
import { exitCodeOf, type JobRecord } from '../domain/job.js';
import { outcomeOf } from '../domain/lifecycle.js';
import { spawnShell } from '../process/spawn.js';
import { appendEvent } from '../store/events.js';

/** Starts the hook (sh -c CMD in the job's cwd and environment, output appended to the job's log) and logs how it ended. */
export function runOnExit(rec: JobRecord, jobEnv: Record<string, string>, logFd: number | undefined, eventsLog: string): Promise<void> {
  const s = rec.state;
  const env: Record<string, string> = {
    ...jobEnv,
    JOBQ_JOB_ID: rec.id,
    JOBQ_JOB_NAME: rec.name,
    JOBQ_JOB_STATE: s.status,
    JOBQ_JOB_EXIT_CODE: String(exitCodeOf(s)),
    JOBQ_JOB_SIGNAL: outcomeOf(s)?.signal || '',
    JOBQ_LOG: rec.log,
  };
  return new Promise((resolve) => {
    const child = spawnShell(rec.onExit!, { cwd: rec.cwd, env, logFd });
    // A hook that hangs must not keep the supervisor (and its slot) forever.
    const timer = setTimeout(() => {
      child.unref();
      resolve();
    }, 10 * 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      appendEvent(eventsLog, 'warn', 'on-exit failed to start', { id: rec.id, error: e.message });
      resolve();
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      appendEvent(eventsLog, code === 0 ? 'info' : 'warn', 'on-exit finished', { id: rec.id, exitCode: code, signal });
      resolve();
    });
  });
}
