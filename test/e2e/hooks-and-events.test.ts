// --on-exit hooks (the outcome, the job's environment) and jobq events (what jobq did, in order; events -f).
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { BIN, pollUntil, start, useWorld } from '../helpers/jobq.js';

const w = useWorld();

describe('notifications and events', () => {
  it('--on-exit runs with the outcome in its environment; its failure never changes the record', async () => {
    const out = path.join(w.home, 'hook.txt');
    const id = await start(
      w,
      'hooked',
      ['sh', '-c', 'exit 4'],
      ['--on-exit', `echo "$JOBQ_JOB_ID $JOBQ_JOB_NAME $JOBQ_JOB_STATE $JOBQ_JOB_EXIT_CODE" > ${out}; exit 9`],
    );
    await w.run(['wait', id]);
    await pollUntil(() => fs.existsSync(out) && fs.readFileSync(out, 'utf8').trim(), 10_000, 'hook output');
    expect(fs.readFileSync(out, 'utf8').trim()).toBe(`${id} hooked failed 4`);
    expect(w.record(id).state).toMatchObject({ status: 'failed', exitCode: 4 });
    await pollUntil(async () => (await w.run(['events', '--json'])).stdout.includes('on-exit finished'), 10_000, 'hook event');
  });

  it('events lists what jobq did', async () => {
    const id = await start(w, 'ev', ['sleep', '30']);
    await w.run(['cancel', id]);
    const text = (await w.run(['events'])).stdout;
    // One event per state change, in order, named for the state it reached.
    const order = ['submitted', 'running', 'cancel requested', 'cancelled'].map((m) => text.indexOf(` ${m} id=${id}`));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    const lines = (await w.run(['events', '--json'])).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.every((l) => typeof l.level === 'number' && typeof l.time === 'number' && l.msg)).toBe(true);
  });
});

describe('hints where people trip', () => {
  it("events -f -n 0 prints only what comes next, and one job's events come in order", async () => {
    const old = await start(w, 'old', ['true']);
    await w.run(['wait', old]);
    const p = execa(process.execPath, [BIN, 'events', '-f', '-n', '0'], { env: { ...process.env, ...w.env }, reject: false });
    let seen = '';
    p.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    // Following once a probe's line shows: however slowly events -f started, it is reading live by now.
    for (let i = 0; !seen.includes('probe'); i++) {
      expect(i, 'events -f never showed a new line').toBeLessThan(100);
      await w.run(['queue', 'set', `probe${i}`, '--slots', '1']);
      await new Promise((r) => setTimeout(r, 100));
    }
    const id = await start(w, 'new', ['true']);
    await pollUntil(() => seen.includes(`succeeded id=${id}`), 10_000, "the new job's events");
    p.kill('SIGINT');
    await p;
    expect(seen).not.toContain('old_');
    const at = (m: string) => seen.indexOf(`${m} id=${id}`);
    expect(at('submitted')).toBeLessThan(at('running'));
    expect(at('running')).toBeLessThan(at('succeeded'));
  });

  it("--on-exit gets the job's environment, not the supervisor's", async () => {
    const out = path.join(w.home, 'hook.txt');
    const r = await w.run(
      ['run', 'hooked', '-q', '--on-exit', `echo "NO=$NODE_OPTIONS UV=$UV_THREADPOOL_SIZE G=$BG_JOB S=$JOBQ_JOB_STATE" > ${out}`, '--', 'true'],
      { env: { NODE_OPTIONS: '--max-old-space-size=77' } },
    );
    const id = r.stdout.trim();
    await w.run(['wait', id]);
    await pollUntil(() => fs.existsSync(out) && fs.readFileSync(out, 'utf8').includes('S='), 10_000, 'hook output');
    expect(fs.readFileSync(out, 'utf8').trim()).toBe('NO=--max-old-space-size=77 UV= G=1 S=succeeded');
  }, 30_000);
});
