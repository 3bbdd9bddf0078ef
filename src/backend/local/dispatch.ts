// Dispatch without a resident daemon. A queued job is only a record (state `queued`, listed in waiting/). Whoever
// may free a slot — `run --queue`, a supervisor at its job's end, `queue resume`, `cancel` — runs a dispatch round
// under the dispatch lock: reconcile the live jobs (a lost one frees its slot), plan, and claim what may start
// (queued -> starting, with a token its supervisor must show: the claim is the exactly-once). Where a wait can end
// with no jobq process around to notice (a supervisor SIGKILLed), a transient dispatcher lives while jobs wait,
// found through dispatcher.json (pid + start time + boot); any jobq command restarts it if it is gone.
import fs from 'node:fs';
import {
  DEFAULT_SLOTS,
  type DispatchJob,
  type DispatchPlan,
  type Gpu,
  planDispatch,
  type QueueSettings,
  type Resources,
  type WaitReason,
} from '../../domain/dispatch.js';
import { isBusy } from '../../domain/errors.js';
import { isFinal, type JobRecord, newToken, type ProcId } from '../../domain/job.js';
import * as life from '../../domain/lifecycle.js';
import type { PressureSettings } from '../../domain/pressure.js';
import { allProcesses, bootId, isAlive, procId } from '../../process/proc.js';
import { gpuAppsNow, jobMemUsed, listGpus, meminfo, readPsi, shareSmiFailuresIn } from '../../process/resources.js';
import { jobProcesses, jobTarget } from '../../process/signals.js';
import { appendEvent } from '../../store/events.js';
import type { Store } from '../../store/store.js';
import type { JobView } from '../backend.js';
import { settle } from './reconcile.js';

/** A queue's settings: what `jobq queue set/pause` stored, over what a config file said, 1 slot for a new queue. */
export function queueSettings(store: Store, name: string): QueueSettings {
  const q = store.readQueue(name);
  return { slots: q.slots ?? q.configured ?? DEFAULT_SLOTS, paused: q.paused ?? false };
}

/** A job claimed for starting: its supervisor must show this token. */
export interface Claimed {
  id: string;
  token: string;
  queue?: string;
}

/** The live jobs of this machine, reconciled (`view` lets a caller that knows every backend see theirs too). */
export async function liveJobs(store: Store, view?: (id: string) => Promise<JobView>): Promise<JobView[]> {
  const views: JobView[] = [];
  for (const id of store.activeIds()) {
    try {
      // Another place's job (a Slurm job) is not this machine's to reconcile or dispatch.
      if (!view && store.readRecord(id).backend) continue;
      const v = view ? await view(id) : await settle(store, id);
      if (!isFinal(v.state)) views.push(v);
      // Its writer died before indexing the end: the move is finished here.
      else await store.indexEnded(id);
    } catch {
      /* unreadable or gone: not a job dispatch can count or start */
    }
  }
  return views;
}

/** The dispatch view of a job (with the memory it uses now, when it declared a need and runs). */
export function asDispatchJob(v: JobView): DispatchJob {
  const r = v.rec;
  const a = r.admission;
  const j: DispatchJob = { id: r.id, status: v.state.status as DispatchJob['status'], queue: r.queue, priority: r.priority ?? 0, createdAt: r.createdAt };
  if (a?.after?.length) j.after = a.after;
  if (a?.array) j.array = { name: a.array.name, index: a.array.index, ...(a.array.cap ? { cap: a.array.cap } : {}) };
  if (a?.memBytes) j.memBytes = a.memBytes;
  if (a?.gpus) j.gpus = a.gpus;
  if (a?.gpuList) j.gpuList = a.gpuList;
  if (a?.gpuListMiB) j.gpuListMiB = a.gpuListMiB;
  if (a?.gpuMemBytes) j.gpuMemBytes = a.gpuMemBytes;
  if (r.gpus?.length && v.state.status !== 'queued') j.heldGpus = r.gpus;
  if (v.state.status === 'queued' && v.state.retry) j.retry = { attempt: v.state.retry.attempt, atMs: Date.parse(v.state.retry.at) };
  if (a?.memBytes && (v.state.status === 'running' || v.state.status === 'paused')) {
    const t = jobTarget(r);
    if (t) j.memUsedBytes = jobMemUsed(t, r.protection.isolation);
  }
  return j;
}

