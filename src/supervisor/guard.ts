// The memory pressure guard, run by every supervisor for its own job (no daemon): each reads the machine's memory
// PSI at its sample tick; under sustained pressure they agree, under one lock, on the one job to act on (the lowest
// --priority, then the newest), and that job's own supervisor warns it, freezes it, thaws it or ends it. A supervisor
// never touches another job. Off (reading nothing but its small settings file every 2 s) unless `pressureGuard` is on.
import type { JobRecord } from '../domain/job.js';
import * as life from '../domain/lifecycle.js';
import {
  type Candidate,
  type Clock,
  nextStep,
  type PressureSettings,
  type Psi,
  pickVictim,
  pressureReason,
  type Stage,
  tickClock,
} from '../domain/pressure.js';
import { formatSpan } from '../domain/units.js';
import { isAlive } from '../process/proc.js';
import { readPsi } from '../process/resources.js';
import { holdJob, type JobTarget, releaseJob, signalLeader } from '../process/signals.js';
import { appendEvent } from '../store/events.js';
import type { GuardTurn, Store } from '../store/store.js';

/** How often the settings are read again (a small file; a `jobq run` with the guard on notes them in the state dir). */
const SETTINGS_EVERY_MS = 2000;

export interface GuardInput {
  store: Store;
  rec: JobRecord;
  target: JobTarget;
  diag: string;
}

/** The running jobs the guard may choose from: live supervisor, not paused. */
function candidates(store: Store): Candidate[] {
  const out: Candidate[] = [];
  for (const id of store.activeIds()) {
    try {
      const r = store.readRecord(id);
      if (r.state.status === 'running' && isAlive(r.supervisor)) out.push({ id, priority: r.priority ?? 0, createdAt: r.createdAt });
    } catch {
      /* being written or removed: not a candidate this time */
    }
  }
  return out;
}

/** Whether a turn's job still holds it: warned or frozen, still live, its supervisor (which acts on it) alive. */
function held(store: Store, t: GuardTurn): boolean {
  if (!t.victim) return false;
  try {
    const r = store.readRecord(t.victim.id);
    return (r.state.status === 'running' || r.state.status === 'paused') && isAlive(r.supervisor);
  } catch {
    return false;
  }
}

export class PressureGuard {
  private settings?: PressureSettings;
  private settingsAt = 0;
  private clock: Clock = {};
  private stage: Stage = { at: 'none' };
  private busy = false;
  /** After a failure (a lock held too long, an unwritable state dir) the guard waits before trying again. */
  private quietUntil = 0;
  private psi: Psi = { some: 0, full: 0 };

  constructor(private readonly g: GuardInput) {}

  /** One sample tick: cheap when calm (one read of the PSI file); `end` ends the job, recording the reason given. */
  tick(end: (reason: string) => void, now = Date.now()): void {
    if (now - this.settingsAt >= SETTINGS_EVERY_MS) {
      this.settings = this.g.store.readDispatchSettings().pressureGuard;
      this.settingsAt = now;
    }
    const s = this.settings;
    if (!s || this.busy || now < this.quietUntil) return;
    const psi = readPsi();
    if (!psi) return;
    this.psi = psi;
    this.clock = tickClock(this.clock, psi, s, now);
    const step = nextStep(this.stage, this.clock, s, now);
    if (!step) return;
    this.busy = true;
    void this.act(step, s, end, now)
      .catch((e: Error) => {
        this.quietUntil = Date.now() + 10_000;
        this.event('warn', 'pressure guard failed', { error: e.message });
      })
      .finally(() => {
        this.busy = false;
      });
  }

  private event(level: 'info' | 'warn', msg: string, fields: Record<string, unknown>): void {
    const all = { id: this.g.rec.id, some: this.psi.some, full: this.psi.full, ...fields };
    appendEvent(this.g.store.eventsLog, level, msg, all);
    appendEvent(this.g.diag, level, msg, all);
  }

