// The Backend commands use: one state dir, the generic work (names, arrays, listing, pruning, queues), and a Runner per
// place jobs run, chosen per record (`backend` field) and per run (`--backend`).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { startOrder } from '../domain/dispatch.js';
import { buildJobEnv } from '../domain/env.js';
import { JobqError } from '../domain/errors.js';
import {
  type Admission,
  isFinal,
  isValidName,
  type JobPatch,
  type JobRecord,
  type JobState,
  newToken,
  type ProcId,
  parseId,
  redactEnv,
  SCHEMA_VERSION,
  VERSION,
  validateName,
} from '../domain/job.js';
import * as life from '../domain/lifecycle.js';
import type { PruneEntry } from '../domain/prune.js';
import { sleep } from '../domain/units.js';
import { bootId, procId } from '../process/proc.js';
import { shareSmiFailuresIn } from '../process/resources.js';
import { appendEvent } from '../store/events.js';
import { appendJoblog, type BrokenEntry, openLogAppend, type QueueState, Store } from '../store/store.js';
import { readTimeline, type Sample } from '../store/timeline.js';
import type { Backend, CancelResult, DispatchSettingsInput, JobView, Made, QueueInfo, Removed, RestartOpts, Runner, RunnerHost, RunSpec } from './backend.js';
import { queueSettings } from './local/dispatch.js';
import { LocalQueues } from './local/queues.js';
import { BACKENDS, PLACES } from './places.js';
import { specFromRecord } from './spec.js';

/** What `rerun --failed` runs again: the ends that were failures (not a cancel, not a skip). */
const RERUN_FAILED = new Set<string>(['failed', 'killed', 'oom', 'timeout', 'lost', 'failed-to-start']);

/** The Backend over one state dir. */
export class Jobs implements Backend, RunnerHost {
  private readonly runners = new Map<string, Runner>();
  /** This machine's queues: only its jobs have them. */
  private readonly local = new LocalQueues(this);

  /** `config`: what a restart re-reads (presets, defaults) as the command that opened the state dir read it. */
  constructor(
    readonly store: Store,
    private readonly config: Config,
  ) {}

  private async runner(kind = 'local'): Promise<Runner> {
    let r = this.runners.get(kind);
    if (!r) {
      const place = Object.hasOwn(PLACES, kind) ? PLACES[kind] : undefined;
      if (!place) throw new JobqError('USAGE', `unknown backend '${kind}' (known: ${BACKENDS.join(', ')})`);
      r = await place.load();
      this.runners.set(kind, r);
    }
    return r;
  }

  resolve(ref: string): string {
    return this.store.resolve(ref);
  }

  async run(spec: RunSpec): Promise<JobRecord> {
    return (await this.submit(spec))[0]!;
  }

  async restart(ref: string, o: RestartOpts): Promise<{ old: JobRecord; rec: JobRecord }> {
    const elements = this.arrayIds(ref);
    if (elements.length) {
      // Each element is a job of its own: restarting all of them at once would be a new array, which run --array makes.
      const last = elements.at(-1)!.replace(/_\d{8}_\d{6}$/, '');
      throw new JobqError('USAGE', `${ref} is an array of ${elements.length} jobs: restart one element (jobq restart ${last}), or run the array again`);
    }
    const old = (await this.get(ref)).rec;
    return { old, rec: await this.run(specFromRecord(old, this.config, this.logIsOwn(old), o)) };
  }

  runArray(spec: RunSpec): Promise<JobRecord[]> {
    return this.submit(spec);
  }

