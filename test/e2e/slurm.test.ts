// Issue 13: the same commands on a real Slurm cluster (scripts/slurm-cluster.sh starts one on this machine: munged,
// slurmctld, slurmd). Skipped, with the reason shown, where no cluster answers and none can be started (not root).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT, start } from '../helpers/jobq.js';
import { slurmWorlds } from '../helpers/slurm.js';

const { cluster, world } = slurmWorlds('Slurm tests');
const w = world();

const state = (id: string) => w.record(id).state;
const slurm = ['--backend', 'slurm'];

describe.skipIf(!cluster.ok)('jobs on Slurm', () => {
  it('exit 7 is recorded and returned by wait; the guard variable and --memsafe reach the job; status names the Slurm job', async () => {
    const id = await start(
      w,
      'seven',
      ['sh', '-c', 'echo "guard=$BG_JOB omp=$OMP_NUM_THREADS arena=$MALLOC_ARENA_MAX id=$JOBQ_JOB_ID"; exit 7'],
      [...slurm, '--memsafe'],
    );
    const rec = w.record(id);
    expect(rec.backend).toBe('slurm');
    expect(rec.placement).toMatchObject({ id: expect.stringMatching(/^\d+$/), cluster: 'jobqtest' });
    expect(rec.schema).toBe(3);
    // --json shows it as it always has: under the backend's name.
    const json = JSON.parse((await w.run(['status', id, '--json'])).stdout);
    expect(json).toMatchObject({ schema: 2, backend: 'slurm', slurm: { jobId: rec.placement.id, cluster: 'jobqtest' } });
    expect(json.placement).toBeUndefined();
    expect((await w.run(['wait', id, '--timeout', '60s'])).exitCode).toBe(7);
    expect(state(id)).toMatchObject({ status: 'failed', exitCode: 7 });
    expect(fs.readFileSync(rec.log, 'utf8')).toContain(`guard=1 omp=1 arena=2 id=${id}`);
    expect((await w.run(['status', id])).stdout).toMatch(new RegExp(`slurm\\s+job ${rec.placement.id} on cluster jobqtest`));
  });

  it('restart submits to Slurm again, with the same sbatch options', async () => {
    const id = await start(
      w,
      'again',
      ['sh', '-c', 'echo "comment=$(scontrol show job $SLURM_JOB_ID | grep -o \'Comment=[^ ]*\')"'],
      [...slurm, '--slurm-opt', '--comment=keepme'],
    );
    expect(w.record(id).placement.options).toEqual(['--comment=keepme']);
    expect((await w.run(['wait', id, '--timeout', '60s'])).exitCode).toBe(0);
    const r = await w.run(['restart', id, '--json']);
    expect(r.exitCode).toBe(0);
    const again = JSON.parse(r.stdout).id;
    expect(again).not.toBe(id);
    expect(w.record(again)).toMatchObject({ backend: 'slurm', placement: { options: ['--comment=keepme'] } });
    expect(w.record(again).placement.id).not.toBe(w.record(id).placement.id);
    expect((await w.run(['wait', again, '--timeout', '60s'])).exitCode).toBe(0);
    expect(fs.readFileSync(w.record(again).log, 'utf8')).toContain('comment=Comment=keepme');
  });

  it('a --mem-limit larger than this machine is for the cluster to judge, not refused here', async () => {
    const r = await w.run(['run', 'huge', '-q', ...slurm, '--mem-limit', '64T', '--', 'true']);
    // Slurm itself refuses what no node can meet: one line with its words, and a record that says so.
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/sbatch failed: .*Requested node configuration is not available/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a signal death is killed, 128+signal', async () => {
    const id = await start(w, 'sig', ['sh', '-c', 'kill -TERM $$'], slurm);
    expect((await w.run(['wait', id, '--timeout', '60s'])).exitCode).toBe(143);
    expect(state(id)).toMatchObject({ status: 'killed', signal: 'SIGTERM' });
  });

  it('cancel of a job that ignores TERM escalates after the grace, and returns once Slurm says it ended', async () => {
    const id = await start(w, 'stubborn', ['sh', '-c', 'trap "echo got-term" TERM; while :; do sleep 0.2; done'], slurm);
    await waitFor(
      () => state(id).status === 'running' || w.record(id).placement?.state === 'RUNNING',
      async () => w.run(['status', id]),
    );
    const r = JSON.parse((await w.run(['cancel', id, '--grace', '3s', '--json'])).stdout).results[0];
    expect(r).toMatchObject({ outcome: 'cancelled', escalated: true });
    expect(state(id).status).toBe('cancelled');
    expect(fs.readFileSync(w.record(id).log, 'utf8')).toContain('got-term');
    const sq = execFileSync('squeue', ['-h', '-j', w.record(id).placement.id, '-o', '%T'], { env: { ...process.env, ...cluster.env } })
      .toString()
      .trim();
    expect(['', 'COMPLETED', 'CANCELLED', 'FAILED']).toContain(sq);
  });

  it('a job past its --mem-limit ends oom', async () => {
    const id = await start(w, 'hog', ['python3', '-c', 'x = bytearray(600 * 1024 * 1024); import time; time.sleep(5)'], [...slurm, '--mem-limit', '100M']);
    await w.run(['wait', id, '--timeout', '60s']);
    expect(state(id).status).toBe('oom');
  });

  it('--after chains on Slurm (afterok); a failure skips what depended on it', async () => {
    const order = path.join(w.home, 'order');
    const a = await start(w, 'sa', ['sh', '-c', `sleep 1; echo a >> ${order}`], slurm);
    const b = await start(w, 'sb', ['sh', '-c', `echo b >> ${order}`], [...slurm, '--after', 'sa']);
    const c = await start(w, 'sc', ['sh', '-c', `echo c >> ${order}`], [...slurm, '--after', 'sb']);
    expect(w.record(b).state.status).toBe('queued');
    expect((await w.run(['wait', a, b, c, '--timeout', '90s'])).exitCode).toBe(0);
    expect(fs.readFileSync(order, 'utf8')).toBe('a\nb\nc\n');
    const f = await start(w, 'sf', ['sh', '-c', 'exit 2'], slurm);
    const g = await start(w, 'sg', ['sh', '-c', `echo g >> ${order}`], [...slurm, '--after', 'sf']);
    await w.run(['wait', f, g, '--timeout', '90s']);
    expect(state(g)).toMatchObject({ status: 'skipped', reason: `dependency ${f} ended failed` });
    expect(fs.readFileSync(order, 'utf8')).toBe('a\nb\nc\n');
  });

  it("a pending Slurm job says why it waits, in Slurm's words; cancel of it is cancelled and it never runs", async () => {
    const ran = path.join(w.home, 'ran');
    const id = await start(w, 'later', ['sh', '-c', `touch ${ran}`], [...slurm, '--slurm-opt', '--begin=now+1hour']);
    const j = JSON.parse((await w.run(['status', id, '--json'])).stdout);
    expect(j.state.status).toBe('queued');
    expect(j.waiting.reason).toBe('Slurm: BeginTime');
    expect((await w.run(['status'])).stdout).toMatch(/later\S*\s+\S+\s+queued \(slurm: BeginTime\)/);
    expect((await w.run(['cancel', id])).exitCode).toBe(0);
    // Slurm gives a job cancelled while pending a start time and exit code 0:0; the record says it never ran.
    expect(state(id)).toMatchObject({ status: 'cancelled', exitCode: null, durationMs: 0 });
    expect(state(id).startedAt).toBeUndefined();
    expect(fs.existsSync(ran)).toBe(false);
  });

  it('cancel of an array whose first task has just started: exit 0, every task cancelled, only the started one has a start', async () => {
    const r = await w.run(['run', 'arr', '-q', ...slurm, '--array', '1-3%1', '--', 'bash', '-c', 'echo started {}; sleep 300']);
    const ids = r.stdout.trim().split('\n');
    const first = ids.find((i) => i.includes('.1')) ?? ids[0]!;
    for (const until = Date.now() + 30_000; Date.now() < until && state(first).status !== 'running'; await new Promise((res) => setTimeout(res, 100)))
      await w.run(['status', first, '--json']);
    const c = await w.run(['cancel', 'arr']);
    expect(c.exitCode, c.stderr).toBe(0);
    for (const id of ids) expect(state(id).status).toBe('cancelled');
    expect(state(first).startedAt).toBeDefined();
    expect(ids.filter((id) => state(id).startedAt === undefined)).toHaveLength(2);
  });

  it('wait and tail -f on a Slurm that stops answering: one line saying so, then exit 1 after JOBQ_REMOTE_TIMEOUT', async () => {
    const id = await start(w, 'deaf', ['sleep', '120'], slurm);
    // No SLURM_CONF at all (a shell that lost it): Slurm's clients fail at once (a missing file: they retry 60 s).
    const env: Record<string, string> = { JOBQ_REMOTE_TIMEOUT: '2s' };
    for (const [k, v] of Object.entries({ ...process.env, ...w.env })) if (k !== 'SLURM_CONF' && v !== undefined && !(k in env)) env[k] = v;
    for (const args of [
      ['wait', id],
      ['tail', '-f', id],
    ]) {
      const r = await execa(BIN, args, { env, extendEnv: false, reject: false, stdin: 'ignore', timeout: 60_000 });
      expect(r.exitCode, args.join(' ')).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines[0]).toMatch(new RegExp(`^jobq: ${id}: Slurm did not answer: .*\\(still waiting; giving up after 2s without an answer\\)$`));
      expect(lines.at(-1)).toMatch(/\(no answer for 2s\)$/);
      expect(lines.length).toBeLessThanOrEqual(2);
    }
    expect((await w.run(['cancel', id])).exitCode).toBe(0);
  });

  it('an array with %2 never runs more than 2 at once; each element gets its value; wait, tail and status by name', async () => {
    const r = await w.run(['run', 'arr', ...slurm, '--array', '1-6%2', '--', 'sh', '-c', 'echo "v={} i=$JOBQ_ARRAY_INDEX id=$JOBQ_JOB_ID"; sleep 1']);
    expect(r.exitCode, r.stderr).toBe(0);
    const jobId = JSON.parse((await w.run(['status', 'arr', '--json'])).stdout).jobs[0].slurm.arrayJobId;
    let most = 0;
    const env = { ...process.env, ...cluster.env };
    for (const until = Date.now() + 90_000; Date.now() < until; await new Promise((res) => setTimeout(res, 200))) {
      const out = spawnSync('squeue', ['-h', '-j', jobId, '-t', 'RUNNING', '-o', '%i'], { env, encoding: 'utf8' }).stdout.trim();
      most = Math.max(most, out ? out.split('\n').length : 0);
      const left = spawnSync('squeue', ['-h', '-j', jobId, '-o', '%i'], { env, encoding: 'utf8' }).stdout.trim();
      if (!left) break;
    }
    expect(most).toBeLessThanOrEqual(2);
    expect(most).toBeGreaterThan(0);
    expect((await w.run(['wait', 'arr', '--timeout', '60s'])).exitCode).toBe(0);
    for (let i = 1; i <= 6; i++) expect((await w.run(['tail', `arr.${i}`])).stdout).toMatch(new RegExp(`^v=${i} i=${i} id=arr\\.${i}_`));
    expect(JSON.parse((await w.run(['status', 'arr', '--json'])).stdout).counts).toEqual({ succeeded: 6 });
  }, 120_000);

  it('tail -f follows a Slurm job and exits with its code', async () => {
    const id = await start(w, 'follow', ['sh', '-c', 'for i in 1 2 3; do echo tick $i; sleep 0.3; done; exit 5'], slurm);
    const f = await execa(process.execPath, [BIN, 'tail', '-f', id], { env: { ...process.env, ...w.env }, reject: false, timeout: 60_000 });
    expect(f.exitCode).toBe(5);
    expect(f.stdout).toContain('tick 3');
  });
});

