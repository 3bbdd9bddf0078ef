// A NAME means one live job: run refuses a second (--replace, --allow-duplicate), cancel and restart by NAME.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { start, useWorld } from '../helpers/jobq.js';

const w = useWorld();
const state = (id: string) => w.record(id).state;

describe('a NAME means one live job', () => {
  it('run refuses a NAME that is running: one line naming the job and the ways on, exit 1, nothing written', async () => {
    const first = await start(w, 'train', ['sleep', '30']);
    const r = await w.run(['run', 'train', '--', 'true']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(first);
    expect(r.stderr).toMatch(/--replace/);
    expect(r.stderr).toMatch(/--allow-duplicate/);
    expect(w.ids()).toEqual([first]);
  });

  it('--replace cancels the live one with its grace, then starts; --allow-duplicate starts beside it', async () => {
    const first = await start(w, 'svc', ['sh', '-c', 'trap "echo bye; exit 0" TERM; while :; do sleep 0.05; done']);
    const second = await start(w, 'svc', ['sleep', '30'], ['--replace']);
    expect(state(first)).toMatchObject({ status: 'cancelled', exitCode: 0 });
    expect(fs.readFileSync(w.record(first).log, 'utf8')).toContain('bye');
    expect(state(second).status).toBe('running');
    const third = await start(w, 'svc', ['sleep', '30'], ['--allow-duplicate']);
    expect(state(second).status).toBe('running');
    expect(state(third).status).toBe('running');
  });

  it('20 simultaneous runs of one NAME give exactly one job', async () => {
    const runs = await Promise.all(Array.from({ length: 20 }, () => w.run(['run', 'same', '-q', '--', 'sleep', '30'])));
    expect(runs.filter((r) => r.exitCode === 0)).toHaveLength(1);
    expect(runs.filter((r) => r.exitCode === 1 && /already/.test(r.stderr))).toHaveLength(19);
    expect(w.ids()).toHaveLength(1);
    const live = fs
      .readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return (
            fs.readFileSync(`/proc/${p}/environ`, 'latin1').includes(`JOBQ_TEST_TAG=${w.tag}`) &&
            fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').startsWith('sleep')
          );
        } catch {
          return false;
        }
      });
    expect(live).toHaveLength(1);
  });

  it('cancel NAME ends every live job of that name and lists each', async () => {
    const a = await start(w, 'dup', ['sleep', '30']);
    const b = await start(w, 'dup', ['sleep', '30'], ['--allow-duplicate']);
    const r = await w.run(['cancel', 'dup']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`cancelled ${a}`);
    expect(r.stdout).toContain(`cancelled ${b}`);
    expect([state(a).status, state(b).status]).toEqual(['cancelled', 'cancelled']);
  });

  it('restart NAME stops the live job first; --keep starts a second copy', async () => {
    const a = await start(w, 'rs', ['sleep', '30']);
    const r = await w.run(['restart', 'rs']);
    expect(r.exitCode).toBe(0);
    expect(state(a).status).toBe('cancelled');
    const b = w.ids().find((id) => id !== a)!;
    expect(state(b).status).toBe('running');
    expect((await w.run(['restart', 'rs', '--keep'])).exitCode).toBe(0);
    expect(state(b).status).toBe('running');
    expect(w.ids()).toHaveLength(3);
  });
});