  async rerun(
    ref: string,
    which: 'failed' | 'unfinished',
    o: RestartOpts & { dryRun?: boolean },
  ): Promise<Array<{ old: JobRecord; rec?: JobRecord; skipped?: string }>> {
    const elements = this.arrayIds(ref);
    let olds: JobView[];
    if (elements.length) olds = await Promise.all(elements.map((id) => this.view(id)));
    else if (this.queueNames().includes(ref)) olds = await Promise.all(this.latestInQueue(ref).map((id) => this.view(id)));
    else throw new JobqError('NOT_FOUND', `no array or queue named ${ref} (jobq status lists arrays, jobq queue the queues)`);
    const chosen = olds
      .filter((v) => isFinal(v.state) && (which === 'unfinished' ? v.state.status !== 'succeeded' : RERUN_FAILED.has(v.state.status)))
      .sort((x, y) => x.rec.createdAt.localeCompare(y.rec.createdAt));
    const out: Array<{ old: JobRecord; rec?: JobRecord; skipped?: string }> = [];
    // Oldest first, so a dependency run again comes before what waits on it, and that waits on the new run.
    const again = new Map<string, string>();
    for (const { rec: old } of chosen) {
      if (o.dryRun) {
        out.push({ old });
        continue;
      }
      const spec = specFromRecord(old, this.config, this.logIsOwn(old), o);
      // The same element of the same array (index, value, cap, run); the same dependencies, on their new runs if any.
      const a = old.admission?.array;
      const after = old.admission?.after?.map((d) => ({ ref: again.get(d.id) ?? d.id, kind: d.kind }));
      try {
        const rec = await this.run({ ...spec, onLive: 'refuse', ...(a ? { element: a } : {}), ...(after?.length ? { after } : {}) });
        again.set(old.id, rec.id);
        out.push({ old, rec });
      } catch (e) {
        // A live job of that NAME (run again meanwhile): left alone, and said, while the others go on.
        if (!(e instanceof JobqError && e.code === 'CONFLICT')) throw e;
        out.push({ old, skipped: e.message });
      }
    }
    return out;
  }

