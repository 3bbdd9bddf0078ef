// Pure rules: units, names and ids, exit classification, environment building, redaction.
import { describe, expect, it } from 'vitest';
import { BUILTIN_PRESETS, buildJobEnv, parseEnvPairs } from '../../src/domain/env.js';
import { classifyExit, exitCodeOf, makeId, type Outcome, parseId, redactEnv, validateName } from '../../src/domain/job.js';
import { formatDuration, formatSize, formatSizesApart, formatSpan, parseDuration, parseSignal, parseSize } from '../../src/domain/units.js';

describe('units', () => {
  it('parses and formats durations, sizes and signals', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('10')).toBe(10_000);
    expect(parseDuration('1.5m')).toBe(90_000);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(() => parseDuration('soon')).toThrow(/invalid duration 'soon'/);
    expect(formatDuration(850)).toBe('850ms');
    expect(formatDuration(184_000)).toBe('3m04s');
    expect(formatDuration(7_500_000)).toBe('2h05m');
    expect(parseSize('100M')).toBe(100 * 1024 ** 2);
    expect(parseSize('8G')).toBe(8 * 1024 ** 3);
    expect(parseSize('512KiB')).toBe(512 * 1024);
    expect(() => parseSize('0')).toThrow(/above zero/);
    expect(() => parseSize('lots')).toThrow(/invalid size/);
    expect(formatSize(1536)).toBe('1.5K');
    expect(formatSizesApart(80.1 * 1024 ** 3, 80 * 1024 ** 3)).toEqual(['80.1G', '80.0G']);
    expect(formatSizesApart(30 * 1024 ** 3, 20 * 1024 ** 3)).toEqual(['30G', '20G']);
    expect(formatSizesApart(1025, 1024)).toEqual(['1025B', '1024B']);
    expect(parseSignal('term')).toBe('SIGTERM');
    expect(parseSignal('SIGUSR1')).toBe('SIGUSR1');
    expect(parseSignal('9')).toBe('SIGKILL');
    expect(() => parseSignal('SIGNOPE')).toThrow(/unknown signal/);
  });
});

describe('names and ids', () => {
  it('accepts plain names and rejects anything that could escape or confuse', () => {
    for (const ok of ['train', 'a', 'etl-2026.v2', 'A_b-c.d', 'x'.repeat(64)]) expect(validateName(ok)).toBe(ok);
    for (const bad of ['', '..', 'a..b', '../x', 'a/b', '-x', '.hidden', 'a b', 'a\nb', 'a\0b', 'x'.repeat(65), 'é']) {
      expect(() => validateName(bad), JSON.stringify(bad)).toThrow(/invalid job name/);
    }
  });

  it('makes sortable ids with a suffix for the same second, and parses them back', () => {
    const d = new Date(2026, 10, 24, 13, 5, 9);
    expect(makeId('train', d, 1)).toBe('train_20261124_130509');
    expect(makeId('train', d, 3)).toBe('train_20261124_130509-3');
    expect(parseId('my_job_20261124_130509-12')).toEqual({ name: 'my_job', sortKey: '202611241305090012' });
    expect(parseId('train')).toBeNull();
    expect(parseId('../x_20261124_130509')).toBeNull();
    expect(parseId('a..b_20261124_130509')).toBeNull();
  });
});

