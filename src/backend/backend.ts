// The seam between commands and where jobs run. Commands talk only to Backend; one class (backend/jobs.ts) implements
// it over the state dir, and what differs per place — this machine, a Slurm cluster — is a Runner. What a new place
// touches today is listed in docs/protocol.md.

import type { WaitReason } from '../domain/dispatch.js';
import type { Admission, IsolationMode, JobPatch, JobRecord, JobState, Owner, ProcId, RetryPolicy } from '../domain/job.js';
import type { PressureSettings } from '../domain/pressure.js';
import type { PruneEntry } from '../domain/prune.js';
import type { BrokenEntry, QueueState, Store } from '../store/store.js';
import type { Sample } from '../store/timeline.js';

/** What `run` asks for, after flags, config and presets are resolved. */
export interface RunSpec {
  name: string;
  argv: string[];
  cwd: string;
  callerEnv: NodeJS.ProcessEnv;
  presets: string[];
  presetTable: Record<string, Record<string, string>>;
  env: Record<string, string>;
  guardVars: string[];
  log?: string;
  isolationMode: IsolationMode;
  memLimitBytes?: number;
  memHighBytes?: number;
  oomScoreAdj: number;
  timeoutMs?: number;
  idleTimeoutMs?: number;
  warnSignal?: { signal: string; leadMs: number };
  graceMs: number;
  stopSignal: string;
  maxLogBytes?: number;
  onExit?: string;
  /** What to do when a live job already has this name: refuse (default), cancel it first, or start beside it. */
  onLive?: 'refuse' | 'replace' | 'allow';
  /** Told of each live job `replace` cancelled, so the command can say so. */
  onReplaced?: (id: string, outcome: string) => void;
  /** Wait for a free slot of this queue (none: start now), highest priority first. */
  queue?: string;
  priority?: number;
  /** Start only after these jobs (NAME, id, or array name) succeeded (`ok`) or ended (`any`). */
  after?: Array<{ ref: string; kind: 'ok' | 'any' }>;
  /** Memory the job needs to start (admitted against MemAvailable). */
  memBytes?: number;
  /** GPUs it needs (free ones, not held by another job; CUDA_VISIBLE_DEVICES set). */
  gpus?: number;
  /** VRAM reserved on each of its GPUs (--gpu-mem), and whether a job past it is ended (--gpu-mem-enforce). */
  gpuMemBytes?: number;
  gpuMemEnforce?: boolean;
  /** What the config says of this machine, to refuse at run a need it can never meet. */
  machine?: { memReserveBytes: number; gpus?: string };
  /** How often the supervisor samples memory and CPU (ms). */
  sampleMs?: number;
  /** A job array: one job NAME.i per value, `{}` in argv replaced by it; at most `cap` running at once. */
  array?: { values: string[]; cap?: number };
  /** Where it runs: `local` (default) or another place of backend/places.ts; options passed through to its submit (sbatch). */
  backend?: string;
  submitOptions?: string[];
  /** Its job number, given by submit (not by the caller). */
  seq?: number;
  /** An element of an existing array run again (rerun): it takes its index, value, the array's cap and run. */
  element?: NonNullable<Admission['array']>;
  /** Who asked (run --owner, JOBQ_OWNER, an MCP session). */
  owner?: Owner;
  /** Run again after a failure (--retry). */
  retry?: RetryPolicy;
  /** A GNU parallel joblog to append each end to (an array without one gets its own in the state dir). */
  joblog?: string;
}

/** A record as a reader should see it: state reconciled against the live system. */
/** How a restart is asked for: a second copy beside a live one (keep), and where its words go. */
export interface RestartOpts {
  keep?: boolean;
  /** Who asks for the new job (an MCP session); else the old job's owner label, without its session. */
  owner?: Owner;
  /** A memory limit over the old job's (an agent's guard rail gives one to a job that had none). */
  memLimitBytes?: number;
  /** The caller's environment: secrets a record never held are taken from it. */
  callerEnv: NodeJS.ProcessEnv;
  warn: (line: string) => void;
}

