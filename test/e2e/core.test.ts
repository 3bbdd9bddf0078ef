// Issue 2's must-shows, end to end with real detached jobs.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { alive, BIN, gate, pollUntil, start, useWorld } from '../helpers/jobq.js';

const hasScript = spawnSync('sh', ['-c', 'command -v script']).status === 0;
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
    const m = /started (\S+)\s+pid (\d+)\s+pgid (\d+)/.exec(r.stdout);
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

describe('exit codes', () => {
  it('records exit code 7 and a signal death, and wait returns them', async () => {
    const seven = await start(w, 'seven', ['sh', '-c', 'exit 7']);
    const sig = await start(w, 'sig', ['sh', '-c', 'kill -USR1 $$']);
    expect((await w.run(['wait', seven])).exitCode).toBe(7);
    expect(w.record(seven).state).toMatchObject({ status: 'failed', exitCode: 7, signal: null });
    expect((await w.run(['wait', sig])).exitCode).toBe(128 + 10);
    expect(w.record(sig).state).toMatchObject({ status: 'killed', signal: 'SIGUSR1' });
    const both = await w.run(['wait', seven, sig]);
    expect(both.exitCode).toBe(7);
  });

  it('wait gives 124 on its own timeout and leaves the job running', async () => {
    const id = await start(w, 'long', ['sleep', '30']);
    const r = await w.run(['wait', id, '--timeout', '300ms']);
    expect(r.exitCode).toBe(124);
    expect(w.record(id).state.status).toBe('running');
  });
});

