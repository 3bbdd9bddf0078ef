// The local backend: jobs on this machine, one detached supervisor each, files as the truth.

import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildJobEnv } from '../domain/env.js';
import { JobqError } from '../domain/errors.js';
import { type CancelRequest, isFinal, type JobRecord, type JobState, parseId, redactEnv, SCHEMA_VERSION, validateName } from '../domain/job.js';
import type { PruneEntry } from '../domain/prune.js';
import { removeCgroupsWhenEmpty } from '../process/isolation.js';
import { allProcesses, bootId, findSupervisors, isAlive, isReused, type ProcStat, procId, rssBytes } from '../process/proc.js';
import { jobProcesses, jobTarget, terminateJob } from '../process/signals.js';
import { appendEvent } from '../store/events.js';
import { type BrokenEntry, openLogAppend, Store } from '../store/store.js';
import type { Backend, CancelResult, JobView, RunSpec } from './backend.js';

declare const JOBQ_VERSION: string;
const version = typeof JOBQ_VERSION === 'string' ? JOBQ_VERSION : '0.0.0-dev';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Decides what a record really means now; `persist` when the truth is provable and the record should say it. */
function reconcileState(rec: JobRecord): { state: JobState; supervisorAlive: boolean; persist: boolean } {
  const s = rec.state;
  if (isFinal(s)) return { state: s, supervisorAlive: false, persist: false };
  const now = new Date().toISOString();
  const otherBoot = !!rec.boot && rec.boot !== bootId();
  const supervisorAlive = !otherBoot && isAlive(rec.supervisor);
  if (supervisorAlive) return { state: s, supervisorAlive, persist: false };
  if (s.status === 'starting') {
    const claimer = s.claim?.by ?? rec.launcher;
    if (!otherBoot && !rec.supervisor && (isAlive(claimer) || findSupervisors(rec.id).length)) return { state: s, supervisorAlive, persist: false };
    const error = otherBoot
      ? 'the machine restarted before the job started'
      : rec.supervisor
        ? 'the supervisor stopped before starting the job (see jobq events)'
        : 'jobq was stopped before the job started';
    return { state: { status: 'failed-to-start', error, at: now }, supervisorAlive, persist: true };
  }
  const t = jobTarget(rec);
  if (t && isAlive(t.job)) return { state: s, supervisorAlive, persist: false };
  const reason = otherBoot
    ? 'the machine restarted while the job ran; exit status unknown'
    : rec.job && isReused(rec.job)
      ? `pid ${rec.job.pid} now belongs to another process; the job and its supervisor are gone, exit status unknown`
      : 'the job and its supervisor are gone (killed or machine restarted); exit status unknown';
  return { state: { status: 'lost', ...('startedAt' in s ? { startedAt: s.startedAt } : {}), reason, detectedAt: now }, supervisorAlive, persist: true };
}

/** Why a live supervisor has not recorded an end yet, if the state dir refuses writes: the one thing that stalls it. */
function unwritableReason(store: Store): string | undefined {
  const probe = path.join(store.home, `.probe-${process.pid}`);
  try {
    fs.writeFileSync(probe, 'x', { mode: 0o600 });
    fs.rmSync(probe, { force: true });
    return undefined;
  } catch (e) {
    fs.rmSync(probe, { force: true });
    return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  }
}

/** The local backend over one state dir. */
export class LocalBackend implements Backend {
  constructor(readonly store: Store) {}

  resolve(ref: string): string {
    return this.store.resolve(ref);
  }

  async run(spec: RunSpec): Promise<JobRecord> {
    validateName(spec.name);
    if (spec.argv.length === 0) throw new JobqError('USAGE', 'missing command: jobq run NAME [options] -- CMD [ARGS...]');
    // A NAME means one live job: the check and the new record happen under the name's lock, so racing runs give one job.
    const made =
      spec.onLive === 'allow'
        ? this.create(spec)
        : await this.store.withLock(`name:${spec.name}`, async () => {
            const live = await this.liveNamed(spec.name);
            if (live.length && spec.onLive !== 'replace') {
              const v = live[0]!;
              const pid = v.rec.job ? ` (pid ${v.rec.job.pid})` : '';
              throw new JobqError(
                'CONFLICT',
                `a job named ${spec.name} is already ${v.state.status}: ${v.rec.id}${pid}; cancel it (jobq cancel ${spec.name}), replace it (run --replace), or start another beside it (run --allow-duplicate)`,
              );
            }
            for (const v of live) await this.cancel(v.rec.id, { signal: v.rec.protection.stopSignal as NodeJS.Signals, graceMs: v.rec.protection.graceMs });
            return this.create(spec);
          });
    return this.start(made);
  }

