// A job's life: each named move, from every state, gives the next record or none (table-driven), and never an illegal move.
import { describe, expect, it } from 'vitest';
import { canMove, type JobRecord, type JobState, type ProcId, type Status } from '../../src/domain/job.js';
import * as life from '../../src/domain/lifecycle.js';
import { makeRecord } from '../helpers/records.js';

const AT = '2026-12-05T10:00:00.000Z';
const ME: ProcId = { pid: 4242, startTicks: 77 };
const OTHER: ProcId = { pid: 4343, startTicks: 88 };
const CANCEL = { at: AT, by: 'alice', signal: 'SIGTERM' };
const PLACED = { id: '7', ids: { jobId: '7' } };
const ENDED = { exitCode: 0, signal: null, endedAt: AT, durationMs: 5 };

/** One record in each state this jobq knows. */
const STATES: Record<Status, JobState> = {
  queued: { status: 'queued', since: AT },
  starting: { status: 'starting', claim: { by: ME, token: 'tok', at: AT } },
  running: { status: 'running', startedAt: AT },
  paused: { status: 'paused', startedAt: AT, pausedAt: AT, how: 'signal' },
  succeeded: { status: 'succeeded', startedAt: AT, ...ENDED },
  failed: { status: 'failed', startedAt: AT, ...ENDED, exitCode: 3 },
  killed: { status: 'killed', startedAt: AT, ...ENDED, exitCode: null, signal: 'SIGKILL' },
  cancelled: { status: 'cancelled', startedAt: AT, cancel: CANCEL, ...ENDED },
  timeout: { status: 'timeout', startedAt: AT, reason: 'wall', ...ENDED },
  oom: { status: 'oom', startedAt: AT, by: 'kernel', ...ENDED, peakMemBytes: 99 },
  'failed-to-start': { status: 'failed-to-start', error: 'no such command', at: AT },
  skipped: { status: 'skipped', reason: 'dependency a ended failed', at: AT },
  lost: { status: 'lost', startedAt: AT, reason: 'gone', detectedAt: AT },
};

function rec(state: JobState, extra: Partial<JobRecord> = {}): JobRecord {
  return makeRecord({
    launcher: OTHER,
    protection: { isolationMode: 'auto', isolation: 'none', graceMs: 1000, stopSignal: 'SIGTERM', warnings: [] },
    state,
    ...extra,
  });
}

const TARGET = { pid: 5000, startTicks: 9, pgid: 5000 };
const PROT = rec(STATES.queued).protection;

/** Each named move, the states it applies in, and the status it moves them to. */
const MOVES: { name: string; move: life.Move; from: Status[]; to: Status; extra?: Partial<JobRecord> }[] = [
  { name: 'failStart', move: life.failStart('x', () => true, AT), from: ['starting'], to: 'failed-to-start' },
  { name: 'skip', move: life.skip('dep', AT), from: ['queued'], to: 'skipped' },
  { name: 'claimQueued', move: life.claimQueued(ME, 't2', 'boot', { gpus: [1] }, AT), from: ['queued'], to: 'starting' },
  { name: 'adopt', move: life.adopt('tok', ME, 'boot'), from: ['starting'], to: 'starting' },
  { name: 'forgetStandby', move: life.forgetStandby(ME), from: ['starting'], to: 'starting', extra: { supervisor: ME } },
  { name: 'release', move: life.release(ME, TARGET, PROT, AT, () => false), from: ['starting'], to: 'running', extra: { supervisor: ME } },
  { name: 'abortStart', move: life.abortStart(undefined, AT), from: ['starting'], to: 'failed-to-start' },
  { name: 'abortStart(cancel)', move: life.abortStart(CANCEL, AT), from: ['starting'], to: 'cancelled' },
  { name: 'cancelQueued', move: life.cancelQueued(CANCEL), from: ['queued'], to: 'cancelled' },
  {
    name: 'cancelUnsupervised',
    move: life.cancelUnsupervised(CANCEL, () => false, Date.parse(AT)),
    from: ['queued', 'starting', 'running', 'paused'],
    to: 'cancelled',
  },
  { name: 'resume', move: life.resume(() => undefined), from: ['paused'], to: 'running' },
  {
    name: 'retry',
    move: life.retry(STATES.failed as life.DoneState, PROT, { attempt: 2, at: AT }, () => false, AT),
    from: ['running', 'paused'],
    to: 'queued',
    extra: { job: TARGET },
  },
  { name: 'submitted', move: life.submitted(PLACED, [], AT), from: ['starting'], to: 'queued' },
  {
    name: 'fromPlace(running)',
    move: life.fromPlace({ status: 'running', startedAt: AT }, 'RUNNING'),
    from: ['queued', 'starting', 'paused'],
    to: 'running',
    extra: { backend: 'slurm', placement: PLACED },
  },
];

