// A job's samples file stays bounded however long the job runs: thinned, the whole run still covered, in order.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { readTimeline, TimelineWriter } from '../../src/store/timeline.js';

it('a month of 2 s samples stays under 1 MiB, spans the whole run in order, and keeps the latest', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-timeline-'));
  try {
    const file = path.join(dir, 'samples');
    const w = new TimelineWriter(file);
    const n = (30 * 86_400) / 2;
    let maxSize = 0;
    for (let i = 0; i < n; i++) {
      w.add({ t: i * 2, mem: 1e9 + i * 1000, cpu: i * 10 });
      if (i % 5000 === 1) maxSize = Math.max(maxSize, fs.statSync(file).size);
    }
    const s = readTimeline(file);
    expect(Math.max(maxSize, fs.statSync(file).size)).toBeLessThanOrEqual(1024 * 1024 + 64);
    expect(s.length).toBeGreaterThan(10_000);
    expect(s[0]!.t).toBe(0);
    expect(s.at(-1)!.t).toBeGreaterThan((n - 1) * 2 - 600);
    for (let i = 1; i < s.length; i++) expect(s[i]!.t).toBeGreaterThan(s[i - 1]!.t);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it("a --mem-high job's samples carry its throttle count; the three-column lines of before still read", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-timeline-'));
  try {
    const file = path.join(dir, 'samples');
    fs.writeFileSync(file, '0.0 1000 0\n');
    const w = new TimelineWriter(file);
    w.add({ t: 2, mem: 2000, cpu: 10, high: 0 });
    w.add({ t: 4, mem: 3000, cpu: 20, high: 312 });
    expect(fs.readFileSync(file, 'utf8')).toBe('0.0 1000 0\n2.0 2000 10 0\n4.0 3000 20 312\n');
    expect(readTimeline(file)).toEqual([
      { t: 0, mem: 1000, cpu: 0 },
      { t: 2, mem: 2000, cpu: 10, high: 0 },
      { t: 4, mem: 3000, cpu: 20, high: 312 },
    ]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it('a new file is made with the second sample (a job over before it leaves none); an existing one is appended to at once', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-timeline-'));
  try {
    const file = path.join(dir, 'samples');
    const w = new TimelineWriter(file);
    w.add({ t: 0, mem: 100, cpu: 0 });
    expect(fs.existsSync(file)).toBe(false);
    w.add({ t: 2, mem: 200, cpu: 5 });
    expect(readTimeline(file)).toEqual([
      { t: 0, mem: 100, cpu: 0 },
      { t: 2, mem: 200, cpu: 5 },
    ]);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    // A next attempt of the job (the file there already): its first sample goes in at once.
    const again = new TimelineWriter(file);
    again.add({ t: 0, mem: 300, cpu: 0 });
    expect(readTimeline(file)).toHaveLength(3);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
