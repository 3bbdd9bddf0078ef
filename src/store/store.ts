// The only owner of the state dir: paths, trust checks, atomic record I/O, the one transition function, listing, locks.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crashAt, ioError, JobqError } from '../domain/errors.js';
import {
  type CancelRequest,
  canMove,
  isFinal,
  isKnownStatus,
  isValidName,
  type JobRecord,
  makeId,
  type ProcId,
  parseId,
  parseSeqRef,
  SCHEMA_VERSION,
  schemaOf,
  upgradeRecord,
} from '../domain/job.js';
import { JOBLOG_HEADER } from '../domain/joblog.js';
import type { PressureSettings } from '../domain/pressure.js';
import { sleep } from '../domain/units.js';
import { bootId, isAlive, procId } from '../process/proc.js';
import { appendEvent } from './events.js';
import { appendHistoryId, formatHistory, newestDone, readHistory, readHistoryText, sortOldestFirst, withHistoryId } from './history.js';
import { openToRead, untrustedReason } from './trust.js';

/** Where state lives: $JOBQ_HOME, else $XDG_STATE_HOME/jobq, else ~/.local/state/jobq. */
export function stateHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.JOBQ_HOME) return path.isAbsolute(env.JOBQ_HOME) ? env.JOBQ_HOME : path.join(safeCwd(), env.JOBQ_HOME);
  const xdg = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state');
  return path.join(xdg, 'jobq');
}

function safeCwd(): string {
  try {
    return process.cwd();
  } catch {
    throw new JobqError('STATE_DIR', 'JOBQ_HOME is relative and the current directory no longer exists');
  }
}

/** A job's directory and the files in it. */
export interface JobPaths {
  dir: string;
  record: string;
  log: string;
  cancel: string;
  lock: string;
  /** A queued job's full environment until it starts (0600; it may hold secrets the record redacts). */
  env: string;
  /** Memory and CPU over time (store/timeline.ts). */
  samples: string;
  /** What its supervisor decided and why (pino lines): isolation, limits read back, signals, timeouts, retries. */
  diag: string;
  /** One byte: `h` while the held command waits, `g` once its wrapper read "go" (proof, after a crash, of what ran). */
  gate: string;
}

/** A job directory that holds no readable record, and why. */
export interface BrokenEntry {
  id: string;
  error: string;
  /** True for a directory a killed `run` left half made: prune may remove it. */
  halfMade?: boolean;
}

/** Dispatch settings from config, stored for the processes that read no config. */
export interface DispatchSettings {
  memReserveBytes?: number;
  gpuBusyMiB?: number;
  /** The memory pressure guard's settings, when it is on (supervisors act on them, dispatch waits by them). */
  pressureGuard?: PressureSettings;
}

/** The pressure guard's one turn for the machine (pressure.json): the job it acts on now, and when it last acted. */
export interface GuardTurn {
  victim?: { id: string; stage: 'warned' | 'frozen'; at: string };
  lastActionAt?: string;
}

/** A queue's stored settings. */
export interface QueueState {
  slots?: number;
  configured?: number;
  paused?: boolean;
}

/** A record that changed state: what it was and what it is now. */
export interface Transitioned {
  rec: JobRecord;
  changed: boolean;
}

// A job dir younger than this without a record may be one a `run` is creating right now.
const HALF_MADE_AFTER_MS = 60_000;

/** One state dir, trusted only after checking who could have written it. */
export class Store {
  readonly home: string;
  readonly jobsDir: string;
  readonly activeDir: string;
  readonly locksDir: string;
  readonly waitingDir: string;
  readonly queuesDir: string;
  /** Job numbers: `next` (the next to give) and one file per number holding its job's id. */
  readonly seqDir: string;
  readonly eventsLog: string;
  readonly dispatcherFile: string;
  /** Every job dir not marked active, oldest first: what `status` reads the newest of (store/history.ts). */
  readonly historyFile: string;
  /** nvidia-smi's recent failures, shared by the state dir's processes (process/resources.ts). */
  readonly smiFailuresFile: string;
  private identity?: { dev: number; ino: number };

  private constructor(home: string) {
    this.home = home;
    this.jobsDir = path.join(home, 'jobs');
    this.activeDir = path.join(home, 'active');
    this.locksDir = path.join(home, 'locks');
    this.waitingDir = path.join(home, 'waiting');
    this.queuesDir = path.join(home, 'queues');
    this.seqDir = path.join(home, 'seq');
    this.eventsLog = path.join(home, 'events.log');
    this.dispatcherFile = path.join(home, 'dispatcher.json');
    this.historyFile = path.join(home, 'history');
    this.smiFailuresFile = path.join(home, 'nvidia-smi.json');
  }

  /** Opens (creating 0700 if needed) the state dir; refuses one that another user owns, could write, or could swap. */
  static open(home = stateHome(), opts: { create?: boolean } = { create: true }): Store {
    const store = new Store(home);
    const why = untrustedReason(home);
    if (why) throw new JobqError('STATE_DIR', `refusing state dir ${home}: ${why}`);
    let st: fs.Stats;
    try {
      st = fs.statSync(home);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('read state dir', home, err);
      if (!opts.create) return store;
      try {
        fs.mkdirSync(home, { recursive: true, mode: 0o700 });
        fs.chmodSync(home, 0o700);
      } catch (e) {
        throw new JobqError('STATE_DIR', `cannot create state dir ${home}: ${(e as Error).message}`);
      }
      st = fs.statSync(home);
    }
    if (!st.isDirectory()) throw new JobqError('STATE_DIR', `state dir ${home} is not a directory`);
    const uid = process.getuid?.() ?? st.uid;
    if (st.uid !== uid) {
      throw new JobqError('STATE_DIR', `refusing state dir ${home}: owned by uid ${st.uid}, not by you (uid ${uid})`);
    }
    if (st.mode & 0o022) {
      const mode = (st.mode & 0o777).toString(8);
      throw new JobqError('STATE_DIR', `refusing state dir ${home}: mode ${mode} lets others write to it (chmod 700 ${home})`);
    }
    store.identity = { dev: st.dev, ino: st.ino };
    if (opts.create) {
      for (const d of [store.jobsDir, store.activeDir, store.locksDir, store.waitingDir, store.queuesDir]) {
        try {
          fs.mkdirSync(d, { mode: 0o700 });
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          // A read-only or full state dir can still be read: readers go on, writers fail at their write.
          if (code !== 'EEXIST' && code !== 'EROFS' && code !== 'ENOSPC') throw ioError('create', d, e);
        }
      }
    }
    return store;
  }