  /** The latest job of each NAME, where that job ran in this queue, newest first. */
  private latestInQueue(queue: string): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const id of this.store.listIds()) {
      const name = parseId(id)!.name;
      if (seen.has(name)) continue;
      seen.add(name);
      try {
        if (this.store.readRecord(id).queue === queue) out.push(id);
      } catch {
        /* unreadable: nothing to run again */
      }
    }
    return out;
  }

  /**
   * One job, or an array's elements: records written under the name's lock (a NAME means one live job, or one live
   * array), then handed to the runner of the place they run.
   */
  private async submit(spec: RunSpec): Promise<JobRecord[]> {
    validateName(spec.name);
    if (spec.argv.length === 0) throw new JobqError('USAGE', 'missing command: jobq run NAME [options] -- CMD [ARGS...]');
    const runner = await this.runner(spec.backend);
    const admission = this.admissionFor(spec, runner);
    if (spec.queue) await this.store.ensureQueue(spec.queue);
    // Ends go to a joblog (GNU parallel's): --joblog, else an array's own in the state dir. Made now: a path that
    // cannot be written refuses the run before any record exists.
    const joblog = spec.joblog ?? (spec.array && runner.kind === 'local' ? this.store.joblogPath(spec.name) : undefined);
    if (joblog) appendJoblog(joblog);
    if (joblog) spec = { ...spec, joblog };
    const elements: RunSpec[] = spec.array
      ? spec.array.values.map((value, i) => ({
          ...spec,
          name: `${spec.name}.${i + 1}`,
          argv: spec.argv.map((a) => a.split('{}').join(value)),
          env: { ...spec.env, JOBQ_ARRAY_INDEX: String(i + 1), JOBQ_ARRAY_VALUE: value },
        }))
      : [spec];
    // One token per run of an array: its elements (and their reruns) are that array, not an earlier run of the NAME.
    const run = newToken().slice(0, 12);
    const admissions: Admission[] = spec.array
      ? spec.array.values.map((value, i) => ({
          ...admission,
          array: { name: spec.name, index: i + 1, value, size: spec.array!.values.length, ...(spec.array!.cap ? { cap: spec.array!.cap } : {}), run },
        }))
      : [admission];
    const go = async () => {
      // Numbered once the run is sure to make its jobs: a refused run uses up no number.
      const first = await this.store.allocSeq(elements.length);
      const numbered = elements.map((e, i) => ({ ...e, seq: first + i }));
      return runner.submit(this, numbered, admissions, spec.array ? spec : undefined);
    };
    if (spec.onLive === 'allow') return go();
    // A NAME means one live job: the check and the new records happen under the name's lock, so racing runs give one.
    return this.store.withLock(`name:${spec.name}`, async () => {
      const live = [...(await this.liveNamed(spec.name)), ...(await this.liveArray(spec.name))];
      if (live.length && spec.onLive !== 'replace') {
        const v = live[0]!;
        const pid = v.rec.job ? ` (pid ${v.rec.job.pid})` : '';
        throw new JobqError(
          'CONFLICT',
          `a job named ${spec.name} is already ${v.state.status}: ${v.rec.id}${pid}; cancel it (jobq cancel ${spec.name}), replace it (run --replace), or start another beside it (run --allow-duplicate)`,
        );
      }
      for (const v of live) {
        const r = await this.cancel(v.rec.id, {});
        spec.onReplaced?.(v.rec.id, r.outcome);
      }
      return go();
    });
  }

  /** What a job waits for besides a slot: dependencies resolved to ids now (an unknown REF is an error), memory, GPUs. */
  private admissionFor(spec: RunSpec, runner: Runner): Admission {
    const a: Admission = {};
    if (spec.after?.length) {
      a.after = spec.after.flatMap(({ ref, kind }) => {
        const ids = this.arrayIds(ref);
        return (ids.length ? ids : [this.resolve(ref)]).map((id) => ({ id, kind }));
      });
    }
    // Only --mem is a need to wait for: --mem-limit is a cap, and a cap never holds a job back (a cluster may read it as both).
    if (spec.memBytes) a.memBytes = spec.memBytes;
    if (spec.gpus) a.gpus = spec.gpus;
    if (spec.gpuMemBytes) a.gpuMemBytes = spec.gpuMemBytes;
    if (spec.gpuMemEnforce) a.gpuMemEnforce = true;
    if (spec.element) a.array = spec.element;
    if (a.gpus) shareSmiFailuresIn(this.store.smiFailuresFile);
    runner.admit?.(spec, a);
    return a;
  }

  /**
   * Writes a job's record and log (and, for a job that waits, its whole environment, 0600); `supervisor`: the standby
   * that will run it, recorded from the start so no claim needs taking over.
   */
  create(spec: RunSpec, admission: Admission, first: 'starting' | 'queued' | 'submitting', supervisor?: ProcId): Made {
    const store = this.store;
    const id = store.reserveId(spec.name);
    const token = newToken();
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
      const me = procId(process.pid)!;
      // A queued job starts later, from another process: it keeps its whole environment until then.
      if (first === 'queued') store.writeEnv(id, built.env);
      const now = new Date().toISOString();
      const state: JobState =
        first === 'queued' ? { status: 'queued', since: now } : { status: 'starting', ...(first === 'starting' ? { claim: { by: me, token, at: now } } : {}) };
      // Recorded before anything starts: if the disk is full or read-only, nothing runs unrecorded.
      store.create(
        {
          schema: SCHEMA_VERSION,
          id,
          ...(spec.seq !== undefined ? { seq: spec.seq } : {}),
          name: spec.name,
          argv: spec.argv,
          cwd: spec.cwd,
          env: { added: redactEnv(built.added), presets: spec.presets },
          host: os.hostname(),
          user: safeUser(),
          jobqVersion: VERSION,
          log,
          createdAt: now,
          boot: bootId(),
          launcher: me,
          ...(supervisor ? { supervisor } : {}),
          protection: {
            isolationMode: spec.isolationMode,
            isolation: 'none',
            ...(spec.memLimitBytes ? { memLimitBytes: spec.memLimitBytes } : {}),
            ...(spec.memHighBytes ? { memHighBytes: spec.memHighBytes } : {}),
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
          ...(spec.sampleMs ? { sampleMs: spec.sampleMs } : {}),
          ...(spec.queue !== undefined ? { queue: spec.queue, priority: spec.priority ?? 0 } : {}),
          ...(Object.keys(admission).length ? { admission } : {}),
          ...(spec.backend && spec.backend !== 'local' ? { backend: spec.backend } : {}),
          ...(spec.owner ? { owner: spec.owner } : {}),
          ...(spec.retry ? { retry: spec.retry } : {}),
          ...(spec.joblog ? { joblog: spec.joblog } : {}),
          state,
        },
        { event: first !== 'starting' },
      );
      return { id, token, env: built.env };
    } catch (e) {
      // Nothing started and nothing worth keeping: leave no half-made job dir behind.
      store.removeJob(id);
      throw e;
    }
  }

  /** Reads one record and brings it up to date through its runner. */
  async view(id: string, opts: { withMemory?: boolean } = {}): Promise<JobView> {
    const rec = this.store.readRecord(id);
    const v: JobView = { rec, state: rec.state, supervisorAlive: false };
    await (await this.runner(rec.backend)).refresh(this, [v], opts);
    return v;
  }

  async get(ref: string, opts: { withMemory?: boolean } = {}): Promise<JobView> {
    const v = await this.view(this.resolve(ref), opts);
    if (v.state.status === 'queued' && !v.waiting) v.waiting = (await this.withWaits([v.rec.id]))[0]?.waiting;
    return v;
  }

  /** Live jobs first (running, then starting/paused, then queued), then finished ones newest first; `recent` finished ones unless `all`. */
  async list(opts: { all: boolean; recent: number; withMemory: boolean }) {
    let chosen: string[];
    let total: number;
    let active: string[];
    if (opts.all) {
      chosen = this.store.listIds();
      total = chosen.length;
      active = this.store.activeIds();
    } else {
      // The active jobs and the newest N others (a little past N: jobs of the same second sort by real time), from
      // the history index: the other thousands of job dirs are neither listed nor read.
      const recent = await this.store.recentDone(opts.recent, this.store.activeIds());
      chosen = [...recent.live, ...recent.ids];
      active = recent.live;
      total = recent.live.length + recent.total;
    }
    const views: JobView[] = [];
    const broken: BrokenEntry[] = [];
    for (const id of chosen) {
      try {
        const rec = this.store.readRecord(id);
        views.push({ rec, state: rec.state, supervisorAlive: false });
      } catch (e) {
        if (e instanceof JobqError && e.code === 'NOT_FOUND') {
          const why = this.store.inspect(id);
          if (why !== 'creating') broken.push(why);
          continue;
        }
        broken.push({ id, error: (e as Error).message });
      }
    }
    await this.refreshAll(views, { withMemory: opts.withMemory });
    // A final record still in the active index (its writer died before indexing it): the move is finished here.
    const wasActive = new Set(active);
    for (const v of views) if (isFinal(v.state) && wasActive.has(v.rec.id)) await this.store.indexEnded(v.rec.id);
    // Queued jobs in the order they will start (the dispatcher's own order); the others newest first.
    const order = (v: JobView) => ({ id: v.rec.id, priority: v.rec.priority ?? 0, createdAt: v.rec.createdAt, array: v.rec.admission?.array });
    const queuedOrder = (a: JobView, b: JobView) => startOrder(order(a), order(b));
    views.sort(
      (a, b) =>
        rank(a) - rank(b) || (rank(a) === 2 ? queuedOrder(a, b) : Date.parse(b.rec.createdAt) - Date.parse(a.rec.createdAt) || (a.rec.id < b.rec.id ? 1 : -1)),
    );
    this.local.explainWaits(views);
    let shown = views;
    if (!opts.all) {
      let finished = 0;
      shown = views.filter((v) => !isFinal(v.state) || ++finished <= opts.recent);
    }
    // Only what the recent cut left out: a job dir being made (or removed) meanwhile is not an older job.
    return { views: shown, broken, hidden: total - chosen.length + views.length - shown.length };
  }

  /** Refreshes views through their runners, each runner once for all of its jobs. */
  private async refreshAll(views: JobView[], opts: { withMemory?: boolean }): Promise<void> {
    const byKind = new Map<string, JobView[]>();
    for (const v of views) {
      const k = v.rec.backend ?? 'local';
      byKind.set(k, [...(byKind.get(k) ?? []), v]);
    }
    for (const [kind, vs] of byKind) await (await this.runner(kind)).refresh(this, vs, opts);
  }

  withWaits(ids: string[]): Promise<JobView[]> {
    return this.local.withWaits(ids);
  }

  queueNames(): string[] {
    return this.local.names();
  }

  updateQueue(name: string, patch: QueueState) {
    return this.local.update(name, patch);
  }

  liveIds(): string[] {
    return this.store.activeIds();
  }

  async liveOwnedBy(owner: string, session?: ProcId): Promise<string[]> {
    const views = await Promise.all(this.liveIds().map((id) => this.view(id).catch(() => undefined)));
    const mine = (o: JobRecord['owner']) => o?.id === owner || (!!session && o?.session?.pid === session.pid && o.session.startTicks === session.startTicks);
    return views.filter((v) => v && !isFinal(v.state) && mine(v.rec.owner)).map((v) => v!.rec.id);
  }

  names(): string[] {
    return [...new Set(this.store.listIds().map((id) => parseId(id)!.name))].sort();
  }

  logIsOwn(rec: JobRecord): boolean {
    return path.dirname(rec.log) === this.store.paths(rec.id).dir;
  }

  /** The not-yet-final jobs called NAME, newest first, as they really are now. */
  private async liveNamed(name: string): Promise<JobView[]> {
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

  /** The elements of the array NAME (jobs NAME.1, NAME.2, … made by one run --array), in index order; none if a job is called NAME. */
  arrayIds(name: string): string[] {
    // A job number is one job; no array can be called a `#N` or an invalid name.
    if (!isValidName(name) || this.store.numbered(name)) return [];
    const byIndex = new Map<number, string>();
    const ids = this.store.listIds();
    if (ids.some((id) => parseId(id)!.name === name)) return [];
    let latest: { run?: string } | undefined;
    for (const id of ids) {
      const n = parseId(id)!.name;
      if (!n.startsWith(`${name}.`) || !/^\d+$/.test(n.slice(name.length + 1))) continue;
      try {
        const a = this.store.readRecord(id).admission?.array;
        if (a?.name !== name) continue;
        // Newest first in listIds: the newest element names the array's latest run; only that run's elements (and
        // their reruns) are the array, the newest of each index.
        latest ??= { run: a.run };
        if (a.run === latest.run && !byIndex.has(a.index)) byIndex.set(a.index, id);
      } catch {
        /* unreadable: not an element jobq can act on */
      }
    }
    return [...byIndex.entries()].sort((x, y) => x[0] - y[0]).map((e) => e[1]);
  }

  expand(refs: string[]): { ids: string[]; arrays: number } {
    let arrays = 0;
    const ids = refs.flatMap((r) => {
      const elements = this.arrayIds(r);
      if (elements.length) arrays++;
      return elements.length ? elements : [this.resolve(r)];
    });
    return { ids, arrays };
  }

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

  async resolveAll(ref: string): Promise<string[]> {
    const elements = this.arrayIds(ref);
    if (elements.length) {
      const live = (await this.liveArray(ref)).map((v) => v.rec.id);
      return live.length ? live : elements;
    }
    const id = this.resolve(ref);
    // An id or a job number is that one job; a NAME is every live job of it.
    if (parseId(id)!.name !== ref) return [id];
    const live = (await this.liveNamed(ref)).map((v) => v.rec.id);
    return live.length ? live : [id];
  }

  async cancel(ref: string, opts: { signal?: NodeJS.Signals; graceMs?: number; by?: string }): Promise<CancelResult> {
    const id = this.resolve(ref);
    const v = await this.view(id);
    if (isFinal(v.state)) return { id, outcome: 'already-ended', state: v.state, escalated: false, elapsedMs: 0 };
    const signal = opts.signal ?? (v.rec.protection.stopSignal as NodeJS.Signals);
    const graceMs = opts.graceMs ?? v.rec.protection.graceMs;
    return { ...(await (await this.runner(v.rec.backend)).cancel(this, v, { signal, graceMs, by: opts.by })), signal, graceMs };
  }

  async pause(ref: string): Promise<JobView> {
    const id = this.resolve(ref);
    const v = await this.view(id);
    if (v.state.status !== 'paused') await (await this.runner(v.rec.backend)).pause(this, v);
    return this.view(id);
  }

  async resume(ref: string): Promise<JobView> {
    const id = this.resolve(ref);
    const v = await this.view(id);
    if (v.state.status !== 'running') await (await this.runner(v.rec.backend)).resume(this, v);
    return this.view(id);
  }

  async edit(ref: string, patch: JobPatch): Promise<JobView> {
    const id = this.resolve(ref);
    // One transition under the job's lock: a dispatcher's claim (queued -> starting) comes wholly before or after it.
    const t = await this.store.transition(id, life.edited(patch));
    if (t.changed) appendEvent(this.store.eventsLog, 'info', 'edited', { id, ...patch });
    // A higher priority may let it start now, before the others.
    if (t.changed && patch.priority !== undefined) await this.local.kick();
    return (await this.withWaits([t.rec.id]))[0] ?? this.view(id);
  }

  async waitFinal(id: string, deadlineMs: number, onTick?: (v: JobView) => void): Promise<JobView | undefined> {
    // Another place (a cluster's controller) is asked less often than this machine's /proc, and less and less
    // often as the wait goes on (from 0.5 s to 5 s), as sbatch --wait does: a long wait must not load slurmctld.
    for (let remote = 500; ; remote = Math.min(remote * 1.25, 5000)) {
      const v = await this.view(id);
      onTick?.(v);
      if (isFinal(v.state)) return v;
      if (Date.now() >= deadlineMs) return undefined;
      await sleep(Math.min(v.rec.backend ? remote : 100, Math.max(1, deadlineMs - Date.now())));
    }
  }

  /** Every job dir as prune sees it, newest first: records brought up to date, half-made dirs and unreadable records marked. */
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
  async remove(id: string): Promise<Removed> {
    return (await this.removeAll([id]))[0]!;
  }

  /** Removes each job as `remove` does, in order until one is refused (those before it still go), all dirs at once. */
  async removeAll(ids: string[]): Promise<Removed[]> {
    const out: Removed[] = [];
    try {
      for (const id of ids) out.push(await this.removable(id));
    } finally {
      await this.store.removeJobs(out.map((r) => r.id));
    }
    return out;
  }

  /** What removing a job removes: a finished one, or a half-made dir; a live job is refused. */
  private async removable(id: string): Promise<Removed> {
    let rec: JobRecord | undefined;
    try {
      rec = (await this.view(id)).rec;
    } catch (e) {
      const why = e instanceof JobqError && e.code === 'NOT_FOUND' ? this.store.inspect(id) : undefined;
      if (!why || why === 'creating') throw e;
      return { id, status: 'half-made' };
    }
    if (!isFinal(rec.state)) throw new JobqError('CONFLICT', `${id} is ${rec.state.status}: cancel it first (jobq cancel ${id})`);
    return { id, status: rec.state.status, ...(this.logIsOwn(rec) ? {} : { log: rec.log }) };
  }

  queues(names: string[]): Promise<{ queues: QueueInfo[]; outside: QueueInfo['waiting'] }> {
    return this.local.queues(names);
  }

  queueSettings(name: string): { slots: number; paused: boolean } {
    return queueSettings(this.store, name);
  }

  eventsFile(): string {
    return this.store.eventsFile();
  }

  samples(id: string): Sample[] {
    return readTimeline(this.store.paths(id).samples);
  }

  changesPath(): string {
    return this.store.activeDir;
  }

  keepDispatching(config?: { queues: Record<string, { slots: number }> } & DispatchSettingsInput): Promise<void> {
    return this.local.keepDispatching(config);
  }
}

/** Where a job sorts in a listing: running first, then starting or paused, then queued, then finished. */
function rank(v: JobView): number {
  const s = v.state.status;
  if (s === 'running') return 0;
  if (s === 'starting' || s === 'paused') return 1;
  if (s === 'queued') return 2;
  return 3;
}

/** When a finished job ended, for age-based pruning. */
function endedAtMs(s: JobState): number {
  const at = life.finishedAtOf(s);
  return at ? Date.parse(at) : Date.now();
}

/** The current user's name, for records and cancel requests. */
export function safeUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '?');
  }
}

/** Opens the Backend on a state dir. */
export function openJobs(home: string | undefined, config: Config): Jobs {
  return new Jobs(Store.open(home), config);
}
