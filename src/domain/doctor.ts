// `jobq doctor`'s rules, pure: the facts gathered about a machine in, checks (ok/warn/fail/info) and the commands that fix them out.

import type { Isolation } from './job.js';
import { describePressure, type PressureSettings } from './pressure.js';
import { formatSize } from './units.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'info';

/** One line of the report; `fix` is one shell command, where one exists. */
export interface Check {
  id: string;
  status: CheckStatus;
  summary: string;
  detail?: string;
  fix?: string;
}

/** systemd-oomd's policy on one unit, as `systemctl show` prints it (absent: unknown). */
export interface OomdPolicy {
  memoryPressure?: string;
  memoryPressureLimit?: string;
  swap?: string;
}

/** Everything doctor reads about the machine (src/commands/doctor.ts gathers it; tests make it up). */
export interface DoctorFacts {
  user: { name: string; uid: number };
  cgroup: {
    version: 'v2' | 'v1' | 'hybrid' | 'none';
    /** cgroup and cgroup2 mounts from /proc/self/mountinfo. */
    mounts: Array<{ point: string; type: string; options: string }>;
    /** /proc/self/cgroup, one entry per line ("0::/user.slice/…", "4:memory:/…"). */
    own: string[];
  };
  systemd: {
    /** /run/systemd/system exists: systemd is PID 1. */
    pid1: boolean;
    runtimeDir?: string;
    /** $XDG_RUNTIME_DIR/systemd/private exists. */
    privateSocket: boolean;
    /** /run/user/UID/systemd/private exists: the user manager runs, whatever this shell's environment says. */
    managerRunning: boolean;
    systemdRun: boolean;
    /** Why no user manager answers (the test detectFacts makes); absent when one answers. */
    noUserManager?: string;
    /** /var/lib/systemd/linger/USER exists. */
    linger: boolean;
  };
  /** user@UID.service's cgroup and the controllers delegated to it (absent: no such cgroup, or not cgroup v2). */
  delegation: { cgroup: string; controllers?: string[] };
  isolation: {
    /** What `--isolation auto` picks here. */
    auto: Isolation;
    /** The cgroup base job cgroups go under (cgroup-v2/v1). */
    base?: string;
    /** The isolation the config asks for (default auto), where it came from, what it gives, or why it cannot be had here. */
    configured: string;
    effective?: Isolation;
    configuredFrom?: string;
    configuredError?: string;
  };
  oomd: {
    /** `systemctl is-active systemd-oomd`; "unknown" when it did not answer, "n/a" without systemd. */
    active: string;
    user: OomdPolicy;
    root: OomdPolicy;
    /** DefaultMemoryPressureDurationSec in seconds, and the file that set it (absent: systemd's default, 30s). */
    pressureDurationSec?: number;
    pressureDurationFrom?: string;
    /** SwapUsedLimit from the same files (absent: systemd's default, 90%). */
    swapUsedLimit?: string;
  };
  memory: { totalBytes?: number; availableBytes?: number; swapTotalBytes?: number; swapFreeBytes?: number };
  psi: { readable: boolean; someAvg10?: number; fullAvg10?: number };
  /** jobq's pressure guard: its settings when on (and where from), else off. */
  guard: { settings?: PressureSettings; from?: string };
  gpus: { nvidiaSmi: boolean; list: Array<{ index: number; name: string; memoryMiB: number }>; error?: string };
  stateDir: {
    path: string;
    exists: boolean;
    /** Why the store would refuse it (owner, mode, a path others can write). */
    refused?: string;
    /** We can write it (or, when absent, the directory it would be made in). */
    writable: boolean;
    fsType?: string;
    mountPoint?: string;
    freeBytes?: number;
    totalBytes?: number;
  };
}

export interface DoctorReport {
  status: 'ok' | 'warn' | 'fail';
  checks: Check[];
  /** The fixes of the warn and fail checks, each once, in order. */
  fixes: string[];
}

const GiB = 1024 ** 3;

/** A systemd time span ("20s", "1min 30s", "500ms", "20") in seconds; undefined if not one. */
export function parseTimespan(text: string): number | undefined {
  const units: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1, sec: 1, m: 60, min: 60, h: 3600, hr: 3600, d: 86400 };
  const parts = text.trim().split(/\s+|(?<=[a-z])(?=\d)/);
  let total = 0;
  for (const p of parts) {
    const m = /^(\d+(?:\.\d+)?)([a-z]*)$/.exec(p);
    const unit = m ? (m[2] ? units[m[2]] : 1) : undefined;
    if (!m || unit === undefined) return undefined;
    total += Number(m[1]) * unit;
  }
  return parts.length ? total : undefined;
}

