// Issue 6: config and presets, housekeeping, notifications, events, completion, packaging, the README.

import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { BIN, pollUntil, ROOT, start, useWorld } from '../helpers/jobq.js';

const w = useWorld();

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

describe('config and presets', () => {
  it('project config beats user config; flags beat both; jobq config shows where each value came from', async () => {
    const xdg = w.env.XDG_CONFIG_HOME!;
    fs.mkdirSync(path.join(xdg, 'jobq'), { recursive: true });
    fs.writeFileSync(path.join(xdg, 'jobq', 'config.json'), JSON.stringify({ grace: '20s', presets: { gpu: { CUDA_VISIBLE_DEVICES: '3' } } }));
    const proj = path.join(w.home, 'proj');
    fs.mkdirSync(proj);
    fs.writeFileSync(path.join(proj, '.jobq.json'), JSON.stringify({ grace: '2s', presets: { memsafe: { OMP_NUM_THREADS: '2' } } }));
    const cfg = JSON.parse((await w.run(['config', '--json'], { cwd: proj })).stdout);
    expect(cfg.config.graceMs).toBe(2000);
    expect(cfg.sources.graceMs).toBe(path.join(proj, '.jobq.json'));
    expect(cfg.sources['presets.gpu']).toBe(path.join(xdg, 'jobq', 'config.json'));
    const text = (await w.run(['config'], { cwd: proj })).stdout;
    expect(text).toMatch(/grace\s+2s\s+.*\.jobq\.json/);
    // The project config is found from where jobq is invoked.
    const r = await w.run(
      ['run', 'presets', '-q', '--memsafe', '--preset', 'gpu', '--', 'sh', '-c', 'echo "$OMP_NUM_THREADS $CUDA_VISIBLE_DEVICES $MALLOC_ARENA_MAX"'],
      { cwd: proj },
    );
    const id = r.stdout.trim();
    await w.run(['wait', id]);
    // The project's memsafe adds to the built-in one: its OMP value, the built-in MALLOC_ARENA_MAX.
    expect(fs.readFileSync(w.record(id).log, 'utf8').trim()).toBe('2 3 2');
    const id2 = await start(w, 'presets2', ['sh', '-c', 'echo "$OMP_NUM_THREADS"'], ['--memsafe', '--env', 'OMP_NUM_THREADS=8']);
    await w.run(['wait', id2]);
    expect(fs.readFileSync(w.record(id2).log, 'utf8').trim()).toBe('8');
  });

  it('a bad config file: one line naming file and key, exit 2, nothing started', async () => {
    fs.writeFileSync(path.join(w.home, '.jobq.json'), '{"grace": "forever"}');
    const r = await w.run(['run', 'x', '--', 'true'], { cwd: w.home });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`${w.home}/.jobq.json: key 'grace'`);
    expect(w.ids()).toEqual([]);
  });
});

