// The local backend: jobs on this machine, one detached supervisor each, files as the truth.

import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { buildJobEnv } from '../domain/env.js';
import { JobqError } from '../domain/errors.js';
import { type Admission, type CancelRequest, isFinal, type JobRecord, type JobState, parseId, redactEnv, SCHEMA_VERSION, validateName } from '../domain/job.js';
import type { PruneEntry } from '../domain/prune.js';
import { formatSize } from '../domain/units.js';
import { allProcesses, bootId, isAlive, type ProcStat, procId } from '../process/proc.js';
import { meminfo } from '../process/resources.js';
import { holdJob, jobTarget, releaseJob, terminateJob } from '../process/signals.js';
import { appendEvent } from '../store/events.js';
import { type BrokenEntry, openLogAppend, Store } from '../store/store.js';
import type { Backend, CancelResult, JobView, RunSpec } from './backend.js';
import { dispatchRound, ensureDispatcher, launchAll, liveJobs, planFor } from './dispatch.js';
import { cleanupCgroups, settle } from './reconcile.js';

declare const JOBQ_VERSION: string;
const version = typeof JOBQ_VERSION === 'string' ? JOBQ_VERSION : '0.0.0-dev';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The local backend over one state dir. */
export class LocalBackend implements Backend {
  constructor(readonly store: Store) {}

  resolve(ref: string): string {
    return this.store.resolve(ref);
  }

  async run(spec: RunSpec): Promise<JobRecord> {
    return (await this.submit(spec))[0]!;
  }

  /** Starts a job array: one job NAME.i per value (see RunSpec.array); returns every element's record. */
  runArray(spec: RunSpec): Promise<JobRecord[]> {
    return this.submit(spec);
  }

  /**
   * One job, or an array's elements: records written under the name's lock (a NAME means one live job, or one live
   * array), then started at once, or — with a queue, dependencies, a memory or GPU need — left to dispatch.
   */
  private async submit(spec: RunSpec): Promise<JobRecord[]> {
    validateName(spec.name);
    if (spec.argv.length === 0) throw new JobqError('USAGE', 'missing command: jobq run NAME [options] -- CMD [ARGS...]');
    const admission = this.admissionFor(spec);
    const waits = spec.queue !== undefined || Object.keys(admission).length > 0 || !!spec.array;
    const make = () =>
      spec.array
        ? spec.array.values.map((value, i) =>
            this.create(
              {
                ...spec,
                name: `${spec.name}.${i + 1}`,
                argv: spec.argv.map((a) => a.split('{}').join(value)),
                env: { ...spec.env, JOBQ_ARRAY_INDEX: String(i + 1), JOBQ_ARRAY_VALUE: value },
              },
              {
                ...admission,
                array: { name: spec.name, index: i + 1, value, size: spec.array!.values.length, ...(spec.array!.cap ? { cap: spec.array!.cap } : {}) },
              },
              true,
            ),
          )
        : [this.create(spec, admission, waits)];
    // A NAME means one live job: the check and the new records happen under the name's lock, so racing runs give one.
    const made =
      spec.onLive === 'allow'
        ? make()
        : await this.store.withLock(`name:${spec.name}`, async () => {
            const live = [...(await this.liveNamed(spec.name)), ...(await this.liveArray(spec.name))];
            if (live.length && spec.onLive !== 'replace') {
              const v = live[0]!;
              const pid = v.rec.job ? ` (pid ${v.rec.job.pid})` : '';
              throw new JobqError(
                'CONFLICT',
                `a job named ${spec.name} is already ${v.state.status}: ${v.rec.id}${pid}; cancel it (jobq cancel ${spec.name}), replace it (run --replace), or start another beside it (run --allow-duplicate)`,
              );
            }
            for (const v of live) await this.cancel(v.rec.id, { signal: v.rec.protection.stopSignal as NodeJS.Signals, graceMs: v.rec.protection.graceMs });
            return make();
          });
    if (!waits) return [await this.start(made[0]!)];
    // Waiting: a dispatch round may start it at once (a single job is then reported started, as without a queue).
    const claims = await dispatchRound(this.store);
    const ours = made.length === 1 ? claims.find((c) => c.id === made[0]!.id) : undefined;
    await launchAll(
      this.store,
      claims.filter((c) => c !== ours),
    );
    await ensureDispatcher(this.store);
    if (ours) return [await this.start({ ...made[0]!, token: ours.token })];
    return Promise.all(made.map(async (m) => (await this.view(m.id)).rec));
  }

