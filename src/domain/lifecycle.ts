// A job's life in one place: the named moves (docs/protocol.md), each a pure function from the record as it is now to
// the next one. `undefined` means the move does not apply any more (someone else decided first): Store.transition then
// writes nothing. The legal moves themselves are checked again by canMove (job.ts) under the job's lock.
import { JobqError } from './errors.js';
import {
  type Attempt,
  type CancelRequest,
  type Claim,
  isFinal,
  type JobPatch,
  type JobRecord,
  type JobState,
  type Outcome,
  type Placement,
  type ProcId,
  type Protection,
  type RetryOn,
} from './job.js';

/** A named move: the next record, or undefined when it no longer applies. */
export type Move = (rec: JobRecord) => JobRecord | undefined;

/** The states a job reaches once its command ran and ended (pueue's Done): each carries the Outcome. */
export type DoneState = Extract<JobState, Outcome>;

const DONE = new Set<JobState['status']>(['succeeded', 'failed', 'killed', 'cancelled', 'timeout', 'oom']);

/** True when the state is a Done one: the command ran (or was cancelled waiting) and its Outcome is known. */
export function isDone(s: JobState): s is DoneState {
  return DONE.has(s.status);
}

/** The Outcome of a Done state (exit code or signal, end, figures); undefined for any other. */
export function outcomeOf(s: JobState): DoneState | undefined {
  return isDone(s) ? s : undefined;
}

/** When the command started, in the states that know it. */
export function startedAtOf(s: JobState): string | undefined {
  switch (s.status) {
    case 'queued':
    case 'starting':
    case 'failed-to-start':
    case 'skipped':
      return undefined;
    default:
      return s.startedAt;
  }
}

/** When the record became final (ended, found lost, never started); undefined while it lives. */
export function finishedAtOf(s: JobState): string | undefined {
  if (isDone(s)) return s.endedAt;
  if (s.status === 'failed-to-start' || s.status === 'skipped') return s.at;
  if (s.status === 'lost') return s.detectedAt;
  return undefined;
}

const iso = () => new Date().toISOString();
const isStarting = (rec: JobRecord) => rec.state.status === 'starting';

/** starting → failed-to-start: provably nothing of the command ran. `mine` narrows whose claim it must still be. */
export function failStart(error: string, mine: (rec: JobRecord) => boolean = () => true, at = iso()): Move {
  return (rec) => (isStarting(rec) && mine(rec) ? { ...rec, state: { status: 'failed-to-start', error, at } } : undefined);
}

/** queued → skipped: what it waits for can never be met (a dependency that ended otherwise). */
export function skip(reason: string, at = iso()): Move {
  return (rec) => (rec.state.status === 'queued' ? { ...rec, state: { status: 'skipped', reason, at } } : undefined);
}

/** queued → starting by a dispatch round: claimed with a token; if no supervisor ever takes it, it waits again. */
export function claimQueued(by: ProcId, token: string, boot: string, held?: { gpus: number[]; uuids?: string[] }, at = iso(), supervises = false): Move {
  const claim: Claim = { by, token, at, requeue: true };
  // An attempt's GPUs replace the last one's, UUIDs included (undefined keys are not written).
  const gpus = held ? { gpus: held.gpus, gpuUuids: held.uuids } : {};
  // A supervisor that claims the next job of its own chain is its supervisor at once: no second write to adopt it.
  const supervisor = supervises ? by : undefined;
  return (rec) => (rec.state.status === 'queued' ? { ...rec, boot, supervisor, ...gpus, state: { status: 'starting', claim } } : undefined);
}

/** True while the record is starting under the claim that bears `token`. */
export function claimedBy(token: string): (rec: JobRecord) => boolean {
  return (rec) => rec.state.status === 'starting' && rec.state.claim?.token === token;
}

/** A supervisor takes over the claim that bears its token, unless another supervisor holds it. */
export function adopt(token: string, self: ProcId, boot: string): Move {
  const mine = claimedBy(token);
  return (rec) => (mine(rec) && !rec.supervisor ? { ...rec, boot, supervisor: self } : undefined);
}

/** The record stops naming a standby that died before it started the job (a supervisor started instead takes it). */
export function forgetStandby(standby: ProcId): Move {
  return (rec) => (isStarting(rec) && rec.supervisor?.pid === standby.pid ? { ...rec, supervisor: undefined } : undefined);
}

/** starting → running: only while its supervisor is still `self` and no cancel came (`cancelled` reads it under the lock). */
export function release(self: ProcId, job: NonNullable<JobRecord['job']>, protection: Protection, startedAt: string, cancelled: () => boolean): Move {
  return (rec) =>
    isStarting(rec) && rec.supervisor?.pid === self.pid && !cancelled() ? { ...rec, job, protection, state: { status: 'running', startedAt } } : undefined;
}