  /** The not-yet-final jobs called NAME, newest first, as they really are now. */
  async liveNamed(name: string): Promise<JobView[]> {
    const out: JobView[] = [];
    for (const id of this.store.activeNamed(name)) {
      try {
        const v = await this.view(id);
        if (!isFinal(v.state)) out.push(v);
      } catch {
        /* unreadable: not a live job jobq could act on */
      }
    }
    return out;
  }

  /** Every job a reference means for cancel: an id is itself; a NAME is each of its live jobs (or its latest, if none lives). */
  async resolveAll(ref: string): Promise<string[]> {
    const id = this.resolve(ref);
    if (parseId(ref) && ref === id) return [id];
    const live = (await this.liveNamed(ref)).map((v) => v.rec.id);
    return live.length ? live : [id];
  }

  /** Writes the `starting` record (claimed by this process) and everything the supervisor needs. */
  private create(spec: RunSpec): { id: string; token: string; env: Record<string, string> } {
    const store = this.store;
    const id = store.reserveId(spec.name);
    const token = randomUUID();
    let env: Record<string, string>;
    try {
      const log = spec.log ?? store.paths(id).log;
      fs.closeSync(openLogAppend(log));
      const built = buildJobEnv(spec.callerEnv, {
        id,
        name: spec.name,
        log,
        presets: spec.presets,
        presetTable: spec.presetTable,
        env: spec.env,
        guardVars: spec.guardVars,
      });
      env = built.env;
      const me = procId(process.pid)!;
      // Recorded before anything starts: if the disk is full or read-only, nothing runs unrecorded.
      store.create({
        schema: SCHEMA_VERSION,
        id,
        name: spec.name,
        argv: spec.argv,
        cwd: spec.cwd,
        env: { added: redactEnv(built.added), presets: spec.presets },
        host: os.hostname(),
        user: safeUser(),
        jobqVersion: version,
        log,
        createdAt: new Date().toISOString(),
        boot: bootId(),
        launcher: me,
        protection: {
          isolationMode: spec.isolationMode,
          isolation: 'none',
          ...(spec.memLimitBytes ? { memLimitBytes: spec.memLimitBytes } : {}),
          ...(spec.oomScoreAdj ? { oomScoreAdj: { requested: spec.oomScoreAdj, actual: null } } : {}),
          ...(spec.timeoutMs ? { timeoutMs: spec.timeoutMs } : {}),
          ...(spec.idleTimeoutMs ? { idleTimeoutMs: spec.idleTimeoutMs } : {}),
          ...(spec.warnSignal ? { warnSignal: spec.warnSignal } : {}),
          graceMs: spec.graceMs,
          stopSignal: spec.stopSignal,
          warnings: [],
        },
        ...(spec.maxLogBytes ? { maxLogBytes: spec.maxLogBytes } : {}),
        ...(spec.onExit ? { onExit: spec.onExit } : {}),
        state: { status: 'starting', claim: { by: me, token, at: new Date().toISOString() } },
      });
    } catch (e) {
      // Nothing started and nothing worth keeping: leave no half-made job dir behind.
      store.removeJob(id);
      throw e;
    }
    return { id, token, env };
  }

  /** Starts the supervisor for a record this process claimed and returns the record once it says what happened. */
  private async start({ id, token, env }: { id: string; token: string; env: Record<string, string> }): Promise<JobRecord> {
    const store = this.store;
    try {
      // Loaded here so reading commands never pay for child_process.
      const { startSupervisor } = await import('../process/spawn.js');
      await startSupervisor(store.home, id, token, env);
    } catch (e) {
      if (!(e instanceof JobqError && e.code === 'START_FAILED')) throw e;
      // The launcher's verdict is final: a supervisor that comes later finds no claim and stands down.
      await store.transition(id, (rec) =>
        rec.state.status === 'starting' ? { ...rec, state: { status: 'failed-to-start', error: e.message, at: new Date().toISOString() } } : undefined,
      );
    }
    // The supervisor ended without recording anything: that is provable now, so say it.
    return (await this.view(id)).rec;
  }

  /** Reads and reconciles one record; moves it through the store's transition when its truth is provable. */
  async view(id: string, procs?: ProcStat[]): Promise<JobView> {
    let rec = this.store.readRecord(id);
    let r = reconcileState(rec);
    let note: string | undefined;
    if (r.persist) {
      try {
        const t = await this.store.transition(id, (fresh) => {
          const again = reconcileState(fresh);
          return again.persist ? { ...fresh, state: again.state } : undefined;
        });
        rec = t.rec;
        if (t.changed && rec.state.status === 'lost') await this.cleanupCgroups(rec);
        r = reconcileState(rec);
      } catch (e) {
        // A reader that cannot write still shows what is provable.
        note = `not recorded: ${(e as Error).message}`;
      }
    }
    const view: JobView = { rec, state: r.state, supervisorAlive: r.supervisorAlive, ...(note ? { note } : {}) };
    if (!isFinal(r.state)) {
      const t = jobTarget(rec);
      if (r.supervisorAlive && r.state.status === 'running' && t && !isAlive(t.job)) {
        const why = unwritableReason(this.store);
        view.note = why ? `ended; its supervisor holds the outcome until the state dir can be written (${why})` : 'ended; recording the outcome';
      }
      if (procs && t) view.rssBytes = rssBytes(jobProcesses(t, procs).procs);
    }
    return view;
  }

