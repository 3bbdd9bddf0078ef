// The job record: its schema, lifecycle states and the pure rules over them.
import { JobqError, EXIT } from './errors.js';
import { signalNumber } from './units.js';

export const SCHEMA_VERSION = 1;

/** Identity of a process: a pid is only "the same process" if its start time matches too. */
export interface ProcId {
  pid: number;
  /** /proc/PID/stat field 22, clock ticks since boot. */
  startTicks: number;
}

export type Isolation = 'systemd-scope' | 'cgroup-v2' | 'cgroup-v1' | 'none';

/** How a job finished: exit code or the signal that ended it, with resource figures. */
export interface Outcome {
  exitCode: number | null;
  signal: string | null;
  endedAt: string;
  durationMs: number;
  peakMemBytes?: number;
  cpuMs?: number;
}

export interface CancelRequest {
  at: string;
  by: string;
  signal: string;
}

/** The lifecycle: each state carries exactly the fields that are true in it. */
export type JobState =
  | { status: 'starting' }
  | { status: 'running'; startedAt: string }
  | ({ status: 'succeeded'; startedAt: string } & Outcome)
  | ({ status: 'failed'; startedAt: string } & Outcome)
  | ({ status: 'killed'; startedAt: string; note?: string } & Outcome)
  | ({ status: 'cancelled'; startedAt: string; cancel: CancelRequest } & Outcome)
  | ({ status: 'timeout'; startedAt: string; reason: 'wall' | 'idle' } & Outcome)
  | ({ status: 'oom'; startedAt: string } & Outcome)
  | { status: 'failed-to-start'; error: string; at: string }
  | { status: 'lost'; startedAt?: string; reason: string; detectedAt: string };

export type Status = JobState['status'];
export const FINAL_STATUSES: readonly Status[] = [
  'succeeded', 'failed', 'killed', 'cancelled', 'timeout', 'oom', 'failed-to-start', 'lost',
];

/** Limits and protections asked for at `run`, and what was really applied. */
export interface Protection {
  /** What was asked for (--isolation); `isolation` is what the supervisor really set up. */
  isolationMode: 'auto' | 'scope' | 'cgroup' | 'none';
  isolation: Isolation;
  /** cgroup directories (v1: one per controller) or systemd unit. */
  cgroups?: string[];
  unit?: string;
  memLimitBytes?: number;
  memLimitHow?: 'cgroup' | 'rlimit-as' | 'none';
  oomScoreAdj?: { requested: number; actual: number | null };
  timeoutMs?: number;
  idleTimeoutMs?: number;
  warnSignal?: { signal: string; leadMs: number };
  graceMs: number;
  stopSignal: string;
  warnings: string[];
}

export interface JobRecord {
  schema: number;
  id: string;
  name: string;
  argv: string[];
  cwd: string;
  /** Only what jobq added to the caller's environment (secret-looking values redacted). */
  env: { added: Record<string, string>; presets: string[] };
  host: string;
  user: string;
  jobqVersion: string;
  log: string;
  createdAt: string;
  launcher: ProcId;
  supervisor?: ProcId;
  /** The job's leader; pid = pgid = sid. */
  job?: ProcId & { pgid: number };
  protection: Protection;
  maxLogBytes?: number;
  onExit?: string;
  state: JobState;
}

/** True once nothing can change the record's outcome any more. */
export function isFinal(state: JobState): boolean {
  return FINAL_STATUSES.includes(state.status);
}

/** Exit code `wait`/`tail -f` return for a finished job: its own code, 128+signal for a signal. */
export function exitCodeOf(state: JobState): number {
  switch (state.status) {
    case 'succeeded':
      return 0;
    case 'failed-to-start':
      return EXIT.failedToStart;
    case 'lost':
    case 'starting':
    case 'running':
      return EXIT.failure;
    default:
      if (state.signal) return 128 + (signalNumber(state.signal) || 0);
      return state.exitCode ?? EXIT.failure;
  }
}

/** Classifies a finished process; cancel/timeout/oom knowledge comes from the caller. */
export function classifyExit(
  startedAt: string,
  outcome: Outcome,
  ctx: { cancel?: CancelRequest; timeout?: 'wall' | 'idle'; oom?: boolean; sigkillExpected?: boolean; cgroupKnown?: boolean },
): JobState {
  if (outcome.exitCode === 0 && !outcome.signal) return { status: 'succeeded', startedAt, ...outcome };
  if (ctx.oom) return { status: 'oom', startedAt, ...outcome };
  if (ctx.timeout) return { status: 'timeout', startedAt, reason: ctx.timeout, ...outcome };
  if (ctx.cancel) return { status: 'cancelled', startedAt, cancel: ctx.cancel, ...outcome };
  if (outcome.signal) {
    const note = outcome.signal === 'SIGKILL' && !ctx.cgroupKnown ? 'SIGKILL, possibly OOM' : undefined;
    return { status: 'killed', startedAt, ...(note ? { note } : {}), ...outcome };
  }
  return { status: 'failed', startedAt, ...outcome };
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** True for names that cannot escape the state dir or confuse a shell or table. */
export function isValidName(name: string): boolean {
  return NAME_RE.test(name) && !name.includes('..');
}

/** Rejects names that could escape the state dir or confuse a shell or table. */
export function validateName(name: string): string {
  if (!isValidName(name)) {
    const shown = JSON.stringify(name).slice(0, 80);
    throw new JobqError(
      'BAD_NAME',
      `invalid job name ${shown}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, no '..'`,
    );
  }
  return name;
}

const ID_RE = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})_(\d{8})_(\d{6})(?:-(\d{1,4}))?$/;

/** Splits an id into its name and sort key; null if it is not a jobq id. */
export function parseId(id: string): { name: string; sortKey: string } | null {
  const m = ID_RE.exec(id);
  if (!m || m[1]!.includes('..')) return null;
  return { name: m[1]!, sortKey: `${m[2]}${m[3]}${(m[4] ?? '0').padStart(4, '0')}` };
}

/** The id for a job started at `date`: NAME_YYYYmmdd_HHMMSS, plus -N for the Nth in that second. */
export function makeId(name: string, date: Date, n: number): string {
  const p = (v: number, w = 2) => String(v).padStart(w, '0');
  const stamp = `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}_${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
  return `${name}_${stamp}${n > 1 ? `-${n}` : ''}`;
}

const SECRET_RE = /(TOKEN|SECRET|PASSW|PASSWD|PWD_|KEY|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE)/i;

/** True when an environment variable's name suggests its value must not be written out. */
export function looksSecret(name: string): boolean {
  return SECRET_RE.test(name);
}

/** Copies an env map with secret-looking values replaced. */
export function redactEnv(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) out[k] = looksSecret(k) ? '<redacted>' : v;
  return out;
}
