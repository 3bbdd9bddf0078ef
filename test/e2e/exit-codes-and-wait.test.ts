// How a job's end is recorded and what wait returns: exit codes, signals, the cause of the end over its code, wait --all.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { start, useWorld } from '../helpers/jobq.js';

const w = useWorld();
const state = (id: string) => w.record(id).state;

describe('exit codes', () => {
  it('records exit code 7 and a signal death, and wait returns them', async () => {
    const seven = await start(w, 'seven', ['sh', '-c', 'exit 7']);
    const sig = await start(w, 'sig', ['sh', '-c', 'kill -USR1 $$']);
    expect((await w.run(['wait', seven])).exitCode).toBe(7);
    expect(w.record(seven).state).toMatchObject({ status: 'failed', exitCode: 7, signal: null });
    expect((await w.run(['wait', sig])).exitCode).toBe(128 + 10);
    expect(w.record(sig).state).toMatchObject({ status: 'killed', signal: 'SIGUSR1' });
    const both = await w.run(['wait', seven, sig]);
    expect(both.exitCode).toBe(7);
  });

  it('wait gives 124 on its own timeout and leaves the job running', async () => {
    const id = await start(w, 'long', ['sleep', '30']);
    const r = await w.run(['wait', id, '--timeout', '300ms']);
    expect(r.exitCode).toBe(124);
    expect(w.record(id).state.status).toBe('running');
  });
});

describe('the cause of the end wins over the exit code', () => {
  const trapper = ['sh', '-c', 'trap "echo handled; exit 0" TERM; while :; do sleep 0.05; done'];

  it('a timeout whose TERM handler exits 0 is a timeout (exit 0 kept), and wait says 124', async () => {
    const id = await start(w, 'tmo', trapper, ['--timeout', '1s']);
    const r = await w.run(['wait', id]);
    expect(state(id)).toMatchObject({ status: 'timeout', reason: 'wall', exitCode: 0 });
    expect(r.exitCode).toBe(124);
  });

  it('an idle timeout whose handler exits 0 is a timeout', async () => {
    const id = await start(w, 'idle', trapper, ['--idle-timeout', '700ms']);
    await w.run(['wait', id]);
    expect(state(id)).toMatchObject({ status: 'timeout', reason: 'idle', exitCode: 0 });
  });

  it('a cancel whose handler exits 0 is cancelled (exit 0 kept), and wait says 128+TERM', async () => {
    const id = await start(w, 'cnl', trapper);
    await w.run(['cancel', id]);
    expect(state(id)).toMatchObject({ status: 'cancelled', exitCode: 0 });
    expect((await w.run(['wait', id])).exitCode).toBe(143);
    expect(fs.readFileSync(w.record(id).log, 'utf8')).toMatch(/handled\n\[jobq\] cancelled at .* \(SIGTERM\), exit code 0\n$/);
  });
});

describe('wait --all', () => {
  it('waits for every job live now, returns the first failure, and says so when there is none', async () => {
    // Long enough to be live when wait --all looks, however slowly the four runs start on a loaded machine (CI once
    // took over 3 s for them: wb had ended before wait --all looked).
    await w.run(['run', 'wa', '-q', '--', 'sh', '-c', 'sleep 8']);
    await w.run(['run', 'wb', '-q', '--', 'sh', '-c', 'sleep 10; exit 5']);
    await w.run(['run', 'wq', '-q', '--queue', 'one', '--', 'sleep', '0.2']);
    await w.run(['run', 'wq2', '-q', '--queue', 'one', '--', 'true']);
    const r = await w.run(['wait', '--all', '--timeout', '30s']);
    expect(r.exitCode).toBe(5);
    for (const n of ['wa', 'wb', 'wq', 'wq2'])
      expect(JSON.parse((await w.run(['status', n, '--json'])).stdout).state.status).not.toMatch(/queued|running|starting/);
    const none = await w.run(['wait', '--all']);
    expect([none.exitCode, none.stderr.trim()]).toEqual([0, 'jobq: no live jobs']);
    expect((await w.run(['wait'])).exitCode).toBe(2);
  });
});
