// The history index (`history` in the state dir): every job dir not marked active, oldest first by the second it was
// made in (jobs of one second in any order: the order they ended), so `status` reads its tail (the newest) instead of
// listing every job dir. A cache only: the job dirs and records are the truth; a
// missing, broken or stale index is rebuilt from them, and what it holds is data (each line checked as an id).
import fs from 'node:fs';
import { parseId } from '../domain/job.js';
import { openToRead } from './trust.js';

const HEAD_RE = /^jobq-history 1 (\d{1,9}) (\d{1,9})\n/;
const FIRST_CHUNK = 16 * 1024;

/** What was read of the index: its counts and the ids read from its end, newest first. */
export interface HistoryRead {
  /** Job dirs it lists. */
  count: number;
  /** Directories in jobs/ that are not job dirs (the jobs dir's link count includes them). */
  extra: number;
  /** Newest first; every id of the index when `whole`. */
  ids: string[];
  whole: boolean;
}

/** The index's text: a header with the counts, then one id a line, oldest first (`ids` must be sorted so). */
export function formatHistory(ids: string[], extra: number): string {
  return `${historyHead(ids.length, extra)}${ids.map((id) => `${id}\n`).join('')}`;
}

/** The count is nine digits wide, so an end can rewrite it in place (appendHistoryId); readers take any width. */
function historyHead(count: number, extra: number | string): string {
  return `jobq-history 1 ${String(count).padStart(9, '0')} ${extra}\n`;
}
const WIDE_HEAD_RE = /^jobq-history 1 (\d{9}) (\d{1,9})\n/;
const COUNT_AT = 'jobq-history 1 '.length;

/**
 * Adds `id` in place when it was made no earlier than the index's last line (an end nearly always was; a sweep's
 * elements share their second): the line appended, then the count rewritten, no copy and no new file. False when it
 * cannot (no index, a narrow count, `id` older than the last): the caller rewrites the index. A reader between the two
 * writes sees a count one short, and rebuilds the index.
 */
export function appendHistoryId(file: string, id: string): boolean {
  const p = parseId(id);
  if (!p) return false;
  return (
    withOwnIndex(file, fs.constants.O_RDWR, (fd, st) => {
      const head = Buffer.alloc(Math.min(48, st.size));
      fs.readSync(fd, head, 0, head.length, 0);
      const m = WIDE_HEAD_RE.exec(head.toString('latin1'));
      if (!m || Number(m[1]) >= 999_999_999) return false;
      const body = st.size - m[0].length;
      if (body > 0) {
        // The last line (an id is under 100 bytes): it must sort before `id`.
        const tail = Buffer.alloc(Math.min(body, 200));
        fs.readSync(fd, tail, 0, tail.length, st.size - tail.length);
        const t = tail.toString('latin1');
        if (!t.endsWith('\n')) return false;
        const last = t.slice(t.lastIndexOf('\n', t.length - 2) + 1, -1);
        const q = parseId(last);
        if (!q) return false;
        if (last === id) return true;
        if (q.sortKey > p.sortKey) return false;
      }
      fs.writeSync(fd, `${id}\n`, st.size);
      fs.writeSync(fd, String(Number(m[1]) + 1).padStart(9, '0'), COUNT_AT);
      return true;
    }) ?? false
  );
}

/** Runs `fn` on the index opened (for reading, or `access`), only if it is a regular file of ours (never a planted link or FIFO). */
function withOwnIndex<T>(file: string, access: number, fn: (fd: number, st: fs.Stats) => T | undefined): T | undefined {
  const fd = openToRead(file, access);
  if (fd === undefined) return undefined;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.uid !== (process.getuid?.() ?? st.uid)) return undefined;
    return fn(fd, st);
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Ids oldest first, by the second they were made in (the order `listIds` gives, reversed). */
export function sortOldestFirst(ids: Iterable<string>): string[] {
  // One string per id, sort key first, sorted by the engine without a comparator call per pair.
  const keyed: string[] = [];
  for (const n of ids) {
    const p = parseId(n);
    if (p) keyed.push(`${p.sortKey}\0${n}`);
  }
  keyed.sort();
  return keyed.map((k) => k.slice(k.indexOf('\0') + 1));
}

