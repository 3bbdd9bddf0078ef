// Records an earlier jobq wrote (test/fixtures/records) read by this one: what they said is kept, --json shows them as
// it always has, and a record is rewritten in the lowest schema that holds it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type JobRecord, SCHEMA_VERSION } from '../../src/domain/job.js';
import * as life from '../../src/domain/lifecycle.js';
import { jobJson } from '../../src/output/json.js';
import { Store } from '../../src/store/store.js';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'records');
const fixture = (name: string) => JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8'));

let home: string;
let store: Store;

beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-old-'));
  store = Store.open(home);
});
afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

/** Puts a fixture where an earlier jobq would have left it; returns its id. */
function plant(name: string, patch: Record<string, unknown> = {}): string {
  const rec = { ...fixture(name), ...patch };
  fs.mkdirSync(path.join(home, 'jobs', rec.id), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(home, 'jobs', rec.id, 'job.json'), JSON.stringify(rec, null, 2), { mode: 0o600 });
  return rec.id;
}

const onDisk = (id: string) => JSON.parse(fs.readFileSync(store.paths(id).record, 'utf8'));
const asJson = (rec: JobRecord) => jobJson({ rec, state: rec.state, supervisorAlive: false }) as Record<string, unknown>;

describe('records of earlier schemas', () => {
  it("schema 2's Slurm ids become a placement; --json shows them under `slurm` exactly as before", () => {
    for (const [name, placement] of [
      [
        'schema2-slurm-array.json',
        { id: '12_3', cluster: 'linux', state: 'RUNNING', options: ['--partition=gpu'], ids: { jobId: '12', arrayJobId: '12', arrayTaskId: 3 } },
      ],
      ['schema2-slurm-pending.json', { id: '20', cluster: 'linux', state: 'PENDING', ids: { jobId: '20' } }],
    ] as const) {
      const old = fixture(name);
      const rec = store.readRecord(plant(name));
      expect(rec.placement, name).toEqual(placement);
      expect(rec, name).not.toHaveProperty('slurm');
      // Everything else as it was written.
      const { slurm: _s, ...rest } = old;
      expect(rec, name).toMatchObject(rest);
      const json = asJson(rec);
      expect(json.slurm, name).toEqual(old.slurm);
      expect(json, name).not.toHaveProperty('placement');
      expect(json.schema, name).toBe(2);
    }
  });

  it('a change to an old Slurm record writes schema 3 with its placement (and its new word), and reads back the same', async () => {
    const id = plant('schema2-slurm-array.json');
    const ended = {
      status: 'succeeded',
      startedAt: '2026-11-20T09:31:40.000Z',
      endedAt: '2026-11-20T10:02:00.000Z',
      durationMs: 1_820_000,
      exitCode: 0,
      signal: null,
    } as const;
    const t = await store.transition(id, life.fromPlace(ended, 'COMPLETED'));
    expect(t.changed).toBe(true);
    const disk = onDisk(id);
    expect(disk.schema).toBe(SCHEMA_VERSION);
    expect(disk).not.toHaveProperty('slurm');
    expect(disk.placement).toMatchObject({ id: '12_3', state: 'COMPLETED', ids: { arrayTaskId: 3 } });
    expect(store.readRecord(id)).toEqual({ ...t.rec, schema: 3 });
    expect(asJson(store.readRecord(id)).slurm).toEqual({ ...fixture('schema2-slurm-array.json').slurm, slurmState: 'COMPLETED' });
  });

  it('a local record of schema 1 reads as it is, and is written back as schema 2 (a supervisor of the last jobq still reads it)', async () => {
    const id = plant('schema1-local.json');
    const rec = store.readRecord(id);
    expect(rec).toEqual(fixture('schema1-local.json'));
    expect(asJson(rec)).not.toHaveProperty('slurm');
    // A live one (a final record is never rewritten).
    const live = plant('schema1-local.json', { id: 'train_20260901_080001', state: { status: 'queued', since: '2026-09-01T08:00:00.000Z' } });
    const t = await store.transition(live, (r) => ({ ...r, priority: 1 }));
    expect(t.changed).toBe(true);
    expect(onDisk(live)).toMatchObject({ schema: 2, priority: 1 });
  });

  it('a record of a schema newer than this jobq is refused in one line and left as it is', () => {
    const id = plant('schema2-slurm-pending.json', { schema: SCHEMA_VERSION + 1 });
    const before = fs.readFileSync(store.paths(id).record, 'utf8');
    expect(() => store.readRecord(id)).toThrow(new RegExp(`has schema ${SCHEMA_VERSION + 1}, unknown to this jobq \\(schema ${SCHEMA_VERSION}\\)`));
    expect(fs.readFileSync(store.paths(id).record, 'utf8')).toBe(before);
  });
});
