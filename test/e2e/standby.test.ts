// Issue 15: `run` starts the job's supervisor beside the CLI (bin/jobq-run), so the two Node starts overlap. The
// standby must be the job's supervisor in every way the spawned one is, never linger, and never be trusted on
// anyone's word but the launcher's.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { LEAN } from '../../src/process/spawn.js';
import { alive, BIN, bystander, pollUntil, ROOT, start, useWorld } from '../helpers/jobq.js';

const w = useWorld();

/** Live processes of this test's world that are a supervisor waiting as a standby (or started as one). */
function standbys(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map(Number)
    .filter((pid) => {
      try {
        return (
          alive(pid) &&
          fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').includes('--standby') &&
          fs.readFileSync(`/proc/${pid}/environ`, 'latin1').includes(`JOBQ_TEST_TAG=${w.tag}`)
        );
      } catch {
        return false;
      }
    });
}

const argvOf = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
const envOf = (pid: number) => fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
const statOf = (pid: number) => {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
};
const logOf = (id: string) => fs.readFileSync(w.record(id).log, 'utf8');
const finished = (id: string) => pollUntil(() => ['succeeded', 'failed'].includes(w.record(id).state.status), 20_000, `${id} to end`);

describe('run through the standby', () => {
  it('the job is supervised by the standby: own session, cwd /, stdio /dev/null, no Node settings, lean flags', async () => {
    const id = await start(w, 'sb', ['sleep', '30'], ['--env', 'X=1']);
    const rec = w.record(id);
    const sup = rec.supervisor.pid as number;
    const argv = argvOf(sup);
    expect(argv).toContain('--standby');
    // The job was not handed over on the command line: nothing to read there.
    expect(argv).not.toContain(id);
    expect(argv.slice(1, 1 + LEAN.length)).toEqual(LEAN);
    const [, ppid, pgid, sid] = statOf(sup);
    expect(Number(sid)).toBe(sup);
    expect(Number(pgid)).toBe(sup);
    expect(Number(ppid)).not.toBe(process.pid);
    expect(fs.readlinkSync(`/proc/${sup}/cwd`)).toBe('/');
    for (const fd of [0, 1, 2]) expect(fs.readlinkSync(`/proc/${sup}/fd/${fd}`)).toBe('/dev/null');
    // The pipe its job came down is closed: every pipe left (not inherited from this test) is one of node's own,
    // both ends held in the process.
    const pipesOf = (pid: number | 'self') =>
      fs
        .readdirSync(`/proc/${pid}/fd`)
        .map((fd) => {
          try {
            return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
          } catch {
            return '';
          }
        })
        .filter((l) => l.startsWith('pipe:'));
    const inherited = new Set(pipesOf('self'));
    const own = pipesOf(sup).filter((p) => !inherited.has(p));
    expect(own.length).toBeGreaterThan(0);
    for (const p of own)
      expect(
        own.filter((q) => q === p),
        p,
      ).toHaveLength(2);
    expect(rec.state.status).toBe('running');
    expect(alive(rec.job.pid)).toBe(true);
  });

  it('Node settings and BASH_ENV reach the job, not the supervisor; bash sourced nothing; JOBQ_STANDBY reaches no one', async () => {
    const marker = path.join(w.home, 'sourced');
    const bashEnv = path.join(w.home, 'bash_env');
    fs.writeFileSync(bashEnv, `touch ${marker}\n`);
    const r = await w.run(['run', 'envs', '-q', '--', 'sh', '-c', 'env; sleep 30'], {
      env: { BASH_ENV: bashEnv, NODE_OPTIONS: '--max-old-space-size=300' },
    });
    expect(r.exitCode).toBe(0);
    const id = r.stdout.trim();
    await pollUntil(() => logOf(id).includes('BG_JOB=1'), 10_000, 'the job to print its environment');
    const jobEnv = logOf(id).split('\n');
    expect(jobEnv).toContain(`BASH_ENV=${bashEnv}`);
    expect(jobEnv).toContain('NODE_OPTIONS=--max-old-space-size=300');
    expect(jobEnv.some((l) => l.startsWith('JOBQ_STANDBY') || l.startsWith('JOBQ_CALLER_BASH_ENV'))).toBe(false);
    const supEnv = envOf(w.record(id).supervisor.pid);
    expect(argvOf(w.record(id).supervisor.pid)).toContain('--standby');
    expect(supEnv.some((l) => l.startsWith('NODE_OPTIONS='))).toBe(false);
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('a run that starts nothing now leaves no standby behind (usage error, help, queued, conflict)', async () => {
    const blocker = await start(w, 'blocker', ['sleep', '30']);
    await w.run(['queue', 'pause', 'held']);
    const runs = [
      ['run', 'bad', '--'],
      ['run', '--help'],
      ['run', 'later', '-q', '--after', blocker, '--', 'true'],
      ['run', 'waits', '-q', '--queue', 'held', '--', 'true'],
      ['run', 'blocker', '--', 'true'],
    ];
    const codes = [];
    for (const args of runs) codes.push((await w.run(args)).exitCode);
    expect(codes).toEqual([2, 0, 0, 0, 1]);
    // Only the blocker's supervisor (a standby once) lives; each unused standby left when its CLI did.
    const blockerSup = w.record(blocker).supervisor.pid;
    await pollUntil(() => standbys().every((p) => p === blockerSup), 10_000, 'unused standbys to exit');
    expect(standbys()).toEqual([blockerSup]);
  });

  it('JOBQ_STANDBY=0 starts the supervisor as before, after the CLI (its argv names the job)', async () => {
    const r = await w.run(['run', 'old', '-q', '--', 'sleep', '30'], { env: { JOBQ_STANDBY: '0' } });
    expect(r.exitCode).toBe(0);
    const id = r.stdout.trim();
    const argv = argvOf(w.record(id).supervisor.pid);
    expect(argv).toContain(id);
    expect(argv).not.toContain('--standby');
    expect(standbys()).toEqual([]);
  });
});

describe('a standby is taken on the launcher word only', () => {
  it('JOBQ_STANDBY naming a process that is not our child (with a pipe on fd 4) is ignored and left alone', async () => {
    const other = bystander();
    const r = await execa(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'run', 'planted', '-q', '--', 'sh', '-c', 'env; sleep 30'], {
      env: { ...w.env, JOBQ_STANDBY: String(other) },
      stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'pipe'],
      reject: false,
      timeout: 60_000,
    });
    expect(r.exitCode).toBe(0);
    const id = String(r.stdout).trim();
    const rec = w.record(id);
    expect(rec.supervisor.pid).not.toBe(other);
    expect(argvOf(rec.supervisor.pid)).toContain(id);
    expect(alive(other)).toBe(true);
    await pollUntil(() => logOf(id).includes('BG_JOB=1'), 10_000, 'the job to print its environment');
    expect(logOf(id)).not.toContain('JOBQ_STANDBY');
  });
});

