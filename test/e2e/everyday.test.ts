// Issue 6: config and presets, housekeeping, notifications, events, completion, packaging, the README.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { BIN, ROOT, pollUntil, start, world, type World } from '../helpers/jobq.js';

let w: World;
beforeEach(() => {
  w = world();
});
afterEach(async () => {
  await w.cleanup();
});

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
    const r = await w.run(['run', 'presets', '-q', '--memsafe', '--preset', 'gpu', '--', 'sh', '-c', 'echo "$OMP_NUM_THREADS $CUDA_VISIBLE_DEVICES $MALLOC_ARENA_MAX"'], { cwd: proj });
    const id = r.stdout.trim();
    await w.run(['wait', id]);
    // The project's memsafe replaced the built-in one, so MALLOC_ARENA_MAX is not set.
    expect(fs.readFileSync(w.record(id).log, 'utf8').trim()).toBe('2 3');
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
    const id = await start(w, 'chatty', ['sh', '-c', 'i=0; while [ $i -lt 4000 ]; do echo "line $i ................................................"; i=$((i+1)); done; sleep 1.5'], ['--max-log-size', '64K']);
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
    const id = await start(w, 'hooked', ['sh', '-c', 'exit 4'], ['--on-exit', `echo "$JOBQ_JOB_ID $JOBQ_JOB_NAME $JOBQ_JOB_STATE $JOBQ_JOB_EXIT_CODE" > ${out}; exit 9`]);
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
    const lines = (await w.run(['events', '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.every((l) => typeof l.level === 'number' && typeof l.time === 'number' && l.msg)).toBe(true);
  });
});

describe('conventions', () => {
  it('every command has --help with examples', async () => {
    for (const c of ['run', 'status', 'tail', 'cancel', 'wait', 'guard', 'config', 'prune', 'restart', 'events', 'completion']) {
      const r = await w.run([c, '--help']);
      expect(r.exitCode, c).toBe(0);
      expect(r.stdout, c).toContain('Examples:');
    }
    expect((await w.run(['--help'])).stdout).toContain('Examples:');
  });

  it('EPIPE (| head) exits quietly', async () => {
    for (let i = 0; i < 3; i++) await start(w, 'pipe', ['true']);
    const r = spawnSync('bash', ['-c', `set -o pipefail; node ${BIN} status --all --json | head -c 10 >/dev/null; echo "rc=\${PIPESTATUS[0]}"`], { env: { ...process.env, ...w.env }, encoding: 'utf8' });
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

  it('completion scripts parse in their shells', async () => {
    for (const shell of ['bash', 'zsh', 'fish']) {
      const r = await w.run(['completion', shell], { stripFinalNewline: false });
      expect(r.exitCode).toBe(0);
      const f = path.join(w.home, `c.${shell}`);
      fs.writeFileSync(f, r.stdout);
      if (!has(shell)) continue;
      const check = spawnSync(shell, ['-n', f], { encoding: 'utf8' });
      expect(check.status, `${shell}: ${check.stderr}`).toBe(0);
    }
    const start2 = await start(w, 'completeme', ['true']);
    expect(start2).toBeTruthy();
    const names = spawnSync('bash', ['-c', `source ${path.join(w.home, 'c.bash')}; COMP_WORDS=(jobq tail comp); COMP_CWORD=2; _jobq; echo "\${COMPREPLY[@]}"`], { env: { ...process.env, ...w.env }, encoding: 'utf8' });
    expect(names.stdout.trim()).toBe('completeme');
    expect((await w.run(['completion', 'tcsh'])).exitCode).toBe(2);
  });
});

describe.skipIf(!has('make'))('Makefile.example', () => {
  it('X-bg runs a guarded target as a job; the target alone refuses; jobs-* targets work', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-make-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'Makefile'),
        `include ${path.join(ROOT, 'Makefile.example')}\nJOBQ = ${process.execPath} ${BIN}\nhello:\n\t@$(JOBQ) guard || exit 1\n\t@echo "guarded ok OMP=$$OMP_NUM_THREADS"\n`,
      );
      const env = { ...process.env, ...w.env };
      const direct = await execa('make', ['--no-print-directory', 'hello'], { cwd: dir, env, reject: false });
      expect(direct.exitCode).not.toBe(0);
      expect(direct.stderr).toContain('run it through jobq');
      const bg = await execa('make', ['--no-print-directory', 'hello-bg'], { cwd: dir, env });
      expect(bg.stdout).toMatch(/started hello_/);
      expect((await execa('make', ['--no-print-directory', 'jobs-wait', 'NAME=hello'], { cwd: dir, env, reject: false })).exitCode).toBe(0);
      expect((await w.run(['tail', 'hello'])).stdout).toContain('guarded ok OMP=1');
      await execa('make', ['--no-print-directory', 'jobs-run', 'NAME=adhoc', 'CMD=echo adhoc $$BG_JOB; sleep 30'], { cwd: dir, env });
      expect((await execa('make', ['--no-print-directory', 'jobs-status'], { cwd: dir, env })).stdout).toMatch(/adhoc\S*\s+\S+\s+running/);
      expect((await execa('make', ['--no-print-directory', 'jobs-cancel', 'NAME=adhoc'], { cwd: dir, env })).stdout).toContain('cancelled adhoc_');
      expect((await w.run(['tail', 'adhoc'])).stdout).toContain('adhoc 1');
      expect((await execa('make', ['jobs-run'], { cwd: dir, env, reject: false })).exitCode).toBe(2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('packaging', () => {
  it('npm pack gives a tarball that installs and runs jobq run and status', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-pack-'));
    try {
      // --ignore-scripts: `prepare` would rebuild dist/ under the feet of tests running in parallel; npm test built it.
      const tgz = execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--silent'], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop()!;
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
  it('the quick start\'s first line works on a fresh clone, as a new user would run it', async () => {
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
      expect(r.stdout).toMatch(/hello\S*\s+hello_\S+\s+running/);
      expect(r.stdout).toContain('hello from jobq\ndone');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