  /** Re-checks, right before acting on what the state dir says, that it is still the directory that was checked. */
  assertSame(): void {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(this.home);
    } catch {
      /* gone: refused below */
    }
    if (!st || !this.identity || st.dev !== this.identity.dev || st.ino !== this.identity.ino) {
      throw new JobqError('STATE_DIR', `state dir ${this.home} was replaced while jobq was using it; nothing was signalled`);
    }
  }

  /** An array's joblog when its run named none: one per NAME, appended run after run. */
  joblogPath(name: string): string {
    if (!isValidName(name)) throw new JobqError('BAD_NAME', `invalid job name ${JSON.stringify(name).slice(0, 80)}`);
    return path.join(this.home, 'joblogs', `${name}.tsv`);
  }

  /** Paths of a job; the id is validated so nothing can escape the state dir. */
  paths(id: string): JobPaths {
    if (!parseId(id)) throw new JobqError('BAD_NAME', `invalid job id ${JSON.stringify(id).slice(0, 80)}`);
    const dir = path.join(this.jobsDir, id);
    return {
      dir,
      record: path.join(dir, 'job.json'),
      log: path.join(dir, 'output.log'),
      cancel: path.join(dir, 'cancel.json'),
      lock: path.join(dir, 'lock'),
      env: path.join(dir, 'env.json'),
      samples: path.join(dir, 'samples'),
      diag: path.join(dir, 'supervisor.log'),
      gate: path.join(dir, 'gate'),
    };
  }

  /** Reserves a fresh id for NAME by creating its directory exclusively (-2, -3... within one second). */
  reserveId(name: string, now = new Date()): string {
    for (let n = 1; n < 10_000; n++) {
      const id = makeId(name, now, n);
      try {
        fs.mkdirSync(path.join(this.jobsDir, id), { mode: 0o700 });
        return id;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('create job dir in', this.jobsDir, e);
      }
    }
    throw new JobqError('IO', `cannot reserve an id for ${name}: too many jobs started in one second`);
  }

  /**
   * Removes a job's directory and index entries entirely (failed creation, prune, rm); its number is not given again.
   * Its history index line goes with `historyForget`, once for all the jobs a command removes.
   */
  removeJob(id: string): void {
    const seq = this.seqOf(id);
    fs.rmSync(this.paths(id).dir, { recursive: true, force: true });
    this.setActive(id, false);
    this.setWaiting(id, false);
    if (seq !== undefined && this.numbered(String(seq), false) === id) fs.rmSync(path.join(this.seqDir, String(seq)), { force: true });
  }

  /** Removes jobs as removeJob does, several dirs at a time (the disk's work, not ours, is the cost), then their index lines. */
  async removeJobs(ids: string[]): Promise<void> {
    let next = 0;
    const worker = async () => {
      for (let id = ids[next++]; id !== undefined; id = ids[next++]) {
        const seq = this.seqOf(id);
        await fs.promises.rm(this.paths(id).dir, { recursive: true, force: true });
        this.setActive(id, false);
        this.setWaiting(id, false);
        if (seq !== undefined && this.numbered(String(seq), false) === id) fs.rmSync(path.join(this.seqDir, String(seq)), { force: true });
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(8, ids.length) }, worker));
    } finally {
      await this.historyForget(ids);
    }
  }

  /** Gives `count` consecutive fresh job numbers and returns the first: under a lock, so racing runs never share one. */
  async allocSeq(count = 1): Promise<number> {
    return this.withLock('seq', () => {
      const next = this.nextSeq();
      writeFileAtomic(path.join(this.seqDir, 'next'), `${next + count}\n`, false);
      return next;
    });
  }

  /** The next number to give: the counter, else (first use, or a counter lost) one past every number still indexed. */
  private nextSeq(): number {
    try {
      const n = Number(fs.readFileSync(path.join(this.seqDir, 'next'), 'utf8').trim());
      if (Number.isSafeInteger(n) && n >= 1) return n;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('read', path.join(this.seqDir, 'next'), e);
      fs.mkdirSync(this.seqDir, { recursive: true, mode: 0o700 });
    }
    let max = 0;
    for (const f of fs.readdirSync(this.seqDir)) if (/^\d+$/.test(f)) max = Math.max(max, Number(f));
    return max + 1;
  }

  /** The number a job's record holds, if any (read only to drop its index entry). */
  private seqOf(id: string): number | undefined {
    try {
      const seq = (JSON.parse(fs.readFileSync(this.paths(id).record, 'utf8')) as JobRecord).seq;
      return Number.isSafeInteger(seq) ? seq : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The job a number names (`42` or `#42`), from its one index file, no record read; undefined when REF is not a
   * number or no job has it (`live`: only one whose record is there).
   */
  numbered(ref: string, live = true): string | undefined {
    const n = parseSeqRef(ref);
    if (n === undefined) return undefined;
    let id: string;
    try {
      id = fs.readFileSync(path.join(this.seqDir, String(n)), 'utf8').trim();
    } catch {
      return undefined;
    }
    // The entry is data: only a well-formed id of a job that still exists counts.
    return parseId(id) && (!live || fs.existsSync(this.paths(id).record)) ? id : undefined;
  }

  /** The dispatcher's registration as written (pid + start time + boot); whether it lives is the reader's to check. */
  readDispatcher(): (ProcId & { boot: string }) | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.dispatcherFile, 'utf8')) as ProcId & { boot: string };
    } catch {
      return undefined;
    }
  }

  /** Registers (me) or unregisters (undefined) the dispatcher; callers hold locks/dispatch.lock. */
  setDispatcher(me: (ProcId & { boot: string }) | undefined): void {
    if (me) writeFileAtomic(this.dispatcherFile, JSON.stringify(me) + '\n', false);
    else fs.rmSync(this.dispatcherFile, { force: true });
  }

  /** Writes a file of a job's own that only its owner may read and run (Slurm's batch script); returns its path. */
  writeJobScript(id: string, name: string, text: string): string {
    const file = path.join(this.paths(id).dir, name);
    fs.writeFileSync(file, text, { mode: 0o700 });
    return file;
  }

  /** Why the state dir refuses writes now (a probe written and removed), or undefined when it takes them. */
  unwritableReason(): string | undefined {
    const probe = path.join(this.home, `.probe-${process.pid}`);
    try {
      fs.writeFileSync(probe, 'x', { mode: 0o600 });
      fs.rmSync(probe, { force: true });
      return undefined;
    } catch (e) {
      fs.rmSync(probe, { force: true });
      return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    }
  }

  /** The event log's path, created empty if missing (so following it starts at its first line). */
  eventsFile(): string {
    if (!fs.existsSync(this.eventsLog)) fs.writeFileSync(this.eventsLog, '', { mode: 0o600 });
    return this.eventsLog;
  }

  /** Writes a record no one else can know yet (a job being created); every later change goes through transition(). */
  create(rec: JobRecord, opts: { event?: boolean } = {}): void {
    writeFileAtomic(this.paths(rec.id).record, JSON.stringify({ ...rec, schema: schemaOf(rec) }, null, 2) + '\n', false);
    // After the record: a number resolves only to a job that exists.
    if (rec.seq !== undefined) writeFileAtomic(path.join(this.seqDir, String(rec.seq)), rec.id + '\n', false);
    this.setActive(rec.id, !isFinal(rec.state));
    this.setWaiting(rec.id, rec.state.status === 'queued');
    // A job started at once has its `submitted` line written by its supervisor (the launcher never loads the logger).
    if (opts.event !== false)
      appendEvent(this.eventsLog, 'info', rec.state.status === 'starting' ? 'submitted' : rec.state.status, { id: rec.id, argv: rec.argv });
  }

  /**
   * The one way a record changes: under the job's lock, `change` sees the record as it is now and returns the
   * next one (or undefined for no change); the move must be legal (a final state is never overwritten); the
   * write is atomic (and durable for a final state); the active index and the event log follow.
   */
  async transition(
    id: string,
    change: (rec: JobRecord) => JobRecord | undefined | Promise<JobRecord | undefined>,
    opts: { lockWaitMs?: number; event?: Record<string, unknown>; after?: (rec: JobRecord) => void } = {},
  ): Promise<Transitioned> {
    return this.withLock(
      id,
      async () => {
        const read: { of?: string } = {};
        const rec = this.readRecord(id, read);
        const next = await change(rec);
        if (!next) return { rec, changed: false };
        const from = rec.state.status;
        const to = next.state.status;
        if (!canMove(from, to)) return { rec, changed: false };
        const done = isFinal(next.state);
        // Only over the record as read: a holder stopped past the lock's staleness (SIGSTOP, a suspend) finds that
        // another jobq took the lock and moved the record meanwhile, and leaves that move standing.
        const written = writeFileAtomic(this.paths(id).record, JSON.stringify({ ...next, schema: schemaOf(next) }, null, 2) + '\n', done, (st) =>
          st ? recordVersion(st) === read.of : false,
        );
        if (!written) return { rec: this.readRecord(id), changed: false };
        if (done) crashAt('recorded');
        // Indexed before it leaves the active index: a crash between the two leaves it listed, never lost (and
        // indexEnded finishes the move).
        if (done && !isFinal(rec.state)) await this.historyAdd(id);
        this.setActive(id, !done);
        // A queue's claim not yet taken by a running job still waits, for whoever watches the queue.
        const waits = to === 'queued' || (to === 'starting' && next.state.status === 'starting' && !!next.state.claim?.requeue);
        if (from !== to || to === 'starting') this.setWaiting(id, waits);
        if (from !== to) appendEvent(this.eventsLog, levelOf(to), to, { id, from, ...opts.event });
        // What must happen with the move, before anyone else may move it (pause/resume's thaw).
        opts.after?.(next);
        return { rec: next, changed: true };
      },
      opts.lockWaitMs,
    );
  }

  /**
   * Finishes the move of a final record its writer left in the active index (killed between the record and the
   * index): history, indexes and its event line, as transition would have. Only if the job's lock is free at once:
   * a writer holding it is still at work. Returns whether it did.
   */
  async indexEnded(id: string): Promise<boolean> {
    if (!fs.existsSync(path.join(this.activeDir, id))) return false;
    try {
      return await this.withLock(
        id,
        async () => {
          if (!fs.existsSync(path.join(this.activeDir, id))) return false;
          const rec = this.readRecord(id);
          if (!isFinal(rec.state)) return false;
          await this.historyAdd(id);
          this.setActive(id, false);
          this.setWaiting(id, false);
          const to = rec.state.status;
          appendEvent(this.eventsLog, levelOf(to), to, { id, note: 'indexed by a reader: its writer stopped after recording it' });
          return true;
        },
        0,
      );
    } catch {
      return false;
    }
  }

  /** Reads a record (never through a symlink, only one we own); throws a one-line error naming the file if it is missing or broken. */
  readRecord(id: string, version?: { of?: string }): JobRecord {
    const file = this.paths(id).record;
    let text: string;
    try {
      const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      try {
        const st = fs.fstatSync(fd, { bigint: true });
        if (version) version.of = recordVersion(st);
        if (!st.isFile()) throw new JobqError('IO', `broken record ${file}: not a regular file; left as it is`);
        if (st.uid !== BigInt(process.getuid?.() ?? st.uid)) throw new JobqError('UNSAFE', `refusing record ${file}: owned by uid ${st.uid}, not by you`);
        text = fs.readFileSync(fd, 'utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch (e) {
      if (e instanceof JobqError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new JobqError('NOT_FOUND', `no record for job ${id} (${file} missing)`);
      if (code === 'ELOOP') throw new JobqError('UNSAFE', `refusing record ${file}: it is a symlink`);
      throw ioError('read', file, e);
    }
    let rec: JobRecord;
    try {
      rec = JSON.parse(text) as JobRecord;
    } catch {
      throw new JobqError('IO', `broken record ${file}: not valid JSON (${text.length} bytes); left as it is`);
    }
    if (!rec || typeof rec !== 'object' || rec.id !== id || typeof rec.state?.status !== 'string') {
      throw new JobqError('IO', `broken record ${file}: missing id or state; left as it is`);
    }
    if (rec.schema > SCHEMA_VERSION || !isKnownStatus(rec.state.status)) {
      const what = rec.schema > SCHEMA_VERSION ? `schema ${rec.schema}` : `status '${String(rec.state.status).slice(0, 40)}'`;
      throw new JobqError(
        'IO',
        `record ${file} has ${what}, unknown to this jobq ${SCHEMA_VERSION === rec.schema ? '' : `(schema ${SCHEMA_VERSION}) `}(written by a newer jobq?); left as it is`,
      );
    }
    return upgradeRecord(rec);
  }

  /** Why a job dir has no readable record: still being created, half made by a killed `run`, or broken. */
  inspect(id: string, now = Date.now()): BrokenEntry | 'creating' {
    const dir = this.paths(id).dir;
    let names: string[] = [];
    let age = 0;
    try {
      names = fs.readdirSync(dir);
      age = now - fs.statSync(dir).mtimeMs;
    } catch {
      /* vanished meanwhile */
    }
    if (age < HALF_MADE_AFTER_MS) return 'creating';
    const what = names.length ? `only ${names.join(', ')}` : 'nothing';
    return { id, error: `half-made job dir ${dir}: no record, ${what} (a run was killed while creating it; jobq prune removes it)`, halfMade: true };
  }

  /** All job ids, newest first, from directory names alone (no record is read). */
  listIds(): string[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.jobsDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioError('list', this.jobsDir, e);
    }
    // One string per id, sort key first, sorted by the engine without a comparator call per pair (2,000 ids: ~1 ms less).
    const keyed: string[] = [];
    for (const n of names) {
      const p = parseId(n);
      if (p) keyed.push(`${p.sortKey}\0${n}`);
    }
    keyed.sort();
    keyed.reverse();
    return keyed.map((k) => k.slice(k.indexOf('\0') + 1));
  }

  /** Ids of jobs not yet known to be finished: the index that keeps `status` cheap with many jobs. */
  activeIds(): string[] {
    try {
      return fs.readdirSync(this.activeDir).filter((n) => parseId(n));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioError('list', this.activeDir, e);
    }
  }

  /**
   * What `status` lists besides the active jobs (`active`: the active index as just read): the newest `n` other job
   * dirs (and the rest of the nth's second), newest first, and how many there are in all. Read from the history
   * index's end; when it is missing, broken or its count disagrees with the jobs dir's (someone, say an older jobq,
   * changed jobs/ past it), from the job dirs, and the index rebuilt.
   */
  async recentDone(n: number, active: string[]): Promise<{ ids: string[]; live: string[]; total: number }> {
    const live = active.filter((id) => fs.existsSync(path.join(this.jobsDir, id)));
    const liveSet = new Set(live);
    let h = readHistory(this.historyFile, (ids) => newestDone(ids, n, liveSet, false) !== undefined);
    // A final job still in the active index is in both: counted once.
    let both = h && this.indexedOf(h, live);
    if (h && both === undefined) {
      h = readHistory(this.historyFile);
      both = h && this.indexedOf(h, live);
    }
    if (!h || both === undefined || !this.jobDirsAre(h.count + live.length - both, h.extra)) {
      const all = (await this.rebuildHistory()).ids.reverse();
      return { ids: newestDone(all, n, liveSet, true)!, live, total: all.filter((id) => !liveSet.has(id)).length };
    }
    return { ids: newestDone(h.ids, n, liveSet, h.whole)!, live, total: h.count - both };
  }

  /** How many of `live` the index read holds; undefined when that needs the whole index and only its end was read. */
  private indexedOf(h: { ids: string[]; whole: boolean }, live: string[]): number | undefined {
    if (!live.length) return 0;
    const read = new Set(h.ids);
    const oldest = h.ids.length ? parseId(h.ids.at(-1)!)!.sortKey : '';
    let n = 0;
    for (const id of live) {
      if (read.has(id)) n++;
      else if (!h.whole && parseId(id)!.sortKey <= oldest) return undefined;
    }
    return n;
  }

  /** Whether jobs/ holds `jobs` job dirs and `extra` other dirs: its link count where the filesystem keeps one, else a listing. */
  private jobDirsAre(jobs: number, extra: number): boolean {
    let links: number;
    try {
      links = fs.statSync(this.jobsDir).nlink;
    } catch {
      return jobs + extra === 0;
    }
    // A directory's link count is 2 + its subdirectories (ext4, xfs, tmpfs); btrfs and others keep 1: count by listing.
    if (links >= 2) return links - 2 === jobs + extra;
    return this.listIds().length === jobs;
  }

  /** Rebuilds the history index from the job dirs (all but the active ones, and `finished`); returns what it holds. */
  async rebuildHistory(finished?: string): Promise<{ ids: string[]; extra: number }> {
    try {
      // Under the index's lock: an end recorded meanwhile is either seen here or added after.
      return await this.withLock('history', () => this.rebuildLocked(finished), 2_000);
    } catch {
      // A read-only or full state dir, or a busy lock: list from the dirs this time, as jobq did before the index.
      return this.scanHistory(finished);
    }
  }

  private rebuildLocked(finished?: string): { ids: string[]; extra: number } {
    const r = this.scanHistory(finished);
    writeFileAtomic(this.historyFile, formatHistory(r.ids, r.extra), false);
    return r;
  }

  /** What the history index should hold: the job dirs not in the active index (oldest first), and other dirs' count. */
  private scanHistory(finished?: string): { ids: string[]; extra: number } {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.jobsDir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ids: [], extra: 0 };
      throw ioError('list', this.jobsDir, e);
    }
    const active = new Set(this.activeIds());
    if (finished) active.delete(finished);
    const dirs = entries.filter((e) => e.isDirectory()).map((e) => e.name);
    return { ids: sortOldestFirst(dirs.filter((d) => !active.has(d))), extra: dirs.filter((d) => !parseId(d)).length };
  }

  /** Adds a job that is no longer active to the history index (best effort: a stale index is found and rebuilt). */
  private async historyAdd(id: string): Promise<void> {
    try {
      await this.withLock(
        'history',
        () => {
          if (appendHistoryId(this.historyFile, id)) return;
          const text = readHistoryText(this.historyFile);
          const next = text === undefined ? undefined : withHistoryId(text, id);
          if (next === undefined) return void this.rebuildLocked(id);
          if (next !== text) writeFileAtomic(this.historyFile, next, false);
        },
        5_000,
      );
    } catch {
      /* the index is a cache: readers see it disagree with jobs/ and rebuild it */
    }
  }

  /** Drops removed jobs from the history index, in one write for all of them (prune removes thousands). */
  async historyForget(ids: string[]): Promise<void> {
    if (!ids.length) return;
    try {
      await this.withLock(
        'history',
        () => {
          const h = readHistory(this.historyFile);
          if (!h) return;
          const gone = new Set(ids);
          const kept = h.ids.reverse().filter((id) => !gone.has(id));
          if (kept.length !== h.count) writeFileAtomic(this.historyFile, formatHistory(kept, h.extra), false);
        },
        5_000,
      );
    } catch {
      /* as in historyAdd */
    }
  }

  /** Adds or removes a job from the active index. */
  setActive(id: string, active: boolean): void {
    setMarker(this.activeDir, id, active);
  }

  /** Adds or removes a job from the index of queued jobs (what any command checks to keep dispatch alive). */
  setWaiting(id: string, waiting: boolean): void {
    setMarker(this.waitingDir, id, waiting);
  }

  /** Notes the cgroups an ended job left in use (a stray process still ran in them), for a later sweep; [] clears. */
  setCgroupsLeft(id: string, dirs: string[]): void {
    const p = path.join(this.home, 'cgroups-left', id);
    if (!dirs.length) return void fs.rmSync(p, { force: true });
    fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o700 });
    writeFileAtomic(p, JSON.stringify(dirs), false);
  }

  /** The ended jobs whose cgroups are still to remove, each with the directories noted (data: checked before use). */
  cgroupsLeft(): Array<{ id: string; dirs: unknown }> {
    const dir = path.join(this.home, 'cgroups-left');
    let ids: string[];
    if (!fs.existsSync(dir)) return [];
    try {
      ids = fs.readdirSync(dir).filter((n) => parseId(n));
    } catch {
      return [];
    }
    return ids.map((id) => {
      try {
        return { id, dirs: JSON.parse(fs.readFileSync(path.join(dir, id), 'utf8')) as unknown };
      } catch {
        return { id, dirs: [] };
      }
    });
  }

  /** The ids in the index of queued jobs (names only: each record says whether it still waits). */
  waitingIds(): string[] {
    try {
      return fs.readdirSync(this.waitingDir).filter((n) => parseId(n));
    } catch {
      return [];
    }
  }

  /** Whether any job waits (queued, or claimed from a queue and not yet started): reads one entry, not the index. */
  anyWaiting(): boolean {
    let d: fs.Dir | undefined;
    try {
      d = fs.opendirSync(this.waitingDir);
      for (let e = d.readSync(); e; e = d.readSync()) if (parseId(e.name)) return true;
      return false;
    } catch {
      return false;
    } finally {
      d?.closeSync();
    }
  }

  /** What is stored for a queue: `slots`/`paused` from `jobq queue set/pause`, `configured` slots from the last config seen. */
  readQueue(name: string): QueueState {
    try {
      const q = JSON.parse(fs.readFileSync(path.join(this.queuesDir, `${name}.json`), 'utf8')) as Record<string, unknown>;
      const count = (v: unknown) => (Number.isInteger(v) && (v as number) > 0 ? (v as number) : undefined);
      const out: QueueState = {};
      if (count(q.slots)) out.slots = count(q.slots);
      if (count(q.configured)) out.configured = count(q.configured);
      if (typeof q.paused === 'boolean') out.paused = q.paused;
      return out;
    } catch {
      return {};
    }
  }

  /** Queues with stored settings. */
  queueNames(): string[] {
    try {
      return fs
        .readdirSync(this.queuesDir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -5));
    } catch {
      return [];
    }
  }

  /** Makes a queue known for good once a job names it: `jobq queue NAME` still answers after its jobs ended. */
  async ensureQueue(name: string): Promise<void> {
    if (!fs.existsSync(path.join(this.queuesDir, `${name}.json`))) await this.updateQueue(name, {});
  }

  /** Changes a queue's stored settings (under the queues lock: two `queue set`s never lose one another). */
  async updateQueue(name: string, patch: QueueState): Promise<QueueState> {
    return this.withLock('queues', () => {
      const next = { ...this.readQueue(name), ...patch };
      writeFileAtomic(path.join(this.queuesDir, `${name}.json`), JSON.stringify(next) + '\n');
      appendEvent(this.eventsLog, 'info', 'queue changed', { queue: name, ...patch });
      return next;
    });
  }

  /** What dispatch reads besides queues (the dispatcher reads no config): the memory reserve, GPU busy level, a GPU list. */
  readDispatchSettings(): DispatchSettings {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.home, 'dispatch.json'), 'utf8')) as DispatchSettings;
    } catch {
      return {};
    }
  }

  /** Stores dispatch settings from the config a command read (only when they changed). */
  async writeDispatchSettings(next: DispatchSettings): Promise<void> {
    if (JSON.stringify(this.readDispatchSettings()) === JSON.stringify(next)) return;
    await this.withLock('queues', () => writeFileAtomic(path.join(this.home, 'dispatch.json'), JSON.stringify(next) + '\n'));
  }

  readGuardTurn(): GuardTurn {
    try {
      const t = JSON.parse(fs.readFileSync(path.join(this.home, 'pressure.json'), 'utf8')) as GuardTurn;
      return t && typeof t === 'object' ? t : {};
    } catch {
      return {};
    }
  }

  /** Reads and changes the guard's turn under its lock: two supervisors never both take it. */
  async updateGuardTurn<T>(f: (t: GuardTurn) => { next?: GuardTurn; result: T }): Promise<T> {
    return this.withLock('pressure', () => {
      const { next, result } = f(this.readGuardTurn());
      if (next) writeFileAtomic(path.join(this.home, 'pressure.json'), JSON.stringify(next) + '\n');
      return result;
    });
  }

  /**
   * The gate file of a job about to be held: `h` written now, and a descriptor at offset 0 for its wrapper, which
   * overwrites it with `g` on "go" (in place: no new space needed on a full disk).
   */
  openGate(id: string): number {
    const file = this.paths(id).gate;
    const flags = fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW;
    try {
      const fd = fs.openSync(file, flags | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600);
      fs.writeSync(fd, 'h');
      fs.closeSync(fd);
      return fs.openSync(file, flags);
    } catch (e) {
      throw ioError('create', file, e);
    }
  }

  /** Whether a held command was let go: true (`g`), false (`h`: provably never ran), undefined (no gate: older jobq). */
  gateReleased(id: string): boolean | undefined {
    try {
      const c = fs.readFileSync(this.paths(id).gate, 'latin1');
      return c === 'g' ? true : c === 'h' ? false : undefined;
    } catch {
      return undefined;
    }
  }

  /** Keeps a queued job's full environment until it starts (0600, inside the 0700 job dir). */
  writeEnv(id: string, env: Record<string, string>): void {
    writeFileAtomic(this.paths(id).env, JSON.stringify(env), false);
  }

  /** A queued job's environment, if kept. */
  readEnv(id: string): Record<string, string> | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.paths(id).env, 'utf8')) as Record<string, string>;
    } catch {
      return undefined;
    }
  }

  /** Drops a job's kept environment (once it has started, or will never start). */
  removeEnv(id: string): void {
    fs.rmSync(this.paths(id).env, { force: true });
  }

  /** Resolves NAME (its latest job), an exact id, or a job number (`42`, `#42`); a near miss gets a "did you mean". */
  resolve(ref: string): string {
    if (parseId(ref) && fs.existsSync(path.join(this.jobsDir, ref))) return ref;
    const n = parseSeqRef(ref);
    if (n !== undefined) {
      const id = this.numbered(ref);
      if (id) return id;
      // Digits alone may still be a NAME an older jobq allowed; `#N` is only ever a number.
      if (ref.startsWith('#') || !this.listIds().some((i) => parseId(i)!.name === ref))
        throw new JobqError('NOT_FOUND', `no job #${n} (see: jobq status --all)`);
    }
    if (!isValidName(ref)) {
      throw new JobqError('BAD_NAME', `invalid job name or id ${JSON.stringify(ref).slice(0, 80)}`);
    }
    const ids = this.listIds();
    const latest = ids.find((id) => parseId(id)!.name === ref && fs.existsSync(this.paths(id).record));
    if (!latest) {
      const names = [...new Set(ids.map((id) => parseId(id)!.name))];
      const near = closest(ref, names);
      throw new JobqError('NOT_FOUND', `no job named or with id '${ref}'${near ? `; did you mean '${near}'?` : ' (see: jobq status --all)'}`);
    }
    return latest;
  }

  /** Ids of the not-yet-final jobs called NAME, newest first (the index, not the records). */
  activeNamed(name: string): string[] {
    return this.activeIds()
      .filter((id) => parseId(id)!.name === name)
      .sort((a, b) => (parseId(a)!.sortKey < parseId(b)!.sortKey ? 1 : -1));
  }

  /** Leaves a cancel request beside a job, first asker wins; returns the request that stands (ours or an earlier one). */
  requestCancel(id: string, req: CancelRequest, mayTakeOver: (earlier: CancelRequest) => boolean): { req: CancelRequest; ours: boolean } {
    const file = this.paths(id).cancel;
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      writeFileAtomic(tmp, JSON.stringify(req) + '\n', false);
      // link() puts the whole file in place or fails with EEXIST: a reader never sees half a request.
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          fs.linkSync(tmp, file);
          return { req, ours: true };
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('write', file, e);
        }
        const earlier = this.readCancel(id);
        if (earlier && !mayTakeOver(earlier)) return { req: earlier, ours: false };
        // The earlier asker is gone: its request stands for the record, the signalling is ours now.
        if (earlier) return { req: earlier, ours: true };
        fs.rmSync(file, { force: true });
      }
      throw new JobqError('IO', `cannot leave a cancel request in ${file}`);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  /** The cancel request left for a job, if any. */
  readCancel(id: string): CancelRequest | undefined {
    const file = this.paths(id).cancel;
    // Nearly always absent: asked without a throw (each costs a stack trace, and a monitor asks at every sample).
    if (!fs.existsSync(file)) return undefined;
    try {
      const r = JSON.parse(fs.readFileSync(file, 'utf8')) as CancelRequest;
      return r && typeof r.at === 'string' && typeof r.signal === 'string' ? r : undefined;
    } catch {
      return undefined;
    }
  }

  /** Runs fn under a lock: a job's (its id), a name's (`name:NAME`), `dispatch`, `queues`, `seq` (job numbers), `history` (its index) or `pressure` (the guard's turn); proper-lockfile, loaded only when needed. */
  async withLock<T>(key: string, fn: () => Promise<T> | T, waitMs = 30_000): Promise<T> {
    const { default: lockfile } = await import('proper-lockfile');
    const file = key.startsWith('name:')
      ? path.join(this.locksDir, `name-${key.slice(5)}.lock`)
      : key === 'dispatch' || key === 'queues' || key === 'seq' || key === 'history' || key === 'pressure'
        ? path.join(this.locksDir, `${key}.lock`)
        : this.paths(key).lock;
    let release: () => Promise<void> | void;
    // proper-lockfile keys its held locks by the first argument: one per lock, or nested locks release each other.
    const opts = {
      lockfilePath: file,
      realpath: false,
      stale: 10_000,
      fs: lockFs(this.locksDir),
      // A lock we lost (we were stopped past `stale`) must not crash a supervisor: the write it guarded is atomic anyway.
      onCompromised: () => undefined,
    };
    try {
      // A missing directory will not come back by waiting.
      fs.statSync(path.dirname(file));
      // Taken at once if free (every fs call below answers synchronously: no thread pool round trips); a held one is
      // looked at again within milliseconds, then less often (short holders — a chain of small jobs — hand over at
      // once); a dead holder's is taken back. Not lockSync: it wraps the fs anew each call, so proper-lockfile probed
      // the mtime precision (a utimes and a stat) at every lock instead of once per process.
      for (let pause = 2, until = Date.now() + waitMs; ; pause = Math.min(pause * 1.5, 100)) {
        try {
          release = await lockfile.lock(file, opts);
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
          // A dead holder's is taken back even by a caller that does not wait.
          if (reapDeadLock(file)) continue;
          if (Date.now() >= until) throw e;
          await sleep(pause);
        }
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ELOCKED') throw new JobqError('BUSY', `${key} is busy: another jobq holds ${file}; try again`);
      throw ioError('lock', file, e);
    }
    try {
      return await fn();
    } finally {
      try {
        await release();
      } catch {
        /* already released or lost: nothing to undo */
      }
    }
  }
}