  /** What a job waits for besides a slot: dependencies resolved to ids now (an unknown REF is an error), memory, GPUs. */
  private admissionFor(spec: RunSpec): Admission {
    const a: Admission = {};
    if (spec.after?.length) {
      a.after = spec.after.flatMap(({ ref, kind }) => {
        const ids = this.arrayIds(ref);
        return (ids.length ? ids : [this.resolve(ref)]).map((id) => ({ id, kind }));
      });
    }
    const mem = spec.memBytes ?? spec.memLimitBytes;
    if (mem) {
      const total = meminfo('MemTotal');
      if (total && mem > total)
        throw new JobqError('USAGE', `the job needs ${formatSize(mem)} of memory (--mem): more than this machine has (${formatSize(total)})`);
      a.memBytes = mem;
    }
    if (spec.gpus) a.gpus = spec.gpus;
    return a;
  }

  /** Ids of the elements of the array NAME (jobs NAME.1, NAME.2, … created by one run --array), in index order. */
  arrayIds(name: string): string[] {
    const out: Array<[number, string]> = [];
    for (const id of this.store.listIds()) {
      const n = parseId(id)!.name;
      if (!n.startsWith(`${name}.`) || !/^\d+$/.test(n.slice(name.length + 1))) continue;
      try {
        const a = this.store.readRecord(id).admission?.array;
        if (a?.name === name) out.push([a.index, id]);
      } catch {
        /* unreadable: not an element jobq can act on */
      }
    }
    // Newest array of that name first in listIds: keep the first id seen per index.
    const byIndex = new Map<number, string>();
    for (const [i, id] of out) if (!byIndex.has(i)) byIndex.set(i, id);
    return [...byIndex.entries()].sort((x, y) => x[0] - y[0]).map((e) => e[1]);
  }

  /** The live elements of the array NAME. */
  private async liveArray(name: string): Promise<JobView[]> {
    const out: JobView[] = [];
    const active = new Set(this.store.activeIds());
    for (const id of this.arrayIds(name)) {
      if (!active.has(id)) continue;
      const v = await this.view(id);
      if (!isFinal(v.state)) out.push(v);
    }
    return out;
  }

  /**
   * What any command does on opening the state dir: note the slots a config file gives its queues (the dispatcher
   * reads no config), and start a dispatcher if jobs wait and theirs is gone (killed, or the machine restarted).
   */
  async keepDispatching(config: Pick<Config, 'queues' | 'memReserveBytes' | 'gpuBusyMiB' | 'gpus'>): Promise<void> {
    for (const [name, q] of Object.entries(config.queues)) {
      if (this.store.readQueue(name).configured !== q.slots) await this.store.updateQueue(name, { configured: q.slots });
    }
    await this.store.writeDispatchSettings({
      memReserveBytes: config.memReserveBytes,
      gpuBusyMiB: config.gpuBusyMiB,
      ...(config.gpus ? { gpus: config.gpus } : {}),
    });
    await ensureDispatcher(this.store);
  }