describe.skipIf(!cluster.ok)('when Slurm says no', () => {
  it("a rejected submission: one line with Slurm's words, exit 1, a failed-to-start record", async () => {
    const r = await w.run(['run', 'nopart', ...slurm, '--slurm-opt=--partition=nosuch', '--', 'true']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/invalid partition/i);
    const id = w.ids()[0]!;
    expect(state(id)).toMatchObject({ status: 'failed-to-start' });
    expect(state(id).error).toMatch(/invalid partition/i);
  });

  it("a controller that does not answer: one line with Slurm's message, exit 1, failed-to-start", async () => {
    const dead = path.join(w.home, 'dead.conf');
    fs.writeFileSync(dead, fs.readFileSync(cluster.env.SLURM_CONF!, 'utf8').replace(/^SlurmctldPort=\d+/m, 'SlurmctldPort=9'));
    const r = await w.run(['run', 'nobody-home', ...slurm, '--', 'true'], { env: { SLURM_CONF: dead } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/Unable to contact slurm controller/i);
    expect(state(w.ids()[0]!).status).toBe('failed-to-start');
  }, 60_000);

  it('no sbatch on PATH: one line, exit 1, failed-to-start', async () => {
    // A PATH with node (bin/jobq runs it) and nothing else.
    const only = fs.mkdtempSync(path.join(w.home, 'path-'));
    fs.symlinkSync(process.execPath, path.join(only, 'node'));
    const r = await w.run(['run', 'nosb', ...slurm, '--', 'true'], { env: { PATH: only }, cwd: ROOT });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/sbatch not found/);
    expect(state(w.ids()[0]!).status).toBe('failed-to-start');
  });
});

/** Polls a condition, nudging with `poke` (a status call brings the record up to date), up to 60 s. */
async function waitFor(cond: () => boolean, poke: () => Promise<unknown>): Promise<void> {
  for (const until = Date.now() + 60_000; Date.now() < until; await new Promise((r) => setTimeout(r, 200))) {
    await poke();
    if (cond()) return;
  }
  throw new Error('timed out waiting for the Slurm job to run');
}