/** starting → cancelled (a cancel came before the command ran) or failed-to-start (the record changed under it). */
export function abortStart(cancel: CancelRequest | undefined, at = iso()): Move {
  const state: JobState = cancel
    ? { status: 'cancelled', cancel, exitCode: null, signal: null, endedAt: at, durationMs: 0 }
    : { status: 'failed-to-start', error: 'the record changed before the job started', at };
  return (rec) => (isStarting(rec) ? { ...rec, state } : undefined);
}

/** running/paused → the end its supervisor classified (classifyExit in job.ts: the cause wins over the exit code). */
export function finish(state: JobState, protection: Protection): Move {
  return (rec) => ({ ...rec, protection, state });
}

/** A warning found while the job runs (GPU memory past its reservation): in the record at once, not only at its end. */
export function warn(text: string): Move {
  return (rec) =>
    isFinal(rec.state) || rec.protection.warnings.includes(text)
      ? undefined
      : { ...rec, protection: { ...rec.protection, warnings: [...rec.protection.warnings, text] } };
}

/** The class of end `--retry-on` names; undefined for the ends never retried (a success, a cancel). */
export function retryClass(s: JobState): RetryOn | undefined {
  if (s.status === 'failed') return 'exit';
  if (s.status === 'killed') return 'signal';
  if (s.status === 'oom' || s.status === 'timeout' || s.status === 'lost') return s.status;
  return undefined;
}

/** The attempt after the end `end`, if the record's --retry allows one: its number, when it may start, its memory limit. */
export interface NextAttempt {
  attempt: number;
  at: string;
  memLimitBytes?: number;
}

/** Decides a retry: the end's class is one --retry-on names, and attempts are left; waits grow by the backoff. */
export function nextAttempt(rec: JobRecord, end: JobState, nowMs: number, machineMemBytes: number): NextAttempt | undefined {
  const p = rec.retry;
  const cls = retryClass(end);
  if (!p || !cls || !p.on.includes(cls)) return undefined;
  const ended = (rec.attempts?.length ?? 0) + 1;
  if (ended > p.max) return undefined;
  const waitMs = p.delayMs * p.backoff ** (ended - 1);
  const limit = rec.protection.memLimitBytes;
  const grown = cls === 'oom' && p.memGrow && limit ? Math.min(Math.round(limit * p.memGrow), machineMemBytes) : undefined;
  return { attempt: ended + 1, at: new Date(nowMs + waitMs).toISOString(), ...(grown && grown > limit! ? { memLimitBytes: grown } : {}) };
}

/** One ended attempt as the record keeps it. */
function attemptOf(n: number, s: DoneState, memLimitBytes?: number): Attempt {
  return {
    attempt: n,
    status: s.status,
    exitCode: s.exitCode,
    signal: s.signal,
    ...(s.startedAt ? { startedAt: s.startedAt } : {}),
    endedAt: s.endedAt,
    durationMs: s.durationMs,
    ...(s.peakMemBytes ? { peakMemBytes: s.peakMemBytes } : {}),
    ...(memLimitBytes ? { memLimitBytes } : {}),
    ...((s.status === 'oom' || s.status === 'timeout') && s.reason ? { reason: s.reason } : {}),
  };
}

/** What was asked for, without what the last attempt's start found (isolation, how limits were held): the next attempt finds its own. */
function askedProtection(p: Protection, memLimitBytes?: number): Protection {
  const { memLimitHow: _l, memHighHow: _h, cgroups: _c, unit: _u, keeper: _k, ...asked } = p;
  return {
    ...asked,
    isolation: 'none',
    ...(memLimitBytes ? { memLimitBytes } : {}),
    ...(p.oomScoreAdj ? { oomScoreAdj: { requested: p.oomScoreAdj.requested, actual: null } } : {}),
  };
}

/**
 * running/paused → queued again (--retry): this end kept in `attempts`, the job waiting until `next.at` for dispatch.
 * A cancel that came after the attempt ended (`cancelled`, read under the job's lock) means no retry: the end stands.
 */
export function retry(end: DoneState, protection: Protection, next: NextAttempt, cancelled: () => boolean = () => false, at = iso()): Move {
  return requeueAttempt(attemptOf(next.attempt - 1, end, protection.memLimitBytes), askedProtection(protection, next.memLimitBytes), next, cancelled, at);
}

/**
 * running/paused → queued for the next attempt when a reader finds the job lost (job and supervisor gone) and its
 * --retry-on names lost; unless a cancel was asked. Whoever dispatches starts it, with the environment kept for it.
 */
export function retryLost(lost: Extract<JobState, { status: 'lost' }>, next: NextAttempt, cancelled: () => boolean, at = iso()): Move {
  return (rec) => {
    const startedAt = lost.startedAt ?? rec.createdAt;
    const ended: Attempt = {
      attempt: next.attempt - 1,
      status: 'lost',
      exitCode: null,
      signal: null,
      startedAt,
      endedAt: lost.detectedAt,
      durationMs: Math.max(0, Date.parse(lost.detectedAt) - Date.parse(startedAt)),
      reason: lost.reason,
    };
    return requeueAttempt(ended, askedProtection(rec.protection), next, cancelled, at)(rec);
  };
}

