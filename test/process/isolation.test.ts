// The isolation decision, for paths that cannot run here (no systemd user manager): pure logic and the command it would run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeCommand, type IsolationFacts, planIsolation, warmCgroupMoves } from '../../src/process/isolation.js';
import { pollUntil } from '../helpers/jobq.js';

const none: IsolationFacts = { uid: 1000, systemdUser: false };
const systemd: IsolationFacts = { uid: 1000, systemdUser: true, v2Base: '/sys/fs/cgroup/user.slice/jobq' };
const v1: IsolationFacts = { uid: 0, systemdUser: false, v1Bases: { memory: '/sys/fs/cgroup/memory/jobq', cpuacct: '/sys/fs/cgroup/cpuacct/jobq' } };
const v2: IsolationFacts = { uid: 0, systemdUser: false, v2Base: '/sys/fs/cgroup/jobq' };

describe('planIsolation', () => {
  it('auto prefers a systemd scope, described by the command, delegated, with an OOM policy that spares siblings and the memory limit', () => {
    const p = planIsolation('auto', systemd, { id: 'train_20261124_101010', memLimitBytes: 8 * 1024 ** 3, argv: ['python', 'train.py', "it's"] });
    expect(p.kind).toBe('systemd-scope');
    expect(p.prefix).toEqual([
      'systemd-run',
      '--user',
      '--scope',
      '--quiet',
      '--collect',
      '--unit=jobq-train_20261124_101010.scope',
      `--description=python train.py 'it'\\''s'`,
      '-p',
      'OOMPolicy=continue',
      '-p',
      'Delegate=yes',
      '-p',
      `MemoryMax=${8 * 1024 ** 3}`,
      '-p',
      'MemorySwapMax=0',
      '--',
    ]);
    // The scope's cgroup is found from the job's own process once it runs (scopeCgroupDir), never planned.
    expect(p.cgroupDirs).toEqual([]);
  });

  it('describes a long command in at most 200 characters', () => {
    expect(describeCommand(['x'.repeat(300)])).toHaveLength(200);
    expect(describeCommand(['echo', 'a b', '$HOME'])).toBe("echo 'a b' '$HOME'");
  });

  it('auto falls back to cgroup v2, then v1 (memory and cpuacct), then none', () => {
    expect(planIsolation('auto', v2, { id: 'a_20261124_101010' })).toMatchObject({ kind: 'cgroup-v2', cgroupDirs: ['/sys/fs/cgroup/jobq/a_20261124_101010'] });
    expect(planIsolation('auto', v1, { id: 'a_20261124_101010' })).toMatchObject({
      kind: 'cgroup-v1',
      cgroupDirs: ['/sys/fs/cgroup/memory/jobq/a_20261124_101010', '/sys/fs/cgroup/cpuacct/jobq/a_20261124_101010'],
    });
    expect(planIsolation('auto', none, { id: 'a_20261124_101010' })).toMatchObject({ kind: 'none', prefix: [], cgroupDirs: [] });
  });

  it('explicit modes: scope and cgroup fail clearly where unavailable; none never isolates', () => {
    expect(() => planIsolation('scope', v1, { id: 'a_20261124_101010' })).toThrow(/systemd user manager/);
    expect(() => planIsolation('cgroup', none, { id: 'a_20261124_101010' })).toThrow(/writable cgroup/);
    expect(planIsolation('cgroup', systemd, { id: 'a_20261124_101010' }).kind).toBe('cgroup-v2');
    expect(planIsolation('none', systemd, { id: 'a_20261124_101010' }).kind).toBe('none');
  });

  it('a scope without a memory limit has no Memory properties', () => {
    const p = planIsolation('scope', systemd, { id: 'a_20261124_101010' });
    expect(p.prefix.join(' ')).not.toMatch(/Memory/);
  });

  it('each --retry attempt gets a scope of its own (the last one may still be on its way out)', () => {
    expect(planIsolation('scope', systemd, { id: 'a_20261124_101010' }).unit).toBe('jobq-a_20261124_101010.scope');
    expect(planIsolation('scope', systemd, { id: 'a_20261124_101010', attempt: 1 }).unit).toBe('jobq-a_20261124_101010.scope');
    const p = planIsolation('scope', systemd, { id: 'a_20261124_101010', attempt: 3 });
    expect(p.unit).toBe('jobq-a_20261124_101010-a3.scope');
    expect(p.prefix).toContain('--unit=jobq-a_20261124_101010-a3.scope');
  });
});

describe('warmCgroupMoves', () => {
  // A stand-in hierarchy of plain files: what it writes, and where it refuses to, without moving this process.
  function tree(listed: boolean) {
    const own = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-cg-'));
    fs.mkdirSync(path.join(own, 'jobq', 'j_20261201_000000'), { recursive: true });
    fs.writeFileSync(path.join(own, 'cgroup.procs'), listed ? `1\n${process.pid}\n` : '1\n2\n');
    return { own, plan: { kind: 'cgroup-v1' as const, prefix: [], cgroupDirs: [path.join(own, 'jobq', 'j_20261201_000000')] } };
  }

  it('writes our pid only into the cgroup that already lists us (a no-op move there)', async () => {
    const { own, plan } = tree(true);
    warmCgroupMoves(plan);
    await pollUntil(() => fs.readFileSync(path.join(own, 'cgroup.procs'), 'utf8') === String(process.pid), 5000, 'the write');
    fs.rmSync(own, { recursive: true });
  });

  it('never where we are not listed (a mount that does not start at the cgroup root), nor for other plans', () => {
    const { own, plan } = tree(false);
    warmCgroupMoves(plan);
    warmCgroupMoves({ ...plan, kind: 'cgroup-v2' });
    // It refuses before opening anything (the write is only queued after the open), so nothing can come later.
    expect(fs.readFileSync(path.join(own, 'cgroup.procs'), 'utf8')).toBe('1\n2\n');
    fs.rmSync(own, { recursive: true });
  });
});
