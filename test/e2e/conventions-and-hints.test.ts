// The CLI's manners: --help, EPIPE, colour, TTY redraws, one-line usage errors (exit 2), typo hints, no silent no-ops.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { BIN, pollUntil, start, tmpDir, useWorld } from '../helpers/jobq.js';

const w = useWorld();
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

describe('conventions', () => {
  it('every command has --help with examples', async () => {
    const help = (await w.run(['--help'])).stdout;
    const section = help.slice(help.indexOf('Commands:'), help.indexOf('\n\n', help.indexOf('Commands:')));
    const commands = [...section.matchAll(/^ {2}(\w+)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    expect(commands).toEqual(
      expect.arrayContaining(['run', 'status', 'tail', 'cancel', 'wait', 'guard', 'config', 'prune', 'rm', 'restart', 'events', 'docs', 'completion']),
    );
    for (const c of commands) {
      const r = await w.run([c, '--help']);
      expect(r.exitCode, c).toBe(0);
      expect(r.stdout, c).toContain('Examples:');
    }
    expect((await w.run(['--help'])).stdout).toContain('Examples:');
  });

  it('EPIPE (| head) exits quietly', async () => {
    for (let i = 0; i < 3; i++) await start(w, 'pipe', ['true']);
    const r = spawnSync('bash', ['-c', `set -o pipefail; node ${BIN} status --all --json | head -c 10 >/dev/null; echo "rc=\${PIPESTATUS[0]}"`], {
      env: { ...process.env, ...w.env },
      encoding: 'utf8',
    });
    expect(r.stdout.trim()).toBe('rc=0');
    expect(r.stderr).toBe('');
  });

  it('no colour when not a TTY; FORCE_COLOR forces it; NO_COLOR wins', async () => {
    await start(w, 'c', ['true']);
    expect((await w.run(['status'], { env: { NO_COLOR: '' } })).stdout).not.toContain('\x1b[');
    expect((await w.run(['status'], { env: { NO_COLOR: '', FORCE_COLOR: '1' } })).stdout).toContain('\x1b[');
    expect((await w.run(['status'], { env: { NO_COLOR: '1', FORCE_COLOR: '1' } })).stdout).not.toContain('\x1b[');
  });

  it.skipIf(!has('script'))('status --watch redraws on a TTY', async () => {
    await start(w, 'watched', ['sleep', '30']);
    const p = execa('script', ['-qfec', `node ${BIN} status --watch`, '/dev/null'], { env: { ...process.env, ...w.env }, reject: false });
    let seen = '';
    p.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    await pollUntil(() => (seen.match(/\x1b\[2J/g) ?? []).length >= 2 && seen.includes('watched'), 10_000, 'two redraws');
    p.kill('SIGINT');
    await p;
  });

  it.skipIf(!has('script'))('wait on a TTY shows elapsed time and the last output line', async () => {
    const stop = path.join(w.home, 'stop-wait');
    const id = await start(w, 'waited', ['sh', '-c', `echo "epoch 3 loss 0.25"; while [ ! -e ${stop} ]; do sleep 0.05; done`]);
    const p = execa('script', ['-qfec', `node ${BIN} wait ${id}`, '/dev/null'], { env: { ...process.env, ...w.env }, reject: false });
    let seen = '';
    p.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    await pollUntil(() => /waited_\S+ running \d+(ms|s)\s+epoch 3 loss 0\.25/.test(seen), 10_000, 'status line on the TTY');
    fs.writeFileSync(stop, '');
    expect((await p).exitCode).toBe(0);
  });
});

describe('hints where people trip', () => {
  it('options meant for the command: "did you forget \'--\'"; `run NAME --` says missing command; a typo gets a suggestion', async () => {
    const r = await w.run(['run', 'm1', 'python3', 'train.py', '--epochs', '1']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--epochs' — did you forget '--' before the command\?/);
    const m = await w.run(['run', 'm5', '--']);
    expect(m.exitCode).toBe(2);
    expect(m.stderr).toMatch(/missing command/);
    await start(w, 'train', ['true']);
    const t = await w.run(['status', 'trian']);
    expect(t.exitCode).toBe(1);
    expect(t.stderr).toMatch(/did you mean 'train'\?/);
  });

  it('slips a newcomer makes get one line and exit 2, and nothing is written', async () => {
    for (const [args, msg] of [
      [['run', 'c', '--cwd', '--', 'true'], "--cwd needs a value before the '--' that starts the command"],
      [['run', 'c', '--mem-limit', '8', '--', 'true'], '--mem-limit 8 is 8B: too little for a job, at least 1M (did you mean 8G?)'],
      [['prune', '--state', 'faild'], "invalid --state 'faild': one of succeeded, failed,"],
      [['completion'], 'which shell? jobq completion bash|zsh|fish'],
    ] as const) {
      const r = await w.run([...args]);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(msg);
    }
    expect(w.ids()).toEqual([]);
  });

  it('--no-color works after the subcommand too; status -n validates', async () => {
    await start(w, 'c', ['true']);
    const r = await w.run(['status', '--no-color'], { env: { NO_COLOR: '', FORCE_COLOR: '1' } });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toContain('\x1b[');
    expect((await w.run(['status', '-n', 'x'])).exitCode).toBe(2);
  });

  it('jobq docs and jobq help docs say where the docs and Makefile.example are', async () => {
    const r = await w.run(['docs']);
    expect(r.stdout).toMatch(/^docs:\s+\/\S+\/docs$/m);
    expect(r.stdout).toMatch(/^Makefile.example:\s+\/\S+\/Makefile.example$/m);
    const j = JSON.parse((await w.run(['docs', '--json'])).stdout);
    expect(fs.existsSync(path.join(j.docs, 'guarantees.md'))).toBe(true);
    expect(fs.existsSync(j.makefileExample)).toBe(true);
    expect((await w.run(['help', 'docs'])).stdout).toContain(`Installed here: ${j.docs}`);
  });

  it("a suggestion is quoted: prune a b t9 says did you mean 'to'?, not a sentence", async () => {
    for (const n of ['a', 'to']) await w.run(['run', n, '-q', '--', 'true']);
    await w.run(['wait', 'a', 'to']);
    const pr = await w.run(['prune', 'a', 't9']);
    expect([pr.exitCode, pr.stderr.trim()]).toEqual([1, "jobq: no job named or with id 't9'; did you mean 'to'?"]);
    expect(w.ids()).toHaveLength(2);
  });

  it('no silent no-ops: prune and queue name what they do not know; replace, cancel and resume say what they did', async () => {
    const keep = await start(w, 'train', ['true']);
    await w.run(['wait', keep]);
    const typo = await w.run(['prune', 'trian']);
    expect([typo.exitCode, typo.stderr.trim()]).toEqual([1, expect.stringMatching(/no job named or with id 'trian'; did you mean 'train'\?/)]);

    expect(w.ids()).toEqual([keep]);
    await w.run(['queue', 'set', 'heavy', '--slots', '1']);
    const q = await w.run(['queue', 'heavvy']);
    expect([q.exitCode, q.stderr]).toEqual([1, expect.stringMatching(/no queue named 'heavvy'; did you mean 'heavy'\?/)]);
    expect((await w.run(['queue', 'pause', 'heavvy'])).stderr).toMatch(/queue 'heavvy' is new .*did you mean 'heavy'\?/);
    expect((await w.run(['queue', 'set', 'heavy'])).stderr).toMatch(/missing --slots/);
    const old = await start(w, 'dup', ['sleep', '30']);
    const rep = await w.run(['run', 'dup', '-q', '--replace', '--', 'sleep', '30']);
    expect(rep.stderr).toContain(`replaced ${old} (cancelled)`);
    expect((await w.run(['resume', 'dup'])).stdout).toMatch(/was already running/);
    await w.run(['queue', 'pause', 'heavy']);
    const waiting = (await w.run(['run', 'later', '-q', '--queue', 'heavy', '--', 'true'])).stdout.trim();
    expect((await w.run(['cancel', waiting])).stdout).toMatch(/never started: nothing to signal/);
    await w.run(['cancel', 'dup']);
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

  it('an option given an empty value (an unset $VAR) is a usage error, never taken as not given', async () => {
    for (const opt of ['--gpu-mem', '--gpus', '--mem', '--timeout', '--env', '--queue', '--isolation']) {
      const r = await w.run(['run', 'x', opt, '', '--', 'true']);
      expect(r.exitCode, opt).toBe(2);
      expect(r.stderr.trim().split('\n'), opt).toHaveLength(1);
      expect(r.stderr, opt).toContain(`'${opt} <`);
    }
    expect((await w.run(['status', '-n', ''])).exitCode).toBe(2);
    expect(w.ids()).toEqual([]);
  });
});
