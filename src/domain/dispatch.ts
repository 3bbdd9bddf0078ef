// Which waiting jobs start now, which can never start, and why each other one waits: a pure plan over a snapshot.
import { formatSize } from './units.js';

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
  /** The GPU indices its run was told of: these, not the machine's discovered list, are its pool. */
  gpuList?: number[];
  /** GPUs it holds (live jobs). */
  heldGpus?: number[];
}

/** One GPU of the machine. */
export interface Gpu {
  index: number;
  memUsedMiB?: number;
}

/** What the machine offers now. */
export interface Resources {
  /** MemAvailable (bytes); undefined: memory is not checked. */
  memAvailable?: number;
  memReserve: number;
  gpus: Gpu[];
  /** A GPU using more memory than this (MiB) is busy, whoever uses it. */
  gpuBusyMiB: number;
}

/** Why a job waits, in the words `status` and `queue` print (and `waitingFor` in JSON). */
export interface WaitReason {
  waitingFor: 'after' | 'queue-paused' | 'slot' | 'array-cap' | 'mem' | 'gpus';
  text: string;
}

/** The plan: jobs to claim now (with the GPUs they get), jobs that can never start, and why each other one waits. */
export interface DispatchPlan {
  start: string[];
  gpusFor: Map<string, number[]>;
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

/**
 * Plans one dispatch round. Never more jobs running (or starting, or paused) in a queue than it has slots, nor
 * in an array than its cap; memory is admitted against MemAvailable less what running jobs declared but do not
 * use yet (and less what this round already admitted), GPUs only if free and not held. `statusOf` gives the
 * state of any job (a dependency may have finished long ago); a dependency that can no longer succeed skips
 * the job, and that cascades.
 */
export function planDispatch(
  jobs: DispatchJob[],
  queues: (name: string) => QueueSettings,
  res?: Resources,
  statusOf: (id: string) => string | undefined = () => undefined,
): DispatchPlan {
  const plan: DispatchPlan = { start: [], gpusFor: new Map(), skip: new Map(), waiting: new Map(), position: new Map() };
  const busy = new Map<string, number>();
  const arrayBusy = new Map<string, number>();
  const heldGpus = new Set<number>();
  let memFree = res?.memAvailable;
  for (const j of jobs) {
    if (j.status === 'queued') continue;
    if (j.queue) busy.set(j.queue, (busy.get(j.queue) ?? 0) + 1);
    if (j.array) arrayBusy.set(j.array.name, (arrayBusy.get(j.array.name) ?? 0) + 1);
    for (const g of j.heldGpus ?? []) heldGpus.add(g);
    if (memFree !== undefined && j.memBytes) memFree -= Math.max(0, j.memBytes - (j.memUsedBytes ?? 0));
  }
  const waiting = jobs.filter((x) => x.status === 'queued').sort(startOrder);
  const status = (id: string) => (plan.skip.has(id) ? 'skipped' : statusOf(id));
  // Skips cascade down a chain in one round: repeat until nothing new is skipped.
  for (let changed = true; changed; ) {
    changed = false;
    for (const j of waiting) {
      if (plan.skip.has(j.id)) continue;
      for (const d of j.after ?? []) {
        const s = status(d.id);
        if (s === undefined) {
          plan.skip.set(j.id, `dependency ${d.id} no longer exists`);
          changed = true;
          break;
        }
        if (d.kind === 'ok' && isEnded(s) && s !== ENDED_OK) {
          plan.skip.set(j.id, `dependency ${d.id} ended ${s}`);
          changed = true;
          break;
        }
      }
    }
  }
  const seen = new Map<string, number>();
  for (const j of waiting) {
    if (plan.skip.has(j.id)) continue;
    const q = j.queue ?? '';
    seen.set(q, (seen.get(q) ?? 0) + 1);
    plan.position.set(j.id, seen.get(q)!);
    const why = blocker(j);
    if (why) {
      plan.waiting.set(j.id, why);
      continue;
    }
    plan.start.push(j.id);
    if (j.queue) busy.set(j.queue, (busy.get(j.queue) ?? 0) + 1);
    if (j.array) arrayBusy.set(j.array.name, (arrayBusy.get(j.array.name) ?? 0) + 1);
    if (memFree !== undefined && j.memBytes) memFree -= j.memBytes;
  }
  return plan;

  function blocker(j: DispatchJob): WaitReason | undefined {
    const pending = (j.after ?? []).filter((d) => !isEnded(status(d.id) ?? ''));
    if (pending.length) return { waitingFor: 'after', text: `after ${pending.map((d) => `${d.id} (${status(d.id)})`).join(', ')}` };
    if (j.queue) {
      const s = queues(j.queue);
      const used = busy.get(j.queue) ?? 0;
      if (s.paused) return { waitingFor: 'queue-paused', text: `queue ${j.queue} is paused (jobq queue resume ${j.queue})` };
      if (used >= s.slots) return { waitingFor: 'slot', text: `queue ${j.queue}: ${used} of ${s.slots} slot${s.slots === 1 ? '' : 's'} busy` };
    }
    if (j.array?.cap !== undefined && (arrayBusy.get(j.array.name) ?? 0) >= j.array.cap) {
      return { waitingFor: 'array-cap', text: `array ${j.array.name}: ${j.array.cap} running (%${j.array.cap})` };
    }
    if (j.memBytes && memFree !== undefined && res) {
      const forJobs = memFree - res.memReserve;
      if (forJobs < j.memBytes)
        return { waitingFor: 'mem', text: `memory (needs ${formatSize(j.memBytes)}, ${formatSize(Math.max(0, forJobs))} free for jobs)` };
    }
    if (j.gpus) {
      const pool: Gpu[] = j.gpuList ? j.gpuList.map((index) => ({ index })) : (res?.gpus ?? []);
      const free = pool.filter((g) => !heldGpus.has(g.index) && (g.memUsedMiB ?? 0) <= (res?.gpuBusyMiB ?? Infinity));
      if (free.length < j.gpus) return { waitingFor: 'gpus', text: `gpus (needs ${j.gpus}, ${free.length} of ${pool.length} free)` };
      const got = free.slice(0, j.gpus).map((g) => g.index);
      for (const g of got) heldGpus.add(g);
      plan.gpusFor.set(j.id, got);
    }
    return undefined;
  }
}

function isEnded(status: string): boolean {
  return !['', 'queued', 'starting', 'running', 'paused'].includes(status);
}
