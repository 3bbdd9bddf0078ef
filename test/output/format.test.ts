// Formatting only (the one place mocks are fine): table layout, colour rules, state labels.

import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import type { JobView } from '../../src/backend/backend.js';
import { colorLevel } from '../../src/output/color.js';
import { columns, elapsedMs, formatTable, stateLabel } from '../../src/output/format.js';

const plain = new Chalk({ level: 0 });
const view = (state: any, extra: Partial<JobView> = {}): JobView => ({
  rec: { id: 'a_20261124_000000', name: 'a', createdAt: new Date().toISOString(), job: { pid: 42, pgid: 42, startTicks: 1 }, protection: {} } as any,
  state,
  supervisorAlive: true,
  ...extra,
});

describe('format', () => {
  it("a lost job's elapsed time stops when it was found gone", () => {
    const v = view({ status: 'lost', reason: 'x', startedAt: '2026-12-05T10:00:00.000Z', detectedAt: '2026-12-05T10:00:00.300Z' });
    expect(elapsedMs(v, Date.parse('2026-12-05T11:00:00.000Z'))).toBe(300);
    expect(elapsedMs(view({ status: 'running', startedAt: '2026-12-05T10:00:00.000Z' }), Date.parse('2026-12-05T10:00:05.000Z'))).toBe(5000);
  });

  it('labels states with the detail that matters', () => {
    expect(stateLabel(view({ status: 'failed', exitCode: 7 }))).toBe('failed (7)');
    expect(stateLabel(view({ status: 'killed', signal: 'SIGKILL', note: 'SIGKILL, possibly OOM' }))).toBe('killed (SIGKILL, possibly OOM)');
    expect(stateLabel(view({ status: 'running' }, { supervisorAlive: false }))).toBe('running (no supervisor)');
    expect(stateLabel(view({ status: 'timeout', reason: 'idle' }))).toBe('timeout (idle)');
  });

  it('aligns columns ignoring colour codes', () => {
    const c = new Chalk({ level: 1 });
    expect(
      columns([
        [c.red('ab'), 'x'],
        ['abcd', 'y'],
      ]),
    ).toBe(`${c.red('ab')}    x\nabcd  y`);
    const t = formatTable(
      plain,
      [view({ status: 'succeeded', startedAt: new Date().toISOString(), exitCode: 0, signal: null, endedAt: '', durationMs: 1500 })],
      { memory: false },
    );
    expect(t.split('\n')[1]).toMatch(/^a\s+a_20261124_000000\s+succeeded\s+42\s+\S+\s+1s\s+0$/);
    // A Slurm job has no pid on this machine, but it has a start time.
    const slurm = view({ status: 'running', startedAt: '2026-11-24T10:15:00.000Z' });
    delete (slurm.rec as { job?: unknown }).job;
    expect(formatTable(plain, [slurm], { memory: false }).split('\n')[1]).toMatch(/^a\s+a_20261124_000000\s+running\s+-\s+(\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d\s/);
  });

  it('fits a width: long names cut, then the id, pid and start time go, the last output takes what is left', () => {
    const c = new Chalk({ level: 1 });
    const long = (name: string, st: any) => {
      const v = view(st, { memBytes: 3 * 1024 ** 3 });
      v.rec = { ...v.rec, name, id: `${name}_20261205_101500` };
      return v;
    };
    const views = [
      long('resnet50-lr3e-4', { status: 'running', startedAt: new Date().toISOString() }),
      long('a-very-long-sweep-name-that-goes-on-and-on', { status: 'failed', exitCode: 1, signal: null, endedAt: '', durationMs: 5 }),
    ];
    const strip = (t: string) => t.replace(/\x1b\[[0-9;]*m/g, '');
    for (const width of [40, 60, 80, 120, 200]) {
      const t = strip(formatTable(c, views, { memory: true, width, lastLine: () => 'epoch 3/10 [#####.....] loss 0.31 eta 4:12' }));
      for (const line of t.split('\n')) expect(line.length, `${width}: ${line}`).toBeLessThanOrEqual(width);
      expect(t.split('\n')[0]).toMatch(/^NAME\s+(ID\s+)?STATE/);
      // What is kept at every width: name (cut with …), state.
      expect(t).toMatch(/resnet50-lr3e-4\s+(\S+\s+)?running/);
    }
    const at80 = strip(formatTable(c, views, { memory: true, width: 80, lastLine: () => 'epoch 3/10 [#####.....] loss 0.31 eta 4:12' }));
    expect(at80.split('\n')[0]).toMatch(/^NAME\s+STATE\s+(STARTED\s+)?ELAPSED\s+EXIT\s+MEM\s+LAST OUTPUT$/);
    expect(at80).toMatch(/a-very-long-sweep-name-…\s/);
    const at200 = strip(formatTable(c, views, { memory: true, width: 200, lastLine: () => 'epoch 3/10 [#####.....] loss 0.31 eta 4:12' }));
    expect(at200.split('\n')[0]).toMatch(/^NAME\s+ID\s+STATE\s+PID\s+STARTED\s+ELAPSED\s+EXIT\s+MEM\s+LAST OUTPUT$/);
    expect(at200).toMatch(/a-very-long-sweep-name-that-goes-on-and-on\s/);
    // No width (a pipe): every column, nothing cut.
    expect(strip(formatTable(c, views, { memory: true })).split('\n')[0]).toMatch(/^NAME\s+ID\s+STATE\s+PID/);
  });

  it("job numbers: a narrow # column first, kept at 80 columns; '-' for a record without one; none when no job has one", () => {
    const c = new Chalk({ level: 1 });
    const strip = (t: string) => t.replace(/\x1b\[[0-9;]*m/g, '');
    const numbered = (seq: number | undefined, name: string) => {
      const v = view({ status: 'running', startedAt: new Date().toISOString() }, { memBytes: 3 * 1024 ** 3 });
      v.rec = { ...v.rec, name, id: `${name}_20261205_101500`, ...(seq === undefined ? {} : { seq }) };
      return v;
    };
    const views = [numbered(1234, 'resnet50-lr3e-4'), numbered(undefined, 'a-very-long-sweep-name-that-goes-on-and-on')];
    for (const width of [40, 60, 80, 120, 200]) {
      const t = strip(formatTable(c, views, { memory: true, width, lastLine: () => 'epoch 3/10 [#####.....] loss 0.31 eta 4:12' }));
      for (const line of t.split('\n')) expect(line.length, `${width}: ${line}`).toBeLessThanOrEqual(width);
      expect(t.split('\n')[1]).toMatch(/^1234\s+resnet50-lr3e-4\s/);
      expect(t.split('\n')[2]).toMatch(/^-\s+a-very-long/);
    }
    expect(strip(formatTable(c, views, { memory: true, width: 80 })).split('\n')[0]).toMatch(/^#\s+NAME\s+STATE\s/);
    expect(strip(formatTable(c, views, { memory: true })).split('\n')[0]).toMatch(/^#\s+NAME\s+ID\s+STATE\s/);
    expect(strip(formatTable(c, [views[1]!], { memory: true })).split('\n')[0]).toMatch(/^NAME\s/);
  });

  it('colour: NO_COLOR and --no-color win, FORCE_COLOR forces, no TTY means none', () => {
    const tty = { isTTY: true } as NodeJS.WriteStream;
    const pipe = { isTTY: false } as NodeJS.WriteStream;
    expect(colorLevel(tty, {}, false)).toBeGreaterThan(0);
    expect(colorLevel(pipe, {}, false)).toBe(0);
    expect(colorLevel(tty, { NO_COLOR: '1' }, false)).toBe(0);
    expect(colorLevel(tty, {}, true)).toBe(0);
    expect(colorLevel(pipe, { FORCE_COLOR: '1' }, false)).toBe(1);
    expect(colorLevel(tty, { FORCE_COLOR: '0' }, false)).toBe(0);
  });
});
