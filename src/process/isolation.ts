// Per-job isolation: decide (pure) between a systemd scope, a cgroup v2/v1 of its own, or none; then apply it.
import fs from 'node:fs';
import path from 'node:path';
import { JobqError } from '../domain/errors.js';
import type { Isolation } from '../domain/job.js';

export type IsolationMode = 'auto' | 'scope' | 'cgroup' | 'none';

/** What the machine offers, read once by the supervisor (detectFacts) or made up by tests. */
export interface IsolationFacts {
  uid: number;
  /** A systemd user manager answers (sd_booted and the user's private socket exists) and systemd-run is on PATH. */
  systemdUser: boolean;
  /** A writable cgroup v2 directory with the memory controller, under which job cgroups can be made. */
  v2Base?: string;
  /** Writable cgroup v1 directories (memory, cpuacct, freezer), one per hierarchy, under which job cgroups can be made. */
  v1Bases?: { memory: string; cpuacct?: string; freezer?: string };
}

/** What the supervisor will do for one job. */
export interface IsolationPlan {
  kind: Isolation;
  /** argv to put before the job's own (systemd-run ... --). */
  prefix: string[];
  /** cgroup directories to create and move the job into; the first is the memory one (v1: then cpuacct, freezer). */
  cgroupDirs: string[];
  unit?: string;
}

/** Decides the isolation for a job; throws when an explicit mode cannot be had here. Pure. */
export function planIsolation(mode: IsolationMode, facts: IsolationFacts, job: { id: string; memLimitBytes?: number }): IsolationPlan {
  const wantScope = mode === 'scope' || (mode === 'auto' && facts.systemdUser);
  if (wantScope) {
    if (!facts.systemdUser) throw new JobqError('USAGE', 'isolation scope needs a systemd user manager (systemctl --user), and none answers here');
    const unit = `jobq-${job.id.replace(/[^A-Za-z0-9_.-]/g, '_')}.scope`;
    const prefix = ['systemd-run', '--user', '--scope', '--quiet', '--collect', `--unit=${unit}`, '-p', 'OOMPolicy=continue'];
    if (job.memLimitBytes) prefix.push('-p', `MemoryMax=${job.memLimitBytes}`, '-p', 'MemorySwapMax=0');
    prefix.push('--');
    return { kind: 'systemd-scope', prefix, cgroupDirs: [], unit };
  }
  if (mode === 'auto' || mode === 'cgroup') {
    if (facts.v2Base) return { kind: 'cgroup-v2', prefix: [], cgroupDirs: [path.join(facts.v2Base, job.id)] };
    if (facts.v1Bases) {
      const dirs = [path.join(facts.v1Bases.memory, job.id)];
      if (facts.v1Bases.cpuacct) dirs.push(path.join(facts.v1Bases.cpuacct, job.id));
      if (facts.v1Bases.freezer) dirs.push(path.join(facts.v1Bases.freezer, job.id));
      return { kind: 'cgroup-v1', prefix: [], cgroupDirs: dirs };
    }
    if (mode === 'cgroup')
      throw new JobqError('USAGE', 'isolation cgroup needs a writable cgroup hierarchy (root, or a delegated cgroup v2 subtree), and none is here');
  }
  return { kind: 'none', prefix: [], cgroupDirs: [] };
}

const CG = '/sys/fs/cgroup';

/** Own cgroup path per hierarchy, from /proc/self/cgroup ("" key for v2). */
function ownCgroups(): Map<string, string> {
  const map = new Map<string, string>();
  try {
    for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
      const m = /^\d+:([^:]*):(.*)$/.exec(line);
      if (m) for (const c of m[1]!.split(',')) map.set(c, m[2]!);
    }
  } catch {
    /* no cgroups */
  }
  return map;
}

