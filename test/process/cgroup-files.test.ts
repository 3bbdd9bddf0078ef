// cgroup file handling for v2 and v1, on a directory laid out as the kernel presents them (v2 cannot run on this machine).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cgroupStats, createCgroups, planIsolation } from '../../src/process/isolation.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-cg-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('cgroup v2 files', () => {
  it('writes memory.max and swap 0, reads the limit back, and parses peak, CPU and OOM kills', () => {
    const plan = planIsolation('cgroup', { uid: 0, systemdUser: false, v2Base: dir }, { id: 'j_20261124_000000' });
    const cg = plan.cgroupDirs[0]!;
    fs.mkdirSync(cg);
    fs.writeFileSync(path.join(cg, 'memory.swap.max'), 'max\n');
    expect(createCgroups(plan, 100 * 1024 * 1024)).toEqual({ appliedLimit: 100 * 1024 * 1024 });
    expect(fs.readFileSync(path.join(cg, 'memory.swap.max'), 'utf8')).toBe('0');
    fs.writeFileSync(path.join(cg, 'memory.peak'), '123456789\n');
    fs.writeFileSync(path.join(cg, 'memory.current'), '1000\n');
    fs.writeFileSync(path.join(cg, 'cpu.stat'), 'usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n');
    fs.writeFileSync(path.join(cg, 'memory.events'), 'low 0\nhigh 7\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n');
    expect(cgroupStats('cgroup-v2', [cg])).toEqual({ currentBytes: 1000, peakBytes: 123456789, cpuMs: 2500, oomKills: 1, limitHits: 1, highEvents: 7 });
  });

  it('--mem-high writes memory.high and reads it back; with no memory limit too', () => {
    const plan = planIsolation('cgroup', { uid: 0, systemdUser: false, v2Base: dir }, { id: 'j_20261124_000001' });
    const cg = plan.cgroupDirs[0]!;
    fs.mkdirSync(cg);
    expect(createCgroups(plan, undefined, 64 * 1024 * 1024)).toEqual({ appliedHigh: 64 * 1024 * 1024 });
    expect(fs.readFileSync(path.join(cg, 'memory.high'), 'utf8')).toBe(String(64 * 1024 * 1024));
  });
});

describe('cgroup v1 files', () => {
  it('writes limit_in_bytes and memsw, and parses max_usage, cpuacct.usage and oom_control', () => {
    const plan = planIsolation(
      'cgroup',
      { uid: 0, systemdUser: false, v1Bases: { memory: path.join(dir, 'memory'), cpuacct: path.join(dir, 'cpuacct') } },
      { id: 'j_20261124_000000' },
    );
    const [mem, cpu] = plan.cgroupDirs as [string, string];
    fs.mkdirSync(mem, { recursive: true });
    fs.writeFileSync(path.join(mem, 'memory.memsw.limit_in_bytes'), '');
    expect(createCgroups(plan, 64 * 1024 * 1024).appliedLimit).toBe(64 * 1024 * 1024);
    expect(fs.readFileSync(path.join(mem, 'memory.memsw.limit_in_bytes'), 'utf8')).toBe(String(64 * 1024 * 1024));
    expect(fs.existsSync(cpu)).toBe(true);
    fs.writeFileSync(path.join(mem, 'memory.max_usage_in_bytes'), '5000\n');
    fs.writeFileSync(path.join(mem, 'memory.usage_in_bytes'), '4000\n');
    fs.writeFileSync(path.join(mem, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n');
    fs.writeFileSync(path.join(cpu, 'cpuacct.usage'), '7000000\n');
    expect(cgroupStats('cgroup-v1', [mem, cpu])).toEqual({ currentBytes: 4000, peakBytes: 5000, cpuMs: 7, oomKills: 0 });
  });
});