describe('housekeeping', () => {
  it('prune removes finished jobs (not running ones), honouring --keep and --dry-run', async () => {
    const done = [];
    for (let i = 0; i < 4; i++) done.push(await start(w, 'p', ['true']));
    const running = await start(w, 'p', ['sleep', '30']);
    await w.run(['wait', ...done]);
    const dry = await w.run(['prune', '--keep', '1', '--dry-run']);
    expect(dry.stdout).toContain('3 jobs would be removed');
    expect(w.ids()).toHaveLength(5);
    const r = JSON.parse((await w.run(['prune', '--keep', '1', '--json'])).stdout);
    expect(r.removed.map((x: { id: string }) => x.id).sort()).toEqual(done.slice(0, 3).sort());
    expect(w.ids().sort()).toEqual([done[3], running].sort());
    expect((await w.run(['prune', '--older-than', '1d'])).stdout).toContain('0 jobs removed');
  });

  it('restart starts the same argv, cwd and jobq-added env as a new job', async () => {
    const id = await start(w, 'again', ['sh', '-c', 'echo "$PWD $FOO $OMP_NUM_THREADS"'], ['--cwd', '/tmp', '--env', 'FOO=bar', '--memsafe']);
    await w.run(['wait', id]);
    const r = await w.run(['restart', 'again']);
    expect(r.exitCode).toBe(0);
    const id2 = /as (\S+)/.exec(r.stdout)![1]!;
    expect(id2).not.toBe(id);
    await w.run(['wait', id2]);
    expect(fs.readFileSync(w.record(id2).log, 'utf8').trim()).toBe('/tmp bar 1');
    expect(w.record(id2).argv).toEqual(w.record(id).argv);
  });

  it('caps the log of a job writing past --max-log-size, with a marker line', async () => {
    const id = await start(
      w,
      'chatty',
      ['sh', '-c', 'i=0; while [ $i -lt 4000 ]; do echo "line $i ................................................"; i=$((i+1)); done; sleep 1.5'],
      ['--max-log-size', '64K'],
    );
    await w.run(['wait', id]);
    const log = fs.readFileSync(w.record(id).log, 'utf8');
    expect(log.length).toBeLessThanOrEqual(64 * 1024);
    expect(log).toMatch(/^\[jobq\] \d+ bytes of older output dropped/);
    expect(log).toContain('line 3999');
  });
});

describe('notifications and events', () => {
  it('--on-exit runs with the outcome in its environment; its failure never changes the record', async () => {
    const out = path.join(w.home, 'hook.txt');
    const id = await start(
      w,
      'hooked',
      ['sh', '-c', 'exit 4'],
      ['--on-exit', `echo "$JOBQ_JOB_ID $JOBQ_JOB_NAME $JOBQ_JOB_STATE $JOBQ_JOB_EXIT_CODE" > ${out}; exit 9`],
    );
    await w.run(['wait', id]);
    await pollUntil(() => fs.existsSync(out) && fs.readFileSync(out, 'utf8').trim(), 10_000, 'hook output');
    expect(fs.readFileSync(out, 'utf8').trim()).toBe(`${id} hooked failed 4`);
    expect(w.record(id).state).toMatchObject({ status: 'failed', exitCode: 4 });
    await pollUntil(async () => (await w.run(['events', '--json'])).stdout.includes('on-exit finished'), 10_000, 'hook event');
  });

  it('events lists what jobq did', async () => {
    const id = await start(w, 'ev', ['sleep', '30']);
    await w.run(['cancel', id]);
    const text = (await w.run(['events'])).stdout;
    // One event per state change, in order, named for the state it reached.
    const order = ['submitted', 'running', 'cancel requested', 'cancelled'].map((m) => text.indexOf(` ${m} id=${id}`));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    const lines = (await w.run(['events', '--json'])).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.every((l) => typeof l.level === 'number' && typeof l.time === 'number' && l.msg)).toBe(true);
  });
});

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

