// `jobq doctor [--json]`: gathers what this machine offers (files, then systemctl and nvidia-smi, each bounded) and prints
// what jobq will do here and why; the rules are in domain/doctor.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { type Config, loadConfig } from '../config/config.js';
import { type CheckStatus, type DoctorFacts, diagnose, type OomdPolicy, parseTimespan, renderReport, userService } from '../domain/doctor.js';
import { EXIT } from '../domain/errors.js';
import { JSON_SCHEMA } from '../domain/job.js';
import { makeChalk } from '../output/color.js';
import { detectFacts, planIsolation, userManager } from '../process/isolation.js';
import { psiFile } from '../process/resources.js';
import { runBounded as tool } from '../process/spawn.js';
import { Store, stateHome } from '../store/store.js';
import { out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

const read = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};
const exists = (file: string) => fs.existsSync(file);
const onPath = (name: string) => (process.env.PATH ?? '').split(':').some((d) => d && exists(path.join(d, name)));

type Mount = DoctorFacts['cgroup']['mounts'][number];

/** Every mount of this process's namespace: mount point, type and superblock options. */
function mounts(): Mount[] {
  const octal = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  return (read('/proc/self/mountinfo') ?? '').split('\n').flatMap((line) => {
    const [pre, post] = line.split(' - ');
    const point = pre?.split(' ')[4];
    const [type, , options] = post?.split(' ') ?? [];
    return point && type ? [{ point: octal(point), type, options: options ?? '' }] : [];
  });
}

function cgroupFacts(all: Mount[]): DoctorFacts['cgroup'] {
  const cg = all.filter((m) => m.type === 'cgroup' || m.type === 'cgroup2');
  const v1 = exists('/sys/fs/cgroup/memory');
  const version = exists('/sys/fs/cgroup/cgroup.controllers') ? 'v2' : v1 && cg.some((m) => m.type === 'cgroup2') ? 'hybrid' : v1 ? 'v1' : 'none';
  return { version, mounts: cg, own: (read('/proc/self/cgroup') ?? '').split('\n').filter(Boolean) };
}

function systemdFacts(uid: number, name: string): DoctorFacts['systemd'] {
  const runtimeDir = process.env.XDG_RUNTIME_DIR || undefined;
  const noUserManager = userManager(process.env);
  return {
    pid1: exists('/run/systemd/system'),
    ...(runtimeDir ? { runtimeDir } : {}),
    privateSocket: !!runtimeDir && exists(path.join(runtimeDir, 'systemd', 'private')),
    managerRunning: exists(`/run/user/${uid}/systemd/private`),
    systemdRun: onPath('systemd-run'),
    ...(noUserManager ? { noUserManager } : {}),
    linger: exists(`/var/lib/systemd/linger/${name}`),
  };
}

function isolationFacts(config: Config, from: string | undefined): DoctorFacts['isolation'] {
  // May make the `jobq` base cgroup where it can write, as the supervisor would.
  const facts = detectFacts(process.env);
  const auto = planIsolation('auto', facts, { id: 'doctor-probe' }).kind;
  const base = facts.v2Base ?? facts.v1Bases?.memory;
  const r: DoctorFacts['isolation'] = { auto, ...(base ? { base } : {}), configured: config.isolation, ...(from ? { configuredFrom: from } : {}) };
  try {
    r.effective = planIsolation(config.isolation, facts, { id: 'doctor-probe' }).kind;
  } catch (e) {
    r.configuredError = (e as Error).message;
  }
  return r;
}

/** oomd's [OOM] settings: the main file, then drop-ins by name (/etc over /run over /usr), the last one winning. */
export function oomdConfig(
  roots = ['/etc/systemd', '/run/systemd', '/usr/local/lib/systemd', '/usr/lib/systemd'],
): Record<string, { value: string; from: string }> {
  const main = roots.map((r) => `${r}/oomd.conf`).find(exists);
  const dropins = new Map<string, string>();
  for (const r of [...roots].reverse()) {
    try {
      for (const f of fs.readdirSync(`${r}/oomd.conf.d`)) if (f.endsWith('.conf')) dropins.set(f, `${r}/oomd.conf.d/${f}`);
    } catch {
      /* no such directory */
    }
  }
  const files = [...(main ? [main] : []), ...[...dropins.keys()].sort().map((k) => dropins.get(k)!)];
  const found: Record<string, { value: string; from: string }> = {};
  for (const file of files) {
    let section = '';
    for (const line of (read(file) ?? '').split('\n').map((l) => l.trim())) {
      if (/^\[.*\]$/.test(line)) section = line;
      const m = /^(\w+)\s*=\s*(.*)$/.exec(line);
      if (m && section === '[OOM]') found[m[1]!] = { value: m[2]!, from: file };
    }
  }
  return found;
}

