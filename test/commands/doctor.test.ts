// jobq doctor: the rules fed the facts of three machines (this CI host, the Debian guest, an ssh login without linger),
// then the built CLI on this host, checked against what the host really is.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { oomdConfig, policy } from '../../src/commands/doctor.js';
import { type Check, type DoctorFacts, delegateFix, diagnose, parseTimespan, percent, renderReport } from '../../src/domain/doctor.js';
import { detectFacts, planIsolation } from '../../src/process/isolation.js';
import { world } from '../helpers/jobq.js';

const G = 1024 ** 3;

/** (a) A CI host like this one: root in a container, no systemd, hybrid cgroups (memory on v1). */
const ciHost: DoctorFacts = {
  user: { name: 'root', uid: 0 },
  cgroup: {
    version: 'hybrid',
    mounts: [
      { point: '/sys/fs/cgroup/memory', type: 'cgroup', options: 'rw,memory' },
      { point: '/sys/fs/cgroup/unified', type: 'cgroup2', options: 'rw' },
    ],
    own: ['4:memory:/process_api/abc', '0::/'],
  },
  systemd: { pid1: false, privateSocket: false, managerRunning: false, systemdRun: true, noUserManager: 'systemd is not running here', linger: false },
  delegation: { cgroup: '/sys/fs/cgroup/user.slice/user-0.slice/user@0.service' },
  isolation: { auto: 'cgroup-v1', base: '/sys/fs/cgroup/memory/process_api/abc/jobq', configured: 'auto', configuredFrom: 'default', effective: 'cgroup-v1' },
  oomd: { active: 'n/a', user: {}, root: {} },
  memory: { totalBytes: 24 * G, availableBytes: 20 * G, swapTotalBytes: 0, swapFreeBytes: 0 },
  psi: { readable: true, someAvg10: 0, fullAvg10: 0 },
  guard: {},
  gpus: { nvidiaSmi: false, list: [] },
  stateDir: { path: '/root/.local/state/jobq', exists: false, writable: true, fsType: 'ext4', mountPoint: '/', freeBytes: 77 * G, totalBytes: 250 * G },
};

/** (b) The Debian 12 guest of shared/vm/NOTES.md: alice over ssh, lingering user manager, cgroup v2, oomd on, no swap. */
const guest: DoctorFacts = {
  user: { name: 'alice', uid: 1000 },
  cgroup: {
    version: 'v2',
    mounts: [{ point: '/sys/fs/cgroup', type: 'cgroup2', options: 'rw,nsdelegate,memory_recursiveprot' }],
    own: ['0::/user.slice/user-1000.slice/session-3.scope'],
  },
  systemd: { pid1: true, runtimeDir: '/run/user/1000', privateSocket: true, managerRunning: true, systemdRun: true, linger: true },
  delegation: { cgroup: '/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service', controllers: ['cpu', 'memory', 'pids'] },
  isolation: { auto: 'systemd-scope', configured: 'auto', configuredFrom: 'default', effective: 'systemd-scope' },
  oomd: {
    active: 'active',
    user: { memoryPressure: 'kill', memoryPressureLimit: '50%', swap: 'auto' },
    root: { memoryPressure: 'auto', memoryPressureLimit: '0', swap: 'kill' },
    pressureDurationSec: 20,
    pressureDurationFrom: '/usr/lib/systemd/oomd.conf.d/10-oomd-defaults.conf',
  },
  memory: { totalBytes: 2_010_000 * 1024, availableBytes: 1_780_000 * 1024, swapTotalBytes: 0, swapFreeBytes: 0 },
  psi: { readable: true, someAvg10: 0, fullAvg10: 0 },
  guard: {},
  gpus: { nvidiaSmi: false, list: [] },
  stateDir: { path: '/home/alice/.local/state/jobq', exists: false, writable: true, fsType: 'ext4', mountPoint: '/', freeBytes: 4.2 * G, totalBytes: 5.8 * G },
};

/** (c) The same guest from an ssh login that gets no user manager, alice not lingering: no scope, no cgroup. */
const sshNoLinger: DoctorFacts = {
  ...guest,
  systemd: {
    pid1: true,
    runtimeDir: '/run/user/1000',
    privateSocket: false,
    managerRunning: false,
    systemdRun: true,
    noUserManager: 'no user manager socket in /run/user/1000 (logged out, and not lingering?)',
    linger: false,
  },
  delegation: { cgroup: guest.delegation.cgroup },
  isolation: { auto: 'none', configured: 'auto', configuredFrom: 'default', effective: 'none' },
};