/** An event line's level for a move to `to`. */
function levelOf(to: string): 'warn' | 'info' {
  return to === 'lost' || to === 'failed-to-start' ? 'warn' : 'info';
}

/**
 * An index entry (active/ID, waiting/ID: a name, no content) as a hard link to the index's one empty `.mark` file:
 * no inode is made or freed per job (on ext4 without a journal each freed inode slows the next allocations for ~30 s).
 * A missing or full (EMLINK) mark: the entry is a file of its own, as before. An entry already there is touched: the
 * index's watchers (status --watch, ui, the dispatcher) take each of a job's moves as a change.
 */
function setMarker(dir: string, id: string, on: boolean): void {
  const p = path.join(dir, id);
  // Looked at first: most moves find the entry as they leave it, and a thrown fs error costs a stack trace.
  const there = fs.lstatSync(p, { throwIfNoEntry: false });
  if (!on) {
    try {
      if (there) fs.unlinkSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return;
  }
  if (there) {
    touch(p);
    return;
  }
  const mark = path.join(dir, '.mark');
  for (let tries = 0; tries < 2; tries++) {
    try {
      fs.linkSync(mark, p);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        touch(p);
        return;
      }
      if (code !== 'ENOENT' || tries) break;
      // No mark yet (or the dir is new): made once; a racing maker's is as good.
      try {
        fs.writeFileSync(mark, '', { mode: 0o600, flag: 'wx' });
      } catch (e2) {
        if ((e2 as NodeJS.ErrnoException).code !== 'EEXIST') break;
      }
    }
  }
  fs.writeFileSync(p, '', { mode: 0o600 });
}

