// The store on real files: permissions, atomic writes, ids under contention, listing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openLogAppend, Store, writeFileAtomic } from '../../src/store/store.js';

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
