// The store and config on real files: permissions, atomic writes, ids under contention, listing, config precedence.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Store, writeFileAtomic, openLogAppend } from '../../src/store/store.js';
import { loadConfig } from '../../src/config/config.js';
import { capLog } from '../../src/output/logcap.js';
import { lastLinesOffset, lastLine } from '../../src/output/follow.js';

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
    const withRecord = (id: string) => (fs.writeFileSync(s.paths(id).record, '{}'), id);
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

describe('config', () => {
  it('merges built-in < user < project < env, with provenance', () => {
    const xdg = path.join(dir, 'xdg');
    fs.mkdirSync(path.join(xdg, 'jobq'), { recursive: true });
    fs.writeFileSync(path.join(xdg, 'jobq', 'config.json'), JSON.stringify({ grace: '30s', signal: 'INT', presets: { gpu: { CUDA_VISIBLE_DEVICES: '0' }, memsafe: { OMP_NUM_THREADS: '2' } } }));
    const proj = path.join(dir, 'proj', 'sub');
    fs.mkdirSync(proj, { recursive: true });
    fs.writeFileSync(path.join(dir, 'proj', '.jobq.json'), JSON.stringify({ grace: '5s', stateDir: './state' }));
    const { config, sources } = loadConfig(proj, { XDG_CONFIG_HOME: xdg });
    expect(config.graceMs).toBe(5000);
    expect(sources.graceMs).toBe(path.join(dir, 'proj', '.jobq.json'));
    expect(config.signal).toBe('SIGINT');
    expect(sources.signal).toBe(path.join(xdg, 'jobq', 'config.json'));
    expect(config.stateDir).toBe(path.join(dir, 'proj', 'state'));
    expect(config.presets.memsafe).toEqual({ OMP_NUM_THREADS: '2' });
    expect(config.presets.gpu).toEqual({ CUDA_VISIBLE_DEVICES: '0' });
    expect(sources.isolation).toBe('default');
    const withEnv = loadConfig(proj, { XDG_CONFIG_HOME: xdg, JOBQ_HOME: '/tmp/elsewhere' });
    expect(withEnv.config.stateDir).toBe('/tmp/elsewhere');
    expect(withEnv.sources.stateDir).toBe('env JOBQ_HOME');
  });

  it('a bad config file gives one line naming the file and the key', () => {
    const f = path.join(dir, '.jobq.json');
    for (const [body, key] of [
      ['{"grace": "forever"}', "key 'grace'"],
      ['{"colour": true}', "key 'colour': unknown key"],
      ['{"presets": {"x": {"A": 1}}}', "key 'presets.x.A'"],
      ['{"oomScoreAdj": 5000}', "key 'oomScoreAdj'"],
      ['{not json', 'bad config'],
    ] as const) {
      fs.writeFileSync(f, body);
      let msg = '';
      try {
        loadConfig(dir, { XDG_CONFIG_HOME: path.join(dir, 'none') });
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg).toContain(f);
      expect(msg).toContain(key);
      expect(msg.split('\n')).toHaveLength(1);
    }
  });
});

describe('log reading and capping', () => {
  it('finds the last N lines, with or without a trailing newline', () => {
    const f = path.join(dir, 'l');
    fs.writeFileSync(f, 'a\nb\nc\n');
    const fd = fs.openSync(f, 'r');
    expect(lastLinesOffset(fd, 6, 2)).toBe(2);
    expect(lastLinesOffset(fd, 6, 10)).toBe(0);
    expect(lastLinesOffset(fd, 6, 0)).toBe(6);
    fs.closeSync(fd);
    fs.writeFileSync(f, 'a\nb\rprogress 50%\rprogress 60%');
    expect(lastLine(f)).toBe('progress 60%');
  });

  it('caps a log in place, keeping the newest half behind a marker line', () => {
    const f = path.join(dir, 'big.log');
    fs.writeFileSync(f, Array.from({ length: 5000 }, (_, i) => `line ${i}`).join('\n') + '\n');
    const before = fs.statSync(f).size;
    const dropped = capLog(f, 20_000);
    const text = fs.readFileSync(f, 'utf8');
    expect(dropped).toBeGreaterThan(before - 11_000);
    expect(text).toMatch(/^\[jobq: \d+ bytes of older output dropped at .* \(log cap 20000 bytes\)\]\n line|^\[jobq: \d+ bytes of older output dropped at .* \(log cap 20000 bytes\)\]\nline \d+\n/);
    expect(text.endsWith('line 4999\n')).toBe(true);
    expect(fs.statSync(f).size).toBeLessThanOrEqual(10_200);
  });
});
