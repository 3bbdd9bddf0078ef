// cancel: the whole job ends, TERM then KILL after the grace, a stopped job runs its handler, a cancel meeting a --timeout.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, pollUntil, start, tmpDir, useWorld } from '../helpers/jobq.js';

const w = useWorld();
const state = (id: string) => w.record(id).state;

describe('cancel', () => {
  it('removes the job and its grandchildren', async () => {
    const id = await start(w, 'gc', ['bash', '-c', 'sleep 300 & sleep 300 & wait']);
    const pgid = w.record(id).job.pgid;
    await pollUntil(
      () =>
        fs
          .readdirSync('/proc')
          .filter((p) => /^\d+$/.test(p))
          .some((p) => p !== String(pgid) && readPgid(p) === pgid),
      5000,
      'grandchildren',
    );
    const r = await w.run(['cancel', 'gc']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('cancelled');
    expect(groupAlive(pgid)).toBe(false);
    expect(w.record(id).state.status).toBe('cancelled');
    expect((await w.run(['cancel', 'gc'])).stdout).toContain('already ended');
  });

  it('SIGKILLs a job that traps and ignores SIGTERM after the grace', async () => {
    const id = await start(w, 'stubborn', ['bash', '-c', 'trap "" TERM; echo ready; while :; do sleep 0.2; done']);
    await pollUntil(() => fs.readFileSync(w.record(id).log, 'utf8').includes('ready'), 5000, 'trap installed');
    const t0 = Date.now();
    const r = await w.run(['cancel', id, '--grace', '1s']);
    expect(r.exitCode).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(r.stdout).toContain('SIGKILL after 1s');
    expect(groupAlive(w.record(id).job.pgid)).toBe(false);
    expect(w.record(id).state).toMatchObject({ status: 'cancelled', signal: 'SIGKILL' });
    expect((await w.run(['wait', id])).exitCode).toBe(137);
  });
});

describe('stopped jobs', () => {
  it('cancel of a job that stopped itself runs its TERM handler instead of waiting for KILL', async () => {
    const marker = path.join(tmpDir(), 'handled');
    const id = await start(w, 'stopped', ['sh', '-c', `trap 'echo yes > ${marker}; exit 3' TERM; kill -STOP $$; sleep 100`]);
    const pid = w.record(id).job.pid;
    await pollUntil(() => fs.readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]!.startsWith('T'), 5000, 'job stopped');
    const r = JSON.parse((await w.run(['cancel', id, '--grace', '5s', '--json'])).stdout).results[0];
    expect(r.escalated).toBe(false);
    expect(fs.readFileSync(marker, 'utf8')).toBe('yes\n');
    expect(state(id)).toMatchObject({ status: 'cancelled', exitCode: 3 });
  });

  it('a timeout of a stopped job runs its handler too', async () => {
    const marker = path.join(tmpDir(), 'handled');
    const id = await start(
      w,
      'stopped2',
      ['sh', '-c', `trap 'echo yes > ${marker}; exit 0' TERM; kill -STOP $$; sleep 100`],
      ['--timeout', '1s', '--grace', '10s'],
    );
    await w.run(['wait', id]);
    expect(fs.readFileSync(marker, 'utf8')).toBe('yes\n');
    expect(state(id)).toMatchObject({ status: 'timeout', exitCode: 0 });
  });
});

describe('cancel and timeout', () => {
  it("a cancel under way when the --timeout falls due stays the cause: no second TERM, cancelled, KILL after the job's own grace", async () => {
    const id = await start(w, 'both', ['bash', '-c', 'trap "echo got TERM" TERM; while :; do sleep 0.05; done'], ['--timeout', '1500ms', '--grace', '3s']);
    await pollUntil(() => w.record(id).state.status === 'running', 5000, 'running');
    const r = JSON.parse((await w.run(['cancel', id, '--json'])).stdout).results[0];
    // The job's --grace (3s), not the config's 10s, and past the timeout's moment.
    expect(r).toMatchObject({ escalated: true, signal: 'SIGTERM', graceMs: 3000 });
    expect(state(id)).toMatchObject({ status: 'cancelled', signal: 'SIGKILL' });
    expect(fs.readFileSync(w.record(id).log, 'utf8').match(/got TERM/g)).toHaveLength(1);
    expect(fs.readFileSync(path.join(w.home, 'jobs', id, 'supervisor.log'), 'utf8')).not.toContain('"msg":"timeout"');
  });

  it('a timeout under way is the cause though a cancel comes during its grace', async () => {
    const id = await start(w, 'late', ['bash', '-c', 'trap "echo got TERM" TERM; while :; do sleep 0.05; done'], ['--timeout', '500ms', '--grace', '2s']);
    await pollUntil(() => fs.readFileSync(w.record(id).log, 'utf8').includes('got TERM'), 10_000, "the timeout's TERM");
    await w.run(['cancel', id]);
    expect(state(id)).toMatchObject({ status: 'timeout', reason: 'wall' });
  });
});

function readPgid(pid: string): number {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return -1;
  }
}

function groupAlive(pgid: number): boolean {
  return fs.readdirSync('/proc').some((p) => /^\d+$/.test(p) && readPgid(p) === pgid && alive(Number(p)));
}