describe('run --queue into a free slot', () => {
  it('is supervised by the standby, which adopts the claim the round made', async () => {
    const id = await start(w, 'qsb', ['sleep', '30'], ['--queue', 'free']);
    const rec = w.record(id);
    expect(rec.state.status).toBe('running');
    expect(argvOf(rec.supervisor.pid)).toContain('--standby');
  });
});

describe('SIGKILL around the hand-off', () => {
  const steps = [
    ['before its job comes (the hand-off finds no reader)', 'standby'],
    ['with its job handed over, before starting it', 'standby-handed'],
    ['holding its job (spawned, in its cgroup), before releasing it', 'held'],
  ];
  it.each([...steps.map(([what, step]) => [what, step, '']), ...steps.map(([what, step]) => [what, step, ' (run --queue, a free slot)'])])(
    'a standby that dies %s: the job starts all the same, once%s',
    async (_, step, queued) => {
      const marker = path.join(w.home, 'crashed');
      const at = step === 'held' ? `held:${marker}` : step;
      const via = queued ? ['--queue', 'free'] : [];
      const r = await w.run(['run', 'lone', '-q', ...via, '--', 'sh', '-c', 'echo ran >> ran.txt; echo ran'], { env: { JOBQ_TEST_CRASH_AT: at }, cwd: w.home });
      if (step === 'held') expect(fs.existsSync(marker)).toBe(true);
      expect(r.exitCode, r.stderr).toBe(0);
      const id = r.stdout.trim();
      // Started by a supervisor `run` spawned in its place, before `run` returned (a queued one is not left to the dispatcher).
      expect(['running', 'succeeded']).toContain(w.record(id).state.status);
      await finished(id);
      expect(fs.readFileSync(path.join(w.home, 'ran.txt'), 'utf8')).toBe('ran\n');
      expect(w.record(id).state).toMatchObject({ status: 'succeeded', exitCode: 0 });
      expect(logOf(id).trim()).toBe('ran');
    },
  );

  it('the CLI killed right after the hand-off: the standby still runs the job to its recorded end', async () => {
    const r = await w.run(['run', 'orphan', '--', 'sh', '-c', 'sleep 0.3; echo done'], { env: { JOBQ_TEST_CRASH_AT: 'handed-off' } });
    expect(r.exitCode).not.toBe(0);
    const [id] = w.ids();
    await finished(id!);
    expect(w.record(id!).state).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(logOf(id!).trim()).toBe('done');
  });
});

