// The Slurm mapping as pure rules: jobq's flags to sbatch options, Slurm's states to jobq's.
import { describe, expect, it } from 'vitest';
import type { RunSpec } from '../../../src/backend/backend.js';
import { mapState, sbatchOptions } from '../../../src/backend/slurm/runner.js';
import type { JobRecord } from '../../../src/domain/job.js';

const spec = (over: Partial<RunSpec> = {}): RunSpec => ({
  name: 'train',
  argv: ['python', 'train.py'],
  cwd: '/work',
  callerEnv: {},
  presets: [],
  presetTable: {},
  env: {},
  guardVars: [],
  isolationMode: 'auto',
  oomScoreAdj: 0,
  graceMs: 10_000,
  stopSignal: 'SIGTERM',
  ...over,
});
const rec = { createdAt: '2026-11-25T10:00:00.000Z' } as JobRecord;

describe('sbatch options', () => {
  it('name, cwd, export, memory, time, warning signal, GPUs, dependencies and extra options', () => {
    const o = sbatchOptions(
      spec({ memLimitBytes: 8 * 1024 ** 3, timeoutMs: 90 * 60_000 + 1, warnSignal: { signal: 'SIGUSR1', leadMs: 60_000 }, submitOptions: ['--partition=gpu'] }),
      { memBytes: 8 * 1024 ** 3, gpus: 2 },
      [{ jobId: '11' }, { jobId: '12', arrayJobId: '12', arrayTaskId: 3 }, { jobId: '13' }],
      ['ok', 'ok', 'any'],
    );
    expect(o).toEqual([
      '--job-name=train',
      '--chdir=/work',
      '--export=ALL',
      '--open-mode=append',
      '--mem=8192M',
      '--time=0-01:31:00',
      '--signal=B:10@60',
      '--gres=gpu:2',
      '--dependency=afterok:11:12,afterany:13',
      '--partition=gpu',
    ]);
  });
});

describe('Slurm states', () => {
  const j = (state: string, exitCode = '0:0', reason = 'None') => ({ state, exitCode, reason, start: '2026-11-25T10:00:05', end: '2026-11-25T10:01:05' });
  const cancel = { at: 't', by: 'me', signal: 'SIGTERM' };
  it('map to jobq states, the cause winning over the exit code', () => {
    expect(mapState(rec, j('PENDING', '0:0', 'Resources'))).toMatchObject({ status: 'queued' });
    expect(mapState(rec, j('RUNNING'))).toMatchObject({ status: 'running' });
    expect(mapState(rec, j('COMPLETING'))).toMatchObject({ status: 'running' });
    expect(mapState(rec, j('SUSPENDED'))).toMatchObject({ status: 'paused' });
    expect(mapState(rec, j('COMPLETED'))).toMatchObject({ status: 'succeeded', exitCode: 0, durationMs: 60_000 });
    expect(mapState(rec, j('FAILED', '3:0'))).toMatchObject({ status: 'failed', exitCode: 3 });
    expect(mapState(rec, j('FAILED', '0:15'))).toMatchObject({ status: 'killed', signal: 'SIGTERM' });
    expect(mapState(rec, j('FAILED', '0:15', 'JobLaunchFailure'), cancel)).toMatchObject({ status: 'cancelled' });
    expect(mapState(rec, j('CANCELLED by 0', '0:15'))).toMatchObject({ status: 'cancelled' });
    expect(mapState(rec, j('TIMEOUT', '0:9'))).toMatchObject({ status: 'timeout', reason: 'wall' });
    expect(mapState(rec, j('OUT_OF_MEMORY', '0:125'))).toMatchObject({ status: 'oom' });
    // A cancel asked for after the job had ended (jobq could not reach Slurm then) did not end it.
    const late = { ...cancel, at: '2026-11-25T10:01:20.000Z' };
    expect(mapState(rec, j('COMPLETED'), late)).toMatchObject({ status: 'succeeded' });
    expect(mapState(rec, j('FAILED', '3:0'), late)).toMatchObject({ status: 'failed', exitCode: 3 });
    expect(mapState(rec, j('COMPLETED'), { ...cancel, at: '2026-11-25T10:01:05.400Z' })).toMatchObject({ status: 'cancelled' });
    // Cancelled while pending: Slurm's start time and 0:0 are not a run.
    const never = mapState(rec, { ...j('CANCELLED', '0:0', 'BeginTime'), ran: false }, cancel);
    expect(never).toEqual({ status: 'cancelled', cancel, exitCode: null, signal: null, endedAt: '2026-11-25T10:01:05.000Z', durationMs: 0 });
    for (const s of ['NODE_FAIL', 'BOOT_FAIL', 'PREEMPTED']) expect(mapState(rec, j(s))).toMatchObject({ status: 'lost', reason: `Slurm says ${s}` });
  });
});