function writableDir(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** Makes `<dir>/jobq` (a base for job cgroups) if the hierarchy lets us; undefined if not. */
function ensureBase(dir: string, v2: boolean): string | undefined {
  if (!writableDir(dir)) return undefined;
  const base = path.join(dir, 'jobq');
  try {
    fs.mkdirSync(base, { recursive: true });
    if (v2) {
      if (!fs.readFileSync(path.join(base, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('memory')) return undefined;
      fs.writeFileSync(path.join(base, 'cgroup.subtree_control'), '+memory');
      const cpu = fs.readFileSync(path.join(base, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('cpu');
      if (cpu) fs.writeFileSync(path.join(base, 'cgroup.subtree_control'), '+cpu');
    }
    return base;
  } catch {
    return undefined;
  }
}

/** Reads what this machine offers for isolation (cheap file checks; no process is started). */
export function detectFacts(env: NodeJS.ProcessEnv = process.env): IsolationFacts {
  const uid = process.getuid?.() ?? 0;
  const runtime = env.XDG_RUNTIME_DIR;
  const systemdUser =
    fs.existsSync('/run/systemd/system') &&
    !!runtime &&
    fs.existsSync(path.join(runtime, 'systemd', 'private')) &&
    (env.PATH ?? '').split(':').some((d) => d && fs.existsSync(path.join(d, 'systemd-run')));
  const own = ownCgroups();
  const facts: IsolationFacts = { uid, systemdUser };
  if (fs.existsSync(path.join(CG, 'cgroup.controllers'))) {
    // Pure v2: as root use the root's child; otherwise the parent of our own cgroup if delegated to us.
    const mine = own.get('') ?? '/';
    const dir = uid === 0 ? CG : path.join(CG, path.dirname(mine));
    facts.v2Base = ensureBase(dir, true);
  } else if (own.has('memory') && fs.existsSync(path.join(CG, 'memory', 'memory.limit_in_bytes'))) {
    const memory = ensureBase(path.join(CG, 'memory', own.get('memory')!), false);
    if (memory) {
      const v1 = (ctl: string) => {
        const rel = own.get(ctl);
        return rel !== undefined && fs.existsSync(path.join(CG, ctl)) ? ensureBase(path.join(CG, ctl, rel), false) : undefined;
      };
      const cpuacct = v1('cpuacct');
      const freezer = v1('freezer');
      facts.v1Bases = { memory, ...(cpuacct ? { cpuacct } : {}), ...(freezer ? { freezer } : {}) };
    }
  }
  return facts;
}

function readNum(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

function readKeyed(file: string, key: string): number | undefined {
  try {
    const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(fs.readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Creates the job's cgroups and sets the memory limit; returns the limit the kernel really holds. */
export function createCgroups(plan: IsolationPlan, memLimitBytes?: number): { appliedLimit?: number } {
  for (const dir of plan.cgroupDirs) fs.mkdirSync(dir, { recursive: true });
  if (!memLimitBytes) return {};
  const mem = plan.cgroupDirs[0]!;
  if (plan.kind === 'cgroup-v2') {
    fs.writeFileSync(path.join(mem, 'memory.max'), String(memLimitBytes));
    if (fs.existsSync(path.join(mem, 'memory.swap.max'))) fs.writeFileSync(path.join(mem, 'memory.swap.max'), '0');
    return { appliedLimit: readNum(path.join(mem, 'memory.max')) };
  }
  fs.writeFileSync(path.join(mem, 'memory.limit_in_bytes'), String(memLimitBytes));
  // With swap accounting, cap memory+swap too, or the job swaps instead of hitting the limit.
  try {
    fs.writeFileSync(path.join(mem, 'memory.memsw.limit_in_bytes'), String(memLimitBytes));
  } catch {
    /* no swap accounting */
  }
  return { appliedLimit: readNum(path.join(mem, 'memory.limit_in_bytes')) };
}

/**
 * cgroup v1: the first move of a process into a cgroup after a quiet spell waits out an RCU grace period (the
 * kernel's cgroup_threadgroup_rwsem; 7-12 ms here), moves in the ~20 ms after it do not. Moving this process into
 * the memory cgroup it is already in changes nothing and starts that wait now, on the thread pool, so the job's own
 * move that follows is quick. Best effort: where we may not write there, nothing happens.
 */
export function warmCgroupMoves(plan?: IsolationPlan): void {
  let own: string | undefined;
  if (plan) own = plan.kind === 'cgroup-v1' ? path.dirname(path.dirname(plan.cgroupDirs[0]!)) : undefined;
  else {
    const rel = ownCgroups().get('memory');
    own = rel !== undefined && !fs.existsSync(path.join(CG, 'cgroup.controllers')) ? path.join(CG, 'memory', rel) : undefined;
  }
  if (!own) return;
  // One thread-pool write, the wait in it: this thread goes on (or blocks) meanwhile; the fd closes when it is done.
  let fd: number;
  try {
    // Only where we provably are already (a container's mount may not start at its cgroup root): never a real move.
    const procs = path.join(own, 'cgroup.procs');
    if (!fs.readFileSync(procs, 'latin1').split('\n').includes(String(process.pid))) return;
    fd = fs.openSync(procs, 'w');
  } catch {
    return;
  }
  fs.write(fd, String(process.pid), () => fs.close(fd, () => undefined));
}

/** Moves a process (and so all it will start) into the job's cgroups. */
export function enterCgroups(plan: IsolationPlan, pid: number): void {
  for (const dir of plan.cgroupDirs) fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
}

/** The memory limit a systemd scope really got, read from the job's own cgroup (v2); undefined if none. */
export function scopeMemoryMax(pid: number): number | undefined {
  try {
    const line = fs
      .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    if (!line) return undefined;
    return readNum(path.join(CG, line.slice(3), 'memory.max'));
  } catch {
    return undefined;
  }
}

/** Figures from the job's cgroups: memory now and at peak, CPU time, OOM kills. */
export function cgroupStats(kind: Isolation, dirs: string[]): { currentBytes?: number; peakBytes?: number; cpuMs?: number; oomKills?: number } {
  const [mem, cpu] = dirs;
  if (!mem) return {};
  if (kind === 'cgroup-v2') {
    const usec = readKeyed(path.join(mem, 'cpu.stat'), 'usage_usec');
    return {
      currentBytes: readNum(path.join(mem, 'memory.current')),
      peakBytes: readNum(path.join(mem, 'memory.peak')),
      cpuMs: usec === undefined ? undefined : Math.round(usec / 1000),
      oomKills: readKeyed(path.join(mem, 'memory.events'), 'oom_kill'),
    };
  }
  if (kind === 'cgroup-v1') {
    const ns = cpu ? readNum(path.join(cpu, 'cpuacct.usage')) : undefined;
    return {
      currentBytes: readNum(path.join(mem, 'memory.usage_in_bytes')),
      peakBytes: readNum(path.join(mem, 'memory.max_usage_in_bytes')),
      cpuMs: ns === undefined ? undefined : Math.round(ns / 1e6),
      oomKills: readKeyed(path.join(mem, 'memory.oom_control'), 'oom_kill'),
    };
  }
  return {};
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Removes the job's cgroups once their last process has gone (polling up to waitMs); returns those still in use. */
export async function removeCgroupsWhenEmpty(dirs: string[], waitMs = 3000): Promise<string[]> {
  const until = Date.now() + waitMs;
  let left = dirs;
  for (;;) {
    left = left.filter((dir) => {
      try {
        fs.rmdirSync(dir);
        return false;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code !== 'ENOENT';
      }
    });
    if (!left.length || Date.now() >= until) return left;
    await sleep(20);
  }
}

/**
 * Removes, of the cgroups ended jobs left in use, those now empty: only directories jobq makes for that job id (a
 * note is data), and rmdir takes only an empty cgroup. Returns what is still in use, per job.
 */
export function sweepLeftCgroups(left: Array<{ id: string; dirs: unknown }>): Array<{ id: string; dirs: string[] }> {
  return left.map(({ id, dirs }) => ({
    id,
    dirs: (Array.isArray(dirs) ? dirs : []).filter((dir): dir is string => {
      if (!isJobCgroup(dir, id)) return false;
      try {
        fs.rmdirSync(dir);
        return false;
      } catch {
        return true;
      }
    }),
  }));
}

/**
 * True only for a cgroup directory jobq itself makes for this job: absolute, normalised, under /sys/fs/cgroup,
 * named for the job id inside a `jobq` base. Anything else in a record is data, never a target.
 */
export function isJobCgroup(dir: unknown, id: string): dir is string {
  if (typeof dir !== 'string' || !path.isAbsolute(dir) || path.normalize(dir) !== dir || !dir.startsWith(`${CG}/`)) return false;
  if (path.basename(dir) !== id || path.basename(path.dirname(dir)) !== 'jobq') return false;
  try {
    return fs.lstatSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** The freezer of a job's cgroups: the v1 freezer directory, or the v2 cgroup itself. */
function freezerOf(dirs: string[]): { dir: string; v2: boolean } | undefined {
  const v1 = dirs.find((d) => d.startsWith(`${CG}/freezer/`));
  if (v1) return { dir: v1, v2: false };
  const v2 = dirs.find((d) => fs.existsSync(path.join(d, 'cgroup.freeze')));
  return v2 ? { dir: v2, v2: true } : undefined;
}

/** True when the job's cgroups can be frozen (the job then cannot tell it was stopped). */
export function canFreeze(dirs: string[]): boolean {
  return !!freezerOf(dirs);
}

/** Freezes the job's cgroups and waits (up to waitMs) until every process is frozen; false if it could not. */
export async function freezeCgroups(dirs: string[], waitMs = 2000): Promise<boolean> {
  const f = freezerOf(dirs);
  if (!f) return false;
  try {
    if (f.v2) fs.writeFileSync(path.join(f.dir, 'cgroup.freeze'), '1');
    else fs.writeFileSync(path.join(f.dir, 'freezer.state'), 'FROZEN');
  } catch {
    return false;
  }
  const until = Date.now() + waitMs;
  for (;;) {
    if (isFrozen(dirs)) return true;
    if (Date.now() >= until) return false;
    await sleep(1);
  }
}

/** True when the job's cgroups are frozen now. */
export function isFrozen(dirs: string[]): boolean {
  const f = freezerOf(dirs);
  if (!f) return false;
  try {
    if (f.v2) return /^frozen 1$/m.test(fs.readFileSync(path.join(f.dir, 'cgroup.events'), 'utf8'));
    return fs.readFileSync(path.join(f.dir, 'freezer.state'), 'utf8').trim() === 'FROZEN';
  } catch {
    return false;
  }
}

/** Thaws the job's cgroups (signals sent while frozen take effect now). */
export function thawCgroups(dirs: string[]): void {
  const f = freezerOf(dirs);
  if (!f) return;
  try {
    if (f.v2) fs.writeFileSync(path.join(f.dir, 'cgroup.freeze'), '0');
    else fs.writeFileSync(path.join(f.dir, 'freezer.state'), 'THAWED');
  } catch {
    /* gone with the job */
  }
}

/** Sets a process's oom_score_adj and returns what the kernel kept (lowering needs CAP_SYS_RESOURCE). */
export function setOomScoreAdj(pid: number, want: number): number | null {
  try {
    fs.writeFileSync(`/proc/${pid}/oom_score_adj`, String(want));
  } catch {
    /* the read-back says what the kernel kept */
  }
  try {
    return Number(fs.readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim());
  } catch {
    return null;
  }
}
