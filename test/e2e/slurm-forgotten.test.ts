// Issue 13: a job that ended while no jobq command looked, and that slurmctld has since forgotten (past MinJobAge; a
// real cluster's default is 300 s), gets its end from sacct. Its own file: slurmctld purges about once a minute, so
// this runs beside the other files instead of after them.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { pollUntil, start } from '../helpers/jobq.js';
import { slurmWorlds } from '../helpers/slurm.js';

const { cluster, world } = slurmWorlds('Slurm sacct test');

describe.skipIf(!cluster.ok)('a job slurmctld has forgotten', () => {
  it('is settled from sacct: its exit code, and the record keeps it', async () => {
    const w = world();
    const id = await start(w, 'forgot', ['sh', '-c', 'echo done; exit 3'], ['--backend', 'slurm']);
    const jobId = w.record(id).placement.ids.jobId;
    const known = () => spawnSync('scontrol', ['-o', 'show', 'job', jobId], { env: { ...process.env, ...cluster.env } }).status === 0;
    // No jobq command from here until slurmctld no longer lists the job.
    await pollUntil(() => !known(), 180_000, `slurmctld to forget job ${jobId}`);
    expect(w.record(id).state.status).not.toBe('failed');
    const st = JSON.parse((await w.run(['status', id, '--json'])).stdout);
    expect(st.state).toMatchObject({ status: 'failed', exitCode: 3 });
    expect(w.record(id).state).toMatchObject({ status: 'failed', exitCode: 3 });
    expect((await w.run(['wait', id, '--timeout', '10s'])).exitCode).toBe(3);
  }, 240_000);
});