/** The record of a running or paused job moved to wait for its next attempt, the ended one kept in `attempts`. */
function requeueAttempt(ended: Attempt, protection: Protection, next: NextAttempt, cancelled: () => boolean, at: string): Move {
  return (rec) => {
    if ((rec.state.status !== 'running' && rec.state.status !== 'paused') || cancelled()) return undefined;
    const { job: _ended, ...rest } = rec;
    return {
      ...rest,
      protection,
      attempts: [...(rec.attempts ?? []), ended],
      state: { status: 'queued', since: at, retry: { attempt: next.attempt, at: next.at } },
    };
  };
}

/** queued → cancelled: it never started, so nothing is signalled. */
export function cancelQueued(cancel: CancelRequest): Move {
  return (rec) =>
    rec.state.status === 'queued'
      ? { ...rec, state: { status: 'cancelled', cancel, exitCode: null, signal: null, endedAt: cancel.at, durationMs: 0 } }
      : undefined;
}

/** → cancelled once nothing of the job is left and no supervisor can record its end: exit status unknown. */
export function cancelUnsupervised(cancel: CancelRequest, supervised: (rec: JobRecord) => boolean, nowMs = Date.now()): Move {
  return (rec) => {
    if (isFinal(rec.state) || supervised(rec)) return undefined;
    const startedAt = startedAtOf(rec.state) || rec.createdAt;
    const endedAt = new Date(nowMs).toISOString();
    return { ...rec, state: { status: 'cancelled', startedAt, cancel, exitCode: null, signal: null, endedAt, durationMs: nowMs - Date.parse(startedAt) } };
  };
}

/** running → paused, the job held by `hold` (freezer or SIGSTOP) under the job's lock; `reason` when jobq paused it. */
export function pause(hold: () => Promise<'freezer' | 'signal'>, reason?: string, at = iso()): (rec: JobRecord) => Promise<JobRecord | undefined> {
  return async (rec) => {
    if (rec.state.status !== 'running') return undefined;
    const how = await hold();
    return { ...rec, state: { status: 'paused', startedAt: rec.state.startedAt, pausedAt: at, how, ...(reason ? { reason } : {}) } };
  };
}

/** paused → running; `how` learns how it was held, to let it go the same way; `only` limits it to some pauses. */
export function resume(how: (h: 'freezer' | 'signal') => void, only: (s: { reason?: string }) => boolean = () => true): Move {
  return (rec) => {
    if (rec.state.status !== 'paused' || !only(rec.state)) return undefined;
    how(rec.state.how);
    return { ...rec, state: { status: 'running', startedAt: rec.state.startedAt } };
  };
}

/** What a reader found: lost (job and supervisor gone), keeping when it started if it did. */
export function lostState(s: JobState, reason: string, detectedAt = iso()): JobState {
  const startedAt = startedAtOf(s);
  return { status: 'lost', ...(startedAt ? { startedAt } : {}), reason, detectedAt };
}

/** Whatever a reader proved (reconcile): the record takes that state. */
export function settleTo(state: JobState): Move {
  return (rec) => ({ ...rec, state });
}

/** queued → queued with a new priority, command or cwd (jobq edit); anything else is refused in one line. */
export function edited(patch: JobPatch): Move {
  return (rec) => {
    const what = patch.priority !== undefined && Object.keys(patch).length === 1 ? "a queued job's priority" : 'a queued job';
    if (rec.state.status !== 'queued') throw new JobqError('CONFLICT', `${rec.id} is ${rec.state.status}: only ${what} can be edited`);
    if (patch.priority !== undefined && rec.queue === undefined)
      throw new JobqError('CONFLICT', `${rec.id} is queued in no queue: only a job in a queue has a priority`);
    // A job placed elsewhere is in that place's hands, its command in its batch script.
    if ((patch.argv || patch.cwd) && rec.backend && rec.backend !== 'local')
      throw new JobqError('CONFLICT', `${rec.id} is submitted to ${rec.backend}: its command cannot change; cancel it and run it again`);
    const next = { ...rec, ...patch };
    return JSON.stringify(next) === JSON.stringify(rec) ? undefined : next;
  };
}

/** starting → queued elsewhere: the place (sbatch) answered with its ids; what does not apply there is a warning. */
export function submitted(placement: Placement, warnings: string[], at = iso()): Move {
  return (rec) => (isStarting(rec) ? { ...rec, placement, protection: { ...rec.protection, warnings }, state: { status: 'queued', since: at } } : undefined);
}

/** Any live state → what the place says now, with its own word for it (never over a final record, never a no-op). */
export function fromPlace(next: JobState, placeState: string): Move {
  return (rec) =>
    rec.state.status === next.status || isFinal(rec.state) || !rec.placement
      ? undefined
      : { ...rec, placement: { ...rec.placement, state: placeState }, state: next };
}
