// A job over time, and jobq's own logs: memory samples (the chart in status JOB, --json) and events.log and supervisor.log lines.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { start, useWorld } from '../helpers/jobq.js';

const w = useWorld({ config: { sampleInterval: '200ms' } });

describe('memory over time', () => {
  it('a job whose memory grows: rising samples, and status JOB draws them under its limit line', async () => {
    const grow = 'import time\nx = []\nfor i in range(10):\n    x.append(bytearray(20 * 1024 * 1024)); time.sleep(0.3)\ntime.sleep(0.5)';
    const id = await start(w, 'grow', ['python3', '-c', grow], ['--mem-limit', '400M']);
    await w.run(['wait', id, '--timeout', '60s']);
    const j = JSON.parse((await w.run(['status', id, '--json'])).stdout);
    const mem = j.samples.map((s: { mem: number }) => s.mem);
    expect(mem.length).toBeGreaterThan(8);
    // The peak, not the last sample: that one may be taken as the job exits.
    expect(Math.max(...mem) - mem[0]).toBeGreaterThan(150 * 1024 ** 2);
    // Rising: each quarter of the run peaks at least as high as the one before.
    const q = (k: number) => Math.max(...mem.slice(Math.floor((k * mem.length) / 4), Math.floor(((k + 1) * mem.length) / 4)));
    expect(q(1)).toBeGreaterThanOrEqual(q(0));
    expect(q(3)).toBeGreaterThan(q(1));
    const text = (await w.run(['status', id])).stdout;
    expect(text).toMatch(/memory over \d+s: peak \S+, limit 400M/);
    expect(text).toMatch(/ limit$/m);
    expect(fs.statSync(path.join(w.home, 'jobs', id, 'samples')).size).toBeLessThan(1024 * 1024);
  });
});

describe("jobq's own logs", () => {
  it("events.log and each job's supervisor.log are pino lines: level, time, pid, hostname, msg", async () => {
    const id = await start(w, 'diag', ['sleep', '5'], ['--timeout', '500ms']);
    await w.run(['wait', id]);
    const parse = (file: string) =>
      fs
        .readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
    const events = parse(path.join(w.home, 'events.log'));
    const diag = parse(path.join(w.home, 'jobs', id, 'supervisor.log'));
    for (const l of [...events, ...diag]) {
      expect(typeof l.level).toBe('number');
      expect(typeof l.time).toBe('number');
      expect(typeof l.pid).toBe('number');
      expect(typeof l.hostname).toBe('string');
      expect(typeof l.msg).toBe('string');
    }
    expect(events.map((l) => l.msg)).toEqual(expect.arrayContaining(['submitted', 'running', 'timeout']));
    // Warnings (a machine without cgroups, say) may come between; the decisions come in this order.
    expect(diag.map((l) => l.msg).filter((m) => m !== 'warning')).toEqual(['isolation', 'limits read back', 'timeout', 'timeout ended the job', 'ended']);
    expect(diag.find((l) => l.msg === 'limits read back').timeoutMs).toBe(500);
    // Lines a supervisor held until its job ran keep the time they happened: submitted comes first.
    const t = (msg: string) => events.find((l) => l.msg === msg).time;
    expect(t('submitted')).toBeLessThanOrEqual(t('running'));
  });
});
