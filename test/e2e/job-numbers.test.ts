// Issue 24: every job gets a short number (pueue/tsp style) that every command taking a JOB accepts, as 42 or #42.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gate, pollUntil, start, useWorld } from '../helpers/jobq.js';
import { plantRecord } from '../helpers/records.js';

const w = useWorld();
const state = (id: string) => w.record(id).state;

describe('job numbers', () => {
  it('10 runs at once get 10 distinct numbers 1..10, shown by run, status, status JOB and --json', async () => {
    const runs = await Promise.all(Array.from({ length: 10 }, (_, i) => w.run(['run', `n${i}`, '--', 'true'])));
    for (const r of runs) expect(r.exitCode, r.stderr).toBe(0);
    const byId = new Map(w.ids().map((id) => [id, w.record(id).seq as number]));
    expect([...byId.values()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // run's line: the id, then its number.
    for (const r of runs) {
      const [, id, n] = /^started (\S+) {2}#(\d+) {2}pid /.exec(r.stdout)!;
      expect(byId.get(id!)).toBe(Number(n));
    }
    const table = (await w.run(['status'])).stdout.split('\n');
    expect(table[0]).toMatch(/^#\s+NAME\s+ID\s+STATE/);
    for (const line of table.slice(1).filter(Boolean)) {
      const [n, , id] = line.split(/\s+/);
      expect(byId.get(id!)).toBe(Number(n));
    }
    const json = JSON.parse((await w.run(['status', '--json'])).stdout);
    expect(json.jobs.map((j: { id: string; seq: number }) => [j.id, j.seq]).sort()).toEqual([...byId.entries()].sort());
    const [id7] = [...byId.entries()].find(([, n]) => n === 7)!;
    expect((await w.run(['status', '7'])).stdout).toMatch(new RegExp(`^id\\s+${id7}\\nnumber\\s+7\\n`));
    expect(JSON.parse((await w.run(['status', '#7', '--json'])).stdout)).toMatchObject({ id: id7, seq: 7 });
  }, 60_000);

  it('tail, pause, resume, cancel, wait, restart, rm and prune take 42 or #42; unknown: one line, exit 1; never given again', async () => {
    const g = gate(w, 'a');
    const a = await start(w, 'a', ['sh', '-c', `echo hello; ${g.hold}`]);
    expect(w.record(a).seq).toBe(1);
    await pollUntil(() => fs.readFileSync(w.record(a).log, 'utf8').includes('hello'), 10_000, 'a to print');
    expect((await w.run(['tail', '1'])).stdout).toBe('hello');
    expect((await w.run(['pause', '#1'])).exitCode).toBe(0);
    expect(state(a).status).toBe('paused');
    expect((await w.run(['resume', '1'])).exitCode).toBe(0);
    expect(state(a).status).toBe('running');
    expect((await w.run(['cancel', '1'])).exitCode).toBe(0);
    expect(state(a).status).toBe('cancelled');
    expect((await w.run(['wait', '#1'])).exitCode).toBe(143);
    const re = await w.run(['restart', '1']);
    expect([re.exitCode, re.stdout]).toEqual([0, expect.stringMatching(/^restarted \S+ as (a_\S+) {2}#2 {2}pid /)]);
    const b = /as (\S+)/.exec(re.stdout)![1]!;
    await w.run(['cancel', '2']);
    for (const ref of ['9', '#9']) {
      const r = await w.run(['tail', ref]);
      expect([r.exitCode, r.stderr]).toEqual([1, 'jobq: no job #9 (see: jobq status --all)']);
    }
    // The highest number removed (rm) and one pruned: neither is given again.
    expect((await w.run(['rm', '#2'])).stdout).toContain(b);
    expect((await w.run(['prune', '1'])).stdout).toContain(`removed ${a}`);
    expect(w.ids()).toEqual([]);
    const c = await start(w, 'c', ['true']);
    expect(w.record(c).seq).toBe(3);
    expect((await w.run(['wait', '3'])).exitCode).toBe(0);
  }, 60_000);

  it('a NAME of digits only is refused; records an older jobq wrote work as before, without a number', async () => {
    const r = await w.run(['run', '42', '--', 'true']);
    expect([r.exitCode, r.stderr.trim().split('\n').length, r.stderr]).toEqual([2, 1, expect.stringMatching(/digits only read as a job number/)]);
    const done = {
      status: 'succeeded',
      startedAt: '2026-12-05T10:00:00.000Z',
      exitCode: 0,
      signal: null,
      endedAt: '2026-12-05T10:00:01.000Z',
      durationMs: 1000,
    } as const;
    const old = plantRecord(w.home, 'old', { state: done });
    // An older jobq allowed digits: that NAME is still found while no job has the number.
    const digits = plantRecord(w.home, '5', { state: done });
    const n = await start(w, 'new', ['true']);
    expect(w.record(n).seq).toBe(1);
    const table = (await w.run(['status'])).stdout;
    expect(table).toMatch(new RegExp(`^-\\s+old\\s+${old}\\s`, 'm'));
    expect(table).toMatch(new RegExp(`^1\\s+new\\s+${n}\\s`, 'm'));
    expect((await w.run(['status', 'old'])).stdout).not.toMatch(/^number/m);
    expect(JSON.parse((await w.run(['status', '5', '--json'])).stdout).id).toBe(digits);
    expect(JSON.parse((await w.run(['status', '1', '--json'])).stdout).id).toBe(n);
  }, 60_000);
});