/** What the machine has now, read only when some waiting job needs it (nvidia-smi is not free). */
function resourcesFor(store: Store, jobs: DispatchJob[], views: JobView[]): Resources {
  const waiting = jobs.filter((j) => j.status === 'queued');
  const s = store.readDispatchSettings();
  // A job whose run named its GPUs carries that list; the others get what nvidia-smi says now.
  // A --gpu-mem job asks nvidia-smi even for listed GPUs: their sizes and others' use decide where it fits.
  const gpus = gpusNow(
    store,
    waiting.some((j) => j.gpus && (!j.gpuList || j.gpuMemBytes)),
  );
  if (gpus.gpus.length && waiting.some((j) => j.gpuMemBytes)) attributeVram(gpus.gpus, jobs, views);
  return {
    ...(waiting.some((j) => j.memBytes) ? { memAvailable: meminfo('MemAvailable') } : {}),
    memReserve: s.memReserveBytes ?? 1024 ** 3,
    ...gpus,
    gpuBusyMiB: s.gpuBusyMiB ?? 1024,
    ...pressureNow(s.pressureGuard, waiting.length > 0),
  };
}

/** The machine's GPUs, asked of nvidia-smi only when a waiting job needs them; its failure is said, not hidden. */
function gpusNow(store: Store, needed: boolean): Pick<Resources, 'gpus' | 'gpuError'> {
  if (!needed) return { gpus: [] };
  shareSmiFailuresIn(store.smiFailuresFile);
  const gpus = listGpus(undefined);
  return { gpus: [...gpus], ...(gpus.error ? { gpuError: gpus.error } : {}) };
}

/**
 * Packing --gpu-mem jobs: which GPU memory is a live job's (its processes, per GPU) and which is another program's.
 * Without nvidia-smi's per-process list, every byte in use counts as another program's: never more admitted, only fewer.
 */
function attributeVram(gpus: Gpu[], jobs: DispatchJob[], views: JobView[]): void {
  const apps = gpuAppsNow();
  if (!apps) return;
  const byUuid = new Map(gpus.flatMap((g) => (g.uuid ? [[g.uuid, g] as const] : [])));
  const owner = new Map<number, DispatchJob>();
  const all = allProcesses();
  for (const v of views) {
    const j = jobs.find((x) => x.id === v.rec.id);
    const t = j?.heldGpus && jobTarget(v.rec);
    if (t) for (const p of jobProcesses(t, all).procs) owner.set(p.pid, j);
  }
  const jobsMiB = new Map<number, number>();
  for (const a of apps) {
    const g = a.uuid ? byUuid.get(a.uuid) : gpus.length === 1 ? gpus[0] : undefined;
    const j = owner.get(a.pid);
    // Only on a GPU the job holds is its use its own (its reservation there); elsewhere it counts as another program's.
    if (!g || !j?.heldGpus?.includes(g.index)) continue;
    const mib = a.bytes / 1024 ** 2;
    j.vramMiB ??= new Map();
    j.vramMiB.set(g.index, (j.vramMiB.get(g.index) ?? 0) + mib);
    jobsMiB.set(g.index, (jobsMiB.get(g.index) ?? 0) + mib);
  }
  for (const g of gpus) g.foreignMiB = Math.max(0, (g.memUsedMiB ?? 0) - (jobsMiB.get(g.index) ?? 0));
}

/** Memory pressure over the guard's threshold, read only when the guard is on and some job waits. */
function pressureNow(g: PressureSettings | undefined, anyWaiting: boolean): Pick<Resources, 'pressure'> {
  if (!g || !anyWaiting) return {};
  const psi = readPsi();
  return psi && psi.some > g.some ? { pressure: { some: psi.some, limit: g.some } } : {};
}

/** Plans from a list of live jobs: what would start, what can never start, why each other one waits. */
export function planFor(store: Store, views: JobView[]): DispatchPlan {
  const jobs = views.map(asDispatchJob);
  const live = new Map(views.map((v) => [v.rec.id, v.state.status as string]));
  // A dependency may have ended long ago: its record says how (read once per round).
  const statusOf = (id: string) => {
    if (live.has(id)) return live.get(id);
    try {
      const st = store.readRecord(id).state.status;
      live.set(id, st);
      return st;
    } catch {
      return undefined;
    }
  };
  return planDispatch(jobs, (q) => queueSettings(store, q), resourcesFor(store, jobs, views), statusOf);
}