  /** A dispatch round now (after something freed a slot or resumed a queue), and a dispatcher while jobs wait. */
  async kick(): Promise<void> {
    await launchAll(this.store, await dispatchRound(this.store));
    await ensureDispatcher(this.store);
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

  /** Every job a reference means for cancel: an id is itself; a NAME is each of its live jobs (or its latest, if none lives); an array name, its live elements. */
  async resolveAll(ref: string): Promise<string[]> {
    const elements = this.arrayIds(ref);
    if (elements.length && !this.store.activeNamed(ref).length) {
      const live = (await this.liveArray(ref)).map((v) => v.rec.id);
      return live.length ? live : elements;
    }
    const id = this.resolve(ref);
    if (parseId(ref) && ref === id) return [id];
    const live = (await this.liveNamed(ref)).map((v) => v.rec.id);
    return live.length ? live : [id];
  }

  /** Writes the record (`starting`, claimed by this process; or `queued`, for dispatch) and what its supervisor needs. */
  private create(spec: RunSpec, admission: Admission, waits: boolean): { id: string; token: string; env: Record<string, string> } {
    const store = this.store;
    const id = store.reserveId(spec.name);
    const token = randomUUID();
    let env: Record<string, string>;
    try {
      const log = spec.log ?? store.paths(id).log;
      // A queued job starts later, from another process: it keeps its whole environment until then (0600).
      const keepEnv = waits;
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
      if (keepEnv) store.writeEnv(id, env);
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
        ...(spec.queue !== undefined ? { queue: spec.queue, priority: spec.priority ?? 0 } : {}),
        ...(Object.keys(admission).length ? { admission } : {}),
        state: waits ? { status: 'queued', since: new Date().toISOString() } : { status: 'starting', claim: { by: me, token, at: new Date().toISOString() } },
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
  view(id: string, procs?: ProcStat[]): Promise<JobView> {
    return settle(this.store, id, procs);
  }

  async get(ref: string, opts: { withMemory?: boolean } = {}): Promise<JobView> {
    const v = await this.view(this.resolve(ref), opts.withMemory ? allProcesses() : undefined);
    if (v.state.status === 'queued') v.waiting = (await this.withWaits([v.rec.id]))[0]?.waiting;
    return v;
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
    this.explainWaits(views);
    let shown = views;
    if (!opts.all) {
      let finished = 0;
      shown = views.filter((v) => !isFinal(v.state) || ++finished <= opts.recent);
    }
    return { views: shown, broken, hidden: ids.length - shown.length - broken.length };
  }

  /** Views of these jobs with their queue positions and reasons filled in (planned against every live job). */
  async withWaits(ids: string[]): Promise<JobView[]> {
    const live = await liveJobs(this.store);
    this.explainWaits(live);
    return ids.map((id) => live.find((v) => v.rec.id === id)).filter((v): v is JobView => !!v);
  }

  /** Adds each queued job's position and reason (a dispatch plan over the live jobs; nothing is claimed). */
  explainWaits(views: JobView[]): void {
    if (!views.some((v) => v.state.status === 'queued')) return;
    const plan = planFor(
      this.store,
      views.filter((v) => !isFinal(v.state)),
    );
    for (const v of views) {
      if (v.state.status !== 'queued') continue;
      const why = plan.waiting.get(v.rec.id);
      v.waiting = { position: plan.position.get(v.rec.id) ?? 0, ...(why ? { reason: why.text } : { reason: 'starting now' }) };
    }
  }

  async cancel(ref: string, opts: { signal: NodeJS.Signals; graceMs: number }): Promise<CancelResult> {
    const id = this.resolve(ref);
    const started = Date.now();
    const elapsed = () => Date.now() - started;
    let v = await this.view(id);
    if (isFinal(v.state)) return { id, outcome: 'already-ended', state: v.state, escalated: false, elapsedMs: 0 };
    const asker = procId(process.pid)!;
    const mine: CancelRequest = { at: new Date().toISOString(), by: `${safeUser()}@${os.hostname()} pid ${process.pid}`, signal: opts.signal, asker };
    if (v.state.status === 'queued') {
      // Never started: it leaves the queue, cancelled, with nothing to signal.
      const t = await this.store.transition(id, (rec) =>
        rec.state.status === 'queued'
          ? { ...rec, state: { status: 'cancelled', cancel: mine, exitCode: null, signal: null, endedAt: mine.at, durationMs: 0 } }
          : undefined,
      );
      if (t.changed) {
        this.store.removeEnv(id);
        return { id, outcome: 'cancelled', state: t.rec.state, escalated: false, elapsedMs: elapsed(), detail: 'never started' };
      }
      v = await this.view(id);
    }
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
      await cleanupCgroups(rec);
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

  /** Stops every process of a running job (cgroup freezer, else SIGSTOP to the group), state `paused`; it keeps its slot. */
  async pause(ref: string): Promise<JobView> {
    const id = this.resolve(ref);
    const v = await this.view(id);
    if (v.state.status === 'paused') return v;
    const t = jobTarget(v.rec);
    if (v.state.status !== 'running' || !t) throw new JobqError('CONFLICT', `${id} is ${v.state.status}: only a running job can be paused`);
    this.store.assertSame();
    const how = await holdJob(t);
    const r = await this.store.transition(id, (rec) =>
      rec.state.status === 'running'
        ? { ...rec, state: { status: 'paused', startedAt: rec.state.startedAt, pausedAt: new Date().toISOString(), how } }
        : undefined,
    );
    // Ended meanwhile: let go of what was held.
    if (!r.changed) releaseJob(t, how);
    return this.view(id);
  }

  /** Continues a paused job (thaw, else SIGCONT), state `running` again. */
  async resume(ref: string): Promise<JobView> {
    const id = this.resolve(ref);
    const v = await this.view(id);
    if (v.state.status === 'running') return v;
    const t = jobTarget(v.rec);
    if (v.state.status !== 'paused' || !t) throw new JobqError('CONFLICT', `${id} is ${v.state.status}: only a paused job can be resumed`);
    this.store.assertSame();
    const how = v.state.how;
    await this.store.transition(id, (rec) =>
      rec.state.status === 'paused' ? { ...rec, state: { status: 'running', startedAt: rec.state.startedAt } } : undefined,
    );
    releaseJob(t, how);
    return this.view(id);
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
  const s = v.state.status;
  if (s === 'running') return 0;
  if (s === 'starting' || s === 'paused') return 1;
  if (s === 'queued') return 2;
  return 3;
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
