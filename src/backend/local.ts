// The local backend: jobs on this machine, one detached supervisor each, files as the truth.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JobqError } from '../domain/errors.js';
import { isFinal, redactEnv, SCHEMA_VERSION, validateName, type JobRecord, type JobState } from '../domain/job.js';
import { buildJobEnv } from '../domain/env.js';
import { Store, openLogAppend } from '../store/store.js';
import { appendEvent } from '../store/events.js';
import { allProcesses, findSupervisors, isAlive, isReused, procId, rssBytes, type ProcStat } from '../process/proc.js';
import { jobProcesses, terminateJob, validTarget, type JobTarget } from '../process/signals.js';
import type { Backend, BrokenRecord, CancelResult, JobView, RunSpec } from './backend.js';

declare const JOBQ_VERSION: string;
const version = typeof JOBQ_VERSION === 'string' ? JOBQ_VERSION : '0.0.0-dev';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function targetOf(rec: JobRecord): JobTarget | undefined {
  return rec.job ? { job: rec.job, cgroups: rec.protection?.cgroups } : undefined;
}

/** Decides what a record really means now; returns a final state to persist when the truth is provable. */
function reconcileState(rec: JobRecord): { state: JobState; supervisorAlive: boolean; persist: boolean } {
  const s = rec.state;
  if (isFinal(s)) return { state: s, supervisorAlive: false, persist: false };
  const now = new Date().toISOString();
  const supervisorAlive = isAlive(rec.supervisor);
  if (s.status === 'starting') {
    if (supervisorAlive || isAlive(rec.launcher) || findSupervisors(rec.id).length) return { state: s, supervisorAlive, persist: false };
    return { state: { status: 'failed-to-start', error: 'jobq was stopped before the job started', at: now }, supervisorAlive, persist: true };
  }
  if (supervisorAlive) return { state: s, supervisorAlive, persist: false };
  const t = targetOf(rec);
  if (t && validTarget(t) && isAlive(t.job)) return { state: s, supervisorAlive, persist: false };
  const reused = t && isReused(t.job);
  const reason = reused
    ? `pid ${t!.job.pid} now belongs to another process; the job and its supervisor are gone, exit status unknown`
    : 'the job and its supervisor are gone (killed or machine restarted); exit status unknown';
  return { state: { status: 'lost', ...('startedAt' in s ? { startedAt: s.startedAt } : {}), reason, detectedAt: now }, supervisorAlive, persist: true };
}

/** The local backend over one state dir. */
export class LocalBackend implements Backend {
  constructor(readonly store: Store) {}

  resolve(ref: string): string {
    return this.store.resolve(ref);
  }

  async run(spec: RunSpec): Promise<JobRecord> {
    validateName(spec.name);
    if (spec.argv.length === 0) throw new JobqError('USAGE', "missing command: jobq run NAME [options] -- CMD [ARGS...]");
    const store = this.store;
    const id = store.reserveId(spec.name);
    const paths = store.paths(id);
    try {
      // A relative --log is taken from where jobq was called, like a shell redirect.
      const log = spec.log ? path.resolve(spec.log) : paths.log;
      fs.closeSync(openLogAppend(log));
      const { env, added } = buildJobEnv(spec.callerEnv, {
        id,
        name: spec.name,
        log,
        presets: spec.presets,
        presetTable: spec.presetTable,
        env: spec.env,
        guardVars: spec.guardVars,
      });
      const rec: JobRecord = {
        schema: SCHEMA_VERSION,
        id,
        name: spec.name,
        argv: spec.argv,
        cwd: spec.cwd,
        env: { added: redactEnv(added), presets: spec.presets },
        host: os.hostname(),
        user: safeUser(),
        jobqVersion: version,
        log,
        createdAt: new Date().toISOString(),
        launcher: procId(process.pid)!,
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
        state: { status: 'starting' },
      };
      // Recorded before anything starts: if the disk is full or read-only, nothing runs unrecorded.
      store.writeRecord(rec);
      store.setActive(id, true);
      // Loaded here so reading commands never pay for child_process.
      const { startSupervisor } = await import('../process/spawn.js');
      await startSupervisor(store.home, id, env);
    } catch (e) {
      if (!fs.existsSync(paths.record)) {
        store.removeJob(id);
      } else if (e instanceof JobqError && e.code === 'START_FAILED') {
        const rec = store.readRecord(id);
        if (rec.state.status === 'starting') {
          store.writeRecord({ ...rec, state: { status: 'failed-to-start', error: e.message, at: new Date().toISOString() } });
          store.setActive(id, false);
        }
      } else {
        store.removeJob(id);
      }
      throw e;
    }
    let rec = store.readRecord(id);
    if (rec.state.status === 'starting') {
      // The supervisor ended without recording anything: say so rather than leave it starting.
      const state = { status: 'failed-to-start' as const, error: 'the supervisor exited before starting the job (see jobq events)', at: new Date().toISOString() };
      rec = { ...rec, state };
      store.writeRecord(rec);
      store.setActive(id, false);
    }
    appendEvent(store.eventsLog, 'info', 'submitted', { id, argv: rec.argv, status: rec.state.status });
    return rec;
  }

