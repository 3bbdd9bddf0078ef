// Parsing and printing of durations, sizes and signal names used on the command line and in records.
import { constants } from 'node:os';
import { JobqError } from './errors.js';

const durUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000, y: 365 * 86_400_000 };
const MAX_DURATION_MS = 100 * 365 * 86_400_000;

/** Parses "10s", "1.5m", "2h", "500ms", "7d", "2w", "1y", "1h30m" or bare seconds into milliseconds (up to 100 years). */
export function parseDuration(text: string, what = 'duration'): number {
  const one = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?\s*$/.exec(text);
  // Or parts with their units, largest first (what jobq prints back: 1h30m, 1s500ms).
  const parts = one ? [] : [...text.trim().matchAll(/(\d+)(ms|s|m|h|d|w|y)/gy)];
  const whole = parts.map((p) => p[0]).join('') === text.trim() && parts.length > 1;
  if (!one && !whole) throw new JobqError('USAGE', `invalid ${what} '${text}' (examples: 500ms, 10s, 5m, 2h, 1h30m, 7d, 1y)`);
  const ms = one ? Math.round(Number(one[1]) * durUnits[one[2] ?? 's']!) : parts.reduce((n, p) => n + Number(p[1]) * durUnits[p[2]!]!, 0);
  if (!(ms <= MAX_DURATION_MS)) throw new JobqError('USAGE', `invalid ${what} '${text}': at most 100y`);
  return ms;
}

/** Formats milliseconds compactly for tables: 850ms, 12s, 3m04s, 2h05m, 3d04h. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** A duration the way one types it, exactly and without zero parts: 5s, 6h, 1h30m, 1s500ms. */
export function formatSpan(ms: number): string {
  const parts: string[] = [];
  let rest = Math.max(0, Math.round(ms));
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
    ['ms', 1],
  ] as const) {
    if (rest >= size) parts.push(`${Math.floor(rest / size)}${unit}`);
    rest %= size;
  }
  return parts.join('') || '0s';
}

const sizeUnits: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Parses "100M", "8G", "512k", "1.5g" or bytes into bytes (binary units). */
export function parseSize(text: string, what = 'size', opts: { zero?: boolean } = {}): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new JobqError('USAGE', `invalid ${what} '${text}' (examples: 512K, 100M, 8G)`);
  const n = Math.floor(Number(m[1]) * sizeUnits[m[2]!.toLowerCase()]!);
  if (n < 0 || (n === 0 && !opts.zero)) throw new JobqError('USAGE', `invalid ${what} '${text}': must be above zero`);
  if (!Number.isSafeInteger(n)) throw new JobqError('USAGE', `invalid ${what} '${text}': too large`);
  return n;
}

/** Formats bytes as 1.2G / 340M / 12K. */
export function formatSize(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)}${units[i]}`;
}

/** Two sizes a sentence compares: with more digits where formatSize would print the same for different figures. */
export function formatSizesApart(a: number, b: number): [string, string] {
  const [fa, fb] = [formatSize(a), formatSize(b)];
  if (fa !== fb || a === b) return [fa, fb];
  const units = ['B', 'K', 'M', 'G', 'T'];
  const i = Math.max(0, units.indexOf(fa.slice(-1)));
  for (let digits = 1; digits <= 2; digits++) {
    const [x, y] = [(a / 1024 ** i).toFixed(digits), (b / 1024 ** i).toFixed(digits)];
    if (x !== y) return [`${x}${units[i]}`, `${y}${units[i]}`];
  }
  // Whole numbers of the unit below, down to bytes.
  for (let j = i - 1; j >= 0; j--) {
    const [x, y] = [Math.floor(a / 1024 ** j), Math.floor(b / 1024 ** j)];
    if (x !== y || j === 0) return [`${x}${units[j]}`, `${y}${units[j]}`];
  }
  return [fa, fb];
}

/** Normalises "term", "SIGTERM" or "15" to a signal name Node accepts. */
export function parseSignal(text: string): NodeJS.Signals {
  const sigs = constants.signals as Record<string, number>;
  const up = text.trim().toUpperCase();
  if (/^\d+$/.test(up)) {
    const name = Object.keys(sigs).find((k) => sigs[k] === Number(up));
    if (name) return name as NodeJS.Signals;
  } else {
    const name = up.startsWith('SIG') ? up : `SIG${up}`;
    if (name in sigs) return name as NodeJS.Signals;
  }
  throw new JobqError('USAGE', `unknown signal '${text}' (examples: TERM, INT, SIGUSR1, 15)`);
}

/** Signal number for a name, e.g. SIGKILL -> 9. */
export function signalNumber(name: string): number {
  return (constants.signals as Record<string, number>)[name] ?? 0;
}

/** Waits `ms` milliseconds (polling loops up to a deadline; never a bare wait in place of a condition). */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A command as a shell would take it back: plain words as they are, the rest in single quotes. */
export function shellWords(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