function touch(p: string): void {
  const now = new Date();
  try {
    fs.lutimesSync(p, now, now);
  } catch {
    /* removed meanwhile: a change its watchers see anyway */
  }
}

type Cb = (e: NodeJS.ErrnoException | null) => void;
/** A synchronous fs call answered through a node-style callback. */
function syncCall<T>(call: () => T, cb: (e: NodeJS.ErrnoException | null, v?: T) => void): void {
  let v: T;
  try {
    v = call();
  } catch (e) {
    cb(e as NodeJS.ErrnoException);
    return;
  }
  cb(null, v);
}

/**
 * fs for proper-lockfile: a lock is taken and signed in one atomic call (and removed in one). It is a hard link to one
 * of this process's owner files (locks/owner-PID-TICKS-N, holding pid, start time and boot), so taking and dropping it
 * makes and frees no inode (on ext4 without a journal each freed inode slows the next allocations for ~30 s); where no
 * link can be made, a symlink naming the holder (as before). Never followed: its own mtime (lstat, lutimes) is what
 * staleness reads, so each lock held at once has an owner file of its own.
 */
type LockFs = typeof LOCK_FS_BASE & { mkdir: (p: string, cb: Cb) => void; mkdirSync: (p: string) => void };
const lockFsByDir = new Map<string, LockFs>();
function lockFs(locksDir: string): LockFs {
  let f = lockFsByDir.get(locksDir);
  if (!f) {
    const take = (p: string) => {
      for (let tries = 0; ; tries++) {
        const own = ownerFile(locksDir);
        try {
          // Fresh before it is a lock: a reused owner file's mtime would read as a stale lock to a waiter.
          const now = new Date();
          fs.utimesSync(own, now, now);
          fs.linkSync(own, p);
          owners.held.set(p, own);
          return;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          // Our owner file removed by hand: a new one.
          if (code === 'ENOENT' && !tries && !fs.existsSync(own)) continue;
          owners.free.push(own);
          if (code === 'EEXIST' || code === 'ENOENT') throw e;
          // No link here (another filesystem, EMLINK): the holder named by a symlink.
          fs.symlinkSync(ownerLine(), p);
          owners.linked.add(p);
          return;
        }
      }
    };
    f = {
      ...LOCK_FS_BASE,
      mkdir: (p: string, cb: Cb) => {
        try {
          take(p);
        } catch (e) {
          return cb(e as NodeJS.ErrnoException);
        }
        cb(null);
      },
      mkdirSync: take,
    };
    lockFsByDir.set(locksDir, f);
  }
  return f;
}

