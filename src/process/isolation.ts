// Per-job isolation: decide (pure) between a systemd scope, a cgroup v2/v1 of its own, or none; then apply it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { JobqError } from '../domain/errors.js';
import type { Isolation, IsolationMode } from '../domain/job.js';
import { shellWords, sleep } from '../domain/units.js';
import { cgroupPids } from './proc.js';

export type { IsolationMode };

/** The one line for a scope asked where none can be had: why, and how to get one. */
export function noUserManager(why = 'no systemd user manager answers'): string {
  return `isolation scope needs a systemd user manager, and none answers here: ${why}; log in with ssh or a desktop (not su/sudo) and run \`loginctl enable-linger $USER\`, or use --isolation auto`;
}

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

/** The unit name jobq gives a job's systemd scope (readers check a cgroup's name against it); a retry's attempt gets its own. */
export function scopeUnit(id: string, attempt = 1): string {
  return `jobq-${id.replace(/[^A-Za-z0-9_.-]/g, '_')}${attempt > 1 ? `-a${attempt}` : ''}.scope`;
}

/** True for the unit name of one of this job's scopes, whichever attempt made it. */
function isScopeUnitOf(name: string, id: string): boolean {
  const base = scopeUnit(id).slice(0, -'.scope'.length);
  if (!name.startsWith(base)) return false;
  // Exactly this id's unit, or its -aN for an attempt N (a sibling id-2's own units never match).
  const m = /^(?:-a(\d{1,3}))?\.scope$/.exec(name.slice(base.length));
  return !!m && name === scopeUnit(id, m[1] ? Number(m[1]) : 1);
}