/** What a round is told: whether it is the dispatcher's, what it saw, and what runs with its claims before the lock goes. */
interface RoundOpts {
  background?: boolean;
  seen?: (views: JobView[], plan: DispatchPlan) => void;
  waitMs?: number;
  /** Runs with the claims made, before the lock goes. */
  whileHeld?: (claims: Claimed[]) => Promise<void> | undefined;
}

/**
 * One round under the dispatch lock: skips what can never start, claims (queued -> starting) what may start now.
 * The dispatcher's rounds (`background`) reconcile the live jobs even when none waits — a claim whose claimer died
 * before starting its supervisor goes back to waiting that way — and leave a just-queued job to the `run` that
 * wrote it while that run lives (it starts it itself and reports it started, as an unqueued run would).
 */
export async function dispatchRound(store: Store, opts: RoundOpts = {}): Promise<Claimed[]> {
  if (!opts.background && !store.anyWaiting()) return [];
  return store.withLock('dispatch', () => roundHeld(store, opts), opts.waitMs);
}

/** How long a live `run` keeps its just-queued job to start itself, as an unqueued run would. */
const LAUNCHER_GRACE_MS = 2000;

/** A round's work, the dispatch lock held. */
async function roundHeld(store: Store, opts: RoundOpts): Promise<Claimed[]> {
  const views = await liveJobs(store);
  const plan = planFor(store, views);
  opts.seen?.(views, plan);
  for (const [id, reason] of plan.skip) {
    await store.transition(id, life.skip(reason), { event: { reason } });
    store.removeEnv(id);
  }
  const claimed: Claimed[] = [];
  const launcherOwns = (id: string) => {
    const r = views.find((v) => v.rec.id === id)?.rec;
    return !!r && Date.now() - Date.parse(r.createdAt) < LAUNCHER_GRACE_MS && isAlive(r.launcher);
  };
  for (const id of plan.start) {
    if (opts.background && launcherOwns(id)) continue;
    const gpus = plan.gpusFor.get(id);
    const uuids = gpus?.map((g) => plan.gpuUuids.get(g)).filter((u): u is string => !!u);
    const c = await claim(store, id, gpus ? { gpus, ...(uuids?.length === gpus.length ? { uuids } : {}) } : undefined);
    if (c) claimed.push(c);
  }
  await opts.whileHeld?.(claimed);
  return claimed;
}

/** queued -> starting for this process, with a fresh token its supervisor must show; undefined if it no longer waits. */
async function claim(store: Store, id: string, held?: { gpus: number[]; uuids?: string[] }, supervises = false): Promise<Claimed | undefined> {
  const me = procId(process.pid)!;
  const token = newToken();
  const move = life.claimQueued(me, token, bootId(), held, undefined, supervises);
  const t = await store.transition(id, move, { event: { by: me.pid, ...(held ? { gpus: held.gpus } : {}) } });
  return t.changed ? { id, token, queue: t.rec.queue } : undefined;
}

/**
 * A supervisor's end and a full round under one dispatch lock, so no other jobq takes the slot its job frees in
 * between (and starts a Node for it). Undefined: the lock was busy past 2 s — the end is not written, and the caller
 * writes it and dispatches as usual.
 */
export async function endThenClaim(store: Store, writeEnd: () => Promise<JobRecord>): Promise<{ rec: JobRecord; claims?: Claimed[] } | undefined> {
  try {
    return await store.withLock(
      'dispatch',
      async () => {
        const rec = await writeEnd();
        try {
          return { rec, claims: await roundHeld(store, { whileHeld: dispatcherForClaims(store) }) };
        } catch {
          // The end is written; the caller's own round (and the dispatcher) will start what waits.
          return { rec };
        }
      },
      2000,
    );
  } catch (e) {
    if (isBusy(e)) return undefined;
    throw e;
  }
}

/**
 * A sweep's element ended: the next element of its array claimed into the slot the ended process left, before its
 * end is written. Until then the ended record still counts against the cap, so no one else claims into that slot,
 * and the dispatch lock covers this claim alone (the end, its fsync and the history come after, outside it).
 * Undefined: not an array held only by its cap, none of it waits, or the lock was busy past 2 s.
 */
