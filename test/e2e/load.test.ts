// Many at once: concurrent runs give distinct, complete records while status reads; concurrent cancels; 2,000 records.
import { describe, expect, it } from 'vitest';
import { start, useWorld } from '../helpers/jobq.js';
import { plantRecord } from '../helpers/records.js';

const w = useWorld();

describe('load', () => {
  it('200 concurrent runs give 200 distinct, complete, correct records while status --json runs in a loop', async () => {
    let stop = false;
    const statusErrors: string[] = [];
    let statusRuns = 0;
    const loop = (async () => {
      while (!stop) {
        const r = await w.run(['status', '--all', '--json']);
        statusRuns++;
        if (r.exitCode !== 0) statusErrors.push(r.stderr);
        else {
          try {
            const j = JSON.parse(r.stdout);
            if (j.broken.length) statusErrors.push(JSON.stringify(j.broken));
            for (const job of j.jobs) if (!job.id || !job.state?.status) statusErrors.push(`half record ${job.id}`);
          } catch (e) {
            statusErrors.push(String(e));
          }
        }
      }
    })();
    const kinds = (i: number) =>
      i % 4 === 0 ? ['true'] : i % 4 === 1 ? ['sleep', '0.3'] : i % 4 === 2 ? ['sh', '-c', 'exit 5'] : ['sh', '-c', 'kill -TERM $$'];
    const runs = await Promise.all(Array.from({ length: 200 }, (_, i) => w.run(['run', `load${i % 7}`, '-q', '--allow-duplicate', '--', ...kinds(i)])));
    expect(runs.filter((r) => r.exitCode !== 0).map((r) => r.stderr)).toEqual([]);
    const ids = runs.map((r) => r.stdout.trim());
    expect(new Set(ids).size).toBe(200);
    await w.run(['wait', ...ids, '--timeout', '120s']);
    stop = true;
    await loop;
    expect(statusErrors).toEqual([]);
    expect(statusRuns).toBeGreaterThan(0);
    ids.forEach((id, i) => {
      const want = ['succeeded', 'succeeded', 'failed', 'killed'][i % 4];
      expect(w.record(id).state.status, id).toBe(want);
    });
  }, 240_000);

  it('two concurrent cancels of one job: one cancels, the other waits for that and says so', async () => {
    const id = await start(w, 'twice', ['bash', '-c', 'trap "" TERM; while :; do sleep 0.1; done']);
    // A grace long enough that the second cancel (its node may start seconds later on a loaded machine) finds the
    // first one still at work.
    const [a, b] = await Promise.all([w.run(['cancel', id, '--grace', '5s']), w.run(['cancel', id, '--grace', '5s'])]);
    expect([a.exitCode, b.exitCode]).toEqual([0, 0]);
    const outs = [a.stdout, b.stdout];
    expect(outs.filter((o) => o.startsWith('cancelled ')).length).toBe(1);
    expect(outs.filter((o) => o.includes('already being cancelled by') && o.includes('it ended: cancelled')).length).toBe(1);
    expect(w.record(id).state.status).toBe('cancelled');
  });

  it('status stays correct with 2,000 finished jobs: recent ones by default, all with --all', async () => {
    const base = Date.now() - 3 * 86_400_000;
    for (let i = 0; i < 2000; i++) {
      const at = new Date(base + i * 1000);
      plantRecord(
        w.home,
        `old${i % 10}`,
        { state: { status: 'succeeded', startedAt: at.toISOString(), exitCode: 0, signal: null, endedAt: at.toISOString(), durationMs: 5 } },
        at,
      );
    }
    const live = await start(w, 'live', ['sleep', '30']);
    const def = JSON.parse((await w.run(['status', '--json'])).stdout);
    // The live job, then the 20 most recent finished ones.
    expect(def.jobs.length).toBe(21);
    expect(def.hidden).toBe(2001 - 21);
    expect(def.jobs[0].id).toBe(live);
    const all = JSON.parse((await w.run(['status', '--all', '--json'])).stdout);
    expect(all.jobs.length).toBe(2001);
    expect(all.broken).toEqual([]);
    const table = (await w.run(['status'])).stdout;
    expect(table).toContain('1980 older jobs not shown');
  });
});

describe('concurrency', () => {
  it('50 runs started at once give 50 distinct, complete records', async () => {
    // One name on purpose: --allow-duplicate is how many live jobs share one.
    const runs = await Promise.all(Array.from({ length: 50 }, (_, i) => w.run(['run', 'burst', '-q', '--allow-duplicate', '--', 'sh', '-c', `exit ${i % 3}`])));
    expect(runs.map((r) => r.exitCode)).toEqual(Array(50).fill(0));
    const ids = runs.map((r) => r.stdout.trim());
    expect(new Set(ids).size).toBe(50);
    const waited = await w.run(['wait', ...ids, '--timeout', '60s']);
    expect([0, 1, 2]).toContain(waited.exitCode);
    ids.forEach((id, i) => {
      const rec = w.record(id);
      expect(rec.state.status).toBe(i % 3 === 0 ? 'succeeded' : 'failed');
      expect(rec.state.exitCode).toBe(i % 3);
    });
  });
});
