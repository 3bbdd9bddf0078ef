// Which waiting jobs start now, which can never start, and why each other one waits: a pure plan over a snapshot.
import { formatSize, formatSizesApart } from './units.js';

/** A queue's settings as dispatch sees them. */
export interface QueueSettings {
  slots: number;
  paused: boolean;
}

/** A live job as dispatch sees it: what it holds (slot, memory, GPUs) and what it waits for. */
export interface DispatchJob {
  id: string;
  status: 'queued' | 'starting' | 'running' | 'paused';
  queue?: string;
  priority: number;
  createdAt: string;
  after?: Array<{ id: string; kind: 'ok' | 'any' }>;
  array?: { name: string; cap?: number; index?: number };
  memBytes?: number;
  /** What it uses now (running jobs): declared memory it has not taken yet still counts as taken. */
  memUsedBytes?: number;
  gpus?: number;
  /** VRAM it reserves on each GPU it gets (--gpu-mem): it shares GPUs while reservations fit; absent, it holds them whole. */
  gpuMemBytes?: number;
  /** The GPU indices its run was told of: these, not the machine's discovered list, are its pool (with their sizes, if given). */
  gpuList?: number[];
  gpuListMiB?: number[];
  /** GPUs it holds (live jobs). */
  heldGpus?: number[];
  /** GPU memory its processes use now, per GPU index (MiB): a sharing job past its reservation takes what it uses. */
  vramMiB?: Map<number, number>;
  /** A job sent back by --retry: its next attempt's number, and when it may start (ms since the epoch). */
  retry?: { attempt: number; atMs: number };
}

/** One GPU of the machine. */
export interface Gpu {
  index: number;
  uuid?: string;
  memUsedMiB?: number;
  memTotalMiB?: number;
  /** Memory in use by processes that are no live job's (another program, a notebook): it counts against packing. */
  foreignMiB?: number;
}

/** What the machine offers now. */
export interface Resources {
  /** MemAvailable (bytes); undefined: memory is not checked. */
  memAvailable?: number;
  memReserve: number;
  gpus: Gpu[];
  /** Why the machine's GPUs could not be listed (nvidia-smi failed or hung): a GPU job waits saying so. */
  gpuError?: string;
  /** A GPU using more memory than this (MiB) is busy, whoever uses it. */
  gpuBusyMiB: number;
  /** Memory pressure over the guard's threshold now (`some avg10` and the threshold, percent): nothing new starts. */
  pressure?: { some: number; limit: number };
}

/** Why a job waits, in the words `status` and `queue` print (and `waitingFor` in JSON). */
export interface WaitReason {
  waitingFor: 'retry' | 'after' | 'queue-paused' | 'slot' | 'array-cap' | 'pressure' | 'mem' | 'gpus';
  text: string;
}

/** The plan: jobs to claim now (with the GPUs they get), jobs that can never start, and why each other one waits. */
export interface DispatchPlan {
  start: string[];
  gpusFor: Map<string, number[]>;
  /** The UUIDs of the machine's GPUs by index, as nvidia-smi named them this round (kept in a started job's record). */
  gpuUuids: Map<number, string>;
  skip: Map<string, string>;
  waiting: Map<string, WaitReason>;
  /** Each queued job's place in its queue's start order (1 = next). */
  position: Map<string, number>;
}

/** A new queue has one slot: heavy jobs run one after another unless told otherwise. */
export const DEFAULT_SLOTS = 1;

const ENDED_OK = 'succeeded';

/** Start order within a queue: highest priority first, then first come, first served (an array by its index). */
export function startOrder(a: Orderable, b: Orderable): number {
  return (
    b.priority - a.priority || Date.parse(a.createdAt) - Date.parse(b.createdAt) || (a.array?.index ?? 0) - (b.array?.index ?? 0) || (a.id < b.id ? -1 : 1)
  );
}

/** What start order reads of a job. */
export type Orderable = Pick<DispatchJob, 'id' | 'priority' | 'createdAt'> & { array?: { index?: number } };

/** What live jobs (and the jobs this round starts) take: slots per queue and array, GPUs, memory still free. */
export interface Taken {
  busy: Map<string, number>;
  arrayBusy: Map<string, number>;
  /** GPUs held whole (plain --gpus jobs). */
  heldGpus: Set<number>;
  /** VRAM reserved per GPU by sharing (--gpu-mem) jobs, bytes: each one's reservation, or what it uses if more. */
  gpuReserved: Map<number, number>;
  /** MemAvailable less what is taken; undefined: memory is not checked. */
  memFree?: number;
}