/** The whole index as text: undefined when it is missing, or not a regular file of ours. */
export function readHistoryText(file: string): string | undefined {
  return withOwnIndex(file, fs.constants.O_RDONLY, (fd) => fs.readFileSync(fd, 'utf8'));
}

/**
 * The index's text with `id` in its place, found from the end (an ended job is nearly always among the newest), so
 * an end costs a copy of the text, not a parse of every line. The same text if it holds `id` already; undefined if it
 * is not an index or its count is off (the caller rebuilds it). Lines it does not reach are left to readers to check.
 */
export function withHistoryId(text: string, id: string): string | undefined {
  const m = HEAD_RE.exec(text);
  const p = parseId(id);
  if (!m || !p) return undefined;
  const body = text.slice(m[0].length);
  if (body.length && !body.endsWith('\n')) return undefined;
  let lines = 0;
  for (let i = body.indexOf('\n'); i >= 0; i = body.indexOf('\n', i + 1)) lines++;
  if (lines !== Number(m[1])) return undefined;
  // After the last line made no later than `id` (lines made in its second, in any order, are looked through for it).
  let at = body.length;
  for (let end = body.length, start: number; end > 0; end = start) {
    start = body.lastIndexOf('\n', end - 2) + 1;
    const line = body.slice(start, end - 1);
    const q = parseId(line);
    if (!q) return undefined;
    if (line === id) return text;
    if (q.sortKey < p.sortKey) break;
    if (q.sortKey > p.sortKey) at = start;
  }
  return `${historyHead(lines + 1, m[2]!)}${body.slice(0, at)}${id}\n${body.slice(at)}`;
}

/**
 * Reads the index from its end, a chunk at a time, until `enough(newestFirst)` or the whole file is read; undefined
 * when it is missing, not a regular file of ours, or not well formed (a bad line, out of order, a count that is off).
 */
export function readHistory(file: string, enough: (newestFirst: string[]) => boolean = () => false): HistoryRead | undefined {
  return withOwnIndex(file, fs.constants.O_RDONLY, (fd, st) => {
    const head = Buffer.alloc(Math.min(48, st.size));
    fs.readSync(fd, head, 0, head.length, 0);
    const m = HEAD_RE.exec(head.toString('latin1'));
    if (!m) return undefined;
    const count = Number(m[1]);
    const start = m[0].length;
    for (let chunk = FIRST_CHUNK; ; chunk *= 8) {
      const from = Math.max(start, st.size - chunk);
      const ids = linesFrom(fd, from, st.size, from > start);
      if (!ids) return undefined;
      if (from === start) return ids.length === count ? { count, extra: Number(m[2]), ids, whole: true } : undefined;
      if (ids.length > count) return undefined;
      if (enough(ids)) return { count, extra: Number(m[2]), ids, whole: false };
    }
  });
}

/** The ids in bytes [from, to) of the index, newest first (a cut first line dropped); undefined if any is malformed. */
function linesFrom(fd: number, from: number, to: number, cut: boolean): string[] | undefined {
  const buf = Buffer.alloc(to - from);
  if (fs.readSync(fd, buf, 0, buf.length, from) !== buf.length) return undefined;
  const text = buf.toString('latin1');
  if (text.length && !text.endsWith('\n')) return undefined;
  const lines = text.length ? text.slice(0, -1).split('\n') : [];
  if (cut) lines.shift();
  let last = '';
  for (const l of lines) {
    const p = parseId(l);
    if (!p || p.sortKey < last) return undefined;
    last = p.sortKey;
  }
  return lines.reverse();
}

/**
 * The newest `n` of `newestFirst` that are not active, and past the nth those of the same second (they sort by real
 * time, so one of them may be newer); undefined when the list may not hold them all yet (more may follow in that second).
 */
export function newestDone(newestFirst: string[], n: number, active: Set<string>, whole: boolean): string[] | undefined {
  const out: string[] = [];
  let second: string | undefined;
  for (const id of newestFirst) {
    if (active.has(id)) continue;
    const s = parseId(id)!.sortKey.slice(0, 14);
    if (out.length >= n && s !== second) return out;
    out.push(id);
    if (out.length === n) second = s;
  }
  return whole ? out : undefined;
}
