// Issue 13: --timeout on Slurm becomes --time and ends TIMEOUT. Its own file: Slurm checks limits once a minute, so
// this takes about 70 s and runs beside the other files instead of after them.
import { describe, expect, it } from 'vitest';
import { start } from '../helpers/jobq.js';
import { slurmWorlds } from '../helpers/slurm.js';

const { cluster, world } = slurmWorlds('Slurm time-limit test');

describe.skipIf(!cluster.ok)('a Slurm time limit', () => {
  it('--timeout 1m ends the job as timeout, and wait says so', async () => {
    const w = world();
    const id = await start(w, 'slow', ['sleep', '600'], ['--backend', 'slurm', '--timeout', '1m']);
    const r = await w.run(['wait', id, '--timeout', '150s']);
    expect(w.record(id).state).toMatchObject({ status: 'timeout', reason: 'wall' });
    // As timeout(1): 124 for a job its --timeout ended; the wait itself did not run out.
    expect(r.exitCode).toBe(124);
    expect(r.stderr).not.toMatch(/timed out waiting/);
  }, 180_000);
});
