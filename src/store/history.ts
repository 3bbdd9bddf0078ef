// The history index (`history` in the state dir): every job dir not marked active, oldest id first, so `status` reads
// its tail (the newest) instead of listing every job dir. A cache only: the job dirs and records are the truth; a
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
  return `jobq-history 1 ${ids.length} ${extra}\n${ids.map((id) => `${id}\n`).join('')}`;
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

/** Where `id` goes in ids sorted oldest first (binary search on the sort key). */
export function insertionPoint(ids: string[], id: string): number {
  const key = `${parseId(id)!.sortKey}\0${id}`;
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (`${parseId(ids[mid]!)!.sortKey}\0${ids[mid]}` < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Reads the index from its end, a chunk at a time, until `enough(newestFirst)` or the whole file is read; undefined
 * when it is missing, not a regular file of ours, or not well formed (a bad line, out of order, a count that is off).
 */
export function readHistory(file: string, enough: (newestFirst: string[]) => boolean = () => false): HistoryRead | undefined {
  const fd = openToRead(file);
  if (fd === undefined) return undefined;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.uid !== (process.getuid?.() ?? st.uid)) return undefined;
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
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
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
    const key = p && `${p.sortKey}\0${l}`;
    if (!key || key <= last) return undefined;
    last = key;
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
