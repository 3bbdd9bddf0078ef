// A terminal chart of a job's memory over time: block characters per column, the peak, and the --mem-limit line.

import { formatDuration, formatSize } from '../domain/units.js';
import type { Sample } from '../store/timeline.js';

const BLOCKS = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/** The highest sample in each of `width` equal slices of the job's time (a column shows its slice's peak). */
export function columnsOf(samples: Sample[], width: number): number[] {
  if (!samples.length) return [];
  const t0 = samples[0]!.t;
  const span = Math.max(samples.at(-1)!.t - t0, 1e-9);
  // Every column is drawn, however few the samples: a 2 s job spans the chart, not one column.
  const cols = Math.max(1, width);
  const out = new Array<number>(cols).fill(0);
  for (const s of samples) {
    const i = Math.min(cols - 1, Math.floor(((s.t - t0) / span) * cols));
    out[i] = Math.max(out[i]!, s.mem);
  }
  // A slice with no sample carries the last value forward (no false drops to zero).
  for (let i = 1; i < cols; i++) if (!out[i]) out[i] = out[i - 1]!;
  return out;
}

/** Whether the job was throttled (its --mem-high count rose) within each of `width` equal slices of its time. */
export function throttledColumns(samples: Sample[], width: number): boolean[] {
  const out = new Array<boolean>(Math.max(1, width)).fill(false);
  if (samples.length < 2) return out;
  const t0 = samples[0]!.t;
  const span = Math.max(samples.at(-1)!.t - t0, 1e-9);
  for (let i = 1; i < samples.length; i++) {
    const [a, b] = [samples[i - 1]!, samples[i]!];
    if (a.high === undefined || b.high === undefined || b.high <= a.high) continue;
    // The rise happened between the two samples: every slice they span is marked.
    const from = Math.min(out.length - 1, Math.floor(((a.t - t0) / span) * out.length));
    const to = Math.min(out.length - 1, Math.floor(((b.t - t0) / span) * out.length));
    for (let c = from; c <= to; c++) out[c] = true;
  }
  return out;
}

/** Seconds between samples across which the throttle count rose. */
export function throttledTime(samples: Sample[]): number {
  let sec = 0;
  for (let i = 1; i < samples.length; i++) {
    const [a, b] = [samples[i - 1]!, samples[i]!];
    if (a.high !== undefined && b.high !== undefined && b.high > a.high) sec += b.t - a.t;
  }
  return sec;
}

/** The next 1, 2, 2.5 or 5 × 2^10k … figure at or above n (20M above 16.1M). */
function roundUp(n: number): number {
  if (n <= 0) return 0;
  const unit = 1024 ** Math.max(0, Math.floor(Math.log(n) / Math.log(1024)));
  const v = n / unit;
  const decade = 10 ** Math.floor(Math.log10(v));
  const step = [1, 2, 2.5, 5, 10].find((f) => f * decade >= v)!;
  return step * decade * unit;
}

/** Lines of the memory chart: `height` rows of blocks, scaled to the limit or the peak, whichever is higher. */
export function memoryChart(samples: Sample[], opts: { limit?: number; width?: number; height?: number } = {}): string[] {
  if (samples.length < 2) return ['memory: not enough samples yet (one every 2 s while it runs)'];
  const height = opts.height ?? 8;
  const cols = columnsOf(samples, opts.width ?? 60);
  const peak = Math.max(...cols);
  // Headroom above the peak (to a round figure), so a flat series reads as a level, not a full block.
  const top = Math.max(roundUp(peak * 1.15), opts.limit ?? 0) || 1;
  const label = (v: number) => formatSize(v).padStart(6);
  const lines: string[] = [];
  const limitRow = opts.limit ? Math.min(height - 1, Math.round((opts.limit / top) * height) - 1) : -1;
  for (let row = height - 1; row >= 0; row--) {
    const cells = cols.map((v) => {
      const eighths = Math.round((v / top) * height * 8) - row * 8;
      return BLOCKS[Math.max(0, Math.min(8, eighths))]!;
    });
    let text = cells.join('');
    if (row === limitRow) text = cells.map((c) => (c === ' ' ? '─' : c)).join('') + ' limit';
    const axis = row === height - 1 ? `${label(top)} ┤` : row === 0 ? `${label(0)} ┤` : `${' '.repeat(6)} │`;
    lines.push(`${axis}${text}`);
  }
  const span = (samples.at(-1)!.t - samples[0]!.t) * 1000;
  lines.push(`${' '.repeat(7)}└${'─'.repeat(cols.length)}`);
  const slowed = throttledColumns(samples, cols.length);
  if (slowed.some(Boolean)) lines.push(`${' '.repeat(8)}${slowed.map((x) => (x ? '▀' : ' ')).join('')} throttled (--mem-high)`);
  lines.push(`${' '.repeat(8)}0s${' '.repeat(Math.max(1, cols.length - 2 - formatDuration(span).length))}${formatDuration(span)}`);
  const throttled = throttledTime(samples);
  lines.unshift(
    `memory over ${formatDuration(span)}: peak ${formatSize(peak)}${opts.limit ? `, limit ${formatSize(opts.limit)}` : ''}, now ${formatSize(samples.at(-1)!.mem)}${throttled ? `; throttled during ${formatDuration(throttled * 1000)} of it` : ''}`,
  );
  return lines;
}
