// The job record: its schema, lifecycle states and the pure rules over them.
import { EXIT, JobqError } from './errors.js';
import { signalNumber } from './units.js';

/** --json's shapes (docs/json.md): raised only when a field is renamed or removed. */
export const JSON_SCHEMA = 2;

/**
 * Records: 2 added the boot id, claims and the end marker; 3 keeps a job placed elsewhere as `placement` (2 had
 * `slurm`). Records of schema 1 and 2 still read (upgradeRecord).
 */
export const SCHEMA_VERSION = 3;

/** A record is written with the lowest schema that holds it: a supervisor of the last jobq, alive across an upgrade, still reads it. */
export function schemaOf(rec: Pick<JobRecord, 'placement'>): number {
  return rec.placement ? 3 : 2;
}

declare const JOBQ_VERSION: string;
/** This jobq's version (the build puts package.json's in; a run from source says so). */
export const VERSION = typeof JOBQ_VERSION === 'string' ? JOBQ_VERSION : '0.0.0-dev';

/** What --isolation asks for; the one list config, run's choices and the record read. */
export const ISOLATION_MODES = ['auto', 'scope', 'cgroup', 'none'] as const;
export type IsolationMode = (typeof ISOLATION_MODES)[number];

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
  /** The most GPU memory its processes held at a sample, where it held GPUs. */
  peakVramBytes?: number;
  cpuMs?: number;
  /** How often it was throttled above its --mem-high (memory.events `high`). */
  memHighEvents?: number;
}

export interface CancelRequest {
  at: string;
  by: string;
  signal: string;
  /** The jobq process that asked; a request whose asker is gone may be taken over. */
  asker?: ProcId;
}

/** Who took a job to `starting`: the launcher (or a dispatcher), with a token its supervisor must show. */
export interface Claim {
  by: ProcId;
  token: string;
  at: string;
  /** Claimed from `queued` by dispatch: if no supervisor ever released it, it goes back to waiting. */
  requeue?: boolean;
}

/** The lifecycle: each state carries exactly the fields that are true in it. */
export type JobState =
  | { status: 'queued'; since: string; retry?: { attempt: number; at: string } }
  | { status: 'starting'; claim?: Claim }
  | { status: 'running'; startedAt: string }
  | { status: 'paused'; startedAt: string; pausedAt: string; how: 'freezer' | 'signal'; reason?: string }
  | ({ status: 'succeeded'; startedAt: string } & Outcome)
  | ({ status: 'failed'; startedAt: string } & Outcome)
  | ({ status: 'killed'; startedAt: string; note?: string } & Outcome)
  | ({ status: 'cancelled'; startedAt?: string; cancel: CancelRequest } & Outcome)
  | ({ status: 'timeout'; startedAt: string; reason: 'wall' | 'idle' } & Outcome)
  | ({ status: 'oom'; startedAt: string; by?: OomBy; reason?: string } & Outcome)
  | { status: 'failed-to-start'; error: string; at: string }
  | { status: 'skipped'; reason: string; at: string }
  | { status: 'lost'; startedAt?: string; reason: string; detectedAt: string };

export type Status = JobState['status'];

/**
 * Who ended a job for memory: the kernel at the job's own limit, the kernel for the whole machine, systemd-oomd,
 * jobq's pressure guard, or its supervisor for GPU memory past --gpu-mem (with --gpu-mem-enforce).
 */
export type OomBy = 'memory-limit' | 'kernel' | 'systemd-oomd' | 'pressure' | 'gpu-mem';

/** An OOM end, as the supervisor learned it. */
export interface OomCause {
  by: OomBy;
  reason: string;
}
export const FINAL_STATUSES: readonly Status[] = ['succeeded', 'failed', 'killed', 'cancelled', 'timeout', 'oom', 'failed-to-start', 'skipped', 'lost'];
const LIVE_STATUSES: readonly Status[] = ['queued', 'starting', 'running', 'paused'];
const ENDED_RUNNING: Status[] = ['succeeded', 'failed', 'killed', 'cancelled', 'timeout', 'oom', 'lost'];