describe('the launcher', () => {
  it('bin/jobq-run starts the standby with the flags spawn.ts gives a spawned supervisor', () => {
    const script = fs.readFileSync(path.join(ROOT, 'bin', 'jobq-run'), 'utf8');
    const m = /setsid node ((?:--\S+ )*)"\$d\/supervisor\.js" --standby/.exec(script);
    expect(m).not.toBeNull();
    expect(m![1]!.trim().split(' ')).toEqual(LEAN);
  });

  it('works through a symlink to bin/jobq, as npm installs it', async () => {
    const link = path.join(w.home, 'jobq');
    fs.symlinkSync(BIN, link);
    const r = await execa(link, ['run', 'linked', '-q', '--', 'sleep', '30'], { env: w.env, reject: false, timeout: 60_000 });
    expect(r.exitCode).toBe(0);
    expect(argvOf(w.record(String(r.stdout).trim()).supervisor.pid)).toContain('--standby');
  });
});

describe('the caller keeps what is its own', () => {
  it('a lock the caller holds on another descriptor is free once run returns (the standby keeps no fd of the caller)', async () => {
    const lock = path.join(w.home, 'lock');
    const script = `( flock -n 9 || exit 3; "${BIN}" run lk -q -- sleep 30 >/dev/null ) 9>"${lock}"; flock -n "${lock}" true && echo free`;
    const r = await execa('sh', ['-c', script], { env: w.env, reject: false, timeout: 60_000 });
    expect(r.stdout.trim(), r.stderr).toBe('free');
    const [id] = w.ids();
    expect(argvOf(w.record(id!).supervisor.pid)).toContain('--standby');
  });

  it('the job gets the environment it gets without the standby, whatever bash would make of it', async () => {
    const odd = { SHELLOPTS: 'xtrace', BASHOPTS: 'extglob', 'BASH_FUNC_cd%%': '() { echo hijack; }', _: '/some/where', OLDPWD: '/no/such/dir' };
    const envOfJob = async (name: string, extra: Record<string, string>) => {
      const r = await w.run(['run', name, '-q', '--', 'sh', '-c', 'env; sleep 30'], { env: { ...odd, ...extra } });
      expect(r.exitCode, r.stderr).toBe(0);
      // bash -p must not have traced anything (SHELLOPTS=xtrace is the caller's, not the launcher's).
      expect(r.stderr).toBe('');
      const id = r.stdout.trim();
      await pollUntil(() => logOf(id).includes('BG_JOB=1'), 10_000, `${name} to print its environment`);
      return logOf(id)
        .split('\n')
        .filter((l) => l && !/^JOBQ_(JOB_ID|JOB_NAME|LOG)=/.test(l))
        .sort();
    };
    const viaStandby = await envOfJob('e1', {});
    const spawned = await envOfJob('e2', { JOBQ_STANDBY: '0' });
    expect(viaStandby).toEqual(spawned.filter((l) => l !== 'JOBQ_STANDBY=0'));
    expect(viaStandby).toContain('SHELLOPTS=xtrace');
    expect(viaStandby).toContain('_=/some/where');
  });

  it('where bash cannot make the pipe (no descriptor left for it), run starts the job alone, once', async () => {
    const r = await execa('sh', ['-c', `ulimit -n 60; exec "${BIN}" run ul -q -- sh -c 'echo ran'`], { env: w.env, reject: false, timeout: 60_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const id = r.stdout.trim();
    await finished(id);
    expect(w.record(id).state).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(logOf(id).trim()).toBe('ran');
  });

  it('a relative path to bin/jobq still gets the standby', async () => {
    const r = await execa('bin/jobq', ['run', 'rel', '-q', '--', 'sleep', '30'], { cwd: ROOT, env: w.env, reject: false, timeout: 60_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const sup = w.record(String(r.stdout).trim()).supervisor.pid;
    expect(argvOf(sup)).toContain('--standby');
    expect(fs.readlinkSync(`/proc/${sup}/cwd`)).toBe('/');
  });
});
