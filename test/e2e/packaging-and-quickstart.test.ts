// Installing jobq: npm pack's tarball installs and runs; the README's quick start works on a fresh clone.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { ROOT, useWorld } from '../helpers/jobq.js';

const w = useWorld();

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
