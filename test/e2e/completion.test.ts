// Shell completion: bash (commands and options from the program, job names, paths, aliases), zsh, fish.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, start, useWorld } from '../helpers/jobq.js';

const w = useWorld();
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

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
