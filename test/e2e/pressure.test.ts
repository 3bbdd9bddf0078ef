// Issue 25: the memory pressure guard on real jobs, its pressure read from a file the test writes (JOBQ_PRESSURE_FILE;
// the guest suite makes real pressure). Under sustained pressure the lowest-priority running job gets its warning
// signal, is frozen (paused, reason memory pressure), thawed when pressure eases, or ended oom (pressure …) if it does
// not; queued jobs wait while pressure is high; nothing that is not a job is touched; a quiet machine sees no action.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, bystander, pollUntil, start, useWorld } from '../helpers/jobq.js';

const PSI = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-psi-')), 'memory');
const psi = (some: number) =>
  fs.writeFileSync(PSI, `some avg10=${some.toFixed(2)} avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1\n`);
psi(0);
afterAll(() => fs.rmSync(path.dirname(PSI), { recursive: true, force: true }));

const GUARD = { some: 40, for: '1s', warn: '1s', thawBelow: 10, thawAfter: '1s', endAfter: '3s' };
const w = useWorld({ env: { JOBQ_PRESSURE_FILE: PSI }, config: { sampleInterval: '200ms', pressureGuard: GUARD, queues: { q: { slots: 4 } } } });

/** A job that writes MARK to a file on USR1 (its warning: --timeout-signal) and otherwise waits. */
function warnable(name: string, mark: string, flags: string[] = [], onTerm = '') {
  const file = path.join(w.home, `${name}.warned`);
  return {
    file,
    id: start(
      w,
      name,
      ['sh', '-c', `trap 'echo ${mark} >> ${file}' USR1; ${onTerm} while :; do sleep 0.1; done`],
      ['--timeout', '1h', '--timeout-signal', 'USR1@1m', ...flags],
    ),
  };
}

const events = () => fs.readFileSync(path.join(w.home, 'events.log'), 'utf8');

describe('the pressure guard', () => {
  it('warns then freezes the lowest-priority job, holds queued jobs back, and thaws it when pressure eases', async () => {
    const high = warnable('train-high', 'high', ['--queue', 'q', '--priority', '5']);
    const low = warnable('train-low', 'low', ['--queue', 'q', '--priority', '0']);
    const [hi, lo] = [await high.id, await low.id];
    const other = bystander();
    await pollUntil(() => w.record(hi).state.status === 'running' && w.record(lo).state.status === 'running', 15_000, 'both running');
    psi(63);
    await pollUntil(() => fs.existsSync(low.file), 15_000, 'the warning signal to the low-priority job');
    await pollUntil(() => w.record(lo).state.status === 'paused', 15_000, 'the low-priority job frozen');
    const paused = w.record(lo).state;
    expect(paused.reason).toMatch(/^pressure: some avg10 63% > 40% for \d/);
    expect((await w.run(['status'])).stdout).toMatch(/train-low.*paused \(memory pressure\)/);
    // One job at a time: the other keeps running, unwarned, while the first is frozen.
    expect(w.record(hi).state.status).toBe('running');
    expect(fs.existsSync(high.file)).toBe(false);
    // Nothing new starts while pressure is high: a queued job says why.
    const queued = await start(w, 'eval', ['true'], ['--queue', 'q']);
    await pollUntil(async () => /memory pressure \(some avg10 63% > 40%\)/.test((await w.run(['status', queued])).stdout), 15_000, 'the wait reason');
    expect(w.record(queued).state.status).toBe('queued');
    psi(2);
    await pollUntil(() => w.record(lo).state.status === 'running', 15_000, 'the frozen job thawed');
    await pollUntil(() => w.record(queued).state.status === 'succeeded', 15_000, 'the queued job to start once pressure eased');
    expect(w.record(hi).state.status).toBe('running');
    expect(alive(other)).toBe(true);
    // Every decision is an event, with the numbers (each written a moment after the record it is about).
    await pollUntil(() => events().includes('"msg":"pressure: thawed"'), 10_000, 'the thaw event');
    const log = events();
    for (const msg of ['pressure: warned', 'pressure: frozen', 'pressure: thawed']) expect(log).toContain(`"msg":"${msg}"`);
    expect(log).toMatch(/"some":63.*"threshold":40.*"signal":"SIGUSR1".*"msg":"pressure: warned"/);
    await w.run(['cancel', hi, lo]);
  }, 60_000);

  it('ends a frozen job that pressure does not leave, oom (pressure …), even if it traps TERM and exits 0; nothing else is touched', async () => {
    const job = warnable('leaky', 'warned', [], `trap 'exit 0' TERM;`);
    const id = await job.id;
    const other = bystander();
    await pollUntil(() => w.record(id).state.status === 'running', 15_000, 'running');
    psi(70);
    await pollUntil(() => w.record(id).state.status === 'oom', 30_000, 'the job ended for pressure');
    const s = w.record(id).state;
    expect(s).toMatchObject({ by: 'pressure', exitCode: 0 });
    expect(s.reason).toMatch(/^pressure: some avg10 70% > 40% for \d/);
    expect(fs.readFileSync(job.file, 'utf8')).toBe('warned\n');
    expect((await w.run(['status', id])).stdout).toMatch(/oom \(pressure\)/);
    expect((await w.run(['wait', id])).exitCode).not.toBe(0);
    expect(events()).toContain('"msg":"pressure: ending the job"');
    expect(alive(other)).toBe(true);
  }, 60_000);

  it('on a quiet machine: no action at all', async () => {
    psi(3);
    const a = await start(w, 'calm', ['sleep', '3']);
    await pollUntil(() => w.record(a).state.status === 'succeeded', 15_000, 'the job');
    expect(events()).not.toContain('pressure');
  }, 30_000);
});