describe('lifecycle moves', () => {
  for (const m of MOVES) {
    it(`${m.name} applies from ${m.from.join(', ')} only, to ${m.to}, always a legal move`, () => {
      for (const [status, state] of Object.entries(STATES) as [Status, JobState][]) {
        const next = m.move(rec(state, m.extra));
        if (!m.from.includes(status)) {
          expect(next, `${m.name} from ${status}`).toBeUndefined();
          continue;
        }
        expect(next?.state.status, `${m.name} from ${status}`).toBe(m.to);
        expect(canMove(status, m.to), `${status} -> ${m.to} must be legal`).toBe(true);
      }
    });
  }

  it('retry: which ends are retried, how often, how long after, and the limit an OOM grows to', () => {
    const policy = { max: 2, on: ['exit', 'oom'] as ('exit' | 'oom')[], delayMs: 1000, backoff: 2, memGrow: 1.5 };
    const withLimit = (attempts: number) =>
      rec(STATES.running, {
        retry: policy,
        attempts: Array.from({ length: attempts }, (_, i) => ({
          attempt: i + 1,
          status: 'failed' as const,
          exitCode: 1,
          signal: null,
          endedAt: AT,
          durationMs: 1,
        })),
        protection: { ...PROT, memLimitBytes: 100 },
      });
    const now = Date.parse(AT);
    const cases: Array<[string, JobRecord, JobState, ReturnType<typeof life.nextAttempt>]> = [
      ['a failure, first time', withLimit(0), STATES.failed, { attempt: 2, at: new Date(now + 1000).toISOString() }],
      ['a failure, second time: the wait doubles', withLimit(1), STATES.failed, { attempt: 3, at: new Date(now + 2000).toISOString() }],
      ['no attempts left', withLimit(2), STATES.failed, undefined],
      ['an oom grows the limit, up to the machine', withLimit(0), STATES.oom, { attempt: 2, at: new Date(now + 1000).toISOString(), memLimitBytes: 120 }],
      ['a timeout is not named', withLimit(0), STATES.timeout, undefined],
      ['a signal is not named', withLimit(0), STATES.killed, undefined],
      ['a cancel is never retried', withLimit(0), STATES.cancelled, undefined],
      ['a success is not retried', withLimit(0), STATES.succeeded, undefined],
      ['no --retry', rec(STATES.running), STATES.failed, undefined],
    ];
    for (const [what, r, end, want] of cases) expect(life.nextAttempt(r, end, now, 120), what).toEqual(want);
    const held = {
      ...PROT,
      memLimitBytes: 100,
      memLimitHow: 'rlimit-as' as const,
      isolation: 'cgroup-v2' as const,
      cgroups: ['/x'],
      oomScoreAdj: { requested: 500, actual: 500 },
    };
    const next = life.retry(
      STATES.oom as life.DoneState,
      held,
      { attempt: 2, at: AT, memLimitBytes: 120 },
      () => false,
      AT,
    )(rec(STATES.running, { job: TARGET }))!;
    expect(next.job).toBeUndefined();
    expect(next.protection.memLimitBytes).toBe(120);
    // What the last start found is not the next one's: it finds its own (an RLIMIT_AS fallback is set again).
    expect(next.protection).toMatchObject({ isolation: 'none', oomScoreAdj: { requested: 500, actual: null } });
    expect(next.protection).not.toHaveProperty('memLimitHow');
    expect(next.protection).not.toHaveProperty('cgroups');
    // A cancel that came after the attempt ended: no retry, the end stands.
    expect(life.retry(STATES.failed as life.DoneState, PROT, { attempt: 2, at: AT }, () => true, AT)(rec(STATES.running))).toBeUndefined();
    expect(next.attempts).toEqual([
      { attempt: 1, status: 'oom', exitCode: 0, signal: null, startedAt: AT, endedAt: AT, durationMs: 5, peakMemBytes: 99, memLimitBytes: 100 },
    ]);
    expect(next.state).toEqual({ status: 'queued', since: AT, retry: { attempt: 2, at: AT } });
  });

  it('a claim is taken over only with its token, and only while no supervisor holds it', () => {
    const starting = rec(STATES.starting);
    expect(life.adopt('tok', ME, 'b')(starting)?.supervisor).toEqual(ME);
    expect(life.adopt('other', ME, 'b')(starting)).toBeUndefined();
    expect(life.adopt('tok', ME, 'b')(rec(STATES.starting, { supervisor: OTHER }))).toBeUndefined();
  });

  it('release waits for its own supervisor and yields to a cancel; abort records which', () => {
    const mine = rec(STATES.starting, { supervisor: ME });
    expect(life.release(OTHER, TARGET, PROT, AT, () => false)(mine)).toBeUndefined();
    expect(life.release(ME, TARGET, PROT, AT, () => true)(mine)).toBeUndefined();
    const ran = life.release(ME, TARGET, PROT, AT, () => false)(mine)!;
    expect(ran.job).toEqual(TARGET);
    expect(ran.state).toEqual({ status: 'running', startedAt: AT });
    expect(life.abortStart(CANCEL, AT)(mine)?.state).toMatchObject({ status: 'cancelled', cancel: CANCEL, durationMs: 0 });
  });

  it('failStart narrows to a claim that is still the asker’s', () => {
    const mine = life.claimedBy('tok');
    expect(life.failStart('e', mine, AT)(rec(STATES.starting))?.state).toEqual({ status: 'failed-to-start', error: 'e', at: AT });
    expect(life.failStart('e', life.claimedBy('nope'), AT)(rec(STATES.starting))).toBeUndefined();
  });

  it('a claim from a queue is marked to wait again, with its GPUs and boot', () => {
    const next = life.claimQueued(ME, 't2', 'boot-1', { gpus: [0, 2], uuids: ['GPU-a', 'GPU-c'] }, AT)(rec(STATES.queued, { supervisor: OTHER }))!;
    expect(next).toMatchObject({ boot: 'boot-1', gpus: [0, 2], gpuUuids: ['GPU-a', 'GPU-c'], supervisor: undefined });
    expect(next.state).toEqual({ status: 'starting', claim: { by: ME, token: 't2', at: AT, requeue: true } });
  });

  it('a cancel with no supervisor left dates its end and keeps the start, or the creation when it never started', () => {
    const later = Date.parse(AT) + 60_000;
    const ran = life.cancelUnsupervised(CANCEL, () => false, later)(rec(STATES.running))!.state;
    expect(ran).toMatchObject({ status: 'cancelled', startedAt: AT, durationMs: 60_000, exitCode: null, signal: null });
    const never = life.cancelUnsupervised(CANCEL, () => false, later)(rec(STATES.queued))!.state;
    expect(never).toMatchObject({ startedAt: '2026-12-05T09:59:59.000Z', durationMs: 61_000 });
    expect(life.cancelUnsupervised(CANCEL, () => true, later)(rec(STATES.running))).toBeUndefined();
  });

  it('edit changes a queued job only: its priority in a queue, its command where it runs here', () => {
    const queued = rec(STATES.queued, { queue: 'q', priority: 0 });
    expect(life.edited({ priority: 5, argv: ['echo', 'new'] })(queued)).toMatchObject({ priority: 5, argv: ['echo', 'new'], state: STATES.queued });
    expect(life.edited({ priority: 0 })(queued)).toBeUndefined();
    expect(() => life.edited({ argv: ['x'] })(rec(STATES.running))).toThrow(/is running: only a queued job can be edited/);
    expect(() => life.edited({ priority: 1 })(rec(STATES.queued))).toThrow(/in no queue/);
    expect(() => life.edited({ argv: ['x'] })(rec(STATES.queued, { backend: 'slurm', placement: PLACED }))).toThrow(/submitted to slurm/);
  });

  it('what the place (Slurm) reports moves a live record once, with its word, never a final one', () => {
    const move = life.fromPlace(STATES.failed, 'FAILED');
    expect(move(rec(STATES.running, { placement: PLACED }))).toMatchObject({
      placement: { id: '7', state: 'FAILED', ids: { jobId: '7' } },
      state: STATES.failed,
    });
    expect(move(rec(STATES.failed, { placement: PLACED }))).toBeUndefined();
    expect(move(rec(STATES.oom, { placement: PLACED }))).toBeUndefined();
    // Not yet placed (sbatch has not answered): nothing to say of it.
    expect(move(rec(STATES.running))).toBeUndefined();
  });

  it('pause holds the job under the lock and records how', async () => {
    const paused = await life.pause(async () => 'freezer', undefined, AT)(rec(STATES.running));
    expect(paused?.state).toEqual({ status: 'paused', startedAt: AT, pausedAt: AT, how: 'freezer' });
    // Paused by the pressure guard: the reason goes with it, and only such a pause is the guard's to undo.
    const guarded = await life.pause(async () => 'freezer', 'pressure: some avg10 63% > 40% for 30s', AT)(rec(STATES.running));
    expect(guarded?.state).toMatchObject({ status: 'paused', reason: 'pressure: some avg10 63% > 40% for 30s' });
    const onlyGuarded = (s: { reason?: string }) => !!s.reason;
    expect(life.resume(() => undefined, onlyGuarded)(paused!)).toBeUndefined();
    expect(life.resume(() => undefined, onlyGuarded)(guarded!)?.state.status).toBe('running');
    let held = false;
    expect(
      await life.pause(async () => {
        held = true;
        return 'signal';
      })(rec(STATES.queued)),
    ).toBeUndefined();
    expect(held).toBe(false);
  });
});

