// The only owner of the state dir: paths, permissions, atomic record I/O, listing, markers, locks.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JobqError, ioError } from '../domain/errors.js';
import { type CancelRequest, type JobRecord, isValidName, parseId, makeId, SCHEMA_VERSION } from '../domain/job.js';

/** Where state lives: $JOBQ_HOME, else $XDG_STATE_HOME/jobq, else ~/.local/state/jobq. */
export function stateHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.JOBQ_HOME) return path.resolve(env.JOBQ_HOME);
  const xdg = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state');
  return path.join(xdg, 'jobq');
}

/** A job's directory and the files in it. */
export interface JobPaths {
  dir: string;
  record: string;
  log: string;
  cancel: string;
  lock: string;
}

/** One state dir, checked for ownership and permissions before any use. */
export class Store {
  readonly home: string;
  readonly jobsDir: string;
  readonly activeDir: string;
  readonly eventsLog: string;

  private constructor(home: string) {
    this.home = home;
    this.jobsDir = path.join(home, 'jobs');
    this.activeDir = path.join(home, 'active');
    this.eventsLog = path.join(home, 'events.log');
  }

  /** Opens (creating 0700 if needed) the state dir; refuses one another user owns or others can write. */
  static open(home = stateHome(), opts: { create?: boolean } = { create: true }): Store {
    const store = new Store(home);
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
    if (opts.create) {
      for (const d of [store.jobsDir, store.activeDir]) {
        try {
          fs.mkdirSync(d, { mode: 0o700 });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('create', d, e);
        }
      }
    }
    return store;
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

  /** Removes a job's directory and index entry entirely (failed creation, prune). */
  removeJob(id: string): void {
    fs.rmSync(this.paths(id).dir, { recursive: true, force: true });
    this.setActive(id, false);
  }

  /** Writes the record atomically: temp file, fsync, rename; a reader sees the old or the new, never half. */
  writeRecord(rec: JobRecord): void {
    writeFileAtomic(this.paths(rec.id).record, JSON.stringify(rec, null, 2) + '\n');
  }

  /** Reads a record; throws a one-line error naming the file if it is missing or broken. */
  readRecord(id: string): JobRecord {
    const file = this.paths(id).record;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new JobqError('NOT_FOUND', `no record for job ${id} (${file} missing)`);
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
    if (rec.schema > SCHEMA_VERSION) {
      throw new JobqError('IO', `record ${file} has schema ${rec.schema}, newer than this jobq understands (${SCHEMA_VERSION})`);
    }
    return rec;
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
    const keyed: Array<[string, string]> = [];
    for (const n of names) {
      const p = parseId(n);
      if (p) keyed.push([p.sortKey, n]);
    }
    keyed.sort((a, b) => (a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : a[1] < b[1] ? 1 : -1));
    return keyed.map((k) => k[1]);
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

  /** Adds or removes a job from the active index. */
  setActive(id: string, active: boolean): void {
    const p = path.join(this.activeDir, id);
    if (active) {
      fs.writeFileSync(p, '', { mode: 0o600 });
    } else {
      fs.rmSync(p, { force: true });
    }
  }

  /** Resolves NAME (its latest job) or an exact id. */
  resolve(ref: string): string {
    if (parseId(ref) && fs.existsSync(path.join(this.jobsDir, ref))) return ref;
    if (!isValidName(ref)) {
      throw new JobqError('BAD_NAME', `invalid job name or id ${JSON.stringify(ref).slice(0, 80)}`);
    }
    const latest = this.listIds().find((id) => parseId(id)!.name === ref && fs.existsSync(this.paths(id).record));
    if (!latest) throw new JobqError('NOT_FOUND', `no job named or with id '${ref}' (see: jobq status --all)`);
    return latest;
  }

  /** Leaves a cancel request beside a job for its supervisor to fold into the final state. */
  writeCancel(id: string, req: CancelRequest): void {
    writeFileAtomic(this.paths(id).cancel, JSON.stringify(req) + '\n');
  }

  /** The cancel request left for a job, if any. */
  readCancel(id: string): CancelRequest | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.paths(id).cancel, 'utf8')) as CancelRequest;
    } catch {
      return undefined;
    }
  }

  /** Runs fn under the job's lock (proper-lockfile, loaded only when needed). */
  async withLock<T>(id: string, fn: () => Promise<T> | T, waitMs = 30_000): Promise<T> {
    const { default: lockfile } = await import('proper-lockfile');
    const p = this.paths(id);
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(p.dir, {
        lockfilePath: p.lock,
        realpath: false,
        stale: 10_000,
        retries: { retries: Math.ceil(waitMs / 100), minTimeout: 50, maxTimeout: 100, factor: 1.2 },
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ELOCKED') throw new JobqError('IO', `job ${id} is busy: another jobq holds ${p.lock}; try again`);
      throw ioError('lock', p.lock, e);
    }
    try {
      return await fn();
    } finally {
      await release().catch(() => undefined);
    }
  }
}

/** Atomic replace: write a 0600 temp file (never through a symlink), fsync, rename over the target. */
export function writeFileAtomic(file: string, data: string): void {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw ioError('write', file, e);
  }
}

/** Opens a log for appending, refusing a symlink planted at its path; mode 0600. */
export function openLogAppend(file: string): number {
  try {
    return fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new JobqError('UNSAFE', `refusing log ${file}: it is a symlink`);
    throw ioError('open log', file, e);
  }
}