  /** Removes the cgroups of a job whose supervisor is gone, once they are empty (only cgroups jobq makes for it). */
  private async cleanupCgroups(rec: JobRecord): Promise<void> {
    const t = jobTarget({ ...rec, boot: bootId() });
    if (t?.cgroups?.length) await removeCgroupsWhenEmpty(t.cgroups, 0);
  }

  async get(ref: string, opts: { withMemory?: boolean } = {}): Promise<JobView> {
    return this.view(this.resolve(ref), opts.withMemory ? allProcesses() : undefined);
  }

  /** Live jobs first (running, then starting), then finished ones newest first; `recent` finished ones unless `all`. */
  async list(opts: { all: boolean; recent: number; withMemory: boolean }) {
    const ids = this.store.listIds();
    const active = new Set(this.store.activeIds());
    let chosen = ids;
    if (!opts.all) {
      // Ids sort by the second they were made in; read a little past N so jobs of the same second sort by real time.
      const done = ids.filter((id) => !active.has(id));
      const edge = done[opts.recent - 1];
      const second = edge ? parseId(edge)!.sortKey.slice(0, 14) : '';
      const recent = done.filter((id, i) => i < opts.recent || (edge !== undefined && parseId(id)!.sortKey.startsWith(second)));
      chosen = ids.filter((id) => active.has(id) || recent.includes(id));
    }
    const procs = opts.withMemory && active.size ? allProcesses() : undefined;
    const views: JobView[] = [];
    const broken: BrokenEntry[] = [];
    for (const id of chosen) {
      try {
        views.push(await this.view(id, procs));
      } catch (e) {
        if (e instanceof JobqError && e.code === 'NOT_FOUND') {
          const why = this.store.inspect(id);
          if (why !== 'creating') broken.push(why);
          continue;
        }
        broken.push({ id, error: (e as Error).message });
      }
    }
    views.sort((a, b) => rank(a) - rank(b) || Date.parse(b.rec.createdAt) - Date.parse(a.rec.createdAt) || (a.rec.id < b.rec.id ? 1 : -1));
    let shown = views;
    if (!opts.all) {
      let finished = 0;
      shown = views.filter((v) => !isFinal(v.state) || ++finished <= opts.recent);
    }
    return { views: shown, broken, hidden: ids.length - shown.length - broken.length };
  }