/** The legal moves of the lifecycle; a final state has none, so it is never overwritten. */
const NEXT: Partial<Record<Status, readonly Status[]>> = {
  // A claim moves it to starting (this machine); another scheduler (Slurm) may report it running, or ended, at once.
  queued: ['queued', 'starting', 'running', 'paused', 'skipped', 'failed-to-start', ...ENDED_RUNNING],
  // Back to queued only when provably nothing ran (a claim whose claimer died before any supervisor started).
  starting: ['starting', 'running', 'queued', 'failed-to-start', 'cancelled', 'lost'],
  // failed-to-start: only when its gate file proves the held command never ran (the supervisor died before "go").
  // queued: only a retry (--retry), once the attempt's end is kept in the record's attempts.
  running: ['running', 'paused', 'queued', 'failed-to-start', ...ENDED_RUNNING],
  paused: ['paused', 'running', 'queued', ...ENDED_RUNNING],
};

/** True when a record may go from `from` to `to`. */
export function canMove(from: Status, to: Status): boolean {
  return NEXT[from]?.includes(to) ?? false;
}

/** True for every status this jobq knows; a record with another one is left alone (a newer jobq wrote it). */
export function isKnownStatus(s: unknown): s is Status {
  return typeof s === 'string' && (FINAL_STATUSES.includes(s as Status) || LIVE_STATUSES.includes(s as Status));
}

/** Limits and protections asked for at `run`, and what was really applied. */
export interface Protection {
  /** What was asked for (--isolation); `isolation` is what the supervisor really set up. */
  isolationMode: IsolationMode;
  isolation: Isolation;
  /** cgroup directories (v1: one per controller) or systemd unit. */
  cgroups?: string[];
  unit?: string;
  /** A scope's keeper (not the job's: never signalled), in the scope's `keep` part beside the job's. */
  keeper?: ProcId;
  memLimitBytes?: number;
  memLimitHow?: 'cgroup' | 'rlimit-as' | 'none';
  /** A soft limit (--mem-high): above it the kernel throttles and reclaims, never kills; `cgroup` once read back. */
  memHighBytes?: number;
  memHighHow?: 'cgroup' | 'none';
  oomScoreAdj?: { requested: number; actual: number | null };
  timeoutMs?: number;
  idleTimeoutMs?: number;
  warnSignal?: { signal: string; leadMs: number };
  graceMs: number;
  stopSignal: string;
  warnings: string[];
}

/** How the warning of a job past its --gpu-mem begins: readers tell it from the others by it. */
export const GPU_MEM_PAST = 'gpu memory went past --gpu-mem';

export interface JobRecord {
  schema: number;
  id: string;
  /** Its short number (`jobq tail 42`), given once at creation, never reused in this state dir; absent on older records. */
  seq?: number;
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
  /** /proc/sys/kernel/random/boot_id when the pids below were recorded: after a reboot they mean nothing. */
  boot?: string;
  launcher: ProcId;
  supervisor?: ProcId;
  /** The job's leader; pid = pgid = sid. */
  job?: ProcId & { pgid: number };
  protection: Protection;
  maxLogBytes?: number;
  onExit?: string;
  /** How often its supervisor samples memory and CPU (ms; default 2 s). */
  sampleMs?: number;
  /** The queue whose slots it takes, and its priority there (higher starts first); none: it starts at once. */
  queue?: string;
  priority?: number;
  /** What must hold before it may start (none: only its queue's slots). */
  admission?: Admission;
  /** GPUs it holds (indices as nvidia-smi numbers them), given at its claim, and their UUIDs where nvidia-smi named them. */
  gpus?: number[];
  gpuUuids?: string[];
  /** Where it runs: absent or `local` (this machine), else a place of backend/places.ts, which names it in `placement`. */
  backend?: string;
  placement?: Placement;
  /** A GNU parallel joblog its end is appended to (--joblog, or an array's own in the state dir). */
  joblog?: string;
  /** Run again after a failure (--retry): how often, after which ends, how long after; `attempts` holds each earlier end. */
  retry?: RetryPolicy;
  attempts?: Attempt[];
  /** Who asked for it (an agent's session id, `run --owner`), and the MCP session it came through, if any. */
  owner?: Owner;
  state: JobState;
}