/** The user's systemd manager unit and its cgroup. */
export function userService(uid: number): { unit: string; cgroup: string } {
  return { unit: `user@${uid}.service`, cgroup: `/sys/fs/cgroup/user.slice/user-${uid}.slice/user@${uid}.service` };
}

const sudo = (f: DoctorFacts) => (f.user.uid === 0 ? '' : 'sudo ');

/** The one command that makes memory (and cpu, io, pids) delegated to every user manager. */
export function delegateFix(f: DoctorFacts): string {
  const s = sudo(f);
  const dir = '/etc/systemd/system/user@.service.d';
  return `${s}mkdir -p ${dir} && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | ${s}tee ${dir}/delegate.conf && ${s}systemctl daemon-reload`;
}

function cgroupCheck(f: DoctorFacts): Check {
  const c = f.cgroup;
  const at = (type: string, opt?: string) => c.mounts.find((m) => m.type === type && (!opt || m.options.split(',').includes(opt)))?.point;
  const mine =
    c.version === 'v2' ? c.own.find((l) => l.startsWith('0::'))?.slice(3) : c.own.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l))?.replace(/^\d+:/, '');
  const self = mine ? `; this process: ${mine}` : '';
  if (c.version === 'v2') return { id: 'cgroup', status: 'ok', summary: `v2 (cgroup2 on ${at('cgroup2') ?? '/sys/fs/cgroup'})${self}` };
  if (c.version === 'none')
    return {
      id: 'cgroup',
      status: 'warn',
      summary: 'none: no cgroup hierarchy is mounted, so no job can get a cgroup of its own',
      detail: 'a container without /sys/fs/cgroup?',
    };
  const memory = `memory on ${at('cgroup', 'memory') ?? '/sys/fs/cgroup/memory'}`;
  if (c.version === 'v1') return { id: 'cgroup', status: 'ok', summary: `v1 (${memory})${self}` };
  return {
    id: 'cgroup',
    status: 'ok',
    summary: `hybrid: v1 controllers (${memory}), cgroup2 on ${at('cgroup2') ?? '?'}; jobq uses v1${self}`,
  };
}

/** True when a job without a scope would have no cgroup at all, or the config insists on a scope: then the user manager matters. */
const needsManager = (f: DoctorFacts) => f.isolation.auto === 'none' || f.isolation.configured === 'scope';

function userManagerCheck(f: DoctorFacts): Check {
  const s = f.systemd;
  const id = 'user-manager';
  if (!s.pid1) return { id, status: 'info', summary: 'none: systemd is not PID 1 here (a container or another init), so no systemd user scopes' };
  if (!s.noUserManager) return { id, status: 'ok', summary: `answers (XDG_RUNTIME_DIR=${s.runtimeDir}, systemd-run on PATH)` };
  const status: CheckStatus = needsManager(f) ? 'warn' : 'info';
  const instead = status === 'info' ? `; jobs get ${f.isolation.auto} instead` : '';
  const rt = `/run/user/${f.user.uid}`;
  if (!s.runtimeDir) {
    const detail = `typical of su or sudo without a login session: log in as ${f.user.name} (ssh ${f.user.name}@host, or machinectl shell ${f.user.name}@), or run jobs with --isolation none`;
    const fix = s.managerRunning ? `export XDG_RUNTIME_DIR=${rt}` : `machinectl shell ${f.user.name}@`;
    return { id, status, summary: `XDG_RUNTIME_DIR is not set, so systemctl --user cannot reach a user manager${instead}`, detail, fix };
  }
  if (!s.privateSocket) {
    const fix = f.systemd.linger ? `${sudo(f)}systemctl start user@${f.user.uid}.service` : `loginctl enable-linger ${f.user.name}`;
    return { id, status, summary: `none runs: ${s.noUserManager}${instead}`, fix };
  }
  return { id, status, summary: `none usable: ${s.noUserManager}${instead}`, detail: 'systemd-run comes with systemd: put /usr/bin on PATH' };
}

function lingerCheck(f: DoctorFacts): Check {
  const id = 'linger';
  if (!f.systemd.pid1) return { id, status: 'info', summary: 'n/a (no systemd)' };
  const fix = `loginctl enable-linger ${f.user.name}`;
  if (f.systemd.linger) return { id, status: 'ok', summary: `${f.user.name} lingers: the user manager runs without a login, so scoped jobs survive logout` };
  if (f.isolation.auto === 'systemd-scope')
    return {
      id,
      status: 'warn',
      summary: `${f.user.name} does not linger: the user manager stops when your last session ends, and every job scope with it`,
      fix,
    };
  if (needsManager(f)) return { id, status: 'warn', summary: `${f.user.name} does not linger: no user manager runs without a login session`, fix };
  return { id, status: 'info', summary: `${f.user.name} does not linger (jobs get ${f.isolation.auto}, not a scope)` };
}

