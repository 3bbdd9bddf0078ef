// The pressure guard's rules: settings, PSI parsing, the job it picks, and each step of its sequence.
import { describe, expect, it } from 'vitest';
import { nextStep, PRESSURE_DEFAULTS, parsePressureGuard, parsePsi, pickVictim, pressureReason, tickClock } from '../../src/domain/pressure.js';

const S = { ...PRESSURE_DEFAULTS, forMs: 30_000, warnMs: 10_000, thawMs: 30_000, endMs: 60_000 };

describe('pressure guard rules', () => {
  it('reads settings: true, false, an object; refuses unknown keys and bad values', () => {
    expect(parsePressureGuard(true)).toEqual(PRESSURE_DEFAULTS);
    expect(parsePressureGuard(false)).toBeUndefined();
    expect(parsePressureGuard({ some: 25, for: '10s', endAfter: '2m' })).toMatchObject({ some: 25, forMs: 10_000, endMs: 120_000, thawBelow: 10 });
    expect(() => parsePressureGuard({ soem: 25 })).toThrow(/pressureGuard.soem: unknown key/);
    expect(() => parsePressureGuard({ some: 140 })).toThrow(/percentage/);
    expect(() => parsePressureGuard({ some: 20, thawBelow: 30 })).toThrow(/below some/);
    expect(() => parsePressureGuard('yes')).toThrow(/expected true, false/);
  });

  it('parses /proc/pressure/memory', () => {
    expect(parsePsi('some avg10=63.25 avg60=12.00 avg300=3.00 total=123\nfull avg10=40.10 avg60=0 avg300=0 total=1\n')).toEqual({ some: 63.25, full: 40.1 });
    expect(parsePsi('garbage')).toBeUndefined();
  });

  it('acts on the lowest priority, then the newest', () => {
    const jobs = [
      { id: 'a', priority: 0, createdAt: '2026-12-06T01:00:00Z' },
      { id: 'b', priority: 0, createdAt: '2026-12-06T02:00:00Z' },
      { id: 'c', priority: -1, createdAt: '2026-12-05T01:00:00Z' },
      { id: 'd', priority: 5, createdAt: '2026-12-06T03:00:00Z' },
    ];
    expect(pickVictim(jobs)).toBe('c');
    expect(pickVictim(jobs.filter((j) => j.id !== 'c'))).toBe('b');
    expect(pickVictim([])).toBeUndefined();
  });

  it('steps: warn after `for` of high pressure; freeze after `warn` if still high, else ease; thaw after `thawAfter` low; end after `endAfter` high', () => {
    const high = { some: 63, full: 0 };
    const low = { some: 2, full: 0 };
    const mid = { some: 20, full: 0 };
    let c = tickClock({}, high, S, 0);
    expect(nextStep({ at: 'none' }, c, S, 29_999)).toBeUndefined();
    expect(nextStep({ at: 'none' }, c, S, 30_000)).toBe('maybe-warn');
    // A dip below the threshold restarts the clock.
    c = tickClock(tickClock(c, mid, S, 20_000), high, S, 21_000);
    expect(nextStep({ at: 'none' }, c, S, 40_000)).toBeUndefined();
    expect(nextStep({ at: 'warned', since: 51_000 }, c, S, 60_000)).toBeUndefined();
    expect(nextStep({ at: 'warned', since: 51_000 }, c, S, 61_000)).toBe('freeze');
    expect(nextStep({ at: 'warned', since: 51_000 }, tickClock(c, mid, S, 61_000), S, 61_000)).toBe('ease');
    expect(nextStep({ at: 'frozen', since: 61_000 }, c, S, 120_999)).toBeUndefined();
    expect(nextStep({ at: 'frozen', since: 61_000 }, c, S, 121_000)).toBe('end');
    const calm = tickClock(c, low, S, 70_000);
    expect(nextStep({ at: 'frozen', since: 61_000 }, calm, S, 99_999)).toBeUndefined();
    expect(nextStep({ at: 'frozen', since: 61_000 }, calm, S, 100_000)).toBe('thaw');
    // Between the thresholds: neither thaw nor end.
    expect(nextStep({ at: 'frozen', since: 61_000 }, tickClock(c, mid, S, 70_000), S, 200_000)).toBeUndefined();
    expect(nextStep({ at: 'ending' }, c, S, 500_000)).toBeUndefined();
  });

  it('says why in one line', () => {
    expect(pressureReason({ some: 63.4, full: 0 }, S, 30_000)).toBe('pressure: some avg10 63% > 40% for 30s');
  });
});