/**
 * The ends `--retry-on` names: a non-zero exit, a signal, the OOM killer, a --timeout, and lost (the job and its
 * supervisor gone, found by whoever reads it next). A cancel is never retried.
 */
export const RETRY_ON = ['exit', 'signal', 'oom', 'timeout', 'lost'] as const;
export type RetryOn = (typeof RETRY_ON)[number];

/** How a job is run again after a failure. */
export interface RetryPolicy {
  /** Attempts after the first. */
  max: number;
  on: RetryOn[];
  /** Wait before the second attempt; each later wait is `backoff` times the one before. */
  delayMs: number;
  backoff: number;
  /** After an OOM end, the next attempt's --mem-limit is this many times the last one (up to the machine's memory). */
  memGrow?: number;
}

/** One earlier attempt's end, kept when the job is run again. */
export interface Attempt {
  attempt: number;
  status: Status;
  exitCode: number | null;
  signal: string | null;
  startedAt?: string;
  endedAt: string;
  durationMs: number;
  peakMemBytes?: number;
  memLimitBytes?: number;
  reason?: string;
}

/** A job's owner: a label to find its jobs by, and the MCP server session that started it (gone: the job is an orphan). */
export interface Owner {
  id: string;
  /** The `jobq mcp` process of that session, with the boot it ran in (a pid means nothing after a reboot). */
  session?: ProcId & { boot: string };
  /** `session`: cancelled when that session's connection closes; absent: detached, as every job. */
  cleanup?: 'session';
}

/** What `jobq edit` changes of a queued job's record; what is absent stays. */
export type JobPatch = Partial<Pick<JobRecord, 'priority' | 'argv' | 'cwd'>>;

/** Where another place put a job, in its own words (docs/protocol.md): what every reader may show, and its runner's ids. */
export interface Placement {
  /** Its id there as people use it (Slurm: `12`, an array element `12_3`). */
  id: string;
  /** The cluster it runs on, where the place names one. */
  cluster?: string;
  /** The place's own word for its state the last time jobq looked (Slurm: PENDING, RUNNING, TIMEOUT, …). */
  state?: string;
  /** The extra options it was submitted with (--slurm-opt and config), so a restart submits it alike. */
  options?: string[];
  /** The rest of what its runner needs to find it (Slurm: jobId, arrayJobId, arrayTaskId); read by that runner alone. */
  ids: Record<string, string | number>;
}

/** How schema 2 kept a Slurm job's ids. */
interface SchemaTwoSlurm {
  jobId: string;
  arrayJobId?: string;
  arrayTaskId?: number;
  cluster?: string;
  slurmState?: string;
  options?: string[];
}

/** A record as this jobq holds it, from any schema it reads: schema 2's `slurm` becomes a placement. */
export function upgradeRecord(rec: JobRecord & { slurm?: SchemaTwoSlurm }): JobRecord {
  if (!rec.slurm || rec.placement) return rec;
  const { slurm, ...rest } = rec;
  const { jobId, arrayJobId, arrayTaskId, cluster, slurmState, options } = slurm;
  const ids: Record<string, string | number> = { jobId };
  if (arrayJobId) Object.assign(ids, { arrayJobId, arrayTaskId });
  return {
    ...rest,
    placement: {
      id: arrayJobId ? `${arrayJobId}_${arrayTaskId}` : jobId,
      ...(cluster ? { cluster } : {}),
      ...(slurmState ? { state: slurmState } : {}),
      ...(options ? { options } : {}),
      ids,
    },
  };
}

/** A job's dependency: start after that job succeeded (`ok`) or ended in any state (`any`). */
export interface Dependency {
  id: string;
  kind: 'ok' | 'any';
}