describe('reading a state', () => {
  it('knows the Done states, their outcome, when they started and when they became final', () => {
    const done = Object.values(STATES)
      .filter(life.isDone)
      .map((s) => s.status);
    expect(done).toEqual(['succeeded', 'failed', 'killed', 'cancelled', 'timeout', 'oom']);
    expect(life.outcomeOf(STATES.oom)?.peakMemBytes).toBe(99);
    expect(life.outcomeOf(STATES.lost)).toBeUndefined();
    expect(life.startedAtOf(STATES.paused)).toBe(AT);
    expect(life.startedAtOf(STATES.starting)).toBeUndefined();
    expect(life.startedAtOf({ status: 'lost', reason: 'r', detectedAt: AT })).toBeUndefined();
    for (const s of ['queued', 'starting', 'running', 'paused'] as Status[]) expect(life.finishedAtOf(STATES[s])).toBeUndefined();
    expect(life.finishedAtOf(STATES.skipped)).toBe(AT);
  });

  it('a lost job keeps its start only if it had one', () => {
    expect(life.lostState(STATES.running, 'gone', AT)).toEqual({ status: 'lost', startedAt: AT, reason: 'gone', detectedAt: AT });
    expect(life.lostState(STATES.starting, 'gone', AT)).toEqual({ status: 'lost', reason: 'gone', detectedAt: AT });
  });
});
