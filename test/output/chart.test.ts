// The memory chart's shape: columns follow the samples, the limit line sits where the limit is, the axis says the span.
import { describe, expect, it } from 'vitest';
import { columnsOf, memoryChart } from '../../src/output/chart.js';

const M = 1024 ** 2;
const rising = Array.from({ length: 40 }, (_, i) => ({ t: i * 2, mem: (i + 1) * 10 * M, cpu: i * 100 }));

describe('memory chart', () => {
  it('columns are the peak of each time slice, and they rise with a growing job', () => {
    const cols = columnsOf(rising, 20);
    expect(cols).toHaveLength(20);
    for (let i = 1; i < cols.length; i++) expect(cols[i]!).toBeGreaterThanOrEqual(cols[i - 1]!);
    expect(cols.at(-1)).toBe(400 * M);
  });

  it('draws blocks that fill more toward the end, a limit line, the peak and the span', () => {
    const lines = memoryChart(rising, { limit: 800 * M, width: 20, height: 8 });
    expect(lines[0]).toBe('memory over 1m18s: peak 400M, limit 800M, now 400M');
    const rows = lines.slice(1, 9).map((l) => l.slice(8, 28));
    const filled = (col: number) => rows.filter((r) => '▁▂▃▄▅▆▇█'.includes(r[col]!)).length;
    expect(filled(19)).toBeGreaterThan(filled(0));
    expect(lines.slice(1, 9).some((l) => l.endsWith(' limit'))).toBe(true);
    expect(lines.at(-1)).toMatch(/0s\s+1m18s$/);
  });

  it('a flat series reads as a level with headroom, not a full block; two samples span the width', () => {
    const flat = [0, 2, 4, 6].map((t) => ({ t, mem: 16 * M, cpu: 0 }));
    const lines = memoryChart(flat, { width: 30, height: 8 });
    const rows = lines.slice(1, 9).map((l) => l.slice(8));
    // The top row is empty (the scale is 20M), the bottom one full.
    expect(rows[0]!.trim()).toBe('');
    expect(rows[7]).toBe('█'.repeat(30));
    expect(lines[1]).toMatch(/^ {3}20M ┤/);
    const two = memoryChart(
      [
        { t: 0, mem: 10 * M, cpu: 0 },
        { t: 2, mem: 12 * M, cpu: 0 },
      ],
      { width: 30, height: 8 },
    );
    expect(two.at(-2)).toBe(`       └${'─'.repeat(30)}`);
    expect(two[8]!.slice(8)).toBe('█'.repeat(30));
  });

  it('marks where the job was throttled above its --mem-high, and for how long', () => {
    // The count rises between t=20 and t=40 of an 78 s job, then stays.
    const slowed = rising.map((x) => ({ ...x, high: x.t < 20 ? 0 : x.t <= 40 ? (x.t - 18) * 3 : 66 }));
    const lines = memoryChart(slowed, { width: 20, height: 8 });
    expect(lines[0]).toBe('memory over 1m18s: peak 400M, now 400M; throttled during 22s of it');
    const row = lines.find((l) => l.endsWith(' throttled (--mem-high)'))!;
    const marks = row.slice(8, 28);
    expect(marks.slice(0, 4).trim()).toBe('');
    expect(marks.slice(6, 10)).toBe('▀▀▀▀');
    expect(marks.slice(12).trim()).toBe('');
    // No --mem-high, or never throttled: no such row.
    expect(memoryChart(rising, { width: 20 }).some((l) => l.includes('throttled'))).toBe(false);
  });
});