function delegationCheck(f: DoctorFacts): Check {
  const id = 'delegation';
  const { unit } = userService(f.user.uid);
  if (!f.systemd.pid1 || f.cgroup.version !== 'v2')
    return { id, status: 'info', summary: `n/a (${f.systemd.pid1 ? 'systemd delegates controllers only on cgroup v2' : 'no systemd'})` };
  const ctl = f.delegation.controllers;
  if (!ctl) return { id, status: 'info', summary: `${unit} has no cgroup (${f.delegation.cgroup}): its manager is not running` };
  const list = ctl.join(' ') || 'nothing';
  if (ctl.includes('memory')) return { id, status: 'ok', summary: `${unit} delegates ${list}: --mem-limit in a scope is a cgroup limit` };
  return {
    id,
    status: f.isolation.auto === 'systemd-scope' ? 'warn' : 'info',
    summary: `${unit} delegates ${list}, not memory: a scope's MemoryMax is ignored and --mem-limit falls back to RLIMIT_AS`,
    detail: `takes effect once ${unit} restarts (log out of every session, or ${sudo(f)}systemctl restart ${unit}, which stops its units)`,
    fix: delegateFix(f),
  };
}

/** What --mem-limit becomes with this isolation. */
function memLimitMeaning(f: DoctorFacts, kind: Isolation): string {
  if (kind === 'cgroup-v2') return '--mem-limit sets memory.max; an OOM kill inside the job is counted in its cgroup and recorded as oom';
  if (kind === 'cgroup-v1') return '--mem-limit sets memory.limit_in_bytes (and memsw); an OOM kill inside the job is recorded as oom';
  if (kind === 'none') return '--mem-limit is only RLIMIT_AS (virtual memory: allocations fail, CUDA/JVM may not start)';
  const mem = f.delegation.controllers?.includes('memory') || f.cgroup.version !== 'v2';
  return mem ? '--mem-limit sets MemoryMax on the scope' : '--mem-limit falls back to RLIMIT_AS: memory is not delegated (see delegation)';
}

function isolationCheck(f: DoctorFacts): Check {
  const i = f.isolation;
  const what: Record<Isolation, string> = {
    'systemd-scope': 'each job in a systemd user scope of its own (jobq-<id>.scope under app.slice)',
    'cgroup-v2': `each job in a cgroup of its own under ${i.base ?? '?'}`,
    'cgroup-v1': `each job in a v1 memory cgroup of its own (and cpuacct, freezer ones where it may) under ${i.base ?? '?'}`,
    none: 'only a process group: no memory cap except RLIMIT_AS, an OOM kill is not attributed, and the OOM killer or systemd-oomd may pick your session',
  };
  const summary = `auto → ${i.auto}: ${what[i.auto]}`;
  if (i.configuredError)
    return {
      id: 'isolation',
      status: 'fail',
      summary: `config asks for isolation ${i.configured} (${i.configuredFrom ?? 'config'}) and it cannot be had: every run fails`,
      detail: i.configuredError,
    };
  const kind = i.effective ?? i.auto;
  const other = i.configured !== 'auto' ? `; config (${i.configuredFrom ?? 'config'}) asks for ${i.configured}: jobs get ${kind}` : '';
  const status: CheckStatus = kind !== 'none' ? 'ok' : i.configured === 'none' ? 'info' : 'warn';
  return { id: 'isolation', status, summary: summary + other, detail: memLimitMeaning(f, kind) };
}

/**
 * A percentage as systemctl or oomd.conf give it ("50%", "50.00%", or on the wire a fraction of 2^32-1), as "50%";
 * undefined for 0 (a unit's "use oomd's default").
 */
export function percent(text: string | undefined): string | undefined {
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(text?.trim() ?? '');
  if (!m || Number(m[1]) === 0) return undefined;
  const v = m[2] || Number(m[1]) <= 100 ? Number(m[1]) : (Number(m[1]) / 0xffffffff) * 100;
  return `${Number(v.toFixed(2))}%`;
}

/** The pressure limit of a unit's policy: its own, or oomd's DefaultMemoryPressureLimit when it says 0. */
function pressureLimit(p: OomdPolicy): string {
  return percent(p.memoryPressureLimit) ?? '60% (default)';
}

