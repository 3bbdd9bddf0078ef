// --timeout and --idle-timeout: TERM, grace, KILL to what is left, the --timeout-signal warning, past Node's timer limit.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, pollUntil, start, useWorld } from '../helpers/jobq.js';

const w = useWorld();
const state = (id: string) => w.record(id).state;

describe('timeouts longer than Node timers hold', () => {
  it('--timeout 60d and a warning 55 days in (both past the 24.8-day timer limit) do not fire early', async () => {
    const job = ['sh', '-c', 'trap "echo got-usr1" USR1; while :; do sleep 0.05; done'];
    const id = await start(w, 'long', job, ['--timeout', '60d', '--timeout-signal', 'USR1@5d']);
    const rec = w.record(id);
    expect(rec.protection.timeoutMs).toBe(60 * 86_400_000);
    // 0.1.0 fired both after a few ms (Node clamps delays over 2^31-1 ms to 1 ms).
    await new Promise((r) => setTimeout(r, 1500));
    expect(state(id).status).toBe('running');
    expect(alive(rec.job.pid)).toBe(true);
    expect(fs.readFileSync(rec.log, 'utf8')).not.toContain('got-usr1');
  });

  it('accepts durations up to years and refuses beyond', async () => {
    expect((await w.run(['run', 'y', '--timeout', '2y', '-q', '--', 'true'])).exitCode).toBe(0);
    const r = await w.run(['run', 'y2', '--timeout', '500y', '--', 'true']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('timeouts', () => {
  it('--idle-timeout ends a silent job, and a job printing only \\r progress is not ended', async () => {
    const silent = await start(w, 'silent', ['sh', '-c', 'echo start; sleep 60'], ['--idle-timeout', '2s', '--grace', '1s']);
    const busy = await start(w, 'busy', ['bash', '-c', 'for i in $(seq 1 9); do printf "\\r%d%%" $((i*10)); sleep 0.5; done'], ['--idle-timeout', '2s']);
    const rs = await w.run(['wait', silent, '--timeout', '30s']);
    expect(rs.exitCode).toBe(124);
    expect(w.record(silent).state).toMatchObject({ status: 'timeout', reason: 'idle', signal: 'SIGTERM' });
    const rb = await w.run(['wait', busy, '--timeout', '30s']);
    expect(rb.exitCode).toBe(0);
    expect(w.record(busy).state.status).toBe('succeeded');
  });

  it('--timeout ends the job through TERM -> grace -> KILL, after the --timeout-signal warning', async () => {
    const id = await start(
      w,
      'wall',
      ['bash', '-c', 'trap "echo warned" USR1; trap "" TERM; while :; do sleep 0.1; done'],
      ['--timeout', '2s', '--timeout-signal', 'USR1@1s', '--grace', '500ms'],
    );
    const r = await w.run(['wait', id, '--timeout', '30s']);
    expect(r.exitCode).toBe(124);
    const rec = w.record(id);
    expect(rec.state).toMatchObject({ status: 'timeout', reason: 'wall', signal: 'SIGKILL' });
    expect(fs.readFileSync(rec.log, 'utf8')).toContain('warned');
    expect(rec.state.durationMs).toBeGreaterThanOrEqual(2400);
  });

  it('the --timeout-signal warning goes to the main process only: a worker that does not handle it lives on', async () => {
    const id = await start(
      w,
      'warned',
      ['bash', '-c', `sh -c 'echo $$ > kid.pid; while :; do sleep 0.1; done' & trap "echo warned" USR1; while :; do sleep 0.1; done`],
      ['--timeout', '30s', '--timeout-signal', 'USR1@29s', '--cwd', w.home],
    );
    await pollUntil(() => fs.readFileSync(w.record(id).log, 'utf8').includes('warned'), 10_000, 'the warning');
    const kid = Number(fs.readFileSync(path.join(w.home, 'kid.pid'), 'utf8'));
    expect(alive(kid)).toBe(true);
    await w.run(['cancel', id, '--grace', '1s']);
    expect(alive(kid)).toBe(false);
  });

  it.each([
    ['auto', ''],
    ['none', ''],
    ['auto', 'setsid '],
    ['none', 'setsid '],
  ])('--timeout (isolation %s): a %schild that ignores TERM is killed after the grace though the leader died at once', async (iso, setsid) => {
    const id = await start(
      w,
      'straggler',
      ['bash', '-c', `${setsid}bash -c 'trap "" TERM; echo $$ > kid.pid; while :; do sleep 0.1; done' & sleep 60`],
      ['--timeout', '1s', '--grace', '700ms', '--isolation', iso, '--cwd', w.home],
    );
    const pidFile = `${w.home}/kid.pid`;
    await pollUntil(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim(), 5000, 'child pid');
    const kid = Number(fs.readFileSync(pidFile, 'utf8'));
    const r = await w.run(['wait', id, '--timeout', '30s']);
    expect(r.exitCode).toBe(124);
    expect(w.record(id).state).toMatchObject({ status: 'timeout', reason: 'wall', signal: 'SIGTERM' });
    // The record is final only once the whole job is gone: the straggler got its SIGKILL first.
    expect(alive(kid)).toBe(false);
    const diag = fs.readFileSync(`${w.home}/jobs/${id}/supervisor.log`, 'utf8');
    expect(diag).toContain('escalated to SIGKILL');
    expect(diag.indexOf('timeout ended the job')).toBeLessThan(diag.indexOf('"msg":"ended"'));
  });
});