/** What a job waits for besides a slot. */
export interface Admission {
  after?: Dependency[];
  /** Memory it needs to start (--mem, or its --mem-limit). */
  memBytes?: number;
  /** How many GPUs it needs. */
  gpus?: number;
  /** VRAM it reserves on each GPU (--gpu-mem): it shares GPUs with other such jobs while reservations fit. */
  gpuMemBytes?: number;
  /** Ended (oom, by gpu-mem) when its processes hold more GPU memory than reserved (--gpu-mem-enforce). */
  gpuMemEnforce?: boolean;
  /** The GPUs its run was told this machine has (config gpus or JOBQ_GPUS), and their sizes (MiB) where given; else nvidia-smi decides at dispatch. */
  gpuList?: number[];
  gpuListMiB?: number[];
  /**
   * An element of an array: its name, 1-based index, value, how many of the array may run at once, and which run of
   * that NAME it belongs to (`run`: one per `run --array`, kept by a rerun; absent on older records).
   */
  array?: { name: string; index: number; value: string; size: number; cap?: number; run?: string };
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
    case 'skipped':
    case 'lost':
    case 'queued':
    case 'starting':
    case 'running':
    case 'paused':
      return EXIT.failure;
    default:
      // As timeout(1): a job its --timeout ended gives 124, however it died.
      if (state.status === 'timeout') return EXIT.timeout;
      if (state.signal) return 128 + (signalNumber(state.signal) || 0);
      if (state.exitCode) return state.exitCode;
      // Ended by jobq or the kernel yet exited 0 (its handler ran): still never 0.
      if (state.status === 'cancelled') return 128 + (signalNumber(state.cancel.signal) || 15);
      if (state.status === 'oom') return 128 + 9;
      return EXIT.failure;
  }
}

/** A job ended by jobq itself for memory: the pressure guard, or GPU memory past its --gpu-mem; and why, in one line. */
export interface GuardEnd {
  by: 'pressure' | 'gpu-mem';
  reason: string;
}

/** Classifies a finished process: the cause of the end (OOM, timeout, cancel) wins over the exit code. */
export function classifyExit(
  startedAt: string,
  outcome: Outcome,
  ctx: { cancel?: CancelRequest; timeout?: 'wall' | 'idle'; oom?: OomCause | boolean; cgroupKnown?: boolean; guard?: GuardEnd },
): JobState {
  // Ended by a jobq guard: an oom, however it exited (a job that traps TERM and exits 0 did not succeed on its own).
  if (ctx.guard && !ctx.cancel && !ctx.timeout) return { status: 'oom', startedAt, by: ctx.guard.by, reason: ctx.guard.reason, ...outcome };
  // An OOM kill ended the job only if nothing else did and it did not exit 0 on its own (a child may die of one).
  const failed = outcome.signal !== null || outcome.exitCode !== 0;
  if (ctx.oom && failed && !ctx.cancel && !ctx.timeout) return { status: 'oom', startedAt, ...(typeof ctx.oom === 'object' ? ctx.oom : {}), ...outcome };
  if (ctx.timeout) return { status: 'timeout', startedAt, reason: ctx.timeout, ...outcome };
  if (ctx.cancel) return { status: 'cancelled', startedAt, cancel: ctx.cancel, ...outcome };
  if (outcome.exitCode === 0 && !outcome.signal) return { status: 'succeeded', startedAt, ...outcome };
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

const OWNER_RE = /^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$/;

/** An owner label as typed (`--owner`, JOBQ_OWNER, an agent's session id): safe in a table, a filter and a log line. */
export function validateOwner(owner: string): string {
  if (!OWNER_RE.test(owner)) {
    throw new JobqError('USAGE', `invalid owner ${JSON.stringify(owner).slice(0, 80)}: use 1-128 letters, digits, '.', '_', ':', '@', '+' or '-'`);
  }
  return owner;
}

const QUEUE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Rejects queue names that could escape the state dir or confuse a table (same rule as job names). */
export function validateQueue(q: string): string {
  if (!QUEUE_RE.test(q) || q.includes('..')) {
    throw new JobqError('BAD_NAME', `invalid queue name ${JSON.stringify(q).slice(0, 80)}: use 1-64 letters, digits, '.', '_' or '-'`);
  }
  return q;
}

/** Rejects names that could escape the state dir or confuse a shell or table, and names a JOB ref would read as a number. */
export function validateName(name: string): string {
  if (!isValidName(name)) {
    const shown = JSON.stringify(name).slice(0, 80);
    throw new JobqError('BAD_NAME', `invalid job name ${shown}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, no '..'`);
  }
  if (/^\d+$/.test(name)) throw new JobqError('BAD_NAME', `invalid job name '${name}': digits only read as a job number (jobq tail ${name}); add a letter`);
  return name;
}

/** The job number a JOB ref means (`42` or `#42`), or undefined when it is not one. */
export function parseSeqRef(ref: string): number | undefined {
  const m = /^#?(\d{1,15})$/.exec(ref);
  return m ? Number(m[1]) : undefined;
}

const ID_RE = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})_(\d{8})_(\d{6})(?:-(\d{1,4}))?$/;

