import os from 'node:os';
import { isFinal, type JobRecord, type JobState } from '../../domain/job.js';
import { lostState, nextAttempt, retryLost, settleTo } from '../../domain/lifecycle.js';
import { cgroupStats, highEventsOf, removeCgroupsWhenEmpty } from '../../process/isolation.js';
import { bootId, findSupervisors, isAlive, isReused, type ProcStat, rssBytes } from '../../process/proc.js';
import { jobProcesses, jobTarget } from '../../process/signals.js';
import { appendEvent } from '../../store/events.js';
import type { Store } from '../../store/store.js';
import type { JobView } from '../backend.js';

/**
 * How long a queue's claim may wait, with no supervisor process of its own, for one to take the job before the claim
 * counts as void: a launched supervisor has the job's id in its command line from its exec, and a slot runner adopts
 * its own claim within milliseconds, so this only covers the moment between a claim and an exec.
 */
const CLAIM_STALE_MS = 3_000;

/**
 * Decides what a record really means now; `persist` when the truth is provable and the record should say it.
 * `released` reads the job's gate file: false proves its held command never ran.
 */
export function reconcileState(rec: JobRecord, released?: () => boolean | undefined): { state: JobState; supervisorAlive: boolean; persist: boolean } {
  const s = rec.state;
  // A queued job has no process: nothing to reconcile (it survives a reboot as it is).
  if (isFinal(s) || s.status === 'queued') return { state: s, supervisorAlive: false, persist: false };
  const now = new Date().toISOString();
  const otherBoot = !!rec.boot && rec.boot !== bootId();
  const supervisorAlive = !otherBoot && isAlive(rec.supervisor);
  if (supervisorAlive) return { state: s, supervisorAlive, persist: false };
  if (s.status === 'starting') {
    const claimer = s.claim?.by ?? rec.launcher;
    // A long-lived claimer (dispatcher, slot runner) whose launched supervisor died before taking the job would
    // hold the slot for ever: past CLAIM_STALE_MS with no supervisor process, the claim is void (its token stops
    // a late supervisor).
    const stale = !!s.claim?.requeue && Date.now() - Date.parse(s.claim.at) > CLAIM_STALE_MS;
    if (!otherBoot && !rec.supervisor && ((isAlive(claimer) && !stale) || findSupervisors(rec.id).length)) return { state: s, supervisorAlive, persist: false };
    // Claimed from a queue, and no supervisor ever took it (or it died before the job was released): nothing ran, so it waits again.
    if (s.claim?.requeue) return { state: { status: 'queued', since: now }, supervisorAlive, persist: true };
    const error = otherBoot
      ? 'the machine restarted before the job started'
      : rec.supervisor
        ? 'the supervisor stopped before starting the job (see jobq events)'
        : 'jobq was stopped before the job started';
    return { state: { status: 'failed-to-start', error, at: now }, supervisorAlive, persist: true };
  }
  const t = jobTarget(rec);
  if (t && isAlive(t.job)) return { state: s, supervisorAlive, persist: false };
  // Recorded running, but its wrapper never read "go" (the supervisor died in between): nothing of it ran. A job that
  // was dispatched (it waited: a queue, an array, a need) waits again, as an unstarted claim does; a plain run failed.
  if (!otherBoot && released?.() === false) {
    if (rec.queue !== undefined || rec.admission) return { state: { status: 'queued', since: now }, supervisorAlive, persist: true };
    return {
      state: { status: 'failed-to-start', error: 'the supervisor stopped before the command ran (see jobq events)', at: now },
      supervisorAlive,
      persist: true,
    };
  }
  const reason = otherBoot
    ? 'the machine restarted while the job ran; exit status unknown'
    : rec.job && isReused(rec.job)
      ? `pid ${rec.job.pid} now belongs to another process; the job and its supervisor are gone, exit status unknown`
      : 'the job and its supervisor are gone (killed or machine restarted); exit status unknown';
  return { state: lostState(s, reason, now), supervisorAlive, persist: true };
}

/** The next attempt's record for a job found lost, if its --retry allows one and its environment was kept for it. */
function retryOfLost(store: Store, rec: JobRecord, lost: Extract<JobState, { status: 'lost' }>): JobRecord | undefined {
  const next = nextAttempt(rec, lost, Date.now(), os.totalmem());
  if (!next || !store.readEnv(rec.id)) return undefined;
  return retryLost(lost, next, () => !!store.readCancel(rec.id))(rec);
}

/**
 * Reads (unless the caller just did: `known`) and reconciles one record; moves it through the store's transition
 * when its truth is provable.
 */
export async function settle(store: Store, id: string, procs?: ProcStat[], known?: JobRecord): Promise<JobView> {
  let rec = known ?? store.readRecord(id);
  const released = () => store.gateReleased(id);
  let r = reconcileState(rec, released);
  let note: string | undefined;
  if (r.persist) {
    try {
      let before = rec;
      // Decided again on the fresh record, under its lock; lost with a --retry-on lost attempt left: it waits again.
      const t = await store.transition(id, (fresh) => {
        before = fresh;
        const again = reconcileState(fresh, released);
        if (!again.persist) return undefined;
        return (again.state.status === 'lost' && retryOfLost(store, fresh, again.state)) || settleTo(again.state)(fresh);
      });
      rec = t.rec;
      // A dead start's cgroups go with it, whether it failed or waits again.
      if (t.changed && (rec.state.status === 'lost' || rec.state.status === 'failed-to-start' || rec.state.status === 'queued'))
        await cleanupCgroups(store, before);
      const retry = t.changed && rec.state.status === 'queued' ? rec.state.retry : undefined;
      if (retry) appendEvent(store.eventsLog, 'warn', 'lost; run again (--retry-on lost)', { id, attempt: retry.attempt, at: retry.at });
      // An ended job's waiting copy of its environment (secrets included), left by a supervisor that died, goes.
      if (t.changed && isFinal(rec.state)) store.removeEnv(id);
      r = reconcileState(rec, released);
    } catch (e) {
      // A reader that cannot write still shows what is provable.
      note = `not recorded: ${(e as Error).message}`;
    }
  }
  const view: JobView = { rec, state: r.state, supervisorAlive: r.supervisorAlive, ...(note ? { note } : {}) };
  if (!isFinal(r.state)) {
    const t = jobTarget(rec);
    if (r.supervisorAlive && r.state.status === 'running' && t && !isAlive(t.job)) {
      const why = store.unwritableReason();
      view.note = why ? `ended; its supervisor holds the outcome until the state dir can be written (${why})` : 'ended; recording the outcome';
    }
    if (procs && t) {
      view.rssBytes = rssBytes(jobProcesses(t, procs).procs);
      view.memBytes = (t.cgroups?.length ? cgroupStats(rec.protection.isolation, t.cgroups).currentBytes : undefined) ?? view.rssBytes;
      if (rec.protection.memHighHow === 'cgroup' && t.cgroups?.length) view.memHighEvents = highEventsOf(t.cgroups);
    }
  }
  return view;
}

/** Removes the cgroups of a job whose supervisor is gone, once they are empty (only cgroups jobq makes for it). */
export async function cleanupCgroups(store: Store, rec: JobRecord): Promise<void> {
  const t = jobTarget({ ...rec, boot: bootId() });
  // Still in use (a stray process of the job lives on): noted, and swept by a later job's end.
  if (!t?.cgroups?.length) return;
  const left = await removeCgroupsWhenEmpty(t.cgroups, 0);
  try {
    store.setCgroupsLeft(rec.id, left);
  } catch {
    /* an unwritable state dir: the record says lost all the same */
  }
}