  /** Reads and reconciles one record; finalizes it under the lock when the supervisor is provably gone. */
  async view(id: string, procs?: ProcStat[], locked = false): Promise<JobView> {
    let rec = this.store.readRecord(id);
    let r = reconcileState(rec);
    if (r.persist) {
      const finalize = () => {
        const fresh = this.store.readRecord(id);
        const again = reconcileState(fresh);
        if (!again.persist) return fresh;
        const next = { ...fresh, state: again.state };
        this.store.writeRecord(next);
        this.store.setActive(id, false);
        appendEvent(this.store.eventsLog, 'warn', 'reconciled', { id, status: again.state.status });
        return next;
      };
      rec = locked ? finalize() : await this.store.withLock(id, finalize);
      r = reconcileState(rec);
    } else if (isFinal(rec.state)) {
      this.store.setActive(id, false);
    }
    const view: JobView = { rec, state: r.state, supervisorAlive: r.supervisorAlive };
    if (procs && !isFinal(r.state)) {
      const t = targetOf(rec);
      if (t && validTarget(t)) {
        view.rssBytes = rssBytes(jobProcesses(t, procs).procs);
      }
    }
    return view;
  }

  async get(ref: string, opts: { withMemory?: boolean } = {}): Promise<JobView> {
    return this.view(this.resolve(ref), opts.withMemory ? allProcesses() : undefined);
  }

  async list(opts: { all: boolean; recent: number; withMemory: boolean }) {
    const ids = this.store.listIds();
    const active = new Set(this.store.activeIds());
    const chosen = opts.all ? ids : ids.filter((id, i) => i < opts.recent || active.has(id));
    const procs = opts.withMemory && active.size ? allProcesses() : undefined;
    const views: JobView[] = [];
    const broken: BrokenRecord[] = [];
    for (const id of chosen) {
      try {
        views.push(await this.view(id, procs));
      } catch (e) {
        // A directory without a record is a job being created (or one whose launcher died first): not a record.
        if (e instanceof JobqError && e.code === 'NOT_FOUND') continue;
        broken.push({ id, error: (e as Error).message });
      }
    }
    return { views, broken, hidden: ids.length - chosen.length };
  }

  async cancel(ref: string, opts: { signal: NodeJS.Signals; graceMs: number }): Promise<CancelResult> {
    const id = this.resolve(ref);
    const started = Date.now();
    const first = await this.view(id);
    if (isFinal(first.state)) return { id, outcome: 'already-ended', state: first.state, escalated: false, elapsedMs: 0 };
    return this.store.withLock(
      id,
      async () => {
        let v = await this.view(id, undefined, true);
        if (isFinal(v.state)) return { id, outcome: 'already-ended' as const, state: v.state, escalated: false, elapsedMs: Date.now() - started };
        const req = { at: new Date().toISOString(), by: `${safeUser()}@${os.hostname()} pid ${process.pid}`, signal: opts.signal };
        this.store.writeCancel(id, req);
        // A job still starting has no pid yet: give its supervisor a moment to record one.
        for (let i = 0; i < 100 && v.state.status === 'starting'; i++) {
          await sleep(50);
          v = await this.view(id, undefined, true);
        }
        const t = targetOf(v.rec);
        if (!t || !validTarget(t)) {
          return { id, outcome: 'not-signalled' as const, state: v.state, escalated: false, elapsedMs: Date.now() - started, detail: 'the record holds no valid pid/pgid; nothing was signalled' };
        }
        const res = await terminateJob(t, {
          signal: opts.signal,
          graceMs: opts.graceMs,
          onEscalate: (left) => appendEvent(this.store.eventsLog, 'warn', 'escalated to SIGKILL', { id, left }),
        });
        appendEvent(this.store.eventsLog, 'info', 'cancelled', { id, signal: opts.signal, ...res });
        // The supervisor folds the request into the final state; raw reads here, so nothing reconciles it to lost meanwhile.
        let rec = this.store.readRecord(id);
        for (const deadline = Date.now() + 5000; !isFinal(rec.state) && isAlive(rec.supervisor) && Date.now() < deadline; ) {
          await sleep(10);
          rec = this.store.readRecord(id);
        }
        if (!isFinal(rec.state)) {
          // No supervisor to record the end: it was cancelled, with its exit status unknown.
          const startedAt = rec.state.status === 'running' ? rec.state.startedAt : rec.createdAt;
          const state: JobState = { status: 'cancelled', startedAt, cancel: req, exitCode: null, signal: null, endedAt: new Date().toISOString(), durationMs: Date.now() - Date.parse(startedAt) };
          rec = { ...rec, state };
          this.store.writeRecord(rec);
          this.store.setActive(id, false);
        }
        return { id, outcome: 'cancelled' as const, state: rec.state, escalated: res.escalated, elapsedMs: Date.now() - started };
      },
      opts.graceMs + 60_000,
    );
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