export interface JobView {
  rec: JobRecord;
  state: JobState;
  supervisorAlive: boolean;
  /** The RSS of its live processes (shared pages counted in each). */
  rssBytes?: number;
  /** How often it has been throttled above its --mem-high so far (cgroup v2). */
  memHighEvents?: number;
  /** Memory in use now, the one measure of the chart and the peak: its cgroup's charge where it has one, else rssBytes. */
  memBytes?: number;
  /** GPU memory its processes hold now (its supervisor's last sample), where it holds GPUs. */
  vramBytes?: number;
  /** What a reader could not settle: an outcome not yet recorded, a truth it could not write. */
  note?: string;
  /** Set when the place it runs (a cluster's controller) did not answer: its state is the last one known. */
  unreachable?: boolean;
  /** A queued job's place in its queue's start order, and why it waits. */
  waiting?: { position: number; reason?: string; waitingFor?: WaitReason['waitingFor'] };
}

/** A job dir whose record could not be read; listed by name, never rewritten. */
export type BrokenRecord = BrokenEntry;

/** The result of cancelling one job. */
export interface CancelResult {
  id: string;
  outcome: 'cancelled' | 'already-ended' | 'not-signalled';
  state: JobState;
  escalated: boolean;
  elapsedMs: number;
  /** What was (or would have been) sent, and the grace before SIGKILL. */
  signal?: string;
  graceMs?: number;
  detail?: string;
}

/** A queue as `jobq queue` shows it. */
export interface QueueInfo {
  name: string;
  slots: number;
  paused: boolean;
  running: JobView[];
  waiting: Array<{ view: JobView; position: number; reason?: string; waitingFor?: WaitReason['waitingFor'] }>;
}

/** A finished (or half-made) job removed from the state dir. */
export interface Removed {
  id: string;
  status: string;
  log?: string;
}