/** The ManagedOOM* lines of `systemctl show`. */
export function policy(text: string | undefined): OomdPolicy {
  const get = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(text ?? '')?.[1];
  const p = { memoryPressure: get('ManagedOOMMemoryPressure'), memoryPressureLimit: get('ManagedOOMMemoryPressureLimit'), swap: get('ManagedOOMSwap') };
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined));
}

function oomdFacts(pid1: boolean, uid: number): DoctorFacts['oomd'] {
  const c = oomdConfig();
  const d = c.DefaultMemoryPressureDurationSec;
  const sec = d && parseTimespan(d.value);
  const conf = {
    ...(sec !== undefined && d ? { pressureDurationSec: sec, pressureDurationFrom: d.from } : {}),
    ...(c.SwapUsedLimit ? { swapUsedLimit: c.SwapUsedLimit.value } : {}),
  };
  if (!pid1) return { active: 'n/a', user: {}, root: {}, ...conf };
  const active = tool('systemctl', ['is-active', 'systemd-oomd']).out?.trim() || 'unknown';
  const props = ['-p', 'ManagedOOMMemoryPressure', '-p', 'ManagedOOMMemoryPressureLimit', '-p', 'ManagedOOMSwap'];
  const user = policy(tool('systemctl', ['show', userService(uid).unit, ...props]).out);
  const root = policy(tool('systemctl', ['show', ...props, '--', '-.slice']).out);
  return { active, user, root, ...conf };
}

function memoryFacts(): DoctorFacts['memory'] {
  const text = read('/proc/meminfo') ?? '';
  const kb = (k: string) => {
    const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? { [k]: Number(m[1]) * 1024 } : {};
  };
  const v: Record<string, number> = { ...kb('MemTotal'), ...kb('MemAvailable'), ...kb('SwapTotal'), ...kb('SwapFree') };
  const pick = (k: string, as: string) => (v[k] !== undefined ? { [as]: v[k] } : {});
  return {
    ...pick('MemTotal', 'totalBytes'),
    ...pick('MemAvailable', 'availableBytes'),
    ...pick('SwapTotal', 'swapTotalBytes'),
    ...pick('SwapFree', 'swapFreeBytes'),
  };
}

function psiFacts(): DoctorFacts['psi'] {
  const text = read(psiFile()) ?? '';
  const avg10 = (kind: string) => new RegExp(`^${kind} avg10=([\\d.]+)`, 'm').exec(text)?.[1];
  const some = avg10('some');
  const full = avg10('full');
  return some ? { readable: true, someAvg10: Number(some), ...(full ? { fullAvg10: Number(full) } : {}) } : { readable: false };
}

function gpuFacts(): DoctorFacts['gpus'] {
  if (!onPath('nvidia-smi')) return { nvidiaSmi: false, list: [] };
  const r = tool('nvidia-smi', ['--query-gpu=index,name,memory.total', '--format=csv,noheader,nounits'], 3000);
  if (r.error) return { nvidiaSmi: true, list: [], error: r.error };
  const list = (r.out ?? '').split('\n').flatMap((line) => {
    const [index, name, mem] = line.split(',').map((s) => s.trim());
    return index && name ? [{ index: Number(index), name, memoryMiB: Number(mem) || 0 }] : [];
  });
  return { nvidiaSmi: true, list };
}