describe('exit classification', () => {
  const base: Outcome = { exitCode: 0, signal: null, endedAt: 't', durationMs: 1 };
  it('the cause of the end wins over the exit code: only an exit 0 on its own is success', () => {
    expect(classifyExit('s', base, {}).status).toBe('succeeded');
    expect(classifyExit('s', base, { cancel: { at: 't', by: 'me', signal: 'SIGTERM' } })).toMatchObject({ status: 'cancelled', exitCode: 0 });
    expect(classifyExit('s', base, { timeout: 'wall' })).toMatchObject({ status: 'timeout', exitCode: 0 });
    // A child killed by an OOM while the job itself exits 0: the job succeeded; a cancel or timeout that ended it wins.
    expect(classifyExit('s', base, { oom: true }).status).toBe('succeeded');
    expect(classifyExit('s', { ...base, exitCode: 1 }, { oom: true }).status).toBe('oom');
    expect(classifyExit('s', { ...base, exitCode: null, signal: 'SIGTERM' }, { oom: true, cancel: { at: 't', by: 'me', signal: 'SIGTERM' } }).status).toBe(
      'cancelled',
    );
    expect(classifyExit('s', { ...base, exitCode: 1 }, {}).status).toBe('failed');
    expect(classifyExit('s', { ...base, exitCode: null, signal: 'SIGKILL' }, { oom: true }).status).toBe('oom');
    expect(classifyExit('s', { ...base, exitCode: null, signal: 'SIGTERM' }, { timeout: 'idle' })).toMatchObject({ status: 'timeout', reason: 'idle' });
    expect(classifyExit('s', { ...base, exitCode: null, signal: 'SIGTERM' }, { cancel: { at: 't', by: 'me', signal: 'SIGTERM' } }).status).toBe('cancelled');
    expect(classifyExit('s', { ...base, exitCode: null, signal: 'SIGKILL' }, {})).toMatchObject({ status: 'killed', note: 'SIGKILL, possibly OOM' });
    expect(classifyExit('s', { ...base, exitCode: null, signal: 'SIGKILL' }, { cgroupKnown: true })).not.toHaveProperty('note');
  });

  it('maps states to the exit codes wait returns', () => {
    expect(exitCodeOf({ status: 'succeeded', startedAt: 's', ...base })).toBe(0);
    expect(exitCodeOf({ status: 'failed', startedAt: 's', ...base, exitCode: 7 })).toBe(7);
    expect(exitCodeOf({ status: 'killed', startedAt: 's', ...base, exitCode: null, signal: 'SIGTERM' })).toBe(143);
    expect(exitCodeOf({ status: 'failed-to-start', error: 'x', at: 't' })).toBe(127);
    expect(exitCodeOf({ status: 'lost', reason: 'x', detectedAt: 't' })).toBe(1);
    // Ended by jobq, yet the handler exited 0: never 0.
    expect(exitCodeOf({ status: 'timeout', reason: 'wall', startedAt: 's', ...base })).toBe(124);
    // As timeout(1): 124 whatever ended it (TERM, KILL after the grace, or a handler's own exit code).
    expect(exitCodeOf({ status: 'timeout', reason: 'wall', startedAt: 's', ...base, exitCode: null, signal: 'SIGKILL' })).toBe(124);
    expect(exitCodeOf({ status: 'timeout', reason: 'idle', startedAt: 's', ...base, exitCode: 3 })).toBe(124);
    expect(formatSpan(5000)).toBe('5s');
    expect(formatSpan(6 * 3_600_000)).toBe('6h');
    expect(formatSpan(5_400_000)).toBe('1h30m');
    expect(formatSpan(1500)).toBe('1s500ms');
    // What it prints reads back.
    for (const ms of [5000, 6 * 3_600_000, 5_400_000, 1500, 90_061_001]) expect(parseDuration(formatSpan(ms))).toBe(ms);
    expect(() => parseDuration('1h30')).toThrow(/invalid/);
    expect(() => parseDuration('30m1h x')).toThrow(/invalid/);
    expect(exitCodeOf({ status: 'cancelled', cancel: { at: 't', by: 'me', signal: 'SIGINT' }, startedAt: 's', ...base })).toBe(130);
    expect(exitCodeOf({ status: 'cancelled', cancel: { at: 't', by: 'me', signal: 'SIGTERM' }, startedAt: 's', ...base, exitCode: 3 })).toBe(3);
  });
});

describe('environment', () => {
  const spec = { id: 'j_20261124_000000', name: 'j', log: '/l', presets: [] as string[], presetTable: BUILTIN_PRESETS, env: {}, guardVars: [] as string[] };
  it("adds jobq variables on top of the caller's, presets under explicit --env", () => {
    const { env, added } = buildJobEnv(
      { PATH: '/bin', HOME: '/h' },
      { ...spec, presets: ['memsafe'], env: { OMP_NUM_THREADS: '4' }, guardVars: ['GRAV_BG_JOB'] },
    );
    expect(env.PATH).toBe('/bin');
    expect(added).toMatchObject({
      BG_JOB: '1',
      GRAV_BG_JOB: '1',
      JOBQ_JOB_ID: 'j_20261124_000000',
      JOBQ_JOB_NAME: 'j',
      JOBQ_LOG: '/l',
      PYTHONUNBUFFERED: '1',
      OMP_NUM_THREADS: '4',
      MALLOC_ARENA_MAX: '2',
    });
  });
  it("keeps the caller's PYTHONUNBUFFERED, rejects unknown presets and bad pairs", () => {
    expect(buildJobEnv({ PYTHONUNBUFFERED: '0' }, spec).env.PYTHONUNBUFFERED).toBe('0');
    expect(() => buildJobEnv({}, { ...spec, presets: ['nope'] })).toThrow(/unknown preset 'nope'/);
    expect(() => parseEnvPairs(['1X=2'])).toThrow(/NAME=VALUE/);
    expect(parseEnvPairs(['A=b=c', 'E='])).toEqual({ A: 'b=c', E: '' });
  });
  it('redacts secret-looking names only', () => {
    expect(redactEnv({ GITHUB_TOKEN: 'x', MY_SECRET: 'x', DB_PASSWORD: 'x', API_KEY: 'x', AWS_CREDENTIALS: 'x', EPOCHS: '3' })).toEqual({
      GITHUB_TOKEN: '<redacted>',
      MY_SECRET: '<redacted>',
      DB_PASSWORD: '<redacted>',
      API_KEY: '<redacted>',
      AWS_CREDENTIALS: '<redacted>',
      EPOCHS: '3',
    });
  });
});