/** Splits an id into its name and sort key; null if it is not a jobq id. */
export function parseId(id: string): { name: string; sortKey: string } | null {
  const m = ID_RE.exec(id);
  if (!m || m[1]!.includes('..')) return null;
  return { name: m[1]!, sortKey: `${m[2]}${m[3]}${(m[4] ?? '0').padStart(4, '0')}` };
}

/**
 * A claim's token: unique, not secret (the record it guards is the owner's alone). Built without node:crypto, which
 * costs a few ms at every start of the launcher and the supervisor.
 */
export function newToken(): string {
  return `${process.pid.toString(36)}-${process.hrtime.bigint().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/** The id for a job started at `date`: NAME_YYYYmmdd_HHMMSS, plus -N for the Nth in that second. */
export function makeId(name: string, date: Date, n: number): string {
  const p = (v: number, w = 2) => String(v).padStart(w, '0');
  const stamp = `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}_${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
  return `${name}_${stamp}${n > 1 ? `-${n}` : ''}`;
}

// Long words anywhere in the name; short ones (PAT, PWD, PW, PIN) only as a whole _-separated part.
const SECRET_WORDS = /(TOKEN|SECRET|PASS|CREDENTIAL|PRIVATE|COOKIE|SESSION|AUTH|APIKEY|API_KEY|_KEY|KEY_|^KEY$|SIGNATURE|CERT_KEY)/i;
const SECRET_PARTS = new Set(['PAT', 'PWD', 'PW', 'PIN', 'KEY', 'DSN']);
const NOT_SECRET = new Set(['PWD', 'OLDPWD', 'PATH', 'XAUTHORITY', 'SSH_AUTH_SOCK', 'KEYBOARD']);

/** True when an environment variable's name suggests its value must not be written out. */
export function looksSecret(name: string): boolean {
  const up = name.toUpperCase();
  if (NOT_SECRET.has(up)) return false;
  return SECRET_WORDS.test(up) || up.split('_').some((part) => SECRET_PARTS.has(part));
}

// scheme://user:password@host — the password part of a URL's userinfo.
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):([^\s/@]*)@/gi;

/** A value with any password inside a URL's userinfo replaced (postgres://u:pw@h -> postgres://u:<redacted>@h). */
export function redactValue(value: string): string {
  return value.replace(URL_USERINFO, (_m, head: string) => `${head}:<redacted>@`);
}

/** Copies an env map with secret-looking values replaced. */
export function redactEnv(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) out[k] = looksSecret(k) ? '<redacted>' : redactValue(v);
  return out;
}

/** True when a recorded value lost something to redaction (restart must take it from the caller instead). */
export function isRedacted(value: string): boolean {
  return value.includes('<redacted>');
}

const STATES = [
  'queued',
  'starting',
  'running',
  'paused',
  'succeeded',
  'failed',
  'killed',
  'cancelled',
  'timeout',
  'oom',
  'failed-to-start',
  'skipped',
  'lost',
];
const GROUPS: Record<string, string[]> = { live: ['queued', 'starting', 'running', 'paused'], ended: STATES.slice(4) };

/** `--state failed,oom` (or a group: live, ended) as the set of statuses it means; a typo is a usage error. */
export function statesOf(text: string): Set<string> {
  const out = new Set<string>();
  for (const s of text
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    if (GROUPS[s]) for (const g of GROUPS[s]) out.add(g);
    else if (STATES.includes(s)) out.add(s);
    else throw new JobqError('USAGE', `invalid --state '${s}': one of ${STATES.join(', ')}, or live, ended`);
  }
  return out;
}

/** A NAME pattern with * and ? as a test on names. */
export function globOf(text: string): (name: string) => boolean {
  const re = new RegExp(
    `^${text
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return (name) => re.test(name);
}