/** The state dir as `run` would find it, without making it: the store's verdict, where it lives, and the space there. */
function stateDirFacts(dir: string, all: Mount[]): DoctorFacts['stateDir'] {
  let refused: string | undefined;
  try {
    Store.open(dir, { create: false });
  } catch (e) {
    refused = (e as Error).message.replace(/^refusing state dir .*?: /, '');
  }
  let near = dir;
  while (!exists(near) && near !== path.dirname(near)) near = path.dirname(near);
  let writable = false;
  try {
    fs.accessSync(near, fs.constants.W_OK);
    writable = true;
  } catch {
    /* not ours to write */
  }
  let real = near;
  try {
    real = fs.realpathSync(near);
  } catch {
    /* judged by the path as written */
  }
  const mount = all.filter((m) => m.point === '/' || real === m.point || real.startsWith(`${m.point}/`)).sort((a, b) => b.point.length - a.point.length)[0];
  const r: DoctorFacts['stateDir'] = { path: dir, exists: near === dir, ...(refused ? { refused } : {}), writable };
  if (mount) Object.assign(r, { fsType: mount.type, mountPoint: mount.point });
  try {
    const st = fs.statfsSync(near);
    Object.assign(r, { freeBytes: st.bavail * st.bsize, totalBytes: st.blocks * st.bsize });
  } catch {
    /* no figures */
  }
  return r;
}

/** Reads every fact doctor reports on. */
export function gatherFacts(): DoctorFacts {
  const uid = process.getuid?.() ?? 0;
  let name = process.env.USER ?? String(uid);
  try {
    name = os.userInfo().username;
  } catch {
    /* no passwd entry */
  }
  const { config, sources, warnings } = loadConfig();
  for (const w of warnings) process.stderr.write(`jobq: warning: ${w}\n`);
  const all = mounts();
  const systemd = systemdFacts(uid, name);
  const svc = userService(uid);
  const controllers = read(path.join(svc.cgroup, 'cgroup.controllers'))?.split(/\s+/).filter(Boolean);
  return {
    user: { name, uid },
    cgroup: cgroupFacts(all),
    systemd,
    delegation: { cgroup: svc.cgroup, ...(controllers ? { controllers } : {}) },
    isolation: isolationFacts(config, sources.isolation),
    oomd: oomdFacts(systemd.pid1, uid),
    memory: memoryFacts(),
    psi: psiFacts(),
    guard: config.pressureGuard ? { settings: config.pressureGuard, ...(sources.pressureGuard ? { from: sources.pressureGuard } : {}) } : {},
    gpus: gpuFacts(),
    stateDir: stateDirFacts(config.stateDir ?? stateHome(), all),
  };
}

export default function doctor(o: { json?: boolean }, cmd: Command): number {
  const root = cmd.parent ?? cmd;
  const version = root.version() ?? '';
  const facts = gatherFacts();
  const report = diagnose(facts);
  if (o.json) printJson({ schema: JSON_SCHEMA, version, status: report.status, checks: report.checks, fixes: report.fixes, ...facts });
  else {
    const chalk = makeChalk(root.opts().color === false);
    const paint = (s: CheckStatus, t: string) => (s === 'ok' ? chalk.green(t) : s === 'warn' ? chalk.yellow(t) : s === 'fail' ? chalk.red(t) : chalk.dim(t));
    out(`jobq ${version} as ${facts.user.name} (uid ${facts.user.uid}) on ${os.hostname()}\n\n${renderReport(report, paint)}`);
  }
  // A warning is advice; only a fail means jobq cannot work here as configured.
  return report.status === 'fail' ? EXIT.failure : EXIT.ok;
}

export const command: CommandDef = {
  name: 'doctor',
  summary: 'say what jobq will do on this machine (cgroups, systemd scope, oomd, swap, state dir) and how to fix what is wrong',
  options: [{ flags: '--json', description: 'print JSON (docs/doctor.md)' }],
  afterHelp: `
Each line is ok, warn, fail or info; "To fix:" lists the exact commands. Exit 1 only when something is a fail
(jobq cannot work here as configured), else 0. Fields of --json: docs/doctor.md.

Examples:
  jobq doctor
  jobq doctor --json | jq '.checks[] | select(.status == "warn" or .status == "fail")'
  jobq doctor --json | jq -r .isolation.auto     # what --isolation auto picks here`,
  load: () => import('./doctor.js'),
};
