// Issue 9: the guarantees hold under the cases that broke 0.1.0 — long timeouts, handlers that exit 0, stopped
// jobs, fast writers, moved logs, full disks, stalled supervisors — and another user cannot steer root's jobq.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alive, BIN, bystander, gate, HAS_CGROUP, IS_ROOT, pollUntil, start, tmpDir, tmpPaths, useWorld } from '../helpers/jobq.js';
import { plantRecord, startTicks } from '../helpers/records.js';

const isRoot = IS_ROOT;
const hasCgroup = HAS_CGROUP;
const w = useWorld();

/** Runs a shell snippet as the unprivileged user `nobody` (the second user on the machine). */
function asNobody(script: string): void {
  execFileSync('runuser', ['-u', 'nobody', '--', 'sh', '-c', script], { stdio: 'ignore' });
}

const state = (id: string) => w.record(id).state;

describe('timeouts longer than Node timers hold', () => {
  it('--timeout 60d and a warning 55 days in (both past the 24.8-day timer limit) do not fire early', async () => {
    const job = ['sh', '-c', 'trap "echo got-usr1" USR1; while :; do sleep 0.05; done'];
    const id = await start(w, 'long', job, ['--timeout', '60d', '--timeout-signal', 'USR1@5d']);
    const rec = w.record(id);
    expect(rec.protection.timeoutMs).toBe(60 * 86_400_000);
    // 0.1.0 fired both after a few ms (Node clamps delays over 2^31-1 ms to 1 ms).
    await new Promise((r) => setTimeout(r, 1500));
    expect(state(id).status).toBe('running');
    expect(alive(rec.job.pid)).toBe(true);
    expect(fs.readFileSync(rec.log, 'utf8')).not.toContain('got-usr1');
  });

  it('accepts durations up to years and refuses beyond', async () => {
    expect((await w.run(['run', 'y', '--timeout', '2y', '-q', '--', 'true'])).exitCode).toBe(0);
    const r = await w.run(['run', 'y2', '--timeout', '500y', '--', 'true']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('the cause of the end wins over the exit code', () => {
  const trapper = ['sh', '-c', 'trap "echo handled; exit 0" TERM; while :; do sleep 0.05; done'];

  it('a timeout whose TERM handler exits 0 is a timeout (exit 0 kept), and wait says 124', async () => {
    const id = await start(w, 'tmo', trapper, ['--timeout', '1s']);
    const r = await w.run(['wait', id]);
    expect(state(id)).toMatchObject({ status: 'timeout', reason: 'wall', exitCode: 0 });
    expect(r.exitCode).toBe(124);
  });

  it('an idle timeout whose handler exits 0 is a timeout', async () => {
    const id = await start(w, 'idle', trapper, ['--idle-timeout', '700ms']);
    await w.run(['wait', id]);
    expect(state(id)).toMatchObject({ status: 'timeout', reason: 'idle', exitCode: 0 });
  });

  it('a cancel whose handler exits 0 is cancelled (exit 0 kept), and wait says 128+TERM', async () => {
    const id = await start(w, 'cnl', trapper);
    await w.run(['cancel', id]);
    expect(state(id)).toMatchObject({ status: 'cancelled', exitCode: 0 });
    expect((await w.run(['wait', id])).exitCode).toBe(143);
    expect(fs.readFileSync(w.record(id).log, 'utf8')).toMatch(/handled\n\[jobq\] cancelled at .* \(SIGTERM\), exit code 0\n$/);
  });
});

describe('cancel and timeout', () => {
  it("a cancel under way when the --timeout falls due stays the cause: no second TERM, cancelled, KILL after the job's own grace", async () => {
    const id = await start(w, 'both', ['bash', '-c', 'trap "echo got TERM" TERM; while :; do sleep 0.05; done'], ['--timeout', '1500ms', '--grace', '3s']);
    await pollUntil(() => w.record(id).state.status === 'running', 5000, 'running');
    const r = JSON.parse((await w.run(['cancel', id, '--json'])).stdout).results[0];
    // The job's --grace (3s), not the config's 10s, and past the timeout's moment.
    expect(r).toMatchObject({ escalated: true, signal: 'SIGTERM', graceMs: 3000 });
    expect(state(id)).toMatchObject({ status: 'cancelled', signal: 'SIGKILL' });
    expect(fs.readFileSync(w.record(id).log, 'utf8').match(/got TERM/g)).toHaveLength(1);
    expect(fs.readFileSync(path.join(w.home, 'jobs', id, 'supervisor.log'), 'utf8')).not.toContain('"msg":"timeout"');
  });

  it('a timeout under way is the cause though a cancel comes during its grace', async () => {
    const id = await start(w, 'late', ['bash', '-c', 'trap "echo got TERM" TERM; while :; do sleep 0.05; done'], ['--timeout', '500ms', '--grace', '2s']);
    await pollUntil(() => fs.readFileSync(w.record(id).log, 'utf8').includes('got TERM'), 10_000, "the timeout's TERM");
    await w.run(['cancel', id]);
    expect(state(id)).toMatchObject({ status: 'timeout', reason: 'wall' });
  });
});

describe('stopped jobs', () => {
  it('cancel of a job that stopped itself runs its TERM handler instead of waiting for KILL', async () => {
    const marker = path.join(tmpDir(), 'handled');
    const id = await start(w, 'stopped', ['sh', '-c', `trap 'echo yes > ${marker}; exit 3' TERM; kill -STOP $$; sleep 100`]);
    const pid = w.record(id).job.pid;
    await pollUntil(() => fs.readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]!.startsWith('T'), 5000, 'job stopped');
    const r = JSON.parse((await w.run(['cancel', id, '--grace', '5s', '--json'])).stdout).results[0];
    expect(r.escalated).toBe(false);
    expect(fs.readFileSync(marker, 'utf8')).toBe('yes\n');
    expect(state(id)).toMatchObject({ status: 'cancelled', exitCode: 3 });
  });

  it('a timeout of a stopped job runs its handler too', async () => {
    const marker = path.join(tmpDir(), 'handled');
    const id = await start(
      w,
      'stopped2',
      ['sh', '-c', `trap 'echo yes > ${marker}; exit 0' TERM; kill -STOP $$; sleep 100`],
      ['--timeout', '1s', '--grace', '10s'],
    );
    await w.run(['wait', id]);
    expect(fs.readFileSync(marker, 'utf8')).toBe('yes\n');
    expect(state(id)).toMatchObject({ status: 'timeout', exitCode: 0 });
  });
});

describe('a state dir removed while a job runs', () => {
  it('the supervisor does not retry for ever: once the job ends it leaves', async () => {
    const id = await start(w, 'orphan', ['sleep', '0.5']);
    const sup = w.record(id).supervisor;
    // Gone at once, as the supervisor sees it (an rm -r it keeps writing into would race it); the tree goes later.
    const gone = `${w.home}.gone`;
    fs.renameSync(w.home, gone);
    try {
      await pollUntil(() => !alive(sup.pid), 15_000, 'the supervisor to leave');
    } finally {
      fs.rmSync(gone, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
    }
  });
});

describe.skipIf(!isRoot)('a full or read-only state dir while a job runs', () => {
  let mnt: string;
  beforeEach(() => {
    mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', mnt]);
  });
  afterEach(() => {
    execFileSync('umount', ['-l', mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  });

  it('the outcome is held and recorded once space frees; status says why and never "no jobs"', async () => {
    const home = path.join(mnt, 'state');
    const go = path.join(tmpDir(), 'go');
    const env = { JOBQ_HOME: home };
    const r = await w.run(
      ['run', 'full', '-q', '--log', path.join(path.dirname(go), 'out.log'), '--', 'sh', '-c', `while [ ! -e ${go} ]; do sleep 0.05; done; exit 0`],
      { env },
    );
    expect(r.exitCode).toBe(0);
    const id = r.stdout.trim();
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${path.join(mnt, 'fill')}`, 'bs=4k', 'count=1000'], { stdio: 'ignore' });
    } catch {
      /* disk full is the point */
    }
    fs.writeFileSync(go, '');
    const st = (await pollUntil(
      async () => {
        const s = await w.run(['status'], { env });
        return s.stderr.includes('ENOSPC') ? s : undefined;
      },
      10_000,
      'status to say the state dir is full',
    ))!;
    expect(st.stdout).toContain(id);
    expect(st.stdout).not.toContain('no jobs yet');
    expect(st.stdout).toMatch(/ended \(recording\)/);
    // Not lost, not succeeded before it is on disk.
    expect((await w.run(['wait', id, '--timeout', '500ms'], { env })).exitCode).toBe(124);
    fs.rmSync(path.join(mnt, 'fill'));
    expect((await w.run(['wait', id, '--timeout', '60s'], { env })).exitCode).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(home, 'jobs', id, 'job.json'), 'utf8')).state.status).toBe('succeeded');
  }, 90_000);

  it('a log that filled the disk, deleted while the outcome waits: its space comes back and the outcome is recorded', async () => {
    const home = path.join(mnt, 'state');
    const go = path.join(tmpDir(), 'go');
    const env = { JOBQ_HOME: home };
    // The job fills the disk through its own log (in the state dir), then ends on its own.
    const r = await w.run(['run', 'filler', '-q', '--', 'sh', '-c', `while [ ! -e ${go} ]; do sleep 0.05; done; head -c 1M /dev/zero; exit 0`], { env });
    expect(r.exitCode, r.stderr).toBe(0);
    const id = r.stdout.trim();
    const log = path.join(home, 'jobs', id, 'output.log');
    fs.writeFileSync(go, '');
    await pollUntil(async () => (await w.run(['status'], { env })).stderr.includes('ENOSPC'), 10_000, 'status to say the state dir is full');
    const free = () => fs.statfsSync(mnt).bfree;
    const before = free();
    fs.rmSync(log);
    // Nothing holds the deleted log open: its blocks are free at once.
    await pollUntil(() => free() > before + 16, 5000, 'the deleted log to free its space');
    expect((await w.run(['wait', id, '--timeout', '60s'], { env })).exitCode).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(home, 'jobs', id, 'job.json'), 'utf8')).state.status).toBe('succeeded');
  }, 90_000);

  it('a read-only state dir: the same, and EROFS is named', async () => {
    const home = path.join(mnt, 'state');
    const go = path.join(tmpDir(), 'go');
    const env = { JOBQ_HOME: home };
    const id = (
      await w.run(['run', 'ro', '-q', '--log', path.join(path.dirname(go), 'out.log'), '--', 'sh', '-c', `while [ ! -e ${go} ]; do sleep 0.05; done; exit 0`], {
        env,
      })
    ).stdout.trim();
    execFileSync('mount', ['-o', 'remount,ro', mnt]);
    fs.writeFileSync(go, '');
    await pollUntil(async () => (await w.run(['status'], { env })).stderr.includes('EROFS'), 10_000, 'status to name EROFS');
    execFileSync('mount', ['-o', 'remount,rw', mnt]);
    expect((await w.run(['wait', id, '--timeout', '60s'], { env })).exitCode).toBe(0);
  }, 90_000);
});

describe('a launcher that gives up has the last word', () => {
  it('run reports failure and the job never starts later', async () => {
    const marker = path.join(tmpDir(), 'ran');
    const r = await w.run(['run', 'stall', '--', 'sh', '-c', `echo ran > ${marker}`], { env: { JOBQ_START_TIMEOUT: '1' } });
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toMatch(/did not report/);
    const id = w.ids()[0]!;
    await new Promise((res) => setTimeout(res, 2000));
    expect(fs.existsSync(marker)).toBe(false);
    expect(state(id).status).toBe('failed-to-start');
    expect(fs.readFileSync(path.join(w.home, 'events.log'), 'utf8')).toContain('supervisor stood down');
  });
});

describe.skipIf(!isRoot || !hasCgroup)('cgroups', () => {
  it('cancel and a normal end leave no false warning and no cgroup behind', async () => {
    const a = await start(w, 'kids', ['sh', '-c', 'sleep 100 & sleep 100 & wait']);
    const b = await start(w, 'linger', ['sh', '-c', '(sleep 0.4; echo late) & exit 0']);
    const dirs = [...w.record(a).protection.cgroups, ...w.record(b).protection.cgroups];
    expect(dirs.length).toBeGreaterThan(1);
    await w.run(['cancel', a]);
    await w.run(['wait', b]);
    for (const id of [a, b]) expect(w.record(id).protection.warnings.join(' ')).not.toMatch(/still ran/);
    for (const d of dirs) expect(fs.existsSync(d), d).toBe(false);
  });

  it('the cgroup of a job whose supervisor was killed is removed by the next command that finds it empty', async () => {
    const g = gate(w, 'orphan');
    const id = await start(w, 'orphan', ['sh', '-c', g.hold]);
    const rec = w.record(id);
    process.kill(rec.supervisor.pid, 'SIGKILL');
    g.open();
    await pollUntil(() => !alive(rec.job.pid), 5000, 'job end');
    expect(rec.protection.cgroups.some((d: string) => fs.existsSync(d))).toBe(true);
    await w.run(['status']);
    expect(state(id).status).toBe('lost');
    for (const d of rec.protection.cgroups) expect(fs.existsSync(d), d).toBe(false);
  });
});

describe.skipIf(!isRoot || !HAS_CGROUP)('cgroups that ended jobs left behind', () => {
  it('are removed by the next job to end, once empty; a live job of the same dir is never touched', async () => {
    // A job whose supervisor was killed while a stray process still ran in its cgroup: lost, cgroup left.
    const leader = gate(w, 'leader');
    const strayGate = gate(w, 'stray');
    const stray = await start(w, 'stray', ['sh', '-c', `(trap "" TERM; ${strayGate.hold}) & ${leader.hold}`]);
    const left = w.record(stray);
    process.kill(left.supervisor.pid, 'SIGKILL');
    leader.open();
    await pollUntil(() => !alive(left.job.pid), 5000, 'the leader to end');
    await w.run(['status']);
    expect(state(stray).status).toBe('lost');
    expect(
      left.protection.cgroups.some((d: string) => fs.existsSync(d)),
      'the stray keeps its cgroup',
    ).toBe(true);
    const live = await start(w, 'live', ['sleep', '30']);
    // The stray ends; no command runs until another job ends.
    strayGate.open();
    await pollUntil(
      () => left.protection.cgroups.every((d: string) => !fs.existsSync(`${d}/cgroup.procs`) || fs.readFileSync(`${d}/cgroup.procs`, 'utf8') === ''),
      10_000,
      'the stray to end',
    );
    const next = await start(w, 'next', ['true']);
    await w.run(['wait', next]);
    await pollUntil(() => left.protection.cgroups.every((d: string) => !fs.existsSync(d)), 10_000, 'the left cgroups to go');
    for (const d of w.record(live).protection.cgroups) expect(fs.existsSync(d), d).toBe(true);
    await w.run(['cancel', live]);
  });
});

describe('what status lists', () => {
  it('half-made job dirs are listed as broken with a reason, shown by a bare prune, removed by prune', async () => {
    const old = new Date(Date.now() - 5 * 60_000);
    const a = path.join(w.home, 'jobs', 'half_20260101_000000');
    const b = path.join(w.home, 'jobs', 'half_20260101_000001');
    fs.mkdirSync(a, { recursive: true });
    fs.mkdirSync(b, { recursive: true });
    fs.writeFileSync(path.join(a, 'job.json.tmp-123-abc'), '{"id":');
    fs.writeFileSync(path.join(b, 'output.log'), 'some output\n');
    for (const d of [a, b]) fs.utimesSync(d, old, old);
    const st = await w.run(['status', '--json']);
    const broken = JSON.parse(st.stdout).broken;
    expect(broken.map((x: { id: string }) => x.id).sort()).toEqual(['half_20260101_000000', 'half_20260101_000001']);
    expect(broken[0].error).toMatch(/half-made/);
    expect((await w.run(['status'])).stdout).not.toContain('no jobs yet');
    const bare = await w.run(['prune']);
    expect(bare.stdout).toContain('would remove half_20260101_000000 (half-made)');
    expect(fs.existsSync(a)).toBe(true);
    await w.run(['prune', '--all']);
    expect(fs.existsSync(a) || fs.existsSync(b)).toBe(false);
  });

  it('a record with a status this jobq does not know is left untouched and listed as broken', async () => {
    const id = plantRecord(w.home, 'future', { state: { status: 'hibernating' } as never });
    const file = path.join(w.home, 'jobs', id, 'job.json');
    const before = fs.readFileSync(file, 'utf8');
    const st = await w.run(['status', '--json']);
    expect(JSON.parse(st.stdout).broken[0]).toMatchObject({ id });
    expect(JSON.parse(st.stdout).broken[0].error).toMatch(/unknown to this jobq/);
    await w.run(['prune', '--all']);
    await w.run(['cancel', '--all']);
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
  });

  it('readers leave a finished job exactly as they found it', async () => {
    const id = await start(w, 'done', ['true']);
    await w.run(['wait', id]);
    fs.writeFileSync(path.join(w.home, 'active', id), '');
    const snap = () =>
      execFileSync('find', [w.home, '-printf', '%p %s %T@\\n'])
        .toString()
        .split('\n')
        .filter((l) => !l.includes('events.log'))
        .sort()
        .join('\n');
    const before = snap();
    for (const args of [['status'], ['status', id], ['status', '--json'], ['tail', id], ['wait', id]]) await w.run(args);
    expect(snap()).toBe(before);
  });
});

describe('small things', () => {
  it('status --all never suggests --all: a job dir being made meanwhile is not an older job', async () => {
    await w.run(['run', 'one', '-q', '--', 'true']);
    await w.run(['wait', 'one']);
    // A run between making its dir and writing its record.
    fs.mkdirSync(path.join(w.home, 'jobs', 'making_20261205_000000'));
    for (const args of [['status', '--all'], ['status']]) {
      const r = await w.run(args);
      expect(r.exitCode, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(/one_/);
      expect(r.stdout, args.join(' ')).not.toMatch(/not shown/);
    }
    expect(JSON.parse((await w.run(['status', '--all', '--json'])).stdout).hidden ?? 0).toBe(0);
  });

  it('status -n abc / -n -3 are usage errors', async () => {
    for (const n of ['abc', '-3', '1.5']) {
      const r = await w.run(['status', '-n', n]);
      expect(r.exitCode, n).toBe(2);
      expect(r.stderr.trim().split('\n'), n).toHaveLength(1);
    }
  });

  it('a deleted cwd: one line from run, other commands work', async () => {
    const gone = tmpDir();
    const sh = (cmd: string) =>
      execFileSync('sh', ['-c', `cd ${gone} && rmdir ${gone} && ${process.execPath} ${BIN} ${cmd}; echo "rc=$?"`], {
        env: { ...process.env, ...w.env },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    const status = (() => {
      fs.mkdirSync(gone, { recursive: true });
      return sh('status 2>&1');
    })();
    expect(status).toMatch(/rc=0/);
    expect(status).not.toMatch(/uv_cwd|at /);
    fs.mkdirSync(gone, { recursive: true });
    const run = sh('run x -- true 2>&1');
    expect(run).toMatch(/current directory no longer exists.*\nrc=2/);
  });

  it('an empty command and an impossible --mem-limit are usage errors that write nothing', async () => {
    const e = await w.run(['run', 'x', '--', '']);
    expect(e.exitCode).toBe(2);
    expect(e.stderr).toMatch(/empty command/);
    const m = await w.run(['run', 'x', '--mem-limit', '99999999999T', '--', 'true']);
    expect(m.exitCode).toBe(2);
    expect(m.stderr.trim().split('\n')).toHaveLength(1);
    const m2 = await w.run(['run', 'x', '--mem-limit', `${Math.ceil(os.totalmem() / 1024 ** 3) + 1}G`, '--', 'true']);
    expect(m2.exitCode).toBe(2);
    expect(m2.stderr).toMatch(/more than this machine's memory/);
    expect(w.ids()).toEqual([]);
  });

  it('a running record from another boot is lost, and its pid (alive now, same start time) is never signalled', async () => {
    const by = bystander();
    const id = plantRecord(w.home, 'prevboot', {
      boot: '00000000-0000-0000-0000-000000000000',
      supervisor: { pid: by, startTicks: startTicks(by) },
      job: { pid: by, pgid: by, startTicks: startTicks(by) },
      state: { status: 'running', startedAt: new Date().toISOString() },
    });
    await w.run(['cancel', id, '--grace', '100ms']);
    expect(alive(by)).toBe(true);
    const st = JSON.parse((await w.run(['status', id, '--json'])).stdout);
    expect(st.state.status).toBe('lost');
    expect(st.state.reason).toMatch(/restarted/);
  });
});

describe("the caller's descriptors", () => {
  // A caller's lock (fd 21, a file) and its reader's pipe (fd 20, a copy of stdout into `| cat`), as a make or a
  // tool that spawns jobq may hold them: none may reach the dispatcher, a supervisor or a job, on any path.
  it.each([
    ['the standby', [], {}],
    ['JOBQ_STANDBY=0', [], { JOBQ_STANDBY: '0' }],
    ['--queue', ['--queue', 'fdq'], {}],
    ['--after', ['--after', 'done'], {}],
    ['--array', ['--array', '1-2'], {}],
    ['--mem', ['--mem', '1M'], {}],
    ['defaultQueue', [], { DEFAULT_QUEUE: '1' }],
  ] as [string, string[], Record<string, string>][])(
    '%s: run | cat returns while the job runs, and no process of jobq holds the lock',
    async (_, flags, extra) => {
      if (extra.DEFAULT_QUEUE) {
        fs.mkdirSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq'), { recursive: true });
        fs.writeFileSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json'), JSON.stringify({ defaultQueue: 'dq' }));
      }
      if (flags.includes('done')) {
        await w.run(['run', 'done', '-q', '--', 'true']);
        expect((await w.run(['wait', 'done'])).exitCode).toBe(0);
      }
      const lock = path.join(tmpDir(), 'caller.lock');
      const env: NodeJS.ProcessEnv = { ...process.env, ...w.env, ...extra, LOCK: lock, JOBQ: BIN };
      delete env.DEFAULT_QUEUE;
      const args = ['run', 'held', '-q', ...flags, '--', 'sleep', '60'].map((a) => `'${a}'`).join(' ');
      // Above fd 19: Node marks the low ones close-on-exec at its start, not these.
      const sh = spawn('bash', ['-c', `exec 21>>"$LOCK"; "$JOBQ" ${args} 20>&1 | cat`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      sh.stderr.on('data', (d) => (err += d));
      const exited = new Promise<number>((r) => sh.on('exit', (c) => r(c ?? -1)));
      let code: number | undefined;
      void exited.then((c) => (code = c));
      try {
        // Before: cat waited for the job's end (60 s), since the job or its supervisor kept a copy of the pipe.
        await pollUntil(() => code !== undefined, 15_000, `run | cat to return (${err.trim()})`);
        const jobs = w.ids().filter((id) => id.startsWith('held'));
        expect(jobs.length).toBeGreaterThan(0);
        await pollUntil(() => jobs.every((id) => w.tryRecord(id)?.state.status === 'running'), 15_000, 'the jobs to run');
        const holders: string[] = [];
        for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
          try {
            for (const fd of fs.readdirSync(`/proc/${pid}/fd`))
              if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === lock)
                holders.push(`${pid} (${fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').slice(0, 80)}) fd ${fd}`);
          } catch {
            /* gone, or not ours to read */
          }
        }
        expect(holders).toEqual([]);
      } finally {
        sh.kill('SIGKILL');
        await w.run(['cancel', 'held', '--grace', '100ms']);
      }
    },
    60_000,
  );
});

describe.skipIf(!isRoot)('what another user can plant is data, never authority', () => {
  it('a project .jobq.json another user could write is ignored with a one-line warning', async () => {
    const shared = tmpDir(0o777);
    asNobody(`printf '%s' '{"presets":{"memsafe":{"LD_PRELOAD":"/tmp/evil.so"}},"signal":"CONT","grace":"7d","isolation":"none"}' > ${shared}/.jobq.json`);
    const r = await w.run(['run', 'p', '-q', '--memsafe', '--', 'sh', '-c', 'echo "pre=$LD_PRELOAD"'], { cwd: shared });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/ignoring config .*\.jobq\.json: .*(uid 65534|writable by others)/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const id = r.stdout.trim();
    await w.run(['wait', id]);
    const rec = w.record(id);
    expect(fs.readFileSync(rec.log, 'utf8')).toContain('pre=\n');
    expect(rec.protection.stopSignal).toBe('SIGTERM');
    expect(rec.protection.graceMs).toBe(10_000);
    const sticky = tmpDir(0o1777);
    asNobody(`printf '%s' '{"grace":"7d"}' > ${sticky}/.jobq.json`);
    expect((await w.run(['config'], { cwd: sticky })).stderr).toMatch(/ignoring config .*uid 65534/);
    // Root's own file is not enough when the directory lets others swap it.
    const mine = tmpDir(0o777);
    fs.writeFileSync(path.join(mine, '.jobq.json'), '{"grace":"7d"}');
    expect((await w.run(['config'], { cwd: mine })).stderr).toMatch(/ignoring config .*writable by others/);
    const loose = tmpDir(0o755);
    fs.writeFileSync(path.join(loose, '.jobq.json'), '{"grace":"7d"}', { mode: 0o666 });
    fs.chmodSync(path.join(loose, '.jobq.json'), 0o666);
    expect((await w.run(['config'], { cwd: loose })).stderr).toMatch(/ignoring config .*mode 666/);
  });

  it.skipIf(!hasCgroup)('a forged cgroup path in a record makes cancel touch nothing in that cgroup', async () => {
    const base = '/sys/fs/cgroup/pids';
    const victimCg = fs.mkdtempSync(path.join(base, 'jobq-victim-'));
    tmpPaths.push(victimCg);
    const by = bystander();
    fs.writeFileSync(path.join(victimCg, 'cgroup.procs'), String(by));
    // The record's own job is real (so cancel acts); only its cgroup path is forged to point at the victim.
    const own = bystander();
    const id = plantRecord(w.home, 'forged', {
      supervisor: { pid: 4_000_011, startTicks: 1 },
      job: { pid: own, pgid: own, startTicks: startTicks(own) },
      protection: { isolationMode: 'auto', isolation: 'cgroup-v1', cgroups: [victimCg], graceMs: 100, stopSignal: 'SIGTERM', warnings: [] },
      state: { status: 'running', startedAt: new Date().toISOString() },
    });
    await w.run(['cancel', id, '--grace', '100ms']);
    await pollUntil(() => !alive(own), 5000, "the record's own job to end");
    expect(alive(by)).toBe(true);
    fs.writeFileSync(path.join(base, 'cgroup.procs'), String(by));
  });

  it('a state dir reached through a symlink another user made, or through a directory others can write, is refused', async () => {
    const by = bystander();
    const theirs = tmpDir(0o755);
    fs.chownSync(theirs, 65534, 65534);
    // nobody builds a state dir holding a forged record that names root's bystander.
    const forged = path.join(theirs, 'state');
    plantRecord(forged, 'victim', {
      boot: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      supervisor: { pid: by, startTicks: startTicks(by) },
      job: { pid: by, pgid: by, startTicks: startTicks(by) },
      state: { status: 'running', startedAt: new Date().toISOString() },
    });
    execFileSync('chown', ['-R', '65534:65534', forged]);
    fs.chmodSync(forged, 0o700);
    const link = path.join(os.tmpdir(), `jobq-link-${process.pid}-${Date.now()}`);
    tmpPaths.push(link);
    asNobody(`ln -s ${forged} ${link}`);
    for (const home of [link, forged]) {
      const r = await w.run(['cancel', '--all'], { env: { JOBQ_HOME: home } });
      expect(r.exitCode, home).toBe(1);
      expect(r.stderr, home).toMatch(/refusing state dir .*uid 65534/);
    }
    const open = tmpDir(0o777);
    const r2 = await w.run(['status'], { env: { JOBQ_HOME: path.join(open, 'state') } });
    expect(r2.exitCode).toBe(1);
    expect(r2.stderr).toMatch(/refusing state dir .*writable by others/);
    expect(alive(by)).toBe(true);
  });

  it('--log into a shared directory: a planted file, FIFO or symlinked parent is refused; a fresh file is ours, 0600', async () => {
    const shared = tmpDir(0o1777);
    asNobody(`umask 0; echo theirs > ${shared}/planted.log; mkfifo ${shared}/fifo.log; mkdir ${shared}/realdir; ln -s ${shared}/realdir ${shared}/linkdir`);
    const cases: Array<[string, RegExp]> = [
      [`${shared}/planted.log`, /owned by uid 65534/],
      [`${shared}/fifo.log`, /uid 65534|FIFO/],
      [`${shared}/linkdir/out.log`, /uid 65534/],
    ];
    for (const [log, why] of cases) {
      const r = await w.run(['run', 'lg', '--log', log, '--', 'echo', 'secret'], { timeout: 20_000 });
      expect(r.exitCode, log).toBe(1);
      expect(r.stderr, log).toMatch(why);
    }
    expect(fs.readFileSync(`${shared}/planted.log`, 'utf8')).toBe('theirs\n');
    const open = tmpDir(0o777);
    const r = await w.run(['run', 'lg', '--log', `${open}/out.log`, '--', 'true']);
    expect(r.stderr).toMatch(/writable by others/);
    const fresh = `${shared}/mine/deep/out.log`;
    const ok = await w.run(['run', 'lg', '-q', '--log', fresh, '--', 'echo', 'hello']);
    expect(ok.exitCode).toBe(0);
    await w.run(['wait', ok.stdout.trim()]);
    expect(fs.statSync(fresh).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(fresh)).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(fresh, 'utf8')).toBe('hello\n');
  });
});

describe('secrets', () => {
  it('MYSQL_PWD, DB_PASS, PASSPHRASE, GH_PAT and a password in a URL are redacted in records, events and --json', async () => {
    const secrets = { MYSQL_PWD: 's3cret1', DB_PASS: 's3cret2', PASSPHRASE: 's3cret3', GH_PAT: 's3cret4', DATABASE_URL: 'postgres://app:s3cret5@db:5432/x' };
    const args = Object.entries(secrets).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
    const r = await w.run(['run', 'sec', '--json', ...args, '--env', 'MY_PATH=/keep/me', '--', 'sh', '-c', 'echo "$DATABASE_URL"']);
    expect(r.stdout).not.toMatch(/s3cret/);
    const j = JSON.parse(r.stdout);
    expect(j.env.added.DATABASE_URL).toBe('postgres://app:<redacted>@db:5432/x');
    expect(j.env.added.MY_PATH).toBe('/keep/me');
    await w.run(['wait', j.id]);
    expect(fs.readFileSync(path.join(w.home, 'jobs', j.id, 'job.json'), 'utf8')).not.toMatch(/s3cret/);
    expect(fs.readFileSync(path.join(w.home, 'events.log'), 'utf8')).not.toMatch(/s3cret/);
    // restart takes redacted values from the caller's environment, never from the record.
    const re = await w.run(['restart', j.id, '--json'], { env: { DATABASE_URL: 'postgres://app:again@db/x' } });
    const nj = JSON.parse(re.stdout);
    await w.run(['wait', nj.id]);
    expect(fs.readFileSync(nj.log, 'utf8')).toContain('postgres://app:again@db/x');
  });
});
