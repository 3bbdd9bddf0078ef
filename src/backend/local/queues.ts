// This machine's queues as the Backend shows and changes them: why each queued job waits, slots, pause, priority, and
// the dispatcher kept alive while jobs wait. Only local jobs have them (a cluster's queue is the cluster's own).
import { isFinal } from '../../domain/job.js';
import type { QueueState } from '../../store/store.js';
import type { DispatchSettingsInput, JobView, QueueInfo, RunnerHost } from '../backend.js';
import { dispatchRound, ensureDispatcher, launchAll, liveJobs, planFor, queueSettings, queueView } from './dispatch.js';

const here = (v: JobView) => !v.rec.backend || v.rec.backend === 'local';

export class LocalQueues {
  constructor(private readonly host: RunnerHost) {}

  /** Adds each locally queued job's position and reason (a dispatch plan over the live jobs; nothing is claimed). */
  explainWaits(views: JobView[]): void {
    const local = views.filter((v) => !isFinal(v.state) && here(v));
    if (!local.some((v) => v.state.status === 'queued')) return;
    const plan = planFor(this.host.store, local);
    for (const v of local) {
      if (v.state.status !== 'queued') continue;
      const why = plan.waiting.get(v.rec.id);
      const skip = plan.skip.get(v.rec.id);
      v.waiting = {
        position: plan.position.get(v.rec.id) ?? 0,
        reason: why ? why.text : skip ? `to be skipped: ${skip}` : 'starting now',
        ...(why ? { waitingFor: why.waitingFor } : {}),
      };
    }
  }

  /** Views of these live jobs (of any place) with why each waits. */
  async withWaits(ids: string[]): Promise<JobView[]> {
    const live = await liveJobs(this.host.store, (id) => this.host.view(id));
    this.explainWaits(live);
    return ids.map((id) => live.find((v) => v.rec.id === id)).filter((v): v is JobView => !!v);
  }

  async queues(names: string[]): Promise<{ queues: QueueInfo[]; outside: QueueInfo['waiting'] }> {
    const { store } = this.host;
    const views = await liveJobs(store, (id) => this.host.view(id));
    this.explainWaits(views);
    const local = views.filter(here);
    const plan = planFor(store, local);
    return {
      queues: names.map((name) => ({ name, ...queueSettings(store, name), ...queueView(views, plan, name) })),
      outside: queueView(local, plan, undefined).waiting,
    };
  }

  /** Every queue that has settings or a live job in it. */
  names(): string[] {
    const { store } = this.host;
    const live = store.activeIds().flatMap((id) => {
      try {
        return store.readRecord(id).queue ?? [];
      } catch {
        return [];
      }
    });
    return [...new Set([...store.queueNames(), ...live])].sort();
  }

  async update(name: string, patch: QueueState) {
    await this.host.store.updateQueue(name, patch);
    // More slots or a resume may let jobs start now.
    if (patch.paused !== true) await this.kick();
    return { ...patch, ...queueSettings(this.host.store, name) };
  }

  /** A dispatch round now (after something freed a slot, resumed a queue or raised a priority), and a dispatcher while jobs wait. */
  async kick(): Promise<void> {
    const { store } = this.host;
    await launchAll(store, await dispatchRound(store));
    await ensureDispatcher(store);
  }

  /** Notes the config the processes that read none need (slots, memReserve, GPU busy mark), if given; keeps dispatch alive. */
  async keepDispatching(config?: { queues: Record<string, { slots: number }> } & DispatchSettingsInput): Promise<void> {
    const { store } = this.host;
    if (config) {
      for (const [name, q] of Object.entries(config.queues)) {
        if (store.readQueue(name).configured !== q.slots) await store.updateQueue(name, { configured: q.slots });
      }
      await store.writeDispatchSettings({
        memReserveBytes: config.memReserveBytes,
        gpuBusyMiB: config.gpuBusyMiB,
        ...(config.pressureGuard ? { pressureGuard: config.pressureGuard } : {}),
      });
    }
    await ensureDispatcher(store);
  }
}
