// Synthetic records as a crash, a reboot or a bad disk would leave them, written in the store's own format.
import fs from 'node:fs';
import path from 'node:path';
import { type JobRecord, type JobState, makeId, SCHEMA_VERSION } from '../../src/domain/job.js';

let seq = 0;

/** A record as jobq writes it, in memory: the fields every job has, then `patch` (its state at least). */
export function makeRecord(patch: Partial<JobRecord> & { state: JobState }): JobRecord {
  return {
    schema: SCHEMA_VERSION,
    id: 'j_20261205_100000',
    name: 'j',
    argv: ['sleep', '1'],
    cwd: '/',
    env: { added: {}, presets: [] },
    host: 'test',
    user: 'test',
    jobqVersion: 'test',
    log: '/dev/null',
    createdAt: '2026-12-05T09:59:59.000Z',
    launcher: { pid: 999_999_1, startTicks: 1 },
    protection: { isolationMode: 'none', isolation: 'none', graceMs: 1000, stopSignal: 'SIGTERM', warnings: [] },
    ...patch,
  };
}

/** Writes a record straight into a state dir (as if an earlier jobq left it) and returns its id. */
export function plantRecord(home: string, name: string, patch: Partial<JobRecord> & { state: JobState }, when = new Date()): string {
  const id = makeId(name, when, ++seq + 1);
  const dir = path.join(home, 'jobs', id);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.mkdirSync(path.join(home, 'active'), { recursive: true, mode: 0o700 });
  const rec = makeRecord({ id, name, log: path.join(dir, 'output.log'), createdAt: when.toISOString(), ...patch });
  fs.writeFileSync(path.join(dir, 'job.json'), JSON.stringify(rec), { mode: 0o600 });
  fs.writeFileSync(rec.log, '', { mode: 0o600 });
  if (!['succeeded', 'failed', 'killed', 'cancelled', 'timeout', 'oom', 'failed-to-start', 'skipped', 'lost'].includes(rec.state.status)) {
    fs.writeFileSync(path.join(home, 'active', id), '');
  }
  if (rec.state.status === 'queued') {
    fs.mkdirSync(path.join(home, 'waiting'), { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(home, 'waiting', id), '');
  }
  return id;
}

/** Start time (clock ticks) of a live pid, read as jobq reads it. */
export function startTicks(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[19]);
}
