// --retry: a failed job runs again in the same record, each attempt's end kept; what is and is not retried.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HAS_CGROUP, IS_ROOT, pollUntil, start, useWorld } from '../helpers/jobq.js';

const w = useWorld();

describe('retries', () => {
  it('a job failing twice then succeeding under --retry 2 ends succeeded, three attempts known, JOBQ_ATTEMPT 1 2 3', async () => {
    const id = await start(w, 'flaky', ['sh', '-c', 'echo "attempt $JOBQ_ATTEMPT"; [ "$JOBQ_ATTEMPT" = 3 ] || exit 3'], ['--retry', '2']);
    const r = await w.run(['wait', id, '--timeout', '30s']);
    expect(r.exitCode).toBe(0);
    const rec = w.record(id);
    expect(rec.state.status).toBe('succeeded');
    expect(rec.attempts.map((a: { attempt: number; status: string; exitCode: number }) => [a.attempt, a.status, a.exitCode])).toEqual([
      [1, 'failed', 3],
      [2, 'failed', 3],
    ]);
    const log = fs.readFileSync(rec.log, 'utf8');
    expect(log.match(/^attempt \d$/gm)).toEqual(['attempt 1', 'attempt 2', 'attempt 3']);
    expect(log).toMatch(/\[jobq\] attempt 1 of 3 ended failed \(3\); attempt 2 now/);
    const detail = (await w.run(['status', id])).stdout;
    expect(detail).toMatch(/retry\s+up to 2 more on exit,signal,oom,timeout, at once/);
    expect(detail).toMatch(/attempt 1\s+failed \(3\) after/);
  });

  it("attempts run out: the last end is the job's, and wait returns its code", async () => {
    const id = await start(w, 'always', ['sh', '-c', 'exit 4'], ['--retry', '1']);
    expect((await w.run(['wait', id, '--timeout', '30s'])).exitCode).toBe(4);
    const rec = w.record(id);
    expect(rec.state).toMatchObject({ status: 'failed', exitCode: 4 });
    expect(rec.attempts).toHaveLength(1);
  });

  it('--retry-on oom does not retry a timeout; --retry-on timeout does', async () => {
    const a = await start(w, 'slow1', ['sleep', '30'], ['--timeout', '1s', '--grace', '1s', '--retry', '2', '--retry-on', 'oom']);
    expect((await w.run(['wait', a, '--timeout', '30s'])).exitCode).toBe(124);
    expect(w.record(a).attempts).toBeUndefined();
    const b = await start(
      w,
      'slow2',
      ['sh', '-c', '[ "$JOBQ_ATTEMPT" = 2 ] || sleep 30'],
      ['--timeout', '1s', '--grace', '1s', '--retry', '1', '--retry-on', 'timeout'],
    );
    expect((await w.run(['wait', b, '--timeout', '30s'])).exitCode).toBe(0);
    expect(w.record(b).attempts).toEqual([expect.objectContaining({ attempt: 1, status: 'timeout', reason: 'wall' })]);
  });

  it('between attempts it waits its --retry-delay, says so, and a cancel then ends it without another attempt', async () => {
    const id = await start(w, 'later', ['sh', '-c', 'echo ran >> ran.txt; exit 1'], ['--retry', '2', '--retry-delay', '30s', '--cwd', w.home]);
    await pollUntil(() => w.tryRecord(id)?.state.status === 'queued', 15_000, 'the job to wait for its retry');
    const st = (await w.run(['status'])).stdout;
    expect(st).toMatch(/queued \(attempt 2\/3\)/);
    expect((await w.run(['status', id])).stdout).toMatch(/waiting\s+retry: attempt 2 at \d\d:\d\d:\d\d/);
    const c = await w.run(['cancel', id]);
    expect(c.exitCode).toBe(0);
    expect(w.record(id).state.status).toBe('cancelled');
    expect(w.record(id).attempts).toHaveLength(1);
    expect((await w.run(['wait', id])).exitCode).toBe(143);
    expect(fs.readFileSync(`${w.home}/ran.txt`, 'utf8')).toBe('ran\n');
  });

  it('a delayed attempt starts once its delay is over, with no command typed (the dispatcher starts it)', async () => {
    const id = await start(w, 'soon', ['sh', '-c', '[ "$JOBQ_ATTEMPT" = 2 ] || exit 7'], ['--retry', '1', '--retry-delay', '1s']);
    await pollUntil(() => w.tryRecord(id)?.state.status === 'succeeded', 20_000, 'the second attempt to succeed');
    const rec = w.record(id);
    expect(Date.parse(rec.state.startedAt) - Date.parse(rec.attempts[0].endedAt)).toBeGreaterThanOrEqual(1000);
  });

  it.skipIf(!HAS_CGROUP || !IS_ROOT)('an OOM with --mem-grow: the next attempt gets the larger limit and finishes', async () => {
    // Needs about 100M with node's own: 64M is too little, 192M enough.
    const need = [process.execPath, '-e', 'const b=Buffer.alloc(90<<20,1); console.log("ok", b.length)'];
    const id = await start(w, 'grow', need, ['--mem-limit', '64M', '--retry', '1', '--retry-on', 'oom', '--mem-grow', '3x']);
    expect((await w.run(['wait', id, '--timeout', '60s'])).exitCode).toBe(0);
    const rec = w.record(id);
    expect(rec.attempts).toEqual([expect.objectContaining({ attempt: 1, status: 'oom', memLimitBytes: 64 << 20 })]);
    expect(rec.protection.memLimitBytes).toBe(192 << 20);
    expect(fs.readFileSync(rec.log, 'utf8')).toMatch(/attempt 2 now, --mem-limit 192M/);
  });

  it('bad retry flags are one-line usage errors, nothing written', async () => {
    for (const [flags, msg] of [
      [['--retry', '0'], /^jobq: invalid --retry '0': how many more attempts, 1 to 100$/],
      [['--retry', '2', '--retry-on', 'exit,cancel'], /^jobq: invalid --retry-on 'cancel': one or more of exit, signal, oom, timeout/],
      [['--retry-delay', '5s'], /^jobq: --retry-on, --retry-delay and --mem-grow go with --retry N$/],
      [['--retry', '1', '--retry-on', 'oom', '--mem-grow', '1.5x'], /^jobq: --mem-grow grows the --mem-limit: give one$/],
      [['--retry', '1', '--mem-limit', '1G', '--mem-grow', '0.5'], /^jobq: invalid --mem-grow '0.5'/],
    ] as const) {
      const r = await w.run(['run', 'bad', ...flags, '--', 'true']);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr.trim()).toMatch(msg);
    }
    expect(w.ids()).toEqual([]);
  });
});