export async function claimIntoSlot(store: Store, ending: JobRecord): Promise<Claimed | undefined> {
  if (!capOnly(ending)) return undefined;
  try {
    return await store.withLock(
      'dispatch',
      async () => {
        const next = await nextOfArray(store, ending);
        if (next) await dispatcherForClaims(store)([next]);
        return next;
      },
      2000,
    );
  } catch (e) {
    if (isBusy(e)) return undefined;
    throw e;
  }
}

/** An array element that nothing but its array's cap holds: no queue, no memory or GPU need. */
function capOnly(rec: JobRecord): boolean {
  const a = rec.admission;
  return !!a?.array?.cap && rec.queue === undefined && !a.memBytes && !a.gpus;
}

/**
 * The fast path of a sweep: the lowest queued index of an ended element's own array run, claimed into the slot of
 * the array's cap that element frees, where the same cap is all that holds it (and no pressure guard), so what a
 * full round would start is what starts.
 */
async function nextOfArray(store: Store, ended: JobRecord): Promise<Claimed | undefined> {
  const a = ended.admission!.array!;
  if (store.readDispatchSettings().pressureGuard) return undefined;
  // The list this process keeps first; read afresh once if that ran out.
  for (let reread = false; ; reread = true) {
    const { ids, fresh } = arrayQueue(store, a.name, reread);
    for (let tries = 0; ids.length && tries < 8; tries++) {
      let rec: JobRecord;
      try {
        rec = store.readRecord(ids[0]!);
      } catch {
        ids.shift();
        continue;
      }
      const b = rec.admission;
      if (rec.state.status !== 'queued' || b?.array?.name !== a.name || b.array.run !== a.run) {
        ids.shift();
        continue;
      }
      // Anything else that could hold it (a retry's delay, another cap, a queue, a need): a full round decides.
      if (rec.state.retry || b.array.cap !== a.cap || rec.queue !== undefined || b.memBytes || b.gpus) return undefined;
      // This supervisor runs it next (runSlots takes a lone claim itself).
      const c = await claim(store, ids.shift()!, undefined, true);
      if (c) return c;
    }
    if (fresh) return undefined;
  }
}

/** The waiting elements of the array this process works through, lowest index first: the index is read again once the list runs out or is a second old. */
let arrayWaiting: { key: string; at: number; ids: string[] } | undefined;

function arrayQueue(store: Store, name: string, reread: boolean): { ids: string[]; fresh: boolean } {
  const key = `${store.home}/${name}`;
  const old = arrayWaiting;
  if (!reread && old?.key === key && old.ids.length && Date.now() - old.at < 1000) return { ids: old.ids, fresh: false };
  const prefix = `${name}.`;
  const ids = store
    .waitingIds()
    .filter((id) => id.startsWith(prefix))
    .map((id) => ({ id, index: Number(/^(\d+)_/.exec(id.slice(prefix.length))?.[1]) }))
    .filter((c) => Number.isInteger(c.index))
    .sort((x, y) => x.index - y.index)
    .map((c) => c.id);
  arrayWaiting = { key, at: Date.now(), ids };
  return { ids, fresh: true };
}

/** Starts a detached supervisor for each claim, with the job's own environment (kept in its env file while it waited). */
export async function launchAll(store: Store, claims: Claimed[]): Promise<void> {
  if (!claims.length) return;
  const { launchSupervisor } = await import('../../process/spawn.js');
  for (const c of claims) {
    const env = store.readEnv(c.id);
    if (!env) {
      await store.transition(c.id, life.failStart(`its environment (${store.paths(c.id).env}) is gone`));
      continue;
    }
    launchSupervisor(store.home, c.id, c.token, env);
  }
}

interface DispatcherFile extends ProcId {
  boot: string;
}

/** The live dispatcher of this state dir, if any (pid + start time + boot: a reused pid is not it). */
export function runningDispatcher(store: Store): DispatcherFile | undefined {
  const d = store.readDispatcher();
  return d && d.boot === bootId() && isAlive(d) ? d : undefined;
}

/**
 * For a round's `whileHeld`: claims just made are sure of a dispatcher while still under the lock (if their claimer
 * dies holding them, someone sees it). A claim waits until its job runs: no need to look whether anything waits.
 */
