// The memory pressure guard's rules, pure: its settings, PSI as the kernel writes it, which job it acts on, and the
// steps one job goes through (warned -> frozen -> thawed, or ended). The supervisor (supervisor/guard.ts) drives them.
import { formatSpan, parseDuration } from './units.js';

/** The guard's settings: config `pressureGuard` (true, or an object of these) or JOBQ_PRESSURE_GUARD=1. */
export interface PressureSettings {
  /** Act when memory `some avg10` (percent) stays above this... */
  some: number;
  /** ...for this long (ms). */
  forMs: number;
  /** From the warning signal to the freeze (ms): time for a checkpoint. */
  warnMs: number;
  /** Thaw once `some avg10` has stayed below this (percent)... */
  thawBelow: number;
  /** ...for this long (ms). */
  thawMs: number;
  /** End a frozen job when pressure stays high this long after its freeze (ms). */
  endMs: number;
}

export const PRESSURE_DEFAULTS: PressureSettings = { some: 40, forMs: 30_000, warnMs: 10_000, thawBelow: 10, thawMs: 30_000, endMs: 60_000 };

const KEYS: Record<string, { key: keyof PressureSettings; kind: 'percent' | 'duration' }> = {
  some: { key: 'some', kind: 'percent' },
  for: { key: 'forMs', kind: 'duration' },
  warn: { key: 'warnMs', kind: 'duration' },
  thawBelow: { key: 'thawBelow', kind: 'percent' },
  thawAfter: { key: 'thawMs', kind: 'duration' },
  endAfter: { key: 'endMs', kind: 'duration' },
};

/** `true` (the defaults), `false`, or an object of some/for/warn/thawBelow/thawAfter/endAfter; a bad value throws, naming it. */
export function parsePressureGuard(v: unknown, where = 'pressureGuard'): PressureSettings | undefined {
  if (v === false) return undefined;
  if (v === true) return { ...PRESSURE_DEFAULTS };
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('expected true, false or {"some": 40, "for": "30s", …}');
  const out = { ...PRESSURE_DEFAULTS };
  for (const [k, val] of Object.entries(v)) {
    const spec = KEYS[k];
    if (!spec) throw new Error(`${where}.${k}: unknown key (known: ${Object.keys(KEYS).join(', ')})`);
    if (spec.kind === 'percent') {
      if (typeof val !== 'number' || !(val > 0 && val < 100)) throw new Error(`${where}.${k}: expected a percentage between 0 and 100, e.g. 40`);
      out[spec.key] = val;
    } else {
      if (typeof val !== 'string') throw new Error(`${where}.${k}: expected a duration, e.g. "30s"`);
      out[spec.key] = parseDuration(val, `${where}.${k}`);
    }
  }
  if (out.thawBelow >= out.some) throw new Error(`${where}.thawBelow: must be below some (${out.some})`);
  return out;
}

/** Memory PSI as /proc/pressure/memory (or a cgroup's memory.pressure) holds it: `some` and `full` avg10, in percent. */
export interface Psi {
  some: number;
  full: number;
}

export function parsePsi(text: string): Psi | undefined {
  const some = /^some avg10=([\d.]+)/m.exec(text);
  const full = /^full avg10=([\d.]+)/m.exec(text);
  if (!some) return undefined;
  return { some: Number(some[1]), full: full ? Number(full[1]) : 0 };
}

/** A running job the guard may act on. */
export interface Candidate {
  id: string;
  priority: number;
  createdAt: string;
}

/** The job the guard acts on: the lowest --priority, then the newest (it has the least work to lose). */
export function pickVictim(jobs: Candidate[]): string | undefined {
  const sorted = [...jobs].sort((a, b) => a.priority - b.priority || b.createdAt.localeCompare(a.createdAt) || (a.id < b.id ? 1 : -1));
  return sorted[0]?.id;
}

/** How pressure has stood, as one supervisor sees it tick by tick: high since, low since. */
export interface Clock {
  highSince?: number;
  lowSince?: number;
}

/** Moves the clock by one reading. */
export function tickClock(c: Clock, psi: Psi, s: PressureSettings, now: number): Clock {
  if (psi.some > s.some) return { highSince: c.highSince ?? now };
  if (psi.some < s.thawBelow) return { lowSince: c.lowSince ?? now };
  return {};
}

/** Where the guard stands with one job. */
export type Stage = { at: 'none' } | { at: 'warned'; since: number } | { at: 'frozen'; since: number } | { at: 'ending' };

/** What the guard does now to its job; `claim` is asked (the machine-wide turn) only when it might act. */
export type Step = 'warn' | 'freeze' | 'ease' | 'thaw' | 'end' | undefined;

/**
 * One job's next step. none -> warn (pressure high for `for`, and this job is the one to act on); warned -> freeze
 * (still high after `warn`) or ease (it passed); frozen -> thaw (low for `thawAfter`) or end (still high `endAfter`
 * after the freeze).
 */
export function nextStep(stage: Stage, c: Clock, s: PressureSettings, now: number): Step | 'maybe-warn' {
  switch (stage.at) {
    case 'none':
      return c.highSince !== undefined && now - c.highSince >= s.forMs ? 'maybe-warn' : undefined;
    case 'warned':
      if (now - stage.since < s.warnMs) return undefined;
      return c.highSince !== undefined ? 'freeze' : 'ease';
    case 'frozen':
      if (c.lowSince !== undefined && now - c.lowSince >= s.thawMs) return 'thaw';
      if (c.highSince !== undefined && now - Math.max(stage.since, c.highSince) >= s.endMs) return 'end';
      return undefined;
    default:
      return undefined;
  }
}

/** The reason recorded with an end or a freeze: `pressure: some avg10 63% > 40% for 30s`. */
export function pressureReason(psi: Psi, s: PressureSettings, sinceMs: number): string {
  return `pressure: some avg10 ${Math.round(psi.some)}% > ${s.some}% for ${formatSpan(Math.max(sinceMs, 0))}`;
}

/** The settings as `jobq doctor` and the docs show them. */
export function describePressure(s: PressureSettings): string {
  return `acts when memory some avg10 > ${s.some}% for ${formatSpan(s.forMs)}: warning signal, freeze after ${formatSpan(s.warnMs)}, thaw when < ${s.thawBelow}% for ${formatSpan(s.thawMs)}, end if still high ${formatSpan(s.endMs)} after the freeze`;
}