/** The command as a shell would show it, for the scope's Description (what `systemctl --user` and the journal name). */
export function describeCommand(argv: string[]): string {
  const text = shellWords(argv);
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

/** Decides the isolation for a job; throws when an explicit mode cannot be had here. Pure. */
export function planIsolation(
  mode: IsolationMode,
  facts: IsolationFacts,
  job: { id: string; memLimitBytes?: number; memHighBytes?: number; argv?: string[]; attempt?: number },
): IsolationPlan {
  const wantScope = mode === 'scope' || (mode === 'auto' && facts.systemdUser);
  if (wantScope) {
    if (!facts.systemdUser) throw new JobqError('USAGE', noUserManager());
    // An earlier attempt's scope may still be on its way out: each attempt has a unit of its own.
    const unit = scopeUnit(job.id, job.attempt);
    const prefix = ['systemd-run', '--user', '--scope', '--quiet', '--collect', `--unit=${unit}`];
    if (job.argv?.length) prefix.push(`--description=${describeCommand(job.argv)}`);
    // OOMPolicy=continue: jobq, not systemd, ends the rest of the job; Delegate=yes: the scope's freezer is jobq's to use.
    prefix.push('-p', 'OOMPolicy=continue', '-p', 'Delegate=yes');
    if (job.memLimitBytes) prefix.push('-p', `MemoryMax=${job.memLimitBytes}`, '-p', 'MemorySwapMax=0');
    if (job.memHighBytes) prefix.push('-p', `MemoryHigh=${job.memHighBytes}`);
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

/**
 * Why no systemd user manager can take a scope for this caller, or undefined when one answers (systemd is PID 1,
 * $XDG_RUNTIME_DIR/systemd/private exists, systemd-run is on PATH). Cheap file checks only.
 */
export function userManager(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!fs.existsSync('/run/systemd/system')) return 'systemd is not running here (a container or another init)';
  const runtime = env.XDG_RUNTIME_DIR;
  if (!runtime) return 'XDG_RUNTIME_DIR is not set, as after su or sudo';
  if (!fs.existsSync(path.join(runtime, 'systemd', 'private'))) return `no user manager socket in ${runtime}, as when its user logged out without lingering`;
  if (!(env.PATH ?? '').split(':').some((d) => d && fs.existsSync(path.join(d, 'systemd-run')))) return 'systemd-run is not on PATH';
  return undefined;
}

/** Reads what this machine offers for isolation (cheap file checks; no process is started). */
export function detectFacts(env: NodeJS.ProcessEnv = process.env): IsolationFacts {
  const uid = process.getuid?.() ?? 0;
  const systemdUser = userManager(env) === undefined;
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

let factsMemo: { key: string; at: number; facts: IsolationFacts } | undefined;

/** detectFacts for a supervisor's chain of jobs: one answer for 2 s (it asks once a job; the checks are ~15 calls). */
export function detectFactsCached(env: NodeJS.ProcessEnv): IsolationFacts {
  const key = `${env.XDG_RUNTIME_DIR}\0${env.PATH}`;
  if (factsMemo?.key === key && Date.now() - factsMemo.at < 2000) return { ...factsMemo.facts };
  const facts = detectFacts(env);
  factsMemo = { key, at: Date.now(), facts };
  return { ...facts };
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

/** Creates the job's cgroups and sets the memory limit (and, on v2, memory.high); returns what the kernel really holds. */
export function createCgroups(plan: IsolationPlan, memLimitBytes?: number, memHighBytes?: number): { appliedLimit?: number; appliedHigh?: number } {
  for (const dir of plan.cgroupDirs) fs.mkdirSync(dir, { recursive: true });
  const mem = plan.cgroupDirs[0]!;
  // memory.high throttles and reclaims above it, never kills: cgroup v2 only (v1's soft limit is another thing).
  const high = memHighBytes && plan.kind === 'cgroup-v2' ? writeHigh(mem, memHighBytes) : undefined;
  if (!memLimitBytes) return high ? { appliedHigh: high } : {};
  if (plan.kind === 'cgroup-v2') {
    fs.writeFileSync(path.join(mem, 'memory.max'), String(memLimitBytes));
    if (fs.existsSync(path.join(mem, 'memory.swap.max'))) fs.writeFileSync(path.join(mem, 'memory.swap.max'), '0');
    return { appliedLimit: readNum(path.join(mem, 'memory.max')), ...(high ? { appliedHigh: high } : {}) };
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

/**
 * The cgroup v2 directory of a job's systemd scope, from where its process now is: only when the name is the job's
 * own unit (so a record's path is never needed to find it); undefined on a v1/hybrid machine or elsewhere.
 */
export function scopeCgroupDir(pid: number, unit: string): string | undefined {
  if (!fs.existsSync(path.join(CG, 'cgroup.controllers'))) return undefined;
  try {
    const line = fs
      .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    const dir = line && path.join(CG, line.slice(3));
    return dir && path.basename(dir) === unit ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** A scope split in two (it is delegated): the job's own cgroup, and the keeper's that holds the scope until jobq has read it. */
export interface ScopeCgroups {
  job: string;
  keep: string;
}

/**
 * Moves the held job from its scope's cgroup into `<scope>/job` and makes `<scope>/keep`, with the scope's
 * controllers enabled below it (cgroup v2 lets a cgroup with enabled controllers hold no process of its own).
 * Undefined, with the job left where it was, if the scope cannot be split (not delegated, no memory controller).
 */
export function splitScope(scope: string, pid: number): ScopeCgroups | undefined {
  const job = path.join(scope, 'job');
  const keep = path.join(scope, 'keep');
  try {
    const ctl = fs.readFileSync(path.join(scope, 'cgroup.controllers'), 'utf8').split(/\s+/).filter(Boolean);
    if (!ctl.includes('memory')) return undefined;
    fs.mkdirSync(job);
    fs.mkdirSync(keep);
    fs.writeFileSync(path.join(job, 'cgroup.procs'), String(pid));
    fs.writeFileSync(path.join(scope, 'cgroup.subtree_control'), ctl.map((c) => `+${c}`).join(' '));
    return { job, keep };
  } catch {
    // Put back what moved (the scope then holds the job as before); systemd removes the empty directories with it.
    try {
      fs.writeFileSync(path.join(scope, 'cgroup.procs'), String(pid));
    } catch {
      /* never moved */
    }
    return undefined;
  }
}

/** The memory limit a systemd scope really got, read from its cgroup (v2); undefined without one. */
export function scopeMemoryMax(scope: string | undefined): number | undefined {
  return scope ? readNum(path.join(scope, 'memory.max')) : undefined;
}

/** How often a live job was throttled above its memory.high: a scope's own count (its `job` part sees none of it). */
export function highEventsOf(cgroups: string[]): number | undefined {
  const dir = cgroups[0];
  if (!dir) return undefined;
  const at = path.basename(dir) === 'job' && path.basename(path.dirname(dir)).endsWith('.scope') ? path.dirname(dir) : dir;
  return readKeyed(path.join(at, 'memory.events'), 'high');
}

/** The memory.high a cgroup holds (v2; a scope's MemoryHigh=), or undefined where there is none to read. */
export function memoryHigh(dir: string | undefined): number | undefined {
  return dir ? readNum(path.join(dir, 'memory.high')) : undefined;
}

function writeHigh(dir: string, bytes: number): number | undefined {
  fs.writeFileSync(path.join(dir, 'memory.high'), String(bytes));
  return memoryHigh(dir);
}

/** Figures from the job's cgroups: memory now and at peak, CPU time, OOM kills. */
export function cgroupStats(
  kind: Isolation,
  dirs: string[],
): { currentBytes?: number; peakBytes?: number; cpuMs?: number; oomKills?: number; limitHits?: number; highEvents?: number } {
  const [mem, cpu] = dirs;
  if (!mem) return {};
  if (kind === 'cgroup-v2' || kind === 'systemd-scope') {
    const usec = readKeyed(path.join(mem, 'cpu.stat'), 'usage_usec');
    return {
      currentBytes: readNum(path.join(mem, 'memory.current')),
      peakBytes: readNum(path.join(mem, 'memory.peak')),
      cpuMs: usec === undefined ? undefined : Math.round(usec / 1000),
      oomKills: readKeyed(path.join(mem, 'memory.events'), 'oom_kill'),
      // `oom`: the cgroup (or one below it) reached its own memory.max; a machine-wide OOM does not count here.
      limitHits: readKeyed(path.join(mem, 'memory.events'), 'oom'),
      // `high`: how often the job was throttled and made to reclaim above its memory.high (--mem-high).
      highEvents: readKeyed(path.join(mem, 'memory.events'), 'high'),
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

/** Removes the job's cgroups once their last process has gone (polling up to waitMs); returns those still in use. */
export async function removeCgroupsWhenEmpty(dirs: string[], waitMs = 3000): Promise<string[]> {
  const until = Date.now() + waitMs;
  let left = dirs;
  // A cgroup is usually empty a moment after its last process is reaped: look again soon, then less often.
  for (let pause = 2; ; pause = Math.min(pause * 2, 20)) {
    left = left.filter((dir) => {
      // A scope's cgroup is systemd's to remove, once empty: only wait for that.
      if (dir.endsWith('.scope')) return fs.existsSync(dir) && cgroupPids(dir).length > 0;
      try {
        fs.rmdirSync(dir);
        return false;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code !== 'ENOENT';
      }
    });
    if (!left.length || Date.now() >= until) return left;
    await sleep(pause);
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
 * True only for a cgroup directory jobq itself makes for this job: absolute, normalised, under /sys/fs/cgroup, and
 * either named for the job id inside a `jobq` base, or the job's own systemd scope (or its `job` or `keep` part) owned by us.
 * Anything else in a record is data, never a target.
 */
export function isJobCgroup(dir: unknown, id: string): dir is string {
  if (typeof dir !== 'string' || !path.isAbsolute(dir) || path.normalize(dir) !== dir || !dir.startsWith(`${CG}/`)) return false;
  const part = path.basename(dir) === 'job' || path.basename(dir) === 'keep';
  const scope = isScopeUnitOf(path.basename(dir), id) || (part && isScopeUnitOf(path.basename(path.dirname(dir)), id));
  if (!scope && (path.basename(dir) !== id || path.basename(path.dirname(dir)) !== 'jobq')) return false;
  try {
    const st = fs.lstatSync(dir);
    return st.isDirectory() && (!scope || st.uid === (process.getuid?.() ?? 0));
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

/** What a watch on a job's scope cgroup saw before systemd removed it with the job's end. */
export interface CgroupWatch {
  /** Reads now if the cgroup is still there; returns the last figures read either way. */
  last(): ReturnType<typeof cgroupStats>;
  /** True when the cgroup was gone at the last read and the machine's OOM kill count (/proc/vmstat) rose in the second before. */
  machineOomNearEnd(): boolean;
  close(): void;
}

function vmstatOomKills(): number {
  try {
    return Number(/^oom_kill (\d+)$/m.exec(fs.readFileSync('/proc/vmstat', 'latin1'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * Watches a scope's cgroup, for where it may go with the job (no keeper): its figures are read each second, on each
 * memory.events change (inotify: the kernel counts an OOM kill before the victim dies), and by the caller at the exit.
 */
export function watchCgroup(dir: string, jobDir = dir): CgroupWatch {
  // Figures from the job's own part; OOM counts from the whole scope (memory.events counts what happens below too).
  const stats = () => {
    const now = cgroupStats('systemd-scope', [jobDir]);
    const all = jobDir === dir ? now : cgroupStats('systemd-scope', [dir]);
    return { ...now, oomKills: all.oomKills, limitHits: all.limitHits, highEvents: all.highEvents };
  };
  let last = stats();
  let gone = false;
  let oomBase = vmstatOomKills();
  let oomNow = oomBase;
  const read = () => {
    if (gone) return;
    const now = stats();
    if (now.oomKills === undefined) {
      gone = true;
      oomNow = vmstatOomKills();
      return;
    }
    const max = (a?: number, b?: number) => Math.max(a ?? 0, b ?? 0);
    last = {
      ...now,
      oomKills: max(now.oomKills, last.oomKills),
      limitHits: max(now.limitHits, last.limitHits),
      peakBytes: max(now.peakBytes, last.peakBytes),
      highEvents: max(now.highEvents, last.highEvents),
    };
    oomBase = vmstatOomKills();
  };
  const tick = setInterval(read, 1000).unref();
  let w: fs.FSWatcher | undefined;
  try {
    w = fs.watch(dir, { persistent: false }, (_event, name) => {
      if (name === 'memory.events') read();
    });
    w.on('error', () => undefined);
  } catch {
    /* gone already: last() holds what was read */
  }
  return {
    last: () => {
      read();
      return last;
    },
    machineOomNearEnd: () => gone && oomNow > oomBase,
    close: () => {
      clearInterval(tick);
      w?.close();
    },
  };
}

/** Thaws a scope's own freezer (a job may freeze the scope itself, keeper and all): its keeper must be able to go. */
export function thawScope(scope: string): void {
  try {
    fs.writeFileSync(path.join(scope, 'cgroup.freeze'), '0');
  } catch {
    /* gone, or never frozen */
  }
}

/** Lines of the system journal since a time that name a unit (bounded); empty when unreadable or absent. */
function journalLinesNaming(unit: string, sinceMs: number, select: string[], timeoutMs = 3000): string[] {
  const args = ['-q', '--no-pager', '-o', 'cat', ...select, `--since=@${Math.floor(sinceMs / 1000)}`, '-g', unit.replace(/[.]/g, '\\.')];
  let out: string;
  try {
    out = execFileSync('journalctl', args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (e) {
    // journalctl exits 1 when -g matched nothing; what it printed is still there.
    out = (e as { stdout?: string }).stdout ?? '';
  }
  return out.split('\n').filter((l) => l.includes(unit));
}

/**
 * systemd-oomd's own line about killing this unit's cgroup ("Killed …/jobq-x.scope due to memory pressure for … being
 * 56.12% > 50.00% for > 20s with reclaim activity"), from the system journal: readable by a user in adm or
 * systemd-journal (Ubuntu's first user is in adm). Undefined when unreadable or not there in time.
 */
export function oomdJournalLine(unit: string, sinceMs: number): string | undefined {
  return journalLinesNaming(unit, sinceMs, ['-t', 'systemd-oomd']).pop();
}

/** True when the kernel's log names this unit's cgroup as an OOM kill's (task_memcg=…/UNIT): proof, where readable. */
export function kernelOomNamed(unit: string, sinceMs: number): boolean {
  return journalLinesNaming(unit, sinceMs, ['-k']).some((l) => /oom-kill:.*task_memcg=\S*\//.test(l));
}

/** The one-line reason from systemd-oomd's journal line: "systemd-oomd: memory pressure 56% > 50% for 20s in user@1000.service". */
export function oomdReason(line: string): string {
  const m = /memory pressure for (\S+) being ([\d.]+)% > ([\d.]+)% for > (\S+)/.exec(line);
  if (!m) return `systemd-oomd: ${line}`;
  return `systemd-oomd: memory pressure ${Math.round(Number(m[2]))}% > ${Math.round(Number(m[3]))}% for ${m[4]} in ${path.basename(m[1]!)}`;
}
