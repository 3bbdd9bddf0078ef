// The isolation decision, for paths that cannot run here (no systemd user manager): pure logic and the command it would run.
import { describe, expect, it } from 'vitest';
import { type IsolationFacts, planIsolation } from '../../src/process/isolation.js';

const none: IsolationFacts = { uid: 1000, systemdUser: false };
const systemd: IsolationFacts = { uid: 1000, systemdUser: true, v2Base: '/sys/fs/cgroup/user.slice/jobq' };
const v1: IsolationFacts = { uid: 0, systemdUser: false, v1Bases: { memory: '/sys/fs/cgroup/memory/jobq', cpuacct: '/sys/fs/cgroup/cpuacct/jobq' } };
const v2: IsolationFacts = { uid: 0, systemdUser: false, v2Base: '/sys/fs/cgroup/jobq' };

describe('planIsolation', () => {
  it('auto prefers a systemd scope, with an OOM policy that spares siblings and the memory limit', () => {
    const p = planIsolation('auto', systemd, { id: 'train_20261124_101010', memLimitBytes: 8 * 1024 ** 3 });
    expect(p.kind).toBe('systemd-scope');
    expect(p.prefix).toEqual([
      'systemd-run',
      '--user',
      '--scope',
      '--quiet',
      '--collect',
      '--unit=jobq-train_20261124_101010.scope',
      '-p',
      'OOMPolicy=continue',
      '-p',
      `MemoryMax=${8 * 1024 ** 3}`,
      '-p',
      'MemorySwapMax=0',
      '--',
    ]);
    expect(p.cgroupDirs).toEqual([]);
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
});