export function dispatcherForClaims(store: Store): (claims: Claimed[]) => Promise<void> | undefined {
  return (claims) => (claims.length ? ensureDispatcher(store, { evenIfNothingWaits: true }) : undefined);
}

/** While any job waits, makes sure a dispatcher runs (starting one if it is gone); cheap when nothing waits. */
export async function ensureDispatcher(store: Store, opts: { evenIfNothingWaits?: boolean } = {}): Promise<void> {
  if ((!opts.evenIfNothingWaits && !store.anyWaiting()) || runningDispatcher(store)) return;
  const { launchDispatcher } = await import('../../process/spawn.js');
  launchDispatcher(store.home);
}

/** What can end a wait without a file changing, as the last round saw it: the dispatcher looks at just that. */
interface Watch {
  /** A wait that only time tells (memory, GPUs, a retry's delay, a claim not yet taken up): a full round each tick. */
  poll: boolean;
  /** The live jobs' supervisors and processes, and runs in their grace: one dying frees a slot with no file changed. */
  procs: ProcId[];
  /** When a run's grace for its just-queued job ends (the job is then ours to start): a round then. */
  dueAt: number;
  /** Every started job has a live supervisor and nothing waits on time: each end dispatches itself (a sweep's chain);
   * then only a supervisor's death (not its job's end) needs a round. */
  chain?: ProcId[];
}

function watchFrom(views: JobView[], plan: DispatchPlan): Watch {
  const timed = [...plan.waiting.values()].some(
    (w) => w.waitingFor === 'mem' || w.waitingFor === 'gpus' || w.waitingFor === 'retry' || w.waitingFor === 'pressure',
  );
  // One look per process (a sweep's thousand records name the same run as their launcher).
  const seen = new Map<string, boolean>();
  const live = (p: ProcId | undefined): p is ProcId => {
    if (!p) return false;
    const k = `${p.pid} ${p.startTicks}`;
    if (!seen.has(k)) seen.set(k, isAlive(p));
    return seen.get(k)!;
  };
  // The jobs' own processes; with `others`, what the dispatcher watches die when not in a chain.
  const procs: ProcId[] = [];
  // Whose own end or round dispatches next: live supervisors, and live runs in their just-queued jobs' grace.
  const others = new Map<number, ProcId>();
  let dueAt = Number.POSITIVE_INFINITY;
  let supervised = true;
  let early = false;
  for (const v of views) {
    if (v.state.status === 'queued') {
      const graceEnd = Date.parse(v.rec.createdAt) + LAUNCHER_GRACE_MS;
      if (graceEnd > Date.now() && live(v.rec.launcher)) {
        others.set(v.rec.launcher.pid, v.rec.launcher);
        dueAt = Math.min(dueAt, graceEnd);
      }
      continue;
    }
    const sup = live(v.rec.supervisor) ? v.rec.supervisor : undefined;
    if (sup) others.set(sup.pid, sup);
    else supervised = false;
    // A claim not yet taken up by a live supervisor: only time tells.
    if (!sup && v.state.status === 'starting') early = true;
    const job = jobTarget(v.rec)?.job;
    if (live(job)) procs.push(job);
  }
  const poll = timed || early || plan.start.length > 0;
  const chain = !poll && supervised && others.size ? [...others.values()] : undefined;
  return { poll, procs: [...procs, ...others.values()], dueAt, ...(chain ? { chain } : {}) };
}

/** While supervisors chain a sweep, changes are taken in a round at most this often (each end dispatches itself). */
const CHAIN_ROUND_MS = 2000;

/** Past this, a round runs even if nothing it watches changed (a record edited by hand, a watch missed). */
const SAFETY_ROUND_MS = 60_000;

/**
 * The transient dispatcher: one per state dir (it stands down if another lives), gone once nothing waits (after a
 * short grace, so a `run` that started it before writing its record is not missed). A round runs on every change
 * to the active, waiting and queue indexes; between them, every 500 ms, it looks only at what the last round said
 * could end a wait, so a queue of jobs that cannot start costs nothing.
 */
