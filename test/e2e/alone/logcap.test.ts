// Issue 9, log cap: the cap holds while a job floods its log, through a moved path, without losing appends.
// These run alone, after every other test file: how fast the supervisor cuts depends on it getting a CPU, and the
// rest of the suite (hundreds of Node processes at once) would measure the machine, not jobq.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HAS_CGROUP, IS_ROOT, start, useWorld } from '../../helpers/jobq.js';

const w = useWorld();

const state = (id: string) => w.record(id).state;
const hasCgroup = HAS_CGROUP;
const isRoot = IS_ROOT;

/** Samples a file's size (through a path or /proc/PID/fd/N) every few ms until stop() is called; returns the largest seen. */
function sampleMax(file: () => string): { stop(): number } {
  let max = 0;
  let on = true;
  const tick = () => {
    try {
      max = Math.max(max, fs.statSync(file()).size);
    } catch {
      /* not there yet, or gone */
    }
    if (on) setTimeout(tick, 2);
  };
  tick();
  return {
    stop() {
      on = false;
      return max;
    },
  };
}

describe('log cap', () => {
  const MB = 1024 * 1024;

  it('a job writing 200 MB in well under a second is cut while it runs (the job itself sees the cut) and ends within the cap', async () => {
    // The job floods, then waits until its own log (its fd 1) is back under the cap: only a cut made while it runs
    // lets it print `cut seen` and exit 0. How far past the cap the log gets in flight is a matter of ms of CPU
    // (tr writes ~1 MB/ms): the bench reports it, a test cannot hold it on a busy machine.
    const script =
      'sleep 0.2; head -c 200M /dev/zero | tr "\\0" x; until [ "$(stat -L -c %s /proc/$$/fd/1)" -le 10485760 ]; do sleep 0.05; done; echo; echo cut seen';
    const id = await start(w, 'burst', ['sh', '-c', script], ['--max-log-size', '10M', '--timeout', '40s']);
    await w.run(['wait', id]);
    expect(state(id).status).toBe('succeeded');
    const log = fs.readFileSync(w.record(id).log, 'latin1');
    expect(log.length).toBeLessThanOrEqual(10 * MB);
    expect(log).toMatch(/^\[jobq\] \d+ bytes of older output dropped/);
    expect(log.trimEnd().endsWith('cut seen')).toBe(true);
  }, 60_000);

  it('a job that floods its log from its first instant ends within the cap', async () => {
    const id = await start(w, 'flood0', ['sh', '-c', 'head -c 200M /dev/zero | tr "\\0" x'], ['--max-log-size', '10M']);
    await w.run(['wait', id]);
    expect(fs.statSync(w.record(id).log).size).toBeLessThanOrEqual(10 * MB);
  }, 60_000);

  it.skipIf(!hasCgroup || !isRoot)(
    'nothing the job appends while the log is cut is lost: the kept lines are one unbroken run',
    async () => {
      const id = await start(w, 'seq', ['seq', '1', '3000000'], ['--max-log-size', '2M']);
      await w.run(['wait', id]);
      const rec = w.record(id);
      expect(rec.protection.isolation).not.toBe('none');
      const lines = fs.readFileSync(rec.log, 'utf8').trimEnd().split('\n');
      expect(lines[0]).toMatch(/^\[jobq\] \d+ bytes of older output dropped/);
      const nums = lines.slice(1).map(Number);
      expect(nums.at(-1)).toBe(3_000_000);
      const gaps = nums.filter((n, i) => i > 0 && n !== nums[i - 1]! + 1);
      expect(gaps).toEqual([]);
    },
    60_000,
  );

  it('a log deleted and replaced while the job runs: the cap and the idle clock follow the file the job writes', async () => {
    const id = await start(
      w,
      'moved',
      ['sh', '-c', 'i=0; while [ $i -lt 40 ]; do head -c 300000 /dev/zero | tr "\\0" y; echo; i=$((i+1)); sleep 0.05; done'],
      ['--max-log-size', '2M', '--idle-timeout', '1s'],
    );
    const rec = w.record(id);
    fs.rmSync(rec.log);
    fs.writeFileSync(rec.log, 'a decoy that never changes\n');
    const probe = sampleMax(() => `/proc/${rec.job.pid}/fd/1`);
    const r = await w.run(['wait', id]);
    const max = probe.stop();
    // 0.1.0 went by the path: the decoy never grew, so the idle timeout killed a job that was writing all along.
    expect(state(id).status).toBe('succeeded');
    expect(r.exitCode).toBe(0);
    expect(max).toBeLessThanOrEqual(3 * MB);
  }, 30_000);
});