describe('cancel', () => {
  it('removes the job and its grandchildren', async () => {
    const id = await start(w, 'gc', ['bash', '-c', 'sleep 300 & sleep 300 & wait']);
    const pgid = w.record(id).job.pgid;
    await pollUntil(
      () =>
        fs
          .readdirSync('/proc')
          .filter((p) => /^\d+$/.test(p))
          .some((p) => p !== String(pgid) && readPgid(p) === pgid),
      5000,
      'grandchildren',
    );
    const r = await w.run(['cancel', 'gc']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('cancelled');
    expect(groupAlive(pgid)).toBe(false);
    expect(w.record(id).state.status).toBe('cancelled');
    expect((await w.run(['cancel', 'gc'])).stdout).toContain('already ended');
  });

  it('SIGKILLs a job that traps and ignores SIGTERM after the grace', async () => {
    const id = await start(w, 'stubborn', ['bash', '-c', 'trap "" TERM; echo ready; while :; do sleep 0.2; done']);
    await pollUntil(() => fs.readFileSync(w.record(id).log, 'utf8').includes('ready'), 5000, 'trap installed');
    const t0 = Date.now();
    const r = await w.run(['cancel', id, '--grace', '1s']);
    expect(r.exitCode).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(r.stdout).toContain('SIGKILL after 1s');
    expect(groupAlive(w.record(id).job.pgid)).toBe(false);
    expect(w.record(id).state).toMatchObject({ status: 'cancelled', signal: 'SIGKILL' });
    expect((await w.run(['wait', id])).exitCode).toBe(137);
  });
});

describe('tail', () => {
  it("shows \\r-only progress live and -f exits with the job's code", async () => {
    // Progress until the test has seen it live (a gate file), however slowly tail -f starts on a loaded machine.
    const gate = path.join(w.home, 'done');
    const id = await start(w, 'progress', [
      'bash',
      '-c',
      `i=0; while [ ! -e ${gate} ]; do i=$((i+1)); printf "\\rprogress %d" $i; sleep 0.1; done; printf "\\rprogress end"; exit 3`,
    ]);
    const follow = execa(process.execPath, [BIN, 'tail', '-f', id], { env: { ...process.env, ...w.env }, reject: false });
    let seen = '';
    follow.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    // Two \r updates arrived while the job ran, into this pipe each a line of its own: a live stream, not the
    // collapsed last line.
    await pollUntil(() => (seen.match(/progress \d+\n/g) ?? []).length >= 2, 30_000, 'live \\r progress from tail -f');
    expect(w.record(id).state.status).toBe('running');
    fs.writeFileSync(gate, '');
    const res = await follow;
    expect(res.exitCode).toBe(3);
    expect(seen).toMatch(/\nprogress end\n$/);
    expect(seen).not.toContain('\r');
  });

  it('Ctrl-C in tail -f and wait stops only the reader; the job keeps running', async () => {
    const id = await start(w, 'keep', ['sh', '-c', 'echo ready; sleep 30']);
    const follow = execa(process.execPath, [BIN, 'tail', '-f', id], { env: { ...process.env, ...w.env }, reject: false });
    let seen = '';
    follow.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    await pollUntil(() => seen.includes('ready'), 10_000, 'tail -f following');
    follow.kill('SIGINT');
    const f = await follow;
    expect(f.isTerminated || f.exitCode !== 0).toBe(true);
    expect(alive(w.record(id).job.pid)).toBe(true);
    expect(w.record(id).state.status).toBe('running');
  });

  it.skipIf(!hasScript)('Ctrl-C in wait, once it is waiting, stops only the waiter; the job keeps running', async () => {
    const id = await start(w, 'keep2', ['sleep', '30']);
    // On a TTY wait draws a status line: that line is the sign it is really waiting.
    const waiter = execa('script', ['-qfec', `${process.execPath} ${BIN} wait ${id}`, '/dev/null'], { env: { ...process.env, ...w.env }, reject: false });
    let seen = '';
    waiter.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    await pollUntil(() => seen.includes(`${id} running`), 10_000, 'wait drawing its status line');
    const waitPid = () =>
      fs
        .readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .find((p) => {
          try {
            return fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').split('\0').join(' ').includes(`${BIN} wait ${id}`) && alive(Number(p));
          } catch {
            return false;
          }
        });
    const pid = Number(waitPid());
    expect(pid).toBeGreaterThan(1);
    process.kill(pid, 'SIGINT');
    await pollUntil(() => !alive(pid), 5000, 'wait to stop on Ctrl-C');
    waiter.kill('SIGKILL');
    await waiter;
    expect(alive(w.record(id).job.pid)).toBe(true);
    expect(w.record(id).state.status).toBe('running');
  });

  it('prints the last N lines', async () => {
    const id = await start(w, 'lines', ['seq', '1', '100']);
    await w.run(['wait', id]);
    const r = await w.run(['tail', '-n', '3', id], { stripFinalNewline: false });
    expect(r.stdout).toBe('98\n99\n100\n');
  });
});

describe('concurrency', () => {
  it('50 runs started at once give 50 distinct, complete records', async () => {
    // One name on purpose: --allow-duplicate is how many live jobs share one.
    const runs = await Promise.all(Array.from({ length: 50 }, (_, i) => w.run(['run', 'burst', '-q', '--allow-duplicate', '--', 'sh', '-c', `exit ${i % 3}`])));
    expect(runs.map((r) => r.exitCode)).toEqual(Array(50).fill(0));
    const ids = runs.map((r) => r.stdout.trim());
    expect(new Set(ids).size).toBe(50);
    const waited = await w.run(['wait', ...ids, '--timeout', '60s']);
    expect([0, 1, 2]).toContain(waited.exitCode);
    ids.forEach((id, i) => {
      const rec = w.record(id);
      expect(rec.state.status).toBe(i % 3 === 0 ? 'succeeded' : 'failed');
      expect(rec.state.exitCode).toBe(i % 3);
    });
  });
});

describe('supervisor loss', () => {
  it('a SIGKILLed supervisor leaves the job running, status says so, and the end is never "succeeded"', async () => {
    const stop = `${w.home}/stop-orphan`;
    const id = await start(w, 'orphan', ['sh', '-c', `while [ ! -e ${stop} ]; do sleep 0.05; done; echo still-logging`]);
    const rec = w.record(id);
    process.kill(rec.supervisor.pid, 'SIGKILL');
    await pollUntil(() => !alive(rec.supervisor.pid), 5000, 'supervisor gone');
    expect(alive(rec.job.pid)).toBe(true);
    const st = JSON.parse((await w.run(['status', id, '--json'])).stdout);
    expect(st.state.status).toBe('running');
    expect(st.supervisorAlive).toBe(false);
    expect((await w.run(['status'])).stdout).toContain('running (no supervisor)');
    fs.writeFileSync(stop, '');
    await pollUntil(() => !alive(rec.job.pid), 10_000, 'job end');
    expect(fs.readFileSync(rec.log, 'utf8')).toContain('still-logging');
    const r = await w.run(['wait', id]);
    expect(r.exitCode).not.toBe(0);
    expect(w.record(id).state.status).toBe('lost');
  });
});

describe('guard', () => {
  it('exits 0 inside a job and 1 with a one-line message outside', async () => {
    const out = await w.run(['guard']);
    expect(out.exitCode).toBe(1);
    expect(out.stderr).toMatch(/run it through jobq/);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
    expect((await w.run(['guard'], { env: { BG_JOB: '1' } })).exitCode).toBe(0);
    const id = await start(w, 'guarded', [process.execPath, BIN, 'guard', '--var', 'GRAV_BG_JOB'], ['--guard-var', 'GRAV_BG_JOB']);
    expect((await w.run(['wait', id])).exitCode).toBe(0);
  });
});

function readPgid(pid: string): number {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return -1;
  }
}

function groupAlive(pgid: number): boolean {
  return fs.readdirSync('/proc').some((p) => /^\d+$/.test(p) && readPgid(p) === pgid && alive(Number(p)));
}