/** What the jobs already live take before a round admits anyone: its starting point. */
export function takenBy(jobs: DispatchJob[], res?: Resources): Taken {
  const t: Taken = { busy: new Map(), arrayBusy: new Map(), heldGpus: new Set(), gpuReserved: new Map(), memFree: res?.memAvailable };
  for (const j of jobs) {
    if (j.status === 'queued') continue;
    holdSlots(t, j);
    for (const g of j.heldGpus ?? []) {
      if (!j.gpuMemBytes) t.heldGpus.add(g);
      // Reservations, not the instant's free memory, decide: a job just started has not allocated yet.
      else reserve(t, g, Math.max(j.gpuMemBytes, (j.vramMiB?.get(g) ?? 0) * MiB));
    }
    // Declared but not yet used still counts as taken: the job may grow into it.
    if (t.memFree !== undefined && j.memBytes) t.memFree -= Math.max(0, j.memBytes - (j.memUsedBytes ?? 0));
  }
  return t;
}

const MiB = 1024 ** 2;

function reserve(t: Taken, gpu: number, bytes: number): void {
  t.gpuReserved.set(gpu, (t.gpuReserved.get(gpu) ?? 0) + bytes);
}

/** A job counted in its queue's and its array's busy slots: live ones, and each one the round starts. */
function holdSlots(t: Taken, j: DispatchJob): void {
  if (j.queue) t.busy.set(j.queue, (t.busy.get(j.queue) ?? 0) + 1);
  if (j.array) t.arrayBusy.set(j.array.name, (t.arrayBusy.get(j.array.name) ?? 0) + 1);
}

/** Why a job can never start: a dependency gone, or one it needed to succeed that ended otherwise. */
export function skipReason(j: DispatchJob, status: (id: string) => string | undefined): string | undefined {
  for (const d of j.after ?? []) {
    const s = status(d.id);
    if (s === undefined) return `dependency ${d.id} no longer exists`;
    if (d.kind === 'ok' && isEnded(s) && s !== ENDED_OK) return `dependency ${d.id} ended ${s}`;
  }
  return undefined;
}

/** The jobs of a round that can never start: a skip cascades down a chain in one round. */
export function cascadeSkips(waiting: DispatchJob[], statusOf: (id: string) => string | undefined): Map<string, string> {
  const skip = new Map<string, string>();
  const status = (id: string) => (skip.has(id) ? 'skipped' : statusOf(id));
  // Repeat until nothing new is skipped.
  for (let changed = true; changed; ) {
    changed = false;
    for (const j of waiting) {
      if (skip.has(j.id)) continue;
      const why = skipReason(j, status);
      if (why === undefined) continue;
      skip.set(j.id, why);
      changed = true;
    }
  }
  return skip;
}

/** Why a job's dependencies hold it: some have not ended yet. */
export function afterWait(j: DispatchJob, status: (id: string) => string | undefined): WaitReason | undefined {
  const pending = (j.after ?? []).filter((d) => !isEnded(status(d.id) ?? ''));
  if (pending.length) return { waitingFor: 'after', text: `after ${pending.map((d) => `${d.id} (${status(d.id)})`).join(', ')}` };
  return undefined;
}

/** Why its queue or its array holds it: the queue paused or its slots busy, or the array's cap reached. */
export function slotWait(j: DispatchJob, queues: (name: string) => QueueSettings, t: Taken): WaitReason | undefined {
  if (j.queue) {
    const s = queues(j.queue);
    const used = t.busy.get(j.queue) ?? 0;
    if (s.paused) return { waitingFor: 'queue-paused', text: `queue ${j.queue} is paused (jobq queue resume ${j.queue})` };
    if (used >= s.slots) return { waitingFor: 'slot', text: `queue ${j.queue}: ${used} of ${s.slots} slot${s.slots === 1 ? '' : 's'} busy` };
  }
  if (j.array?.cap !== undefined && (t.arrayBusy.get(j.array.name) ?? 0) >= j.array.cap) {
    return { waitingFor: 'array-cap', text: `array ${j.array.name}: ${j.array.cap} running (%${j.array.cap})` };
  }
  return undefined;
}