  private async act(step: NonNullable<ReturnType<typeof nextStep>>, s: PressureSettings, end: (reason: string) => void, now: number): Promise<void> {
    const { store, rec, target } = this.g;
    const id = rec.id;
    const high = now - (this.clock.highSince ?? now);
    const numbers = { threshold: s.some, forMs: high };
    if (step === 'maybe-warn') {
      if (!(await this.takeTurn(s, now))) {
        // Not this job's turn: ask again in a while, not at every tick (each ask reads every live record).
        this.quietUntil = Date.now() + 2000;
        return;
      }
      const sig = rec.protection.warnSignal?.signal;
      // The warning is the job's own --timeout-signal (to its main process, as a timeout's): time to checkpoint.
      if (sig) signalLeader(target, sig as NodeJS.Signals);
      this.stage = { at: 'warned', since: now };
      this.event('warn', 'pressure: warned', { ...numbers, signal: sig ?? null, freezeIn: formatSpan(s.warnMs) });
    } else if (step === 'freeze') {
      const reason = pressureReason(this.psi, s, high);
      const t = await store.transition(
        id,
        life.pause(() => holdJob(target), reason),
      );
      if (!t.changed) {
        // Ended, or paused by its user meanwhile: the turn goes back.
        this.stage = { at: 'none' };
        await this.giveTurn(now);
        return;
      }
      this.stage = { at: 'frozen', since: now };
      await store.updateGuardTurn((turn) => ({ next: { ...turn, victim: { id, stage: 'frozen', at: new Date(now).toISOString() } }, result: undefined }));
      this.event('warn', 'pressure: frozen', { ...numbers, reason, endAfter: formatSpan(s.endMs) });
    } else if (step === 'ease') {
      this.stage = { at: 'none' };
      await this.giveTurn(now);
      this.event('info', 'pressure: eased before the freeze', numbers);
    } else if (step === 'thaw') {
      let how: 'freezer' | 'signal' = 'freezer';
      const t = await store.transition(
        id,
        life.resume(
          (h) => (how = h),
          (st) => !!st.reason,
        ),
        { after: () => releaseJob(target, how) },
      );
      this.stage = { at: 'none' };
      // Said as soon as it is done; the turn goes back after.
      if (t.changed) this.event('info', 'pressure: thawed', { thawBelow: s.thawBelow, lowMs: now - (this.clock.lowSince ?? now) });
      await this.giveTurn(now);
    } else if (step === 'end') {
      const st = store.readRecord(id).state;
      // Resumed by its user meanwhile: theirs to decide now.
      if (st.status !== 'paused' || !st.reason) {
        this.stage = { at: 'none' };
        await this.giveTurn(now);
        return;
      }
      const reason = pressureReason(this.psi, s, high);
      this.stage = { at: 'ending' };
      this.event('warn', 'pressure: ending the job', { ...numbers, reason });
      end(reason);
    }
  }

  /** Whether this job is the one to act on now: no other job's turn in flight, none taken within `for`, and it is the victim. */
  private takeTurn(s: PressureSettings, now: number): Promise<boolean> {
    const { store, rec } = this.g;
    return store.updateGuardTurn((t) => {
      if (t.victim?.id !== rec.id && held(store, t)) return { result: false };
      if (t.lastActionAt && now - Date.parse(t.lastActionAt) < s.forMs) return { result: false };
      if (pickVictim(candidates(store)) !== rec.id) return { result: false };
      const at = new Date(now).toISOString();
      return { next: { victim: { id: rec.id, stage: 'warned', at }, lastActionAt: at }, result: true };
    });
  }

  /** Gives the turn back (thawed, eased, ended): the next action waits `for` from now. */
  giveTurn(now = Date.now()): Promise<void> {
    const { store, rec } = this.g;
    return store.updateGuardTurn((t) =>
      t.victim?.id === rec.id ? { next: { lastActionAt: new Date(now).toISOString() }, result: undefined } : { result: undefined },
    );
  }

  /** Whether the guard holds this job (warned, frozen or ending): its end then gives the turn back. */
  acting(): boolean {
    return this.stage.at !== 'none';
  }
}
