// The store on real files: permissions, atomic writes, ids under contention, listing.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type JobRecord, type JobState, SCHEMA_VERSION, validateName } from '../../src/domain/job.js';
import { appendHistoryId, formatHistory, withHistoryId } from '../../src/store/history.js';
import { openLogAppend, Store, writeFileAtomic } from '../../src/store/store.js';
import { BIN } from '../helpers/jobq.js';
import { makeRecord } from '../helpers/records.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-unit-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('Store', () => {
  it('creates the state dir 0700 and reserves distinct ids within one second', () => {
    const s = Store.open(path.join(dir, 'state'));
    expect(fs.statSync(s.home).mode & 0o777).toBe(0o700);
    const now = new Date(2026, 0, 2, 3, 4, 5);
    const ids = Array.from({ length: 12 }, () => s.reserveId('job', now));
    expect(new Set(ids).size).toBe(12);
    expect(ids[0]).toBe('job_20260102_030405');
    expect(ids[11]).toBe('job_20260102_030405-12');
    expect(s.listIds()[0]).toBe('job_20260102_030405-12');
  });

  it('resolves a NAME to its latest job and refuses traversal', () => {
    const s = Store.open(path.join(dir, 'state'));
    const withRecord = (id: string) => {
      fs.writeFileSync(s.paths(id).record, '{}');
      return id;
    };
    withRecord(s.reserveId('a', new Date(2026, 0, 1)));
    const later = withRecord(s.reserveId('a', new Date(2026, 0, 2)));
    withRecord(s.reserveId('ab', new Date(2026, 0, 3)));
    // A newer directory whose record is not written yet is not "the latest job".
    s.reserveId('a', new Date(2026, 0, 4));
    expect(s.resolve('a')).toBe(later);
    expect(() => s.resolve('../a')).toThrow(/invalid job name/);
    expect(() => s.resolve('zzz')).toThrow(/no job named/);
    expect(() => s.paths('../../etc')).toThrow(/invalid job id/);
  });

  it('job numbers: distinct under contention, found from one index file, never given again after removal', async () => {
    const s = Store.open(path.join(dir, 'state'));
    // Ten takers at once, one of them for an array of 3: every number once, none skipped.
    const firsts = await Promise.all([...Array.from({ length: 9 }, () => s.allocSeq()), s.allocSeq(3)]);
    const given = firsts.flatMap((n, i) => (i === 9 ? [n, n + 1, n + 2] : [n]));
    expect(given.sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    const make = (name: string, seq: number) => {
      const id = s.reserveId(name);
      s.create(makeRecord({ id, name, seq, log: s.paths(id).log, state: { status: 'queued', since: new Date().toISOString() } }), { event: false });
      return id;
    };
    const a = make('a', await s.allocSeq());
    const b = make('b', await s.allocSeq());
    expect([s.resolve('13'), s.resolve('#14'), s.numbered('14'), s.numbered('b')]).toEqual([a, b, b, undefined]);
    expect(() => s.resolve('15')).toThrow(/^no job #15 \(see: jobq status --all\)$/);
    expect(() => s.resolve('#0')).toThrow(/no job #0/);
    s.removeJob(b);
    expect(fs.existsSync(path.join(s.seqDir, '14'))).toBe(false);
    expect(() => s.resolve('14')).toThrow(/no job #14/);
    // The highest number removed is still not given again, even with its index entry gone.
    expect(await s.allocSeq()).toBe(15);
    // A lost counter: past every number still indexed.
    fs.rmSync(path.join(s.seqDir, 'next'));
    expect(await s.allocSeq()).toBe(14);
  });

  it('digits alone are a number, else (a NAME an older jobq allowed) a name; new NAMEs need a letter', () => {
    const s = Store.open(path.join(dir, 'state'));
    const id = s.reserveId('7');
    s.create(
      makeRecord({ id, name: '7', log: s.paths(id).log, state: { status: 'succeeded', startedAt: '', exitCode: 0, signal: null, endedAt: '', durationMs: 0 } }),
      {
        event: false,
      },
    );
    expect(s.resolve('7')).toBe(id);
    expect(() => s.resolve('#7')).toThrow(/no job #7/);
    expect(() => validateName('7')).toThrow(/digits only read as a job number/);
    expect(validateName('7b')).toBe('7b');
  });

  it('writes atomically, never through a symlink, and leaves no temp files', () => {
    const f = path.join(dir, 'x.json');
    writeFileAtomic(f, '{"a":1}');
    writeFileAtomic(f, '{"a":2}');
    expect(fs.readFileSync(f, 'utf8')).toBe('{"a":2}');
    expect(fs.readdirSync(dir)).toEqual(['x.json']);
    expect(fs.statSync(f).mode & 0o777).toBe(0o600);
    fs.symlinkSync(f, path.join(dir, 'link.log'));
    expect(() => openLogAppend(path.join(dir, 'link.log'))).toThrow(/symlink/);
  });
});

describe('Store.transition: the one writer of state changes', () => {
  const rec = (s: Store, id: string, state: JobState): JobRecord =>
    ({
      schema: SCHEMA_VERSION,
      id,
      name: 't',
      argv: ['true'],
      cwd: '/',
      env: { added: {}, presets: [] },
      host: 'h',
      user: 'u',
      jobqVersion: 'test',
      log: s.paths(id).log,
      createdAt: new Date().toISOString(),
      launcher: { pid: 1, startTicks: 1 },
      protection: { isolationMode: 'none', isolation: 'none', graceMs: 1000, stopSignal: 'SIGTERM', warnings: [] },
      state,
    }) as JobRecord;

  it('moves along the lifecycle, keeps the indexes and the event log in step, and never overwrites a final state', async () => {
    const s = Store.open(path.join(dir, 'state'));
    const id = s.reserveId('t', new Date());
    s.create(rec(s, id, { status: 'queued', since: new Date().toISOString() }));
    expect([s.activeIds(), s.anyWaiting()]).toEqual([[id], true]);
    const to = (state: JobState) => s.transition(id, (r) => ({ ...r, state }));
    // A queue's claim still waits (for whoever watches the queue) until its job runs; a plain start does not.
    const claim = { by: { pid: 1, startTicks: 1 }, token: 't', at: new Date().toISOString(), requeue: true };
    expect((await to({ status: 'starting', claim })).changed).toBe(true);
    expect(s.anyWaiting()).toBe(true);
    expect((await to({ status: 'starting' })).changed).toBe(true);
    expect(s.anyWaiting()).toBe(false);
    expect((await to({ status: 'running', startedAt: new Date().toISOString() })).changed).toBe(true);
    const done = { status: 'succeeded', startedAt: '', exitCode: 0, signal: null, endedAt: new Date().toISOString(), durationMs: 1 } as const;
    expect((await to(done)).changed).toBe(true);
    expect(s.activeIds()).toEqual([]);
    // A final state has no way out: not to another end, not back to running, not to lost.
    for (const next of [
      { ...done, status: 'failed', exitCode: 1 },
      { status: 'running', startedAt: '' },
      { status: 'lost', reason: 'x', detectedAt: '' },
    ] as JobState[]) {
      const t = await to(next);
      expect([t.changed, s.readRecord(id).state.status]).toEqual([false, 'succeeded']);
    }
    // Illegal moves out of a live state are refused too (running cannot go back to starting; to queued only by a retry).
    const id2 = s.reserveId('t', new Date());
    s.create(rec(s, id2, { status: 'running', startedAt: '' }));
    expect((await s.transition(id2, (r) => ({ ...r, state: { status: 'starting' } }))).changed).toBe(false);
    const events = fs
      .readFileSync(s.eventsLog, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.filter((e) => e.id === id).map((e) => e.msg)).toEqual(['queued', 'starting', 'running', 'succeeded']);
  });

  it('a holder stopped past its lock (another jobq took it as stale and moved the record) leaves that move standing', async () => {
    const s = Store.open(path.join(dir, 'state'));
    const id = s.reserveId('t', new Date());
    s.create(rec(s, id, { status: 'queued', since: new Date().toISOString() }));
    const done = { status: 'succeeded', startedAt: '', exitCode: 0, signal: null, endedAt: new Date().toISOString(), durationMs: 1 } as const;
    const claim = { by: { pid: 1, startTicks: 1 }, token: 't', at: new Date().toISOString(), requeue: true };
    // While our change runs (we were stopped), the other jobq claims, runs and ends the job: its record, written as jobq writes one.
    const t = await s.transition(id, (r) => {
      writeFileAtomic(s.paths(id).record, `${JSON.stringify({ ...r, state: done })}\n`, false);
      return { ...r, state: { status: 'starting', claim } };
    });
    expect([t.changed, t.rec.state.status, s.readRecord(id).state.status]).toEqual([false, 'succeeded', 'succeeded']);
    expect(fs.readdirSync(s.paths(id).dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    // Unraced, the same move is made.
    const id2 = s.reserveId('t', new Date());
    s.create(rec(s, id2, { status: 'queued', since: new Date().toISOString() }));
    expect((await s.transition(id2, (r) => ({ ...r, state: { status: 'starting', claim } }))).changed).toBe(true);
  });

  it("keeps each index entry as a link to the index's one mark file, and makes its own file when the mark cannot be linked", () => {
    const s = Store.open(path.join(dir, 'state'));
    const ids = [0, 1, 2].map(() => s.reserveId('t', new Date()));
    for (const id of ids) s.create(rec(s, id, { status: 'queued', since: new Date().toISOString() }));
    const mark = fs.statSync(path.join(s.waitingDir, '.mark'));
    for (const id of ids) expect(fs.statSync(path.join(s.waitingDir, id)).ino).toBe(mark.ino);
    expect(fs.statSync(path.join(s.waitingDir, '.mark')).nlink).toBe(4);
    expect([s.waitingIds().sort(), s.activeIds().sort()]).toEqual([[...ids].sort(), [...ids].sort()]);
    s.setWaiting(ids[0]!, false);
    expect(fs.statSync(path.join(s.waitingDir, '.mark')).nlink).toBe(3);
    // A mark that is not a file we can link (a directory here): the entry is a plain file, as before.
    fs.rmSync(path.join(s.activeDir, '.mark'));
    fs.mkdirSync(path.join(s.activeDir, '.mark'));
    const id = s.reserveId('t', new Date());
    s.setActive(id, true);
    expect(fs.statSync(path.join(s.activeDir, id)).isFile()).toBe(true);
    expect(s.activeIds()).toContain(id);
  });
});

describe('the history index: a cache of the job dirs not active, rebuilt from them', () => {
  const ended = (at: Date): JobState => ({ status: 'succeeded', startedAt: '', exitCode: 0, signal: null, endedAt: at.toISOString(), durationMs: 1 });
  /** n jobs a minute apart, each created running and finished through transition (as a supervisor does). */
  const finished = async (s: Store, name: string, n: number, from = new Date(2026, 0, 1)) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const at = new Date(from.getTime() + i * 60_000);
      const id = s.reserveId(name, at);
      s.create(makeRecord({ id, name, log: s.paths(id).log, createdAt: at.toISOString(), state: { status: 'running', startedAt: '' } }), { event: false });
      await s.transition(id, (r) => ({ ...r, state: ended(at) }));
      ids.push(id);
    }
    return ids;
  };
  const lines = (s: Store) => fs.readFileSync(s.historyFile, 'utf8').trim().split('\n');
  /** The header as jobq writes it: the count nine digits wide (rewritten in place as jobs end). */
  const head = (n: number, extra = 0) => `jobq-history 1 ${String(n).padStart(9, '0')} ${extra}`;

  it('lists the newest finished jobs from its end, and counts every one', async () => {
    const s = Store.open(path.join(dir, 'state'));
    const ids = await finished(s, 'a', 30);
    expect(lines(s)).toEqual([head(30), ...ids]);
    const live = s.reserveId('live', new Date(2026, 0, 2));
    s.create(makeRecord({ id: live, name: 'live', log: s.paths(live).log, state: { status: 'running', startedAt: '' } }), { event: false });
    const r = await s.recentDone(5, s.activeIds());
    expect(r).toEqual({ ids: ids.slice(-5).reverse(), live: [live], total: 30 });
  });

  it('is rebuilt when deleted, corrupt, or stale (an older jobq finished or removed a job past it)', async () => {
    const s = Store.open(path.join(dir, 'state'));
    const ids = await finished(s, 'a', 4);
    const newest = async () => (await s.recentDone(2, s.activeIds())).ids;
    fs.rmSync(s.historyFile);
    expect(await newest()).toEqual([ids[3], ids[2]]);
    expect(lines(s)).toEqual([head(4), ...ids]);
    for (const junk of ['garbage\n', 'jobq-history 1 4 0\na_1\n', 'jobq-history 1 9 0\n', `jobq-history 1 2 0\n${ids[1]}\n${ids[0]}\n`, '']) {
      fs.writeFileSync(s.historyFile, junk);
      expect(await newest(), junk).toEqual([ids[3], ids[2]]);
      expect(lines(s)[0]).toBe(head(4));
    }
    // An older jobq: writes a finished record and leaves the index alone; removes a dir and leaves it alone.
    const old = s.reserveId('old', new Date(2026, 0, 3));
    fs.writeFileSync(s.paths(old).record, JSON.stringify(makeRecord({ id: old, name: 'old', state: ended(new Date()) })));
    expect(await newest()).toEqual([old, ids[3]]);
    fs.rmSync(s.paths(ids[3]!).dir, { recursive: true });
    expect(await s.recentDone(2, [])).toEqual({ ids: [old, ids[2]], live: [], total: 4 });
    expect(lines(s)).toEqual([head(4), ids[0], ids[1], ids[2], old]);
  });

  it('an id line is data: one that is not an id, or a symlinked index, is never followed', async () => {
    const s = Store.open(path.join(dir, 'state'));
    const ids = await finished(s, 'a', 2);
    fs.writeFileSync(s.historyFile, 'jobq-history 1 2 0\n../../etc_20260101_000000\n' + ids[1] + '\n');
    expect((await s.recentDone(5, [])).ids).toEqual([ids[1], ids[0]]);
    const elsewhere = path.join(dir, 'planted');
    fs.writeFileSync(elsewhere, `jobq-history 1 1 0\n${ids[0]}\n`);
    fs.rmSync(s.historyFile);
    fs.symlinkSync(elsewhere, s.historyFile);
    expect((await s.recentDone(5, [])).ids).toEqual([ids[1], ids[0]]);
    expect(fs.lstatSync(s.historyFile).isSymbolicLink()).toBe(false);
  });

  it('an end goes in its place, found from the end: appended, inserted, or already there; a bad index is rebuilt', () => {
    const id = (name: string, min: number) => `${name}_20260101_10${String(min).padStart(2, '0')}00`;
    const ids = [id('a', 0), id('b', 10), id('c', 20)];
    const text = formatHistory(ids, 1);
    expect(withHistoryId(text, id('d', 30))).toBe(formatHistory([...ids, id('d', 30)], 1));
    expect(withHistoryId(text, id('x', 15))).toBe(formatHistory([ids[0]!, ids[1]!, id('x', 15), ids[2]!], 1));
    expect(withHistoryId(text, id('o', 0).replace('10', '09'))).toBe(formatHistory([id('o', 0).replace('10', '09'), ...ids], 1));
    expect(withHistoryId(text, ids[1]!)).toBe(text);
    expect(withHistoryId(formatHistory([], 0), ids[0]!)).toBe(formatHistory([ids[0]!], 0));
    // Not an index, a count that is off, a cut last line, a line it reaches that is no id: undefined (rebuilt).
    for (const bad of ['garbage\n', 'jobq-history 1 4 0\n' + ids.join('\n') + '\n', text.slice(0, -1), formatHistory([...ids, '../x'], 0)])
      expect(withHistoryId(bad, id('d', 30)), bad).toBeUndefined();
  });

  it('an end is appended in place (the same file, its count rewritten); an older narrow index or an end out of order is rewritten', async () => {
    const s = Store.open(path.join(dir, 'state'));
    const ids = await finished(s, 'a', 3);
    const ino = fs.statSync(s.historyFile).ino;
    const [d] = await finished(s, 'd', 1, new Date(2026, 0, 2));
    expect([fs.statSync(s.historyFile).ino, lines(s)]).toEqual([ino, [head(4), ...ids, d]]);
    // Ended again (already there): nothing changes.
    expect(appendHistoryId(s.historyFile, d!)).toBe(true);
    expect(lines(s)).toEqual([head(4), ...ids, d]);
    // Older than the newest: not appended; the writer puts it in its place by a rewrite.
    const [early] = await finished(s, 'e', 1, new Date(2025, 0, 1));
    expect(lines(s)).toEqual([head(5), early, ...ids, d]);
    // A narrow count (an older jobq's index): rewritten wide, then appended in place again.
    fs.writeFileSync(s.historyFile, `jobq-history 1 5 0\n${[early, ...ids, d].join('\n')}\n`);
    const [f] = await finished(s, 'f', 1, new Date(2026, 0, 3));
    expect(lines(s)).toEqual([head(6), early, ...ids, d, f]);
    // A count one short, as a reader between the two writes (or after a crash there) sees it: rebuilt, right.
    fs.writeFileSync(s.historyFile, `${head(5)}\n${[early, ...ids, d, f].join('\n')}\n`);
    expect(await s.recentDone(2, [])).toEqual({ ids: [f, d], live: [], total: 6 });
    expect(lines(s)[0]).toBe(head(6));
  });

  it("a sweep's elements, made in one second, are appended in place in the order they end; an older second is not", async () => {
    const s = Store.open(path.join(dir, 'state'));
    const at = new Date(2026, 0, 1);
    const ids = [1, 2, 9, 10, 100].map((i) => {
      const id = s.reserveId(`sw.${i}`, at);
      s.create(makeRecord({ id, name: `sw.${i}`, log: s.paths(id).log, state: { status: 'running', startedAt: '' } }), { event: false });
      return id;
    });
    const [before] = await finished(s, 'b', 1, new Date(2025, 11, 31));
    const ino = fs.statSync(s.historyFile).ino;
    // sw.10 sorts before sw.9 as text, and two chains end their elements out of turn: each still an append.
    const order = [ids[1], ids[0], ids[3], ids[2], ids[4]] as string[];
    for (const id of order) await s.transition(id, (r) => ({ ...r, state: ended(at) }));
    expect([fs.statSync(s.historyFile).ino, lines(s)]).toEqual([ino, [head(6), before, ...order]]);
    expect((await s.recentDone(2, [])).ids.sort()).toEqual([...ids].sort());
    // One made a second earlier than the last line: put in its place by a rewrite, and readers still trust the index.
    const [older] = await finished(s, 'o', 1, new Date(at.getTime() - 1000));
    expect(lines(s)).toEqual([head(7), before, older, ...order]);
    expect((await s.recentDone(1, [])).total).toBe(7);
    expect(withHistoryId(formatHistory([before!, ...order], 0), ids[2]!)).toBe(formatHistory([before!, ...order], 0));
  });

  it('an end with 20,000 jobs in the index lands after the newest, counted, and status still trusts it', async () => {
    const s = Store.open(path.join(dir, 'state'));
    const at = new Date(2026, 0, 1);
    const many = Array.from({ length: 20_000 }, (_, i) => `h${i}_20250101_${String(100000 + i).slice(-6)}`);
    fs.writeFileSync(s.historyFile, formatHistory(many, 0));
    for (const h of many) fs.mkdirSync(path.join(s.jobsDir, h));
    const [last] = await finished(s, 'z', 1, at);
    expect(lines(s).slice(-2)).toEqual([many.at(-1), last]);
    expect(lines(s)[0]).toBe(head(20_001));
    expect((await s.recentDone(1, [])).total).toBe(20_001);
  });

  it('finishes at once all land in it; removed jobs leave it in one write', async () => {
    const s = Store.open(path.join(dir, 'state'));
    const at = new Date(2026, 0, 1);
    const ids = Array.from({ length: 12 }, (_, i) => {
      const id = s.reserveId(`c${i}`, at);
      s.create(makeRecord({ id, name: `c${i}`, log: s.paths(id).log, state: { status: 'running', startedAt: '' } }), { event: false });
      return id;
    });
    await Promise.all(ids.map((id) => s.transition(id, (r) => ({ ...r, state: ended(at) }))));
    expect(lines(s).slice(1).sort()).toEqual([...ids].sort());
    expect(s.activeIds()).toEqual([]);
    await s.removeJobs(ids.slice(0, 10));
    expect(lines(s)).toEqual(['jobq-history 1 000000002 0', ...ids.slice(10).sort()]);
    expect((await s.recentDone(20, [])).total).toBe(2);
  });
});

describe('locks whose holder died', () => {
  /** A lock as a holder leaves it when SIGKILLed (fresh, so not stale for 10 s): a symlink naming that holder. */
  function planted(s: Store, key: string, owner: string): string {
    const lock = path.join(s.locksDir, `${key}.lock`);
    fs.symlinkSync(owner, lock);
    return lock;
  }
  const bootNow = () => fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const ticksOf = (pid: number) => Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]);

  it('a holder stopped past staleness leaves the lock another jobq took meanwhile: its release removes only its own', async () => {
    const s = Store.open(path.join(dir, 'state'));
    const lock = path.join(s.locksDir, 'dispatch.lock');
    await s.withLock('dispatch', () => {
      // While we were stopped: ours taken back as stale, and the lock taken by another jobq (an older one's lock dir here).
      fs.unlinkSync(lock);
      fs.mkdirSync(lock);
    });
    expect(fs.statSync(lock).isDirectory()).toBe(true);
    fs.rmdirSync(lock);
    // And as another jobq's hard link.
    await s.withLock('dispatch', () => {
      fs.unlinkSync(lock);
      fs.writeFileSync(`${lock}.other`, 'x');
      fs.linkSync(`${lock}.other`, lock);
    });
    expect(fs.readFileSync(lock, 'utf8')).toBe('x');
    fs.rmSync(lock);
    // Unraced, its own lock goes at release, as ever.
    await s.withLock('dispatch', () => expect(fs.existsSync(lock)).toBe(true));
    expect(fs.existsSync(lock)).toBe(false);
  });

  it('a held lock is a hard link to an owner file naming its holder (pid, start time, boot), gone once released', async () => {
    const s = Store.open(path.join(dir, 'state'));
    const lock = path.join(s.locksDir, 'seq.lock');
    const seen = await s.withLock('seq', () => ({ text: fs.readFileSync(lock, 'latin1'), st: fs.lstatSync(lock) }));
    expect(seen.text).toBe(`${process.pid} ${ticksOf(process.pid)} ${bootNow()}`);
    expect(seen.st.isFile()).toBe(true);
    expect(fs.lstatSync(lock, { throwIfNoEntry: false })).toBe(undefined);
    // No inode made or freed per lock: the next locks, one inside another, are links to this process's owner files.
    const owners = () => fs.readdirSync(s.locksDir).filter((n) => n.startsWith(`owner-${process.pid}-`));
    const inodes = await s.withLock('seq', async () => [
      fs.lstatSync(lock).ino,
      await s.withLock('queues', () => fs.lstatSync(path.join(s.locksDir, 'queues.lock')).ino),
    ]);
    expect(inodes[0]).toBe(seen.st.ino);
    expect(inodes[1]).not.toBe(seen.st.ino);
    expect(owners()).toHaveLength(2);
    expect(fs.readdirSync(s.locksDir).filter((n) => n.endsWith('.lock'))).toEqual([]);
    // An owner file reused after a quiet minute: the lock it becomes is fresh, never stale to a waiter.
    const old = new Date(Date.now() - 60_000);
    for (const n of owners()) fs.utimesSync(path.join(s.locksDir, n), old, old);
    expect(await s.withLock('seq', () => Date.now() - fs.lstatSync(lock).mtimeMs)).toBeLessThan(5000);
  });

  it("a dead holder's hard-linked lock is taken back at once, and its owner file swept by the next new process", async () => {
    const s = Store.open(path.join(dir, 'state'));
    const child = spawnSync('true');
    const own = path.join(s.locksDir, `owner-${child.pid}-12345-0`);
    fs.writeFileSync(own, `${child.pid} 12345 ${bootNow()}`);
    fs.linkSync(own, path.join(s.locksDir, 'dispatch.lock'));
    const t0 = Date.now();
    expect(await s.withLock('dispatch', () => 'mine', 3000)).toBe('mine');
    expect(Date.now() - t0).toBeLessThan(3000);
    // Another process (a fresh node, as every jobq command is) sweeps owner files of the dead, never a live one's.
    const live = fs.readdirSync(s.locksDir).filter((n) => n.startsWith(`owner-${process.pid}-`));
    const r = spawnSync(BIN, ['queue', 'set', 'q', '--slots', '1'], { encoding: 'utf8', env: { ...process.env, JOBQ_HOME: path.join(dir, 'state') } });
    expect(r.stderr).toBe('');
    expect(fs.existsSync(own)).toBe(false);
    for (const n of live) expect(fs.existsSync(path.join(s.locksDir, n))).toBe(true);
    // Its own owner file went with it at exit.
    expect(fs.readdirSync(s.locksDir).filter((n) => n.startsWith('owner-') && !live.includes(n))).toEqual([]);
  });

  it('is taken back at once when its owner (pid + start time + boot) is dead', async () => {
    const s = Store.open(path.join(dir, 'state'));
    const child = spawnSync('true');
    planted(s, 'dispatch', `${child.pid} 12345 ${bootNow()}`);
    const t0 = Date.now();
    expect(await s.withLock('dispatch', () => 'mine', 3000)).toBe('mine');
    // Well inside proper-lockfile's 10 s of staleness.
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(fs.lstatSync(path.join(s.locksDir, 'dispatch.lock'), { throwIfNoEntry: false })).toBe(undefined);
  });

  it("is waited for while its owner lives; junk owners and an older jobq's lock dir are left to staleness", async () => {
    const s = Store.open(path.join(dir, 'state'));
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const lock = planted(s, 'queues', `${sleeper.pid} ${ticksOf(sleeper.pid!)} ${bootNow()}`);
      await expect(s.withLock('queues', () => 'mine', 300)).rejects.toThrow(/busy/);
      expect(fs.readlinkSync(lock)).toMatch(/^\d+ /);
      // An owner that proves nothing (garbage, or a directory: an older jobq) is not authority.
      fs.unlinkSync(lock);
      planted(s, 'queues', 'not a pid');
      await expect(s.withLock('queues', () => 'mine', 300)).rejects.toThrow(/busy/);
      fs.unlinkSync(lock);
      fs.mkdirSync(lock);
      await expect(s.withLock('queues', () => 'mine', 300)).rejects.toThrow(/busy/);
      expect(fs.statSync(lock).isDirectory()).toBe(true);
      // Stale (its mtime 20 s old), an older jobq's lock dir is taken over as before.
      const old = new Date(Date.now() - 20_000);
      fs.utimesSync(lock, old, old);
      expect(await s.withLock('queues', () => 'mine', 300)).toBe('mine');
    } finally {
      sleeper.kill('SIGKILL');
    }
  });
});