/** Why memory pressure holds it: the machine is reclaiming hard, and a new job would add to it (GNU parallel's --noswap). */
export function pressureWait(res: Resources | undefined): WaitReason | undefined {
  const p = res?.pressure;
  return p ? { waitingFor: 'pressure', text: `memory pressure (some avg10 ${Math.round(p.some)}% > ${p.limit}%)` } : undefined;
}

/** Why memory holds it: what it declared is more than is free for jobs (MemAvailable less taken, less the reserve). */
export function memWait(j: DispatchJob, memFree: number | undefined, res: Resources | undefined): WaitReason | undefined {
  if (j.memBytes && memFree !== undefined && res) {
    const forJobs = memFree - res.memReserve;
    if (forJobs < j.memBytes) return { waitingFor: 'mem', text: `memory (needs ${formatSize(j.memBytes)}, ${formatSize(Math.max(0, forJobs))} free for jobs)` };
  }
  return undefined;
}

/**
 * The GPUs a job may draw from: the list its run was told of, else the machine's. A --gpu-mem job's listed GPUs
 * still carry what nvidia-smi says of them (size, use by others) where it answers: packing needs both.
 */
function gpuPool(j: DispatchJob, res: Resources | undefined): Gpu[] {
  if (!j.gpuList) return res?.gpus ?? [];
  const seen = new Map(j.gpuMemBytes ? (res?.gpus ?? []).map((g) => [g.index, g]) : []);
  return j.gpuList.map((index, i) => {
    const listed = j.gpuListMiB?.[i] ? { memTotalMiB: j.gpuListMiB[i] } : {};
    return { ...seen.get(index), index, ...listed };
  });
}

/** The GPUs a job may get whole now: neither held, nor shared by --gpu-mem jobs, nor busy beyond gpuBusyMiB. */
export function freeGpus(
  j: DispatchJob,
  res: Resources | undefined,
  held: Set<number>,
  reserved: Map<number, number> = new Map(),
): { pool: Gpu[]; free: Gpu[] } {
  const pool = gpuPool(j, res);
  return { pool, free: pool.filter((g) => !held.has(g.index) && !reserved.get(g.index) && (g.memUsedMiB ?? 0) <= (res?.gpuBusyMiB ?? Infinity)) };
}

/** VRAM a GPU has unreserved (bytes): its size less other programs' use and the jobs' reservations; undefined: its size is unknown. */
export function unreservedOn(g: Gpu, t: Taken): number | undefined {
  if (!g.memTotalMiB) return undefined;
  if (t.heldGpus.has(g.index)) return 0;
  return Math.max(0, (g.memTotalMiB - (g.foreignMiB ?? g.memUsedMiB ?? 0)) * MiB - (t.gpuReserved.get(g.index) ?? 0));
}

/** The GPUs a --gpu-mem job gets (the most unreserved first: jobs spread), or why it waits. */
function packGpus(j: DispatchJob, r: Round): number[] | WaitReason {
  const need = j.gpuMemBytes!;
  const n = j.gpus ?? 1;
  const room = gpuPool(j, r.res)
    .map((g) => ({ index: g.index, free: unreservedOn(g, r.taken) }))
    .sort((a, b) => (b.free ?? -1) - (a.free ?? -1));
  const fits = room.filter((g) => (g.free ?? 0) >= need);
  if (fits.length >= n) return fits.slice(0, n).map((g) => g.index);
  const where = n === 1 ? 'on one GPU' : `on each of ${n} GPUs`;
  const next = room.find((g) => (g.free ?? 0) < need);
  const lead = n > 1 ? `${fits.length} ${fits.length === 1 ? 'has' : 'have'} it, next best` : 'best';
  let best: string;
  let needs = formatSize(need);
  if (!room.length) best = 'this machine lists no GPU';
  else if (next?.free === undefined) best = `GPU ${next!.index}'s size is unknown (nvidia-smi, or config gpus "${next!.index}:80G")`;
  else if (r.taken.heldGpus.has(next.index)) best = `${lead} is GPU ${next.index}, held whole by a --gpus job`;
  else {
    const [n1, n2] = formatSizesApart(need, next.free);
    needs = n1;
    best = `${lead} has ${n2} unreserved`;
  }
  return { waitingFor: 'gpus', text: `gpu memory (needs ${needs} ${where}; ${best}${smiError(j, r)})` };
}

