// The seam between commands and where jobs run: the local backend first, others (Slurm) later.
import type { JobRecord, JobState } from '../domain/job.js';
import type { BrokenEntry } from '../store/store.js';

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
  isolationMode: 'auto' | 'scope' | 'cgroup' | 'none';
  memLimitBytes?: number;
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
  /** Wait for a free slot of this queue (none: start now), highest priority first. */
  queue?: string;
  priority?: number;
  /** Start only after these jobs (NAME, id, or array name) succeeded (`ok`) or ended (`any`). */
  after?: Array<{ ref: string; kind: 'ok' | 'any' }>;
  /** Memory the job needs to start (admitted against MemAvailable). */
  memBytes?: number;
  /** GPUs it needs (free ones, not held by another job; CUDA_VISIBLE_DEVICES set). */
  gpus?: number;
  /** A job array: one job NAME.i per value, `{}` in argv replaced by it; at most `cap` running at once. */
  array?: { values: string[]; cap?: number };
}

/** A record as a reader should see it: state reconciled against the live system. */
export interface JobView {
  rec: JobRecord;
  state: JobState;
  supervisorAlive: boolean;
  rssBytes?: number;
  /** What a reader could not settle: an outcome not yet recorded, a truth it could not write. */
  note?: string;
  /** A queued job's place in its queue's start order, and why it waits. */
  waiting?: { position: number; reason?: string };
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
  detail?: string;
}

/** The operations every backend offers; commands only talk to this. */
export interface Backend {
  run(spec: RunSpec): Promise<JobRecord>;
  list(opts: { all: boolean; recent: number; withMemory: boolean }): Promise<{ views: JobView[]; broken: BrokenRecord[]; hidden: number }>;
  get(ref: string, opts?: { withMemory?: boolean }): Promise<JobView>;
  resolve(ref: string): string;
  cancel(ref: string, opts: { signal: NodeJS.Signals; graceMs: number }): Promise<CancelResult>;
  waitFinal(id: string, deadlineMs: number, onTick?: (v: JobView) => void): Promise<JobView | undefined>;
}