/** This process's owner files: those free to sign a lock, those signing one now (by lock path), and all it made. */
const owners = { free: [] as string[], held: new Map<string, string>(), made: [] as string[], linked: new Set<string>() };

/** Whether the lock at `p` is still the one this process took: the same file as its owner file, or its own symlink. */
function stillOurs(p: string): boolean {
  const own = owners.held.get(p);
  if (own === undefined) return readOwner(p) === ownerLine();
  const a = fs.lstatSync(p, { throwIfNoEntry: false });
  const b = fs.lstatSync(own, { throwIfNoEntry: false });
  return !!a && !!b && a.ino === b.ino && a.dev === b.dev;
}

/** A free owner file of this process in `locksDir`, made (and the dead's swept) when none is free. */
function ownerFile(locksDir: string): string {
  const i = owners.free.findIndex((f) => path.dirname(f) === locksDir);
  if (i >= 0) return owners.free.splice(i, 1)[0]!;
  if (!owners.made.length) {
    sweepDeadOwners(locksDir);
    process.on('exit', () => {
      for (const f of owners.made) fs.rmSync(f, { force: true });
    });
  }
  const id = procId(process.pid);
  const file = path.join(locksDir, `owner-${process.pid}-${id?.startTicks ?? 0}-${owners.made.length}`);
  // A name left by an earlier boot's process with the same pid and start time.
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, ownerLine(), { mode: 0o600, flag: 'wx' });
  owners.made.push(file);
  return file;
}