/** Why nvidia-smi could not say, for a job that depends on what it says. */
function smiError(j: DispatchJob, r: Round): string {
  return (!j.gpuList || j.gpuMemBytes) && r.res?.gpuError ? `: ${r.res.gpuError}, asked again every 30s` : '';
}

/** What one round sees while it admits jobs in start order. */
interface Round {
  queues: (name: string) => QueueSettings;
  res?: Resources;
  taken: Taken;
  status: (id: string) => string | undefined;
  gpusFor: Map<string, number[]>;
  nowMs: number;
}

/** A retried job waits out its delay before anything else is asked of the machine. */
function retryWait(j: DispatchJob, nowMs: number): WaitReason | undefined {
  if (!j.retry || j.retry.atMs <= nowMs) return undefined;
  return { waitingFor: 'retry', text: `retry: attempt ${j.retry.attempt} at ${new Date(j.retry.atMs).toTimeString().slice(0, 8)}` };
}

/** Why a job waits, in the order a user would fix it; none: it may start, and the GPUs it needs are its own now. */
function blocker(j: DispatchJob, r: Round): WaitReason | undefined {
  const why = retryWait(j, r.nowMs) ?? afterWait(j, r.status) ?? slotWait(j, r.queues, r.taken) ?? pressureWait(r.res) ?? memWait(j, r.taken.memFree, r.res);
  if (why || !j.gpus) return why;
  if (j.gpuMemBytes) {
    const got = packGpus(j, r);
    if (!Array.isArray(got)) return got;
    for (const g of got) reserve(r.taken, g, j.gpuMemBytes);
    r.gpusFor.set(j.id, got);
    return undefined;
  }
  const { pool, free } = freeGpus(j, r.res, r.taken.heldGpus, r.taken.gpuReserved);
  if (free.length < j.gpus) {
    const shared = pool.filter((g) => r.taken.gpuReserved.get(g.index)).length;
    const why = shared ? `, ${shared} shared by --gpu-mem jobs` : '';
    return { waitingFor: 'gpus', text: `gpus (needs ${j.gpus}, ${free.length} of ${pool.length} free${why}${smiError(j, r)})` };
  }
  const got = free.slice(0, j.gpus).map((g) => g.index);
  for (const g of got) r.taken.heldGpus.add(g);
  r.gpusFor.set(j.id, got);
  return undefined;
}

/**
 * Plans one dispatch round. Never more jobs running (or starting, or paused) in a queue than it has slots, nor
 * in an array than its cap; memory is admitted against MemAvailable less what running jobs declared but do not
 * use yet (and less what this round already admitted), GPUs only if free and not held — or, for a --gpu-mem job,
 * where its reservation fits beside the others'. `statusOf` gives the
 * state of any job (a dependency may have finished long ago); a dependency that can no longer succeed skips
 * the job, and that cascades.
 */
export function planDispatch(
  jobs: DispatchJob[],
  queues: (name: string) => QueueSettings,
  res?: Resources,
  statusOf: (id: string) => string | undefined = () => undefined,
  nowMs = Date.now(),
): DispatchPlan {
  const taken = takenBy(jobs, res);
  const waiting = jobs.filter((x) => x.status === 'queued').sort(startOrder);
  const skip = cascadeSkips(waiting, statusOf);
  const gpuUuids = new Map((res?.gpus ?? []).flatMap((g) => (g.uuid ? [[g.index, g.uuid] as const] : [])));
  const plan: DispatchPlan = { start: [], gpusFor: new Map(), gpuUuids, skip, waiting: new Map(), position: new Map() };
  const round: Round = { queues, res, taken, status: (id) => (skip.has(id) ? 'skipped' : statusOf(id)), gpusFor: plan.gpusFor, nowMs };
  const seen = new Map<string, number>();
  for (const j of waiting) {
    if (skip.has(j.id)) continue;
    const q = j.queue ?? '';
    seen.set(q, (seen.get(q) ?? 0) + 1);
    plan.position.set(j.id, seen.get(q)!);
    const why = blocker(j, round);
    if (why) {
      plan.waiting.set(j.id, why);
      continue;
    }
    plan.start.push(j.id);
    holdSlots(taken, j);
    if (taken.memFree !== undefined && j.memBytes) taken.memFree -= j.memBytes;
  }
  return plan;
}

function isEnded(status: string): boolean {
  return !['', 'queued', 'starting', 'running', 'paused'].includes(status);
}