/** "kill at memory pressure > 50% for 20s" from one unit's policy, or undefined when it has none. */
function describePolicy(p: OomdPolicy, duration: string, swapLimit: string): string | undefined {
  const parts: string[] = [];
  if (p.memoryPressure === 'kill') parts.push(`kill at memory pressure > ${pressureLimit(p)} for ${duration}`);
  if (p.swap === 'kill') parts.push(`kill on swap use > ${swapLimit}`);
  return parts.length ? parts.join(', ') : undefined;
}

function oomdCheck(f: DoctorFacts): Check {
  const o = f.oomd;
  const id = 'oomd';
  if (o.active === 'n/a') return { id, status: 'info', summary: 'n/a (no systemd): only the kernel OOM killer acts' };
  if (o.active !== 'active')
    return {
      id,
      status: 'info',
      summary: `systemd-oomd is ${o.active}: only the kernel OOM killer acts (jobq raises its jobs' oom_score_adj, so it picks them first)`,
    };
  const secs = o.pressureDurationSec ?? 30;
  const duration = `${secs}s${o.pressureDurationSec === undefined ? ' (default)' : ''}`;
  const { unit } = userService(f.user.uid);
  const swapLimit = percent(o.swapUsedLimit) ?? '90%';
  const user = describePolicy(o.user, duration, swapLimit);
  const root = describePolicy(o.root, duration, swapLimit);
  const summary = `active; ${unit}: ${user ?? 'no policy'}; -.slice: ${root ?? 'no policy'}`;
  const notes: string[] = [];
  if (o.user.memoryPressure === 'kill') {
    notes.push(
      `under memory pressure > ${pressureLimit(o.user).replace(' (default)', '')} for ${secs}s in your user manager, systemd-oomd kills the cgroup with the most reclaim activity: a jobq job's scope, or your terminal/tmux if that is where the pressure is`,
    );
  }
  if (root && o.root.swap === 'kill' && f.memory.swapTotalBytes === 0) notes.push('the swap rule never fires here: there is no swap');
  const inside = f.cgroup.own.some((l) => l.startsWith('0::') && l.includes(`/${unit}/`));
  const status: CheckStatus = inside && o.user.memoryPressure === 'kill' ? 'warn' : 'info';
  if (status === 'warn') notes.push(`this shell runs inside ${unit}: oomd may pick it (and what runs with it) instead of a job`);
  return { id, status, summary, ...(notes.length ? { detail: notes.join('; ') } : {}) };
}

function memoryChecks(f: DoctorFacts): Check[] {
  const m = f.memory;
  const checks: Check[] = [];
  if (m.totalBytes === undefined) checks.push({ id: 'memory', status: 'info', summary: 'unknown (/proc/meminfo unreadable)' });
  else {
    const avail = m.availableBytes ?? 0;
    const low = avail < m.totalBytes * 0.1;
    checks.push({
      id: 'memory',
      status: low ? 'warn' : 'info',
      summary: `${formatSize(m.totalBytes)} total, ${formatSize(avail)} available${low ? ': under 10% free' : ''}`,
    });
  }
  if (m.swapTotalBytes === undefined) checks.push({ id: 'swap', status: 'info', summary: 'unknown' });
  else if (m.swapTotalBytes === 0)
    checks.push({ id: 'swap', status: 'info', summary: "none: a memory hog reaches the kernel OOM killer fast, and oomd's swap rule never fires" });
  else {
    const used = m.swapTotalBytes - (m.swapFreeBytes ?? 0);
    const pct = Math.round((used / m.swapTotalBytes) * 100);
    checks.push({ id: 'swap', status: pct > 90 ? 'warn' : 'ok', summary: `${formatSize(m.swapTotalBytes)}, ${formatSize(used)} used (${pct}%)` });
  }
  const p = f.psi;
  const oomdOn = f.oomd.active === 'active';
  checks.push(
    p.readable
      ? {
          id: 'psi',
          status: 'ok',
          summary: `memory some avg10=${(p.someAvg10 ?? 0).toFixed(2)}, full avg10=${(p.fullAvg10 ?? 0).toFixed(2)} (oomd's pressure rule reads full)`,
        }
      : {
          id: 'psi',
          status: oomdOn ? 'warn' : 'info',
          summary: '/proc/pressure/memory unreadable (kernel without PSI, or psi=0): systemd-oomd cannot see pressure',
        },
  );
  checks.push(guardCheck(f));
  return checks;
}

