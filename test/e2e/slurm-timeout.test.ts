// Issue 13: --timeout on Slurm becomes --time and ends TIMEOUT. Its own file: Slurm checks limits once a minute, so
// this takes about 70 s and runs beside the other files instead of after them.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { start, type World, world } from '../helpers/jobq.js';
import { slurmCluster } from '../helpers/slurm.js';

const cluster = slurmCluster();
if (!cluster.ok) console.warn(`Slurm time-limit test skipped: ${cluster.why}`);
let w: World;
beforeEach(() => {
  w = world(cluster.env);
});
afterEach(async () => {
  cluster.cancelAll(w.home);
  await w.cleanup();
});

describe.skipIf(!cluster.ok)('a Slurm time limit', () => {
  it('--timeout 1m ends the job as timeout, and wait says so', async () => {
    const id = await start(w, 'slow', ['sleep', '600'], ['--backend', 'slurm', '--timeout', '1m']);
    const r = await w.run(['wait', id, '--timeout', '150s']);
    expect(w.record(id).state).toMatchObject({ status: 'timeout', reason: 'wall' });
    expect(r.exitCode).not.toBe(0);
    expect(r.exitCode).not.toBe(124);
  }, 180_000);
});