describe('completion', () => {
  /** A `jobq` on PATH for the scripts' own `jobq completion --names`, running the build under test. */
  function shimPath(): string {
    const dir = path.join(w.home, 'bin');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'jobq'), `#!/bin/sh\nexec ${process.execPath} ${BIN} "$@"\n`, { mode: 0o755 });
    return `${dir}:${process.env.PATH}`;
  }

  /** What bash completes for the words typed (the last one being completed), as the shell would call _jobq. */
  async function bashComplete(words: string[], opts: { cwd?: string; env?: Record<string, string>; pre?: string } = {}): Promise<string[]> {
    const script = path.join(w.home, 'c.bash');
    if (!fs.existsSync(script)) fs.writeFileSync(script, (await w.run(['completion', 'bash'])).stdout);
    const arr = words.map((x) => `'${x}'`).join(' ');
    const fn = words[0] === 'jobq' ? '_jobq' : '_jobq_alias';
    const r = spawnSync(
      'bash',
      ['-c', `${opts.pre ?? ''}\nsource ${script}; COMP_WORDS=(${arr}); COMP_CWORD=${words.length - 1}; ${fn}; printf '%s\\n' "\${COMPREPLY[@]}"`],
      {
        env: { ...process.env, ...w.env, PATH: shimPath(), ...opts.env },
        cwd: opts.cwd ?? w.home,
        encoding: 'utf8',
      },
    );
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.split('\n').filter(Boolean).sort();
  }

  it("bash: commands and every command's options come from the program itself", async () => {
    const help = (await w.run(['--help'])).stdout;
    const section = help.slice(help.indexOf('Commands:'), help.indexOf('\n\n', help.indexOf('Commands:')));
    const commands = [...section.matchAll(/^ {2}(\w+)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    expect(commands.length).toBeGreaterThan(10);
    const top = await bashComplete(['jobq', '']);
    for (const c of commands) expect(top, c).toContain(c);
    for (const c of commands) {
      const opts = await bashComplete(['jobq', c, '-']);
      expect(opts, c).toContain('--help');
      const declared = [...(await w.run([c, '--help'])).stdout.matchAll(/^\s+(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]!);
      for (const o of declared) expect(opts, `${c} ${o}`).toContain(o);
    }
    expect(await bashComplete(['jobq', 'run', 'x', '--isolation', ''])).toEqual(['auto', 'cgroup', 'none', 'scope']);
  });

  it('bash: job names from the configured state dir; dirs for --cwd; the command and its files after --; aliases', async () => {
    const home2 = path.join(w.home, 'configured-state');
    fs.mkdirSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq'), { recursive: true });
    fs.writeFileSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json'), JSON.stringify({ stateDir: home2 }));
    const noEnvHome = { JOBQ_HOME: '' };
    const r = await w.run(['run', 'completeme', '-q', '--', 'true'], { env: noEnvHome });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(home2, 'jobs', r.stdout.trim()))).toBe(true);
    expect(await bashComplete(['jobq', 'tail', 'comp'], { env: noEnvHome })).toEqual(['completeme']);
    const proj = path.join(w.home, 'proj');
    fs.mkdirSync(path.join(proj, 'subdir'), { recursive: true });
    fs.writeFileSync(path.join(proj, 'subfile'), '');
    fs.writeFileSync(path.join(proj, 'train.py'), '');
    expect(await bashComplete(['jobq', 'run', 'x', '--cwd', 'sub'], { cwd: proj })).toEqual(['subdir']);
    expect(await bashComplete(['jobq', 'run', 'x', '--log', 'sub'], { cwd: proj })).toEqual(['subdir', 'subfile']);
    expect(await bashComplete(['jobq', 'run', 'x', '--', 'pytho'], { cwd: proj })).toContain('python3');
    expect(await bashComplete(['jobq', 'run', 'x', '--', 'python3', 'tr'], { cwd: proj })).toEqual(['train.py']);
    // The aliases docs/make.md shows complete as the commands they stand for.
    expect(await bashComplete(['js', 'comp'], { env: noEnvHome, pre: "alias js='jobq status'" })).toEqual(['completeme']);
    expect(await bashComplete(['jr', 'x', '--cw'], { pre: "alias jr='jobq run'" })).toEqual(['--cwd']);
    expect((await w.run(['completion', 'tcsh'])).exitCode).toBe(2);
  });

  it.skipIf(!has('zsh'))('zsh: the script loads', async () => {
    const f = path.join(w.home, 'c.zsh');
    fs.writeFileSync(f, (await w.run(['completion', 'zsh'])).stdout);
    const r = spawnSync('zsh', ['-fc', `autoload -U compinit; compinit -u -D; source ${f}; whence -w _jobq`], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('_jobq: function');
  });

  it.skipIf(!has('fish'))('fish: the script loads and completes commands and job names', async () => {
    await start(w, 'fishname', ['true']);
    const f = path.join(w.home, 'c.fish');
    fs.writeFileSync(f, (await w.run(['completion', 'fish'])).stdout);
    const r = spawnSync('fish', ['--no-config', '-c', `source ${f}; complete -C 'jobq ta'; complete -C 'jobq tail fishn'`], {
      env: { ...process.env, ...w.env, PATH: shimPath() },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^tail\t/m);
    expect(r.stdout).toMatch(/^fishname$/m);
  });
});

describe.skipIf(!has('make'))('Makefile.example', () => {
  it('X-bg runs a guarded target as a job; the target alone refuses; jobs-* targets work', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-make-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'Makefile'),
        `include ${path.join(ROOT, 'Makefile.example')}\nJOBQ = ${process.execPath} ${BIN}\nhello:\n\t@$(JOBQ) guard --instead 'make $@-bg' || exit 1\n\t@echo "guarded ok OMP=$$OMP_NUM_THREADS"\n`,
      );
      const env = { ...process.env, ...w.env };
      const direct = await execa('make', ['--no-print-directory', 'hello'], { cwd: dir, env, reject: false });
      expect(direct.exitCode).not.toBe(0);
      expect(direct.stderr).toContain('jobq: this is a heavy job: run it through jobq instead: make hello-bg  (BG_JOB=1 is not set)');
      const bg = await execa('make', ['--no-print-directory', 'hello-bg'], { cwd: dir, env });
      // The jobq line it runs, not the jobserver plumbing.
      expect(bg.stdout.split('\n')[0]).toBe(`${process.execPath} ${BIN} run hello --memsafe -- make hello`);
      expect(bg.stdout).not.toContain('MAKEFLAGS');
      // Debian 12 has no `python`: the example's recipes call python3.
      expect(fs.readFileSync(path.join(ROOT, 'Makefile.example'), 'utf8')).not.toMatch(/^\tpython /m);
      expect(bg.stdout).toMatch(/started hello_/);
      expect((await execa('make', ['--no-print-directory', 'jobs-wait', 'NAME=hello'], { cwd: dir, env, reject: false })).exitCode).toBe(0);
      expect((await w.run(['tail', 'hello'])).stdout).toContain('guarded ok OMP=1');
      await execa('make', ['--no-print-directory', 'jobs-run', 'NAME=adhoc', 'CMD=echo adhoc $$BG_JOB; sleep 30'], { cwd: dir, env });
      expect((await execa('make', ['--no-print-directory', 'jobs-status'], { cwd: dir, env })).stdout).toMatch(/adhoc\S*\s+\S+\s+running/);
      expect((await execa('make', ['--no-print-directory', 'jobs-cancel', 'NAME=adhoc'], { cwd: dir, env })).stdout).toContain('cancelled adhoc_');
      expect((await w.run(['tail', 'adhoc'])).stdout).toContain('adhoc 1');
      expect((await execa('make', ['jobs-run'], { cwd: dir, env, reject: false })).exitCode).toBe(2);
      // Quotes survive as typed: the command reaches sh -c through the environment.
      await execa('make', ['--no-print-directory', 'jobs-run', 'NAME=q1', "CMD=echo 'hi there'"], { cwd: dir, env });
      await execa('make', ['--no-print-directory', 'jobs-run', 'NAME=q2', 'CMD=python3 -c "print(1)"'], { cwd: dir, env });
      await w.run(['wait', 'q1', 'q2']);
      expect((await w.run(['tail', 'q1'])).stdout).toBe('hi there');
      expect((await w.run(['tail', 'q2'])).stdout).toBe('1');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!has('make'))('Makefile.example under make -j', () => {
  it('make -j2 a-bg b-bg: both run, neither log holds jobserver noise, VAR=value still reaches the job', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-make-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'Makefile'),
        `include ${path.join(ROOT, 'Makefile.example')}\nJOBQ = ${process.execPath} ${BIN}\nMEMSAFE =\na b:\n\t@$(JOBQ) guard || exit 1\n\t@echo "$@ ran X=$(X)"\n\t@$(MAKE) --no-print-directory inner\ninner:\n\t@echo inner\n`,
      );
      const env = { ...process.env, ...w.env };
      await execa('make', ['-j2', '--no-print-directory', 'a-bg', 'b-bg', 'X=7'], { cwd: dir, env });
      expect((await w.run(['wait', 'a', 'b'])).exitCode).toBe(0);
      for (const n of ['a', 'b']) {
        const log = (await w.run(['tail', '-n', '20', n])).stdout;
        expect(log).toContain(`${n} ran X=7`);
        expect(log).toContain('inner');
        expect(log).not.toMatch(/jobserver/);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("docs/make.md's shell functions", () => {
  it('run real jobs through jobq and leave no variable behind in the shell', async () => {
    // The functions exactly as the page shows them, in a bash that has jobq on its PATH.
    const page = fs.readFileSync(path.join(ROOT, 'docs', 'make.md'), 'utf8');
    const fns = page.split('\n').filter((l) => /^j[hf]\(\) \{/.test(l));
    expect(fns).toHaveLength(2);
    const bin = fs.mkdtempSync(path.join(w.home, 'bin-'));
    fs.symlinkSync(BIN, path.join(bin, 'jobq'));
    const script = `${fns.join('\n')}\nname=mine; rc=keep\njh fnjob sh -c 'echo "omp=$OMP_NUM_THREADS"' >/dev/null && jf fnjob >/dev/null; echo "rc=$? name=$name saved=$rc"`;
    const r = spawnSync('bash', ['-c', script], { env: { ...process.env, ...w.env, PATH: `${bin}:${process.env.PATH}` }, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('rc=0 name=mine saved=keep');
    expect(fs.readFileSync(w.record(w.ids()[0]!).log, 'utf8')).toBe('omp=1\n');
  });
});

describe('packaging', () => {
  it('npm pack gives a tarball that installs and runs jobq run and status', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-pack-'));
    try {
      // --ignore-scripts: `prepare` would rebuild dist/ under the feet of tests running in parallel; npm test built it.
      const tgz = execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--silent'], { cwd: ROOT, encoding: 'utf8' })
        .trim()
        .split('\n')
        .pop()!;
      execFileSync('npm', ['init', '-y'], { cwd: dir, stdio: 'ignore' });
      execFileSync('npm', ['install', '--no-audit', '--no-fund', path.join(dir, tgz)], { cwd: dir, stdio: 'ignore' });
      const bin = path.join(dir, 'node_modules', '.bin', 'jobq');
      const env = { ...process.env, ...w.env };
      const r = await execa(bin, ['run', 'packed', '--', 'echo', 'from the tarball'], { env, cwd: dir });
      expect(r.stdout).toContain('started packed_');
      await execa(bin, ['wait', 'packed'], { env });
      expect((await execa(bin, ['status'], { env })).stdout).toMatch(/packed\S*\s+\S+\s+succeeded/);
      expect((await execa(bin, ['tail', 'packed'], { env })).stdout).toBe('from the tarball');
      expect((await execa('npx', ['--no-install', 'jobq', 'status', 'packed'], { env, cwd: dir })).stdout).toMatch(/state\s+succeeded/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

describe('README', () => {
  it("the quick start's first line works on a fresh clone, as a new user would run it", async () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const block = /## Quick start[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)![1]!.trim().split('\n');
    expect(block).toHaveLength(2);
    expect(block[1]).toBe('npm ci && npm test');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-readme-'));
    try {
      execFileSync('git', ['clone', '-q', ROOT, path.join(dir, 'jobq')]);
      const clone = path.join(dir, 'jobq');
      // A fresh clone holds only what is committed; bring this tree's uncommitted sources along when testing locally.
      for (const p of ['src', 'bin', 'scripts', 'package.json', 'package-lock.json', 'README.md', 'tsconfig.json']) {
        fs.cpSync(path.join(ROOT, p), path.join(clone, p), { recursive: true });
      }
      const r = await execa('bash', ['-c', block[0]!], { cwd: clone, env: { ...process.env, ...w.env, HOME: dir }, reject: false, timeout: 240_000 });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/started hello_/);
      // Running, or — on a machine loaded enough that status took over a second to start — already done.
      expect(r.stdout).toMatch(/hello\S*\s+hello_\S+\s+(running|succeeded)/);
      expect(r.stdout).toContain('hello from jobq\ndone');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