/** The pressure guard: off (how to turn it on), on with its thresholds and how pressure stands against them now. */
function guardCheck(f: DoctorFacts): Check {
  const g = f.guard.settings;
  if (!g) return { id: 'guard', status: 'info', summary: 'pressure guard off (config "pressureGuard": true, or JOBQ_PRESSURE_GUARD=1)' };
  const from = f.guard.from && f.guard.from !== 'default' ? ` (from ${f.guard.from})` : '';
  if (!f.psi.readable) return { id: 'guard', status: 'warn', summary: `pressure guard on${from}, but PSI is unreadable: it cannot act` };
  const now = f.psi.someAvg10 ?? 0;
  return {
    id: 'guard',
    status: now > g.some ? 'warn' : 'ok',
    summary: `pressure guard on${from}: some avg10 now ${now.toFixed(2)}% (${now > g.some ? 'over' : 'under'} ${g.some}%)`,
    detail: describePressure(g),
  };
}

function gpuCheck(f: DoctorFacts): Check {
  const g = f.gpus;
  if (!g.nvidiaSmi) return { id: 'gpus', status: 'info', summary: 'none found (nvidia-smi not on PATH)' };
  if (g.error) return { id: 'gpus', status: 'warn', summary: `nvidia-smi failed: ${g.error}`, detail: '--gpus cannot see free GPUs' };
  if (!g.list.length) return { id: 'gpus', status: 'info', summary: 'none found (nvidia-smi lists none)' };
  return { id: 'gpus', status: 'ok', summary: g.list.map((x) => `${x.index}: ${x.name} (${formatSize(x.memoryMiB * 1024 ** 2)})`).join(', ') };
}

function stateDirCheck(f: DoctorFacts): Check {
  const s = f.stateDir;
  const id = 'state-dir';
  if (s.refused) return { id, status: 'fail', summary: `${s.path}: jobq refuses it: ${s.refused}` };
  if (!s.writable) return { id, status: 'fail', summary: `${s.path}: ${s.exists ? 'not writable' : 'cannot be made (its parent is not writable)'}` };
  const where = [s.exists ? undefined : 'not made yet', s.fsType, s.freeBytes === undefined ? undefined : `${formatSize(s.freeBytes)} free`];
  const summary = `${s.path} (${where.filter(Boolean).join(', ') || 'nothing known'})`;
  const disk = 'set JOBQ_HOME (or stateDir in the config) to a directory on disk';
  if (s.freeBytes !== undefined && s.freeBytes < 64 * 1024 ** 2)
    return { id, status: 'fail', summary: `${summary}: full, records cannot be written`, detail: disk };
  const low = s.freeBytes !== undefined && (s.freeBytes < GiB || (s.totalBytes !== undefined && s.freeBytes < s.totalBytes * 0.05));
  if (s.fsType === 'tmpfs' || s.fsType === 'ramfs')
    return { id, status: 'warn', summary: `${summary}: in memory, so records and logs are lost at reboot (and logs use RAM)`, detail: disk };
  if (low) return { id, status: 'warn', summary: `${summary}: nearly full (each job's log may grow to --max-log-size, default 1G)` };
  return { id, status: 'ok', summary };
}

/** Turns the facts into the report: every check, the overall status, and the fixes in order. */
export function diagnose(f: DoctorFacts): DoctorReport {
  const checks = [
    cgroupCheck(f),
    userManagerCheck(f),
    lingerCheck(f),
    delegationCheck(f),
    isolationCheck(f),
    oomdCheck(f),
    ...memoryChecks(f),
    gpuCheck(f),
    stateDirCheck(f),
  ];
  const fixes = [...new Set(checks.filter((c) => (c.status === 'warn' || c.status === 'fail') && c.fix).map((c) => c.fix!))];
  const status = checks.some((c) => c.status === 'fail') ? 'fail' : checks.some((c) => c.status === 'warn') ? 'warn' : 'ok';
  return { status, checks, fixes };
}

/** The report as aligned text: status, check, summary (detail indented below), then "To fix:"; `paint` colours a status word. */
export function renderReport(r: DoctorReport, paint: (s: CheckStatus, text: string) => string = (_s, t) => t): string {
  const width = Math.max(...r.checks.map((c) => c.id.length));
  const pad = ' '.repeat(6 + width + 2);
  const lines = r.checks.flatMap((c) => {
    const head = `${paint(c.status, c.status.padEnd(4))}  ${c.id.padEnd(width)}  ${c.summary}`;
    return c.detail ? [head, `${pad}${c.detail}`] : [head];
  });
  lines.push('', r.fixes.length ? 'To fix:' : 'Nothing to fix.', ...r.fixes.map((x) => `  ${x}`));
  return lines.join('\n') + '\n';
}