/** The operations commands use; nothing else of backend/ or store/ is theirs to touch. */
export interface Backend {
  run(spec: RunSpec): Promise<JobRecord>;
  /** Runs a recorded job again as it was asked for (a live one of that name is stopped first unless `keep`). */
  restart(ref: string, o: RestartOpts): Promise<{ old: JobRecord; rec: JobRecord }>;
  runArray(spec: RunSpec): Promise<JobRecord[]>;
  /**
   * Runs again, as they were asked for, the ended jobs of an array (by index) or of a queue (the latest of each NAME)
   * that failed (`failed`: failed, killed, oom, timeout, lost, failed-to-start) or did not succeed (`unfinished`).
   */
  rerun(
    ref: string,
    which: 'failed' | 'unfinished',
    o: RestartOpts & { dryRun?: boolean },
  ): Promise<Array<{ old: JobRecord; rec?: JobRecord; skipped?: string }>>;
  list(opts: { all: boolean; recent: number; withMemory: boolean }): Promise<{ views: JobView[]; broken: BrokenRecord[]; hidden: number }>;
  get(ref: string, opts?: { withMemory?: boolean }): Promise<JobView>;
  view(id: string): Promise<JobView>;
  /** NAME (its latest job) or an id. */
  resolve(ref: string): string;
  /** What a ref means for acting on live jobs: an id; a NAME's live jobs; an array's live elements. */
  resolveAll(ref: string): Promise<string[]>;
  /** The elements of an array NAME (empty if REF is a job's name or no array). */
  arrayIds(ref: string): string[];
  /** NAMEs, ids and array names as job ids (an array: its elements in index order), and how many were arrays. */
  expand(refs: string[]): { ids: string[]; arrays: number };
  /** Views of these live jobs with why each waits. */
  withWaits(ids: string[]): Promise<JobView[]>;
  /** Every live job id. */
  liveIds(): string[];
  /** The live jobs of an owner (run --owner, an agent's session id), and of an MCP session if given, as they really are now. */
  liveOwnedBy(owner: string, session?: ProcId): Promise<string[]>;
  /** Every job name (for completion). */
  names(): string[];
  /** Whether a finished job's log lives in its own job dir (restart keeps a --log given elsewhere). */
  logIsOwn(rec: JobRecord): boolean;
  /** Without a signal or grace, the job's own (`run --signal/--grace`, else the config's when it was run). */
  cancel(ref: string, opts: { signal?: NodeJS.Signals; graceMs?: number; by?: string }): Promise<CancelResult>;
  pause(ref: string): Promise<JobView>;
  resume(ref: string): Promise<JobView>;
  /** Changes a queued job where it waits (priority: its place follows; command, cwd), in one transition; else CONFLICT. */
  edit(ref: string, patch: JobPatch): Promise<JobView>;
  waitFinal(id: string, deadlineMs: number, onTick?: (v: JobView) => void): Promise<JobView | undefined>;
  pruneEntries(): Promise<PruneEntry[]>;
  remove(id: string): Promise<Removed>;
  /** As `remove` for each, in order (prune: thousands at once); the first failure stops it. */
  removeAll(ids: string[]): Promise<Removed[]>;
  /** The named queues, and (`outside`) the jobs that wait in no queue: an array's cap, --after, memory, GPUs, a retry's delay. */
  queues(names: string[]): Promise<{ queues: QueueInfo[]; outside: QueueInfo['waiting'] }>;
  queueNames(): string[];
  /** A queue's slots and whether it is paused, without looking at its jobs. */
  queueSettings(name: string): { slots: number; paused: boolean };
  updateQueue(name: string, patch: QueueState): Promise<QueueState & { slots: number; paused: boolean }>;
  /** jobq's own event log (pino-format JSON lines). */
  eventsFile(): string;
  /** A job's memory and CPU over time (empty where none were taken, e.g. on Slurm). */
  samples(id: string): Sample[];
  /** A path that changes whenever a job starts or ends (status --watch wakes on it). */
  changesPath(): string;
  /** Keeps dispatch alive while jobs wait; with `config`, first notes what the processes that read none need (slots, memReserve). */
  keepDispatching(config?: { queues: Record<string, { slots: number }> } & DispatchSettingsInput): Promise<void>;
}

/** Config values dispatch needs, as a command read them. */
export interface DispatchSettingsInput {
  memReserveBytes: number;
  gpuBusyMiB: number;
  pressureGuard?: PressureSettings;
}

/** A job whose record was just written, ready for its runner to start. */
export interface Made {
  id: string;
  /** The claim's token (local jobs started by this process). */
  token: string;
  env: Record<string, string>;
}

/** What a runner may use of the backend that hosts it. */
export interface RunnerHost {
  readonly store: Store;
  /** Writes a job's record (and log, and env where it waits); `state` is its first state. */
  create(spec: RunSpec, admission: Admission, first: 'starting' | 'queued' | 'submitting', supervisor?: ProcId): Made;
  view(id: string): Promise<JobView>;
}

/** What differs per place jobs run: how they start, how their state is learnt, how they are stopped. */
export interface Runner {
  readonly kind: string;
  /** Refuses now a need this place can never meet (rather than queue it for ever), completing what dispatch reads. */
  admit?(spec: RunSpec, admission: Admission): void;
  /** Writes the records (through host.create) and starts or submits them; returns each record once it says what happened. */
  submit(host: RunnerHost, elements: RunSpec[], admission: Admission[], arraySpec?: RunSpec): Promise<JobRecord[]>;
  /** Brings views of its jobs up to date (one look at the outside world for all of them), persisting provable truths. */
  refresh(host: RunnerHost, views: JobView[], opts: { withMemory?: boolean }): Promise<void>;
  /** `by`: who asked, in words, when not the caller's shell (an MCP session that closed). */
  cancel(host: RunnerHost, v: JobView, opts: { signal: NodeJS.Signals; graceMs: number; by?: string }): Promise<CancelResult>;
  pause(host: RunnerHost, v: JobView): Promise<void>;
  resume(host: RunnerHost, v: JobView): Promise<void>;
}