const byId = (checks: Check[]) => Object.fromEntries(checks.map((c) => [c.id, c]));

describe('doctor rules', () => {
  it('(a) CI host: v1 cgroups as root, no systemd: nothing to fix', () => {
    const r = diagnose(ciHost);
    const c = byId(r.checks);
    expect(r.status).toBe('ok');
    expect(r.fixes).toEqual([]);
    expect(c.cgroup!.summary).toMatch(/^hybrid: .*memory on \/sys\/fs\/cgroup\/memory.*jobq uses v1; this process: memory:\/process_api\/abc$/);
    expect(c.isolation).toMatchObject({ status: 'ok', summary: expect.stringMatching(/^auto → cgroup-v1: .*\/process_api\/abc\/jobq$/) });
    expect(c.isolation!.detail).toMatch(/memory\.limit_in_bytes/);
    expect(c['user-manager']).toMatchObject({ status: 'info', summary: expect.stringMatching(/systemd is not PID 1/) });
    expect(c.oomd!.summary).toMatch(/only the kernel OOM killer/);
    expect(c.swap!.summary).toMatch(/^none: .*swap rule never fires/);
    expect(c['state-dir']).toMatchObject({ status: 'ok', summary: '/root/.local/state/jobq (not made yet, ext4, 77G free)' });
    expect(r.checks.map((x) => x.id)).toEqual([
      'cgroup',
      'user-manager',
      'linger',
      'delegation',
      'isolation',
      'oomd',
      'memory',
      'swap',
      'psi',
      'guard',
      'gpus',
      'state-dir',
    ]);
  });

  it('(b) guest: a scope per job with a real memory limit; oomd explained, not a problem', () => {
    const r = diagnose(guest);
    const c = byId(r.checks);
    expect(r.status).toBe('ok');
    expect(r.fixes).toEqual([]);
    expect(c.cgroup!.summary).toBe('v2 (cgroup2 on /sys/fs/cgroup); this process: /user.slice/user-1000.slice/session-3.scope');
    expect(c['user-manager']!.status).toBe('ok');
    expect(c.linger!.status).toBe('ok');
    expect(c.delegation).toMatchObject({ status: 'ok', summary: expect.stringContaining('user@1000.service delegates cpu memory pids') });
    expect(c.isolation!.summary).toMatch(/^auto → systemd-scope: .*app\.slice/);
    expect(c.isolation!.detail).toBe('--mem-limit sets MemoryMax on the scope');
    expect(c.oomd!.status).toBe('info');
    expect(c.oomd!.summary).toBe('active; user@1000.service: kill at memory pressure > 50% for 20s; -.slice: kill on swap use > 90%');
    expect(c.oomd!.detail).toContain(
      "under memory pressure > 50% for 20s in your user manager, systemd-oomd kills the cgroup with the most reclaim activity: a jobq job's scope, or your terminal/tmux if that is where the pressure is",
    );
    expect(c.oomd!.detail).toContain('the swap rule never fires here: there is no swap');
  });

  it('the pressure guard: off says how to turn it on; on, its thresholds and where pressure stands now', () => {
    expect(byId(diagnose(guest).checks).guard).toMatchObject({
      status: 'info',
      summary: expect.stringMatching(/^pressure guard off \(config "pressureGuard": true/),
    });
    const settings = { some: 40, forMs: 30_000, warnMs: 10_000, thawBelow: 10, thawMs: 30_000, endMs: 60_000 };
    const on = byId(diagnose({ ...guest, guard: { settings, from: 'env JOBQ_PRESSURE_GUARD' }, psi: { readable: true, someAvg10: 63.2 } }).checks).guard!;
    expect(on).toMatchObject({ status: 'warn', summary: 'pressure guard on (from env JOBQ_PRESSURE_GUARD): some avg10 now 63.20% (over 40%)' });
    expect(on.detail).toBe(
      'acts when memory some avg10 > 40% for 30s: warning signal, freeze after 10s, thaw when < 10% for 30s, end if still high 1m after the freeze',
    );
    expect(byId(diagnose({ ...guest, guard: { settings }, psi: { readable: false } }).checks).guard!.status).toBe('warn');
  });

  it('(b) guest, from a terminal inside user@1000.service: oomd may pick that terminal: warn', () => {
    const f = { ...guest, cgroup: { ...guest.cgroup, own: ['0::/user.slice/user-1000.slice/user@1000.service/app.slice/tmux.scope'] } };
    const c = byId(diagnose(f).checks);
    expect(c.oomd).toMatchObject({ status: 'warn', detail: expect.stringContaining('this shell runs inside user@1000.service') });
  });

  it('(b) guest without memory delegation: warn, and the drop-in that fixes it', () => {
    const f = { ...guest, delegation: { ...guest.delegation, controllers: ['cpu', 'pids'] } };
    const r = diagnose(f);
    const c = byId(r.checks);
    expect(c.delegation).toMatchObject({ status: 'warn', fix: delegateFix(f) });
    expect(c.isolation!.detail).toMatch(/RLIMIT_AS/);
    expect(r.fixes).toEqual([
      "sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload",
    ]);
  });

  it('(c) ssh without linger: no user manager, no cgroup: warn, one fix (enable-linger) said once', () => {
    const r = diagnose(sshNoLinger);
    const c = byId(r.checks);
    expect(r.status).toBe('warn');
    expect(c['user-manager']).toMatchObject({ status: 'warn', fix: 'loginctl enable-linger alice' });
    expect(c.linger).toMatchObject({ status: 'warn', fix: 'loginctl enable-linger alice' });
    expect(c.isolation).toMatchObject({ status: 'warn', summary: expect.stringMatching(/^auto → none: only a process group: no memory cap except RLIMIT_AS/) });
    expect(c.delegation!.status).toBe('info');
    expect(r.fixes).toEqual(['loginctl enable-linger alice']);
    expect(renderReport(r)).toMatch(/\nTo fix:\n {2}loginctl enable-linger alice\n$/);
  });

  it('su/sudo without XDG_RUNTIME_DIR: explains, and points at the running manager', () => {
    const systemd = { ...sshNoLinger.systemd, runtimeDir: undefined, managerRunning: true, linger: true, noUserManager: 'XDG_RUNTIME_DIR is not set' };
    const c = byId(diagnose({ ...sshNoLinger, systemd }).checks);
    expect(c['user-manager']).toMatchObject({ status: 'warn', fix: 'export XDG_RUNTIME_DIR=/run/user/1000' });
    expect(c['user-manager']!.detail).toMatch(/machinectl shell alice@.*--isolation none/);
    const none = byId(diagnose({ ...sshNoLinger, systemd: { ...systemd, managerRunning: false } }).checks);
    expect(none['user-manager']!.fix).toBe('machinectl shell alice@');
  });

  it('fails only when jobq cannot work as configured: a refused state dir, or an isolation the config asks for and cannot have', () => {
    const refused = diagnose({ ...ciHost, stateDir: { ...ciHost.stateDir, exists: true, refused: 'mode 777 lets others write to it (chmod 700 /x)' } });
    expect(refused.status).toBe('fail');
    const scope = diagnose({
      ...ciHost,
      isolation: { ...ciHost.isolation, configured: 'scope', configuredFrom: '/etc/x.json', effective: undefined, configuredError: 'no user manager' },
    });
    expect(byId(scope.checks).isolation).toMatchObject({ status: 'fail', detail: 'no user manager' });
    const none = byId(diagnose({ ...guest, isolation: { ...guest.isolation, configured: 'none', effective: 'none' } }).checks).isolation!;
    expect(none).toMatchObject({ status: 'info', summary: expect.stringMatching(/asks for none: jobs get none$/), detail: expect.stringMatching(/RLIMIT_AS/) });
    const tmpfs = diagnose({ ...ciHost, stateDir: { ...ciHost.stateDir, fsType: 'tmpfs' } });
    expect(byId(tmpfs.checks)['state-dir']).toMatchObject({ status: 'warn', summary: expect.stringMatching(/lost at reboot/) });
    const full = diagnose({ ...ciHost, stateDir: { ...ciHost.stateDir, freeBytes: 10 * 1024 ** 2 } });
    expect(full.status).toBe('fail');
  });

  it('renders aligned lines, details indented under the summary', () => {
    const text = renderReport(diagnose(guest), (s, t) => `<${s}>${t}</${s}>`);
    expect(text).toContain('<ok>ok  </ok>  cgroup        v2 (cgroup2 on /sys/fs/cgroup)');
    expect(text).toContain('<info>info</info>  oomd          active;');
    expect(text).toMatch(/\n {20}under memory pressure > 50%/);
    expect(text).toMatch(/\nNothing to fix\.\n$/);
  });

  it('reads systemd time spans', () => {
    expect(parseTimespan('20s')).toBe(20);
    expect(parseTimespan('1min 30s')).toBe(90);
    expect(parseTimespan('1min30s')).toBe(90);
    expect(parseTimespan('500ms')).toBe(0.5);
    expect(parseTimespan('20')).toBe(20);
    expect(parseTimespan('soon')).toBeUndefined();
  });
});

describe('doctor gathering, from files and tool output', () => {
  it('reads oomd.conf then drop-ins by name, /etc over /usr, a /dev/null link masking one', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-oomd-'));
    const [etc, usr] = [path.join(tmp, 'etc'), path.join(tmp, 'usr')];
    const put = (file: string, text: string) => {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
    };
    try {
      put(path.join(etc, 'oomd.conf'), '[OOM]\n#DefaultMemoryPressureDurationSec=30s\nDefaultMemoryPressureDurationSec=40s\n');
      expect(oomdConfig([etc, usr]).DefaultMemoryPressureDurationSec).toEqual({ value: '40s', from: path.join(etc, 'oomd.conf') });
      put(path.join(usr, 'oomd.conf.d', '10-oomd-defaults.conf'), '[OOM]\nDefaultMemoryPressureDurationSec=20s\nSwapUsedLimit=80%\n');
      expect(oomdConfig([etc, usr]).DefaultMemoryPressureDurationSec!.value).toBe('20s');
      expect(oomdConfig([etc, usr]).SwapUsedLimit!.value).toBe('80%');
      fs.mkdirSync(path.join(etc, 'oomd.conf.d'));
      fs.symlinkSync('/dev/null', path.join(etc, 'oomd.conf.d', '10-oomd-defaults.conf'));
      expect(oomdConfig([etc, usr]).DefaultMemoryPressureDurationSec!.value).toBe('40s');
      put(path.join(etc, 'oomd.conf.d', '99-mine.conf'), '[Other]\nDefaultMemoryPressureDurationSec=1s\n[OOM]\nDefaultMemoryPressureDurationSec=15s\n');
      expect(oomdConfig([etc, usr]).DefaultMemoryPressureDurationSec!.value).toBe('15s');
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('reads the policy systemctl show prints, whatever form the limit takes', () => {
    expect(policy('ManagedOOMMemoryPressure=kill\nManagedOOMMemoryPressureLimit=50%\nManagedOOMSwap=auto\n')).toEqual({
      memoryPressure: 'kill',
      memoryPressureLimit: '50%',
      swap: 'auto',
    });
    expect(policy(undefined)).toEqual({});
    expect(percent('50%')).toBe('50%');
    expect(percent('50.00%')).toBe('50%');
    expect(percent('2147483648')).toBe('50%');
    expect(percent('0')).toBeUndefined();
    const f = { ...guest, oomd: { ...guest.oomd, user: { memoryPressure: 'kill', memoryPressureLimit: '0' } } };
    expect(byId(diagnose(f).checks).oomd!.summary).toContain('kill at memory pressure > 60% (default) for 20s');
  });
});

describe('jobq doctor on this host', () => {
  const w = world();
  afterAll(() => w.cleanup());

  it('--json is well-formed and says what is true here', async () => {
    const r = await w.run(['doctor', '--json']);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ schema: 2, version: expect.any(String), status: expect.stringMatching(/^(ok|warn|fail)$/) });
    expect(r.exitCode).toBe(j.status === 'fail' ? 1 : 0);
    for (const c of j.checks) expect(['ok', 'warn', 'fail', 'info']).toContain(c.status);
    // The same decision the supervisor makes (detectFacts, then auto).
    expect(j.isolation.auto).toBe(planIsolation('auto', detectFacts(), { id: 'x' }).kind);
    const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
    const v1 = fs.existsSync('/sys/fs/cgroup/memory');
    expect(j.cgroup.version).toBe(v2 ? 'v2' : v1 ? (j.cgroup.mounts.some((m: any) => m.type === 'cgroup2') ? 'hybrid' : 'v1') : 'none');
    expect(j.cgroup.own).toEqual(fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').filter(Boolean));
    expect(j.systemd.pid1).toBe(fs.existsSync('/run/systemd/system'));
    const total = Number(/^MemTotal:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1]) * 1024;
    expect(j.memory.totalBytes).toBe(total);
    expect(j.stateDir).toMatchObject({ path: w.home, exists: true, writable: true });
    expect(j.stateDir.freeBytes).toBeGreaterThan(0);
    expect(j.user.uid).toBe(process.getuid!());
  });

  it('lists GPUs from nvidia-smi, and says so when it fails or hangs (a stand-in nvidia-smi on PATH)', async () => {
    const bin = path.join(w.home, 'fakebin');
    fs.mkdirSync(bin, { recursive: true });
    const smi = path.join(bin, 'nvidia-smi');
    const gpus = async (script: string) => {
      fs.writeFileSync(smi, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
      const j = JSON.parse((await w.run(['doctor', '--json'], { env: { PATH: `${bin}:${process.env.PATH}` } })).stdout);
      return { facts: j.gpus, check: j.checks.find((c: any) => c.id === 'gpus') };
    };
    const two = await gpus(`printf '0, NVIDIA H200, 143771\\n1, NVIDIA H200, 143771\\n'`);
    expect(two.facts.list).toEqual([
      { index: 0, name: 'NVIDIA H200', memoryMiB: 143771 },
      { index: 1, name: 'NVIDIA H200', memoryMiB: 143771 },
    ]);
    expect(two.check).toMatchObject({ status: 'ok', summary: '0: NVIDIA H200 (140G), 1: NVIDIA H200 (140G)' });
    const broken = await gpus("echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' >&2; exit 9");
    expect(broken.check).toMatchObject({ status: 'warn', summary: expect.stringContaining('could not communicate') });
    const t0 = Date.now();
    const hung = await gpus('exec sleep 30');
    expect(hung.check).toMatchObject({ status: 'warn', summary: 'nvidia-smi failed: no answer in 3s' });
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it('prints one line per check with a marker, no colour when not a TTY, and exits 1 on a fail', async () => {
    const r = await w.run(['doctor']);
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n');
    for (const id of ['cgroup', 'isolation', 'oomd', 'swap', 'psi', 'gpus', 'state-dir'])
      expect(lines.some((l) => new RegExp(`^(ok|warn|fail|info) +${id} `).test(l))).toBe(true);
    expect(r.stdout).not.toMatch(/\x1b\[/);
    const open = path.join(w.home, 'open');
    fs.mkdirSync(open, { mode: 0o777 });
    fs.chmodSync(open, 0o777);
    const bad = await w.run(['doctor', '--json'], { env: { JOBQ_HOME: open } });
    expect(bad.exitCode).toBe(1);
    expect(JSON.parse(bad.stdout).checks.find((c: any) => c.id === 'state-dir')).toMatchObject({
      status: 'fail',
      summary: expect.stringMatching(/refuses it/),
    });
    // A config that asks for an isolation this host cannot give: every run would fail, so doctor fails.
    const conf = path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json');
    fs.mkdirSync(path.dirname(conf), { recursive: true });
    fs.writeFileSync(conf, JSON.stringify({ isolation: planIsolation('auto', detectFacts(), { id: 'x' }).kind === 'systemd-scope' ? 'cgroup' : 'scope' }));
    try {
      const r2 = await w.run(['doctor', '--json']);
      const j = JSON.parse(r2.stdout);
      const c = j.checks.find((x: any) => x.id === 'isolation');
      expect(c.status).toBe(j.isolation.configuredError ? 'fail' : 'ok');
      expect(r2.exitCode).toBe(j.status === 'fail' ? 1 : 0);
      if (!detectFacts().systemdUser) expect(c).toMatchObject({ status: 'fail', summary: expect.stringContaining(`(${conf})`) });
    } finally {
      fs.rmSync(conf);
    }
  });
});