  async cancel(ref: string, opts: { signal: NodeJS.Signals; graceMs: number }): Promise<CancelResult> {
    const id = this.resolve(ref);
    const started = Date.now();
    const elapsed = () => Date.now() - started;
    let v = await this.view(id);
    if (isFinal(v.state)) return { id, outcome: 'already-ended', state: v.state, escalated: false, elapsedMs: 0 };
    const asker = procId(process.pid)!;
    const mine: CancelRequest = { at: new Date().toISOString(), by: `${safeUser()}@${os.hostname()} pid ${process.pid}`, signal: opts.signal, asker };
    const { req, ours } = this.store.requestCancel(id, mine, (earlier) => !isAlive(earlier.asker));
    if (!ours) {
      // Another jobq is cancelling it: wait for the end it brings rather than signal twice.
      const end = await this.waitFinal(id, Date.now() + opts.graceMs + 60_000);
      return { id, outcome: 'already-ended', state: (end ?? v).state, escalated: false, elapsedMs: elapsed(), detail: `already being cancelled by ${req.by}` };
    }
    appendEvent(this.store.eventsLog, 'info', 'cancel requested', { id, signal: opts.signal, by: req.by });
    // A job still starting has no pid yet: its supervisor either starts it (then we signal) or folds the request in.
    for (const until = Date.now() + 10_000; v.state.status === 'starting' && Date.now() < until; ) {
      await sleep(20);
      v = await this.view(id);
    }
    if (isFinal(v.state))
      return { id, outcome: v.state.status === 'cancelled' ? 'cancelled' : 'already-ended', state: v.state, escalated: false, elapsedMs: elapsed() };
    const t = jobTarget(v.rec);
    if (!t)
      return {
        id,
        outcome: 'not-signalled',
        state: v.state,
        escalated: false,
        elapsedMs: elapsed(),
        detail: 'the record holds no valid pid/pgid for this boot; nothing was signalled',
      };
    // Right before signalling: the state dir is still the one that was checked.
    this.store.assertSame();
    const res = await terminateJob(t, {
      signal: opts.signal,
      graceMs: opts.graceMs,
      onEscalate: (left) => appendEvent(this.store.eventsLog, 'warn', 'escalated to SIGKILL', { id, left }),
    });
    appendEvent(this.store.eventsLog, 'info', 'signalled', { id, signal: opts.signal, ...res });
    // The supervisor folds the request into the final state; raw reads here, so nothing reconciles it to lost meanwhile.
    let rec = this.store.readRecord(id);
    for (const until = Date.now() + 15_000; !isFinal(rec.state) && isAlive(rec.supervisor) && Date.now() < until; ) {
      await sleep(10);
      rec = this.store.readRecord(id);
    }
    if (!isFinal(rec.state)) {
      // No supervisor to record the end: nothing of the job is left, so it was cancelled, exit status unknown.
      const now = Date.now();
      const t2 = await this.store.transition(id, (fresh) => {
        if (isFinal(fresh.state) || isAlive(fresh.supervisor)) return undefined;
        const startedAt = ('startedAt' in fresh.state && fresh.state.startedAt) || fresh.createdAt;
        const state: JobState = {
          status: 'cancelled',
          startedAt,
          cancel: req,
          exitCode: null,
          signal: null,
          endedAt: new Date(now).toISOString(),
          durationMs: now - Date.parse(startedAt),
        };
        return { ...fresh, state };
      });
      rec = t2.rec;
      await this.cleanupCgroups(rec);
    }
    return { id, outcome: 'cancelled', state: rec.state, escalated: res.escalated, elapsedMs: elapsed() };
  }

  /** Every job dir as prune sees it, newest first: records reconciled, half-made dirs and unreadable records marked. */
  async pruneEntries(): Promise<PruneEntry[]> {
    const out: PruneEntry[] = [];
    for (const id of this.store.listIds()) {
      const name = parseId(id)!.name;
      try {
        const v = await this.view(id);
        out.push({ id, name, status: v.state.status, final: isFinal(v.state), endedAt: endedAtMs(v.state) });
      } catch (e) {
        const why = e instanceof JobqError && e.code === 'NOT_FOUND' ? this.store.inspect(id) : undefined;
        if (why && why !== 'creating') out.push({ id, name, status: 'half-made', final: false, endedAt: Date.now() - 60_000 });
        else out.push({ id, name, status: 'unreadable', final: false, endedAt: 0 });
      }
    }
    return out;
  }

  /** Removes a finished job (or a half-made dir) and its log if the log is in its dir; refuses a live job. */
  async remove(id: string): Promise<{ id: string; status: string; log?: string }> {
    let rec: JobRecord | undefined;
    try {
      rec = (await this.view(id)).rec;
    } catch (e) {
      const why = e instanceof JobqError && e.code === 'NOT_FOUND' ? this.store.inspect(id) : undefined;
      if (!why || why === 'creating') throw e;
      this.store.removeJob(id);
      return { id, status: 'half-made' };
    }
    if (!isFinal(rec.state)) throw new JobqError('CONFLICT', `${id} is ${rec.state.status}: cancel it first (jobq cancel ${id})`);
    this.store.removeJob(id);
    const outside = path.dirname(rec.log) !== this.store.paths(id).dir;
    return { id, status: rec.state.status, ...(outside ? { log: rec.log } : {}) };
  }

  async waitFinal(id: string, deadlineMs: number, onTick?: (v: JobView) => void): Promise<JobView | undefined> {
    for (;;) {
      const v = await this.view(id);
      onTick?.(v);
      if (isFinal(v.state)) return v;
      if (Date.now() >= deadlineMs) return undefined;
      await sleep(Math.min(100, Math.max(1, deadlineMs - Date.now())));
    }
  }
}

/** Where a job sorts in a listing: running first, then starting, then finished. */
function rank(v: JobView): number {
  if (v.state.status === 'running') return 0;
  return isFinal(v.state) ? 2 : 1;
}

/** When a finished job ended, for age-based pruning. */
function endedAtMs(s: JobState): number {
  if ('endedAt' in s) return Date.parse(s.endedAt);
  if (s.status === 'failed-to-start') return Date.parse(s.at);
  if (s.status === 'lost') return Date.parse(s.detectedAt);
  return Date.now();
}

function safeUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '?');
  }
}

/** Opens the local backend on the configured state dir. */
export function localBackend(home?: string): LocalBackend {
  return new LocalBackend(Store.open(home));
}
