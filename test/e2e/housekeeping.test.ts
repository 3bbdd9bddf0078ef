// Keeping a state dir in bounds: prune (a bare prune only shows) and rm, restart of a finished job, the log cap.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { gate, pollUntil, start, useWorld } from '../helpers/jobq.js';

const w = useWorld();

describe('housekeeping', () => {
  it('prune removes finished jobs (not running ones), honouring --keep and --dry-run', async () => {
    const done = [];
    // One NAME for all: a `true` still ending under load must not refuse the next start.
    for (let i = 0; i < 4; i++) done.push(await start(w, 'p', ['true'], ['--allow-duplicate']));
    const running = await start(w, 'p', ['sleep', '30'], ['--allow-duplicate']);
    await w.run(['wait', ...done]);
    const dry = await w.run(['prune', '--keep', '1', '--dry-run']);
    expect(dry.stdout).toContain('3 jobs would be removed');
    expect(w.ids()).toHaveLength(5);
    const r = JSON.parse((await w.run(['prune', '--keep', '1', '--json'])).stdout);
    expect(r.removed.map((x: { id: string }) => x.id).sort()).toEqual(done.slice(0, 3).sort());
    expect(w.ids().sort()).toEqual([done[3], running].sort());
    expect((await w.run(['prune', '--older-than', '1d'])).stdout).toContain('0 jobs removed');
  });

  it('restart starts the same argv, cwd and jobq-added env as a new job', async () => {
    const id = await start(w, 'again', ['sh', '-c', 'echo "$PWD $FOO $OMP_NUM_THREADS"'], ['--cwd', '/tmp', '--env', 'FOO=bar', '--memsafe']);
    await w.run(['wait', id]);
    const r = await w.run(['restart', 'again']);
    expect(r.exitCode).toBe(0);
    const id2 = /as (\S+)/.exec(r.stdout)![1]!;
    expect(id2).not.toBe(id);
    await w.run(['wait', id2]);
    expect(fs.readFileSync(w.record(id2).log, 'utf8').trim()).toBe('/tmp bar 1');
    expect(w.record(id2).argv).toEqual(w.record(id).argv);
  });

  it('caps the log of a job writing past --max-log-size, with a marker line', async () => {
    const id = await start(
      w,
      'chatty',
      ['sh', '-c', 'i=0; while [ $i -lt 4000 ]; do echo "line $i ................................................"; i=$((i+1)); done; sleep 1.5'],
      ['--max-log-size', '64K'],
    );
    await w.run(['wait', id]);
    const log = fs.readFileSync(w.record(id).log, 'utf8');
    expect(log.length).toBeLessThanOrEqual(64 * 1024);
    expect(log).toMatch(/^\[jobq\] \d+ bytes of older output dropped/);
    expect(log).toContain('line 3999');
  });
});

describe('safe defaults', () => {
  it('a bare prune only shows; rm removes one finished job and refuses a live one', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await start(w, `p${i}`, ['true']));
    await w.run(['wait', ...ids]);
    const bare = await w.run(['prune']);
    expect(bare.exitCode).toBe(0);
    expect(bare.stdout).toMatch(/3 jobs would be removed/);
    expect(bare.stdout).toMatch(/nothing removed: say which/);
    expect(w.ids().sort()).toEqual([...ids].sort());
    const live = await start(w, 'busy', ['sleep', '30']);
    const rm = await w.run(['rm', ids[0]!, live]);
    expect(rm.exitCode).toBe(1);
    expect(rm.stdout).toContain(`removed ${ids[0]}`);
    expect(rm.stderr).toMatch(/is running: cancel it first/);
    expect(w.ids()).not.toContain(ids[0]);
    expect(w.ids()).toContain(live);
  });
});

describe('the history index (what plain status reads instead of every job dir)', () => {
  const indexed = () => fs.readFileSync(path.join(w.home, 'history'), 'utf8').trim().split('\n').slice(1).sort();
  const older = async (n: number) => /(\d+) older jobs? not shown/.exec((await w.run(['status', '-n', String(n)])).stdout)?.[1];

  it('jobs that supervisors finish at once are all in it before any reader, and status lists them', async () => {
    await w.run(['status']);
    const g = gate(w, 'end');
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push(await start(w, `end${i}`, ['sh', '-c', `${g.hold}; exit ${i % 2}`]));
    g.open();
    await w.run(['wait', ...ids, '--timeout', '60s']);
    // The supervisors wrote it (a reader would rebuild it from the dirs: that proves nothing).
    await pollUntil(() => indexed().length === 8, 10_000, 'eight ends in the index');
    expect(indexed()).toEqual([...ids].sort());
    const listed = JSON.parse((await w.run(['status', '--json'])).stdout);
    expect(listed.jobs.map((j: { id: string }) => j.id).sort()).toEqual([...ids].sort());
    expect(await older(3)).toBe('5');
  });

  it('rm and prune keep it and the "older jobs not shown" count right', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await start(w, `h${i}`, ['true']));
    await w.run(['wait', ...ids]);
    const live = await start(w, 'live', ['sleep', '30']);
    expect(await older(2)).toBe('4');
    await w.run(['rm', ids[0]!]);
    expect(indexed()).toEqual(ids.slice(1).sort());
    expect(await older(2)).toBe('3');
    await w.run(['prune', 'h1', 'h2']);
    expect(indexed()).toEqual(ids.slice(3).sort());
    expect(await older(2)).toBe('1');
    // An older jobq removes a dir and leaves the index: the count is still right.
    fs.rmSync(path.join(w.home, 'jobs', ids[3]!), { recursive: true });
    expect(await older(1)).toBe('1');
    expect(indexed()).toEqual(ids.slice(4).sort());
    const st = JSON.parse((await w.run(['status', '--json'])).stdout);
    expect(st.jobs.map((j: { id: string }) => j.id)).toEqual([live, ids[5], ids[4]]);
  });
});