export async function dispatcherLoop(store: Store): Promise<void> {
  const me = { ...procId(process.pid)!, boot: bootId() };
  const mine = await store.withLock('dispatch', () => {
    if (runningDispatcher(store)) return false;
    store.setDispatcher(me);
    return true;
  });
  if (!mine) return;
  appendEvent(store.eventsLog, 'info', 'dispatcher started', { pid: me.pid });
  let wake: (() => void) | undefined;
  // A change seen while a round ran must not be lost: the next wait ends at once.
  let changed = true;
  const watchers: fs.FSWatcher[] = [];
  for (const dir of [store.activeDir, store.waitingDir, store.queuesDir]) {
    try {
      const w = fs.watch(dir, { persistent: false }, () => {
        changed = true;
        wake?.();
      });
      w.on('error', () => undefined);
      watchers.push(w);
    } catch {
      /* no inotify: every tick is a full round */
    }
  }
  const inotify = watchers.length === 3;
  let idleSince = 0;
  let watch: Watch = { poll: true, procs: [], dueAt: 0 };
  let lastRound = 0;
  try {
    for (;;) {
      const since = Date.now() - lastRound;
      // A chain's every end changes the indexes: a round for each would read every waiting record a thousand times.
      const news = (changed || !inotify) && (!watch.chain || since > CHAIN_ROUND_MS);
      const due = news || watch.poll || Date.now() >= watch.dueAt || since > SAFETY_ROUND_MS || (watch.chain ?? watch.procs).some((p) => !isAlive(p));
      if (due) {
        changed = false;
        lastRound = Date.now();
        try {
          await launchAll(store, await dispatchRound(store, { background: true, seen: (views, plan) => (watch = watchFrom(views, plan)) }));
        } catch (e) {
          // Another jobq holds the dispatch lock past the wait: it dispatches meanwhile; try again next tick.
          if (!isBusy(e)) throw e;
          changed = true;
        }
      }
      if (store.anyWaiting()) idleSince = 0;
      else if (!idleSince) idleSince = Date.now();
      else if (Date.now() - idleSince > 2000 && !(await stayAfterAll(store, me))) break;
      await new Promise<void>((r) => {
        if (changed && !watch.chain) return void setTimeout(r, 20);
        const t = setTimeout(r, 500);
        if (watch.chain) return;
        // While live supervisors run, each end dispatches itself: changes are taken in batches, not one round each.
        wake = () => {
          clearTimeout(t);
          setTimeout(r, watch.procs.length ? 250 : 20);
        };
      });
      wake = undefined;
    }
  } finally {
    for (const w of watchers) w.close();
    // Only our own file: a dispatcher that replaced a dead one must not lose its own.
    await store
      .withLock('dispatch', () => {
        const d = runningDispatcher(store);
        if (!d || d.pid === me.pid) store.setDispatcher(undefined);
      })
      .catch(() => undefined);
    appendEvent(store.eventsLog, 'info', 'dispatcher stopped', { pid: me.pid });
  }
}

/**
 * Unregisters the dispatcher, then looks once more: a `run` that queued a job just before saw our file and launched
 * no dispatcher, so its job is waiting now and we stay (registered again). One that queues after sees no file.
 */
async function stayAfterAll(store: Store, me: DispatcherFile): Promise<boolean> {
  return store.withLock('dispatch', () => {
    const d = runningDispatcher(store);
    if (d && d.pid !== me.pid) return false;
    store.setDispatcher(undefined);
    if (!store.anyWaiting()) return false;
    store.setDispatcher(me);
    return true;
  });
}

/** The live jobs of a queue, with the plan's start order and reasons (for `jobq queue` and `status`). */
export function queueView(
  views: JobView[],
  plan: DispatchPlan,
  name: string | undefined,
): { running: JobView[]; waiting: Array<{ view: JobView; position: number; reason?: string; waitingFor?: WaitReason['waitingFor'] }> } {
  const inQ = views.filter((v) => v.rec.queue === name);
  const waiting = inQ
    .filter((v) => v.state.status === 'queued')
    .map((view) => {
      const why = plan.waiting.get(view.rec.id);
      return { view, position: plan.position.get(view.rec.id) ?? 0, reason: why?.text, ...(why ? { waitingFor: why.waitingFor } : {}) };
    })
    .sort((a, b) => a.position - b.position);
  return { running: inQ.filter((v) => v.state.status !== 'queued'), waiting };
}
