// run: a detached job (own session, env, stdin at EOF), what run prints and refuses, and what outlives or stays with the caller.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, BIN, gate, pollUntil, start, tmpDir, useWorld } from '../helpers/jobq.js';

const w = useWorld();

describe('run', () => {
  it('starts the job in its own session and group, stdin at EOF, with the guard environment', async () => {
    const id = await start(
      w,
      'env',
      [
        'sh',
        '-c',
        'read x; echo "read=$?"; echo "BG_JOB=$BG_JOB ID=$JOBQ_JOB_ID NAME=$JOBQ_JOB_NAME LOG=$JOBQ_LOG PYU=$PYTHONUNBUFFERED G=$GRAV_BG_JOB"; ps -o pid=,pgid=,sid=,tty= -p $$',
      ],
      ['--guard-var', 'GRAV_BG_JOB'],
    );
    const r = await w.run(['wait', id, '--timeout', '20s']);
    expect(r.exitCode).toBe(0);
    const rec = w.record(id);
    const log = fs.readFileSync(rec.log, 'utf8');
    expect(log).toContain('read=1');
    expect(log).toContain(`BG_JOB=1 ID=${id} NAME=env LOG=${rec.log} PYU=1 G=1`);
    const [pid, pgid, sid, tty] = log.trim().split('\n').pop()!.trim().split(/\s+/);
    expect(Number(pid)).toBe(rec.job.pid);
    expect(pgid).toBe(pid);
    expect(sid).toBe(pid);
    expect(tty).toBe('?');
    expect(rec.state.status).toBe('succeeded');
    expect(rec.schema).toBe(2);
    expect(rec.boot).toBe(fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    for (const k of ['id', 'name', 'argv', 'cwd', 'host', 'user', 'jobqVersion', 'createdAt', 'launcher', 'supervisor', 'job', 'protection', 'env'])
      expect(rec).toHaveProperty(k);
    expect(fs.statSync(rec.log).mode & 0o777).toBe(0o600);
  });

  it('the CLI starts without NODE_EXTRA_CA_CERTS (no TLS, no load), and the job and its hook get the value unchanged', async () => {
    // A path that does not exist makes node warn at start whenever it loads the variable: jobq must not.
    const env = { NODE_EXTRA_CA_CERTS: '/nonexistent/ca.pem' };
    const show = 'echo "ca=${NODE_EXTRA_CA_CERTS-unset} saved=${JOBQ_CALLER_CA_CERTS-none}"';
    const r = await w.run(['run', 'ca', '-q', '--on-exit', `${show} > ${w.home}/hook.txt`, '--', 'sh', '-c', show], { env });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe('');
    const w2 = await w.run(['wait', 'ca'], { env });
    expect([w2.exitCode, w2.stderr]).toEqual([0, '']);
    expect(fs.readFileSync(w.record(r.stdout.trim()).log, 'utf8')).toBe('ca=/nonexistent/ca.pem saved=none\n');
    await pollUntil(() => fs.existsSync(`${w.home}/hook.txt`) && fs.readFileSync(`${w.home}/hook.txt`, 'utf8').includes('\n'), 10_000, 'the hook');
    expect(fs.readFileSync(`${w.home}/hook.txt`, 'utf8')).toBe('ca=/nonexistent/ca.pem saved=none\n');
    // Unset stays unset: no empty value appears.
    const u = (await w.run(['run', 'noca', '-q', '--', 'sh', '-c', show], { env: { NODE_EXTRA_CA_CERTS: undefined } })).stdout.trim();
    await w.run(['wait', u]);
    expect(fs.readFileSync(w.record(u).log, 'utf8')).toBe('ca=unset saved=none\n');
  });

  it('returns only once the job has started and prints id, pid, pgid and log', async () => {
    const r = await w.run(['run', 'sleeper', '--', 'sleep', '30']);
    expect(r.exitCode).toBe(0);
    const m = /started (\S+)\s+#\d+\s+pid (\d+)\s+pgid (\d+)/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(alive(Number(m![2]))).toBe(true);
    // Not merely spawned: the command itself has been exec'd when run returns.
    expect(fs.readFileSync(`/proc/${m![2]}/cmdline`, 'latin1').split('\0').slice(0, 2)).toEqual(['sleep', '30']);
    expect(r.stdout).toContain('log: ');
    expect(w.record(m![1]!).state.status).toBe('running');
  });

  it('fails at run for a missing command, a non-executable file and a bad cwd, and records why', async () => {
    const missing = await w.run(['run', 'nope', '--', 'definitely-not-a-command-xyz']);
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain('command not found: definitely-not-a-command-xyz');
    const id = w.ids().find((i) => i.startsWith('nope_'))!;
    expect(w.record(id).state).toMatchObject({ status: 'failed-to-start', error: expect.stringContaining('not found') });
    fs.writeFileSync(`${w.home}/plain.txt`, 'x');
    const noexec = await w.run(['run', 'noexec', '--', `${w.home}/plain.txt`]);
    expect(noexec.exitCode).toBe(127);
    expect(noexec.stderr).toContain('not an executable');
    const badcwd = await w.run(['run', 'badcwd', '--cwd', '/nonexistent-dir-xyz', '--', 'true']);
    expect(badcwd.exitCode).toBe(127);
    expect(badcwd.stderr).toContain('/nonexistent-dir-xyz');
    const st = await w.run(['status', 'nope', '--json']);
    expect(JSON.parse(st.stdout).state.status).toBe('failed-to-start');
  });

  it('rejects bad names, a missing -- and unknown options with exit 2 and writes nothing', async () => {
    for (const args of [
      ['run', '../x', '--', 'true'],
      ['run', 'a/b', '--', 'true'],
      ['run', 'bad\nname', '--', 'true'],
      ['run', '-dash', '--', 'true'],
      ['run', 'x'.repeat(65), '--', 'true'],
      ['run', 'ok'],
      ['run', 'ok', '--'],
      ['run', 'ok', '--bogus', '--', 'true'],
      ['run', 'ok', '--mem-limit', 'lots', '--', 'true'],
    ]) {
      const r = await w.run(args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    expect(w.ids()).toEqual([]);
  });

  it("survives its caller's process group being SIGKILLed", async () => {
    const g = gate(w, 'survivor');
    const caller = spawn('bash', ['-c', `node ${BIN} run survivor -q -- sh -c '${g.hold}; echo finished'; sleep 300`], {
      detached: true,
      env: { ...process.env, ...w.env },
      stdio: 'ignore',
    });
    const id = (await pollUntil(() => w.ids().find((i) => i.startsWith('survivor_') && w.tryRecord(i)?.state.status === 'running'), 15_000, 'job running'))!;
    process.kill(-caller.pid!, 'SIGKILL');
    await pollUntil(() => !alive(caller.pid!), 5000, 'caller gone');
    expect(alive(w.record(id).job.pid)).toBe(true);
    g.open();
    const r = await w.run(['wait', id, '--timeout', '20s']);
    expect(r.exitCode).toBe(0);
    expect(fs.readFileSync(w.record(id).log, 'utf8')).toContain('finished');
  });
});

describe('run without --', () => {
  it('takes NAME CMD ARGS when no word after NAME starts with -, and asks for -- once one does', async () => {
    // A word after NAME that starts with -: jobq cannot tell its options from the command's.
    const r = await w.run(['run', 'plain', '-q', 'sh', '-c', 'echo plain ran']);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const ok = await w.run(['run', 'plain', 'echo', 'plain', 'ran']);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect((await w.run(['wait', 'plain'])).exitCode).toBe(0);
    expect((await w.run(['tail', 'plain'])).stdout).toBe('plain ran');
    const opt = await w.run(['run', 'withopt', 'python3', 'train.py', '--lr', '3e-4']);
    expect(opt.exitCode).toBe(2);
    expect(opt.stderr).toMatch(/did you forget '--' before the command\?/);
    expect(w.ids().filter((id) => id.startsWith('withopt'))).toEqual([]);
  });
});

describe('the launcher', () => {
  it('a run that fails to start exits 127, as wait does on the same record', async () => {
    const r = await w.run(['run', 'nope', '--', '/no/such/command']);
    expect(r.exitCode).toBe(127);
    expect((await w.run(['wait', 'nope'])).exitCode).toBe(127);
  });
});

describe('hints where people trip', () => {
  it('--log into a directory that does not exist yet creates it (0700)', async () => {
    const log = path.join(w.home, 'logs', 'deeper', 'out.log');
    const id = await start(w, 'lg', ['echo', 'hi'], ['--log', log]);
    await w.run(['wait', id]);
    expect(fs.readFileSync(log, 'utf8')).toBe('hi\n');
    expect(fs.statSync(path.dirname(log)).mode & 0o777).toBe(0o700);
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
