// What a reader may conclude from a record and /proc: each provable case moves it, anything else leaves it (table-driven,
// with this test's own live process as the "alive" pid and a pid that cannot exist as the dead one).
import { describe, expect, it } from 'vitest';
import { reconcileState } from '../../../src/backend/local/reconcile.js';
import type { JobRecord, JobState, ProcId } from '../../../src/domain/job.js';
import { bootId } from '../../../src/process/proc.js';
import { makeRecord, startTicks } from '../../helpers/records.js';

const ALIVE: ProcId = { pid: process.pid, startTicks: startTicks(process.pid) };
const DEAD: ProcId = { pid: 4_194_000, startTicks: 1 };
// Our own pid with another start time: the pid was reused by another process.
const REUSED: ProcId = { pid: process.pid, startTicks: ALIVE.startTicks + 1 };
const AT = new Date().toISOString();

function rec(state: JobState, extra: Partial<JobRecord> = {}): JobRecord {
  return makeRecord({ createdAt: AT, boot: bootId(), launcher: DEAD, state, ...extra });
}

const running: JobState = { status: 'running', startedAt: AT };
const job = (p: ProcId) => ({ ...p, pgid: p.pid });

const CASES: { name: string; rec: JobRecord; released?: boolean; to: string; persist: boolean; match?: RegExp }[] = [
  { name: 'a final record', rec: rec({ status: 'failed-to-start', error: 'x', at: AT }), to: 'failed-to-start', persist: false },
  { name: 'a queued record (no process to look at)', rec: rec({ status: 'queued', since: AT }), to: 'queued', persist: false },
  { name: 'running, supervisor alive', rec: rec(running, { supervisor: ALIVE, job: job(DEAD) }), to: 'running', persist: false },
  { name: 'running, supervisor gone, job alive', rec: rec(running, { supervisor: DEAD, job: job(ALIVE) }), to: 'running', persist: false },
  {
    name: 'running, supervisor and job gone',
    rec: rec(running, { supervisor: DEAD, job: job(DEAD) }),
    to: 'lost',
    persist: true,
    match: /the job and its supervisor are gone/,
  },
  {
    name: "the job's pid reused",
    rec: rec(running, { supervisor: DEAD, job: job(REUSED) }),
    to: 'lost',
    persist: true,
    match: /now belongs to another process/,
  },
  {
    name: 'recorded on another boot',
    rec: rec(running, { supervisor: ALIVE, job: job(ALIVE), boot: 'another-boot' }),
    to: 'lost',
    persist: true,
    match: /machine restarted while the job ran/,
  },
  {
    name: 'running, gone, its gate never opened',
    rec: rec(running, { supervisor: DEAD, job: job(DEAD) }),
    released: false,
    to: 'failed-to-start',
    persist: true,
    match: /before the command ran/,
  },
  {
    name: 'starting, claimer alive, no supervisor yet',
    rec: rec({ status: 'starting', claim: { by: ALIVE, token: 't', at: AT } }),
    to: 'starting',
    persist: false,
  },
  {
    name: 'starting, claimer gone',
    rec: rec({ status: 'starting', claim: { by: DEAD, token: 't', at: AT } }),
    to: 'failed-to-start',
    persist: true,
    match: /jobq was stopped before the job started/,
  },
  {
    name: 'starting, its supervisor died',
    rec: rec({ status: 'starting', claim: { by: ALIVE, token: 't', at: AT } }, { supervisor: DEAD }),
    to: 'failed-to-start',
    persist: true,
    match: /the supervisor stopped before starting the job/,
  },
  {
    name: 'claimed from a queue, claimer gone: it waits again',
    rec: rec({ status: 'starting', claim: { by: DEAD, token: 't', at: AT, requeue: true } }),
    to: 'queued',
    persist: true,
  },
  {
    name: 'claimed from a queue long ago, no supervisor: the claim is void',
    rec: rec({ status: 'starting', claim: { by: ALIVE, token: 't', at: new Date(Date.now() - 60_000).toISOString(), requeue: true } }),
    to: 'queued',
    persist: true,
  },
];

describe('reconcileState', () => {
  for (const c of CASES) {
    it(`${c.name}: ${c.persist ? `recorded ${c.to}` : 'left as it is'}`, () => {
      const r = reconcileState(c.rec, c.released === undefined ? undefined : () => c.released);
      expect(r.state.status).toBe(c.to);
      expect(r.persist).toBe(c.persist);
      if (!c.persist) expect(r.state).toBe(c.rec.state);
      if (c.match) expect(JSON.stringify(r.state)).toMatch(c.match);
    });
  }

  it('a lost job keeps when it started', () => {
    const r = reconcileState(rec(running, { supervisor: DEAD, job: job(DEAD) }));
    expect(r.state).toMatchObject({ status: 'lost', startedAt: AT });
  });
});
