// Which waiting jobs start now, and why each other one waits: a pure plan over a snapshot of the live jobs.

/** A queue's settings as dispatch sees them. */
export interface QueueSettings {
  slots: number;
  paused: boolean;
}

/** A live job as dispatch sees it: what holds a slot and what waits for one. */
export interface DispatchJob {
  id: string;
  status: 'queued' | 'starting' | 'running' | 'paused';
  queue?: string;
  priority: number;
  createdAt: string;
}

/** Why a job waits, in the words `status` and `queue` print (and `waitingFor` in JSON). */
export interface WaitReason {
  waitingFor: 'slot' | 'queue-paused';
  text: string;
}

/** The plan: jobs to claim now, in order, and the reason each other queued job waits. */
export interface DispatchPlan {
  start: string[];
  waiting: Map<string, WaitReason>;
  /** Each queued job's place in its queue's start order (1 = next). */
  position: Map<string, number>;
}

/** A new queue has one slot: heavy jobs run one after another unless told otherwise. */
export const DEFAULT_SLOTS = 1;

/** Start order within a queue: highest priority first, then first come, first served. */
export function startOrder(a: DispatchJob, b: DispatchJob): number {
  return b.priority - a.priority || Date.parse(a.createdAt) - Date.parse(b.createdAt) || (a.id < b.id ? -1 : 1);
}

/** Plans one dispatch round; never more jobs running (or starting, or paused) in a queue than it has slots. */
export function planDispatch(jobs: DispatchJob[], queues: (name: string) => QueueSettings): DispatchPlan {
  const busy = new Map<string, number>();
  for (const j of jobs) if (j.status !== 'queued' && j.queue) busy.set(j.queue, (busy.get(j.queue) ?? 0) + 1);
  const plan: DispatchPlan = { start: [], waiting: new Map(), position: new Map() };
  const seen = new Map<string, number>();
  for (const j of jobs.filter((x) => x.status === 'queued').sort(startOrder)) {
    const q = j.queue;
    if (q) seen.set(q, (seen.get(q) ?? 0) + 1);
    plan.position.set(j.id, q ? seen.get(q)! : 1);
    if (!q) {
      plan.start.push(j.id);
      continue;
    }
    const s = queues(q);
    const used = busy.get(q) ?? 0;
    if (s.paused) plan.waiting.set(j.id, { waitingFor: 'queue-paused', text: `queue ${q} is paused (jobq queue resume ${q})` });
    else if (used >= s.slots) plan.waiting.set(j.id, { waitingFor: 'slot', text: `queue ${q}: ${used} of ${s.slots} slot${s.slots === 1 ? '' : 's'} busy` });
    else {
      plan.start.push(j.id);
      busy.set(q, used + 1);
    }
  }
  return plan;
}
