// jobq guard, and make: Makefile.example's X-bg and jobs-* targets, make -j, docs/make.md's shell functions.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT, start, useWorld } from '../helpers/jobq.js';

const w = useWorld();
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

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

describe('hints where people trip', () => {
  it('guard outside a job names what to run instead: the calling script as a jobq run line', async () => {
    const script = path.join(w.home, 'train.sh');
    fs.writeFileSync(script, `#!/bin/sh\n${process.execPath} ${BIN} guard || exit 1\necho trained\n`, { mode: 0o755 });
    for (const argv of [[script], ['bash', script], ['sh', script]]) {
      const r = await execa(argv[0]!, argv.slice(1), { env: { ...process.env, ...w.env, BG_JOB: '' }, reject: false });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toBe(`jobq: this is a heavy job: run it through jobq instead: jobq run train -- ${script}  (BG_JOB=1 is not set)`);
    }
    const id = await start(w, 'train', [script]);
    expect((await w.run(['wait', id])).exitCode).toBe(0);
  });

  it('guard inside a job started without that guard variable names the flag to add', async () => {
    const id = await start(w, 'g', [process.execPath, BIN, 'guard', '--var', 'GRAV_BG_JOB']);
    const r = await w.run(['wait', id]);
    expect(r.exitCode).toBe(1);
    expect(fs.readFileSync(w.record(id).log, 'utf8')).toMatch(
      /inside jobq job g_\S+, but GRAV_BG_JOB=1 is not set: start it with jobq run NAME --guard-var GRAV_BG_JOB/,
    );
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