/** Owner files of processes that died without removing them (SIGKILL): the locks they sign stay readable. */
function sweepDeadOwners(locksDir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(locksDir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^owner-(\d+)-(\d+)-\d+$/.exec(n);
    if (m && !isAlive({ pid: Number(m[1]), startTicks: Number(m[2]) })) fs.rmSync(path.join(locksDir, n), { force: true });
  }
}

/** The calls proper-lockfile makes besides taking a lock. */
const LOCK_FS_BASE = {
  // Only what proper-lockfile calls: spreading all of fs would run its getters (streams, promises: ~4 ms a start).
  realpath: fs.realpath,
  realpathSync: fs.realpathSync,
  // Each answers at once, through its callback: a lock is taken or dropped without a thread pool round trip.
  stat: (p: string, cb: (e: NodeJS.ErrnoException | null, st?: fs.Stats) => void) => syncCall(() => fs.lstatSync(p), cb),
  statSync: (p: string) => fs.lstatSync(p),
  utimes: (p: string, a: Date, m: Date, cb: Cb) => syncCall(() => fs.lutimesSync(p, a, m), cb),
  utimesSync: (p: string, a: Date, m: Date) => fs.lutimesSync(p, a, m),
  rmdir: (p: string, cb: Cb) => syncCall(() => LOCK_FS_BASE.rmdirSync(p), cb),
  rmdirSync: (p: string) => {
    try {
      // Our own lock let go: removed only while it is still ours. A holder stopped past the staleness (SIGSTOP, a
      // suspend) finds another jobq's lock there, taken after its own was taken back, and leaves it.
      if (owners.held.has(p) || owners.linked.has(p)) {
        if (stillOurs(p)) fs.unlinkSync(p);
        return;
      }
      // Someone else's, stale.
      fs.unlinkSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EISDIR' && code !== 'EPERM') throw e;
      fs.rmSync(p, { recursive: true, force: true });
    } finally {
      freeOwner(p);
      owners.linked.delete(p);
    }
  },
};

/** A lock of ours removed: its owner file signs the next one. */
function freeOwner(p: string): void {
  const own = owners.held.get(p);
  if (own === undefined) return;
  owners.held.delete(p);
  owners.free.push(own);
}

let owner: string | undefined;
/** Who holds a lock: pid, start time and boot, so a holder that died (SIGKILL, OOM) is known dead at once. */
function ownerLine(): string {
  owner ??= `${process.pid} ${procId(process.pid)?.startTicks ?? 0} ${bootId()}`;
  return owner;
}

function readOwner(lock: string): string | undefined {
  try {
    return fs.readlinkSync(lock);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') return undefined;
  }
  // A hard link to its holder's owner file: read without following, never blocking on a FIFO, only a small file.
  const fd = openToRead(lock);
  if (fd === undefined) return undefined;
  try {
    const st = fs.fstatSync(fd);
    return st.isFile() && st.size <= 200 ? fs.readFileSync(fd, 'latin1') : undefined;
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Takes back a lock whose holder provably died (its link's target: pid + start time + boot), rather than waiting out the
 * 10 s of staleness with every jobq stalled behind it. Takers-back go one at a time (`.reap`), and the owner is read
 * again under that mark: a lock is only ever removed by its holder, by proper-lockfile as stale, or here, as the dead one's.
 */
function reapDeadLock(lock: string): boolean {
  const seen = readOwner(lock);
  // Only an owner that proves something (a foreign link, or an older jobq's lock dir, is left to staleness).
  const [, pid, ticks, boot] = /^(\d+) (\d+) ([0-9a-f-]{36})$/.exec(seen ?? '') ?? [];
  if (!seen || !pid || (boot === bootId() && isAlive({ pid: Number(pid), startTicks: Number(ticks) }))) return false;
  const mark = `${lock}.reap`;
  try {
    fs.mkdirSync(mark);
  } catch {
    // A taker-back that died itself: its mark goes after a while.
    const st = fs.statSync(mark, { throwIfNoEntry: false });
    if (st && Date.now() - st.mtimeMs > 5000) fs.rmSync(mark, { recursive: true, force: true });
    return false;
  }
  try {
    if (readOwner(lock) !== seen) return false;
    fs.unlinkSync(lock);
    return true;
  } finally {
    fs.rmSync(mark, { recursive: true, force: true });
  }
}

/** Loads the locking code ahead of the first lock (a standby supervisor, while it waits for its job). */
export async function loadLocking(): Promise<void> {
  await import('proper-lockfile');
}

/** The candidate nearest to `word` by edit distance, if near enough to be a typo. */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/**
 * Atomic replace: write a 0600 temp file (never through a symlink), fsync when asked, rename over the target. With
 * `over`, only if it accepts the target as it is just before the rename (false: nothing written).
 */
export function writeFileAtomic(file: string, data: string, durable = true, over?: (st: fs.BigIntStats | undefined) => boolean): boolean {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    fs.writeSync(fd, data);
    if (durable) fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    if (over && !over(fs.lstatSync(file, { bigint: true, throwIfNoEntry: false }))) {
      fs.rmSync(tmp, { force: true });
      return false;
    }
    fs.renameSync(tmp, file);
    return true;
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw ioError('write', file, e);
  }
}

/** Which write of a record this is: every write is a new file renamed in place (a new inode, made at its own ns). */
function recordVersion(st: fs.BigIntStats): string {
  return `${st.ino}:${st.ctimeNs}`;
}

/**
 * Opens a log for appending without trusting its path: never through a symlink or into a FIFO, only a regular
 * file we own with one link, or a new one (0600, O_EXCL); its directory (made 0700 if missing) must be one
 * that no other user could have planted or can swap things in.
 */
export function openLogAppend(file: string, what = 'log'): number {
  const dir = path.dirname(file);
  const why = untrustedReason(dir);
  if (why) throw new JobqError('UNSAFE', `refusing ${what} ${file}: ${why}`);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw ioError('create the log directory', dir, e);
  }
  const base = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
  try {
    return fs.openSync(file, base | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw logOpenError(file, e, what);
  }
  let fd: number;
  try {
    fd = fs.openSync(file, base);
  } catch (e) {
    throw logOpenError(file, e, what);
  }
  const st = fs.fstatSync(fd);
  const uid = process.getuid?.() ?? st.uid;
  const why2 = !st.isFile()
    ? 'it is not a regular file'
    : st.uid !== uid
      ? `it is owned by uid ${st.uid}, not by you`
      : st.nlink !== 1
        ? `it has ${st.nlink} hard links`
        : undefined;
  if (why2) {
    fs.closeSync(fd);
    throw new JobqError('UNSAFE', `refusing ${what} ${file}: ${why2}`);
  }
  return fd;
}

/** Appends a line to a joblog (GNU parallel's format), opened as safely as a log; a new or emptied one gets the header first. */
export function appendJoblog(file: string, line?: string): void {
  const fd = openLogAppend(file, 'joblog');
  try {
    const head = fs.fstatSync(fd).size === 0 ? `${JOBLOG_HEADER}\n` : '';
    if (head || line) fs.writeSync(fd, head + (line ? `${line}\n` : ''));
  } finally {
    fs.closeSync(fd);
  }
}

function logOpenError(file: string, e: unknown, what: string): JobqError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ELOOP') return new JobqError('UNSAFE', `refusing ${what} ${file}: it is a symlink`);
  if (code === 'ENXIO') return new JobqError('UNSAFE', `refusing ${what} ${file}: it is a FIFO or socket`);
  return ioError(`open ${what}`, file, e);
}
