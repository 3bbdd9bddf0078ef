// Configuration: built-in defaults < user config < project .jobq.json < environment < flags, with provenance.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BUILTIN_PRESETS, ENV_NAME } from '../domain/env.js';
import { JobqError } from '../domain/errors.js';
import { ISOLATION_MODES, type IsolationMode, validateQueue } from '../domain/job.js';
import { PRESSURE_DEFAULTS, type PressureSettings, parsePressureGuard } from '../domain/pressure.js';
import { parseDuration, parseSignal, parseSize } from '../domain/units.js';
import { untrustedReason } from '../store/trust.js';

/** The settings a config file may hold. */
export interface Config {
  stateDir?: string;
  graceMs: number;
  signal: NodeJS.Signals;
  isolation: IsolationMode;
  oomScoreAdj: number;
  maxLogBytes: number;
  presets: Record<string, Record<string, string>>;
  /** Queues a config defines (their slots), and the queue `run` uses when no --queue is given. */
  queues: Record<string, { slots: number; backend?: string; slurmOptions?: string[] }>;
  defaultQueue?: string;
  /** Memory kept free for everything else when admitting --mem jobs. */
  memReserveBytes: number;
  /** A GPU using more memory than this (MiB) counts as busy. */
  gpuBusyMiB: number;
  /** GPU indices to hand out where nvidia-smi is missing ("0,1"). */
  gpus?: string;
  /** Where jobs run unless --backend says otherwise (`local` or `slurm`), and options every sbatch gets. */
  backend: string;
  slurmOptions: string[];
  /** How often supervisors sample a job's memory and CPU. */
  sampleMs: number;
  /** Guard rails for jobs started through `jobq mcp`: live jobs per owner, and the largest --mem-limit (also its default). */
  agents: { maxLive?: number; maxMemLimitBytes?: number };
  /** The memory pressure guard (off unless asked for): docs/protection.md. */
  pressureGuard?: PressureSettings;
}

/** Where each value came from: "default", a file path, or an environment variable. */
export type Sources = Partial<Record<keyof Config | `presets.${string}` | `queues.${string}`, string>>;

const DEFAULTS: Config = {
  graceMs: 10_000,
  signal: 'SIGTERM',
  isolation: 'auto',
  oomScoreAdj: 500,
  maxLogBytes: 1024 ** 3,
  presets: BUILTIN_PRESETS,
  queues: {},
  memReserveBytes: 1024 ** 3,
  gpuBusyMiB: 1024,
  backend: 'local',
  slurmOptions: [],
  sampleMs: 2000,
  agents: {},
};

const KEYS = [
  'stateDir',
  'grace',
  'signal',
  'isolation',
  'oomScoreAdj',
  'maxLogSize',
  'presets',
  'queues',
  'defaultQueue',
  'memReserve',
  'gpuBusyMemory',
  'gpus',
  'backend',
  'slurmOptions',
  'sampleInterval',
  'agents',
  'pressureGuard',
];

/** The user config file: $XDG_CONFIG_HOME/jobq/config.json, else ~/.config/jobq/config.json. */
export function userConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(os.homedir(), '.config');
  return path.join(base, 'jobq', 'config.json');
}

/** The nearest .jobq.json from cwd upward, if any. */
export function projectConfigPath(cwd: string): string | undefined {
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    const f = path.join(dir, '.jobq.json');
    if (fs.existsSync(f)) return f;
    if (dir === path.dirname(dir)) return undefined;
  }
}

/** A list of strings (sbatch options), or one line naming the key. */
function strings(file: string, key: string, v: unknown): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) bad(file, key, 'expected a list of strings, e.g. ["--partition=gpu"]');
  return v as string[];
}

function bad(file: string, key: string, why: string): never {
  throw new JobqError('CONFIG', `bad config ${file}: key '${key}': ${why}`);
}

/** The caller's working directory, or undefined when it was deleted (commands that need it say so). */
export function callerCwd(): string | undefined {
  try {
    return process.cwd();
  } catch {
    return undefined;
  }
}

/** Why a config file must not be obeyed (git's safe.directory rule): another user could have written it. */
function untrustedConfig(file: string): string | undefined {
  const why = untrustedReason(file);
  if (why) return why;
  const st = fs.statSync(file);
  if (st.mode & 0o022) return `it is writable by ${st.mode & 0o002 ? 'others' : 'its group'} (mode ${(st.mode & 0o777).toString(8)})`;
  return undefined;
}

/** One config file as the validators see it: its path and object, and readers that name the key in their errors. */
interface FileKeys {
  file: string;
  o: Record<string, unknown>;
  str(key: string): string;
  /** A size may be a JSON number of bytes too ("memReserve": 0). */
  size(key: string): string;
  wrap<T>(key: string, f: () => T): T;
}

/** The readers for one file's keys: a wrong type or a parser's error says which file and key. */
function fileKeys(file: string, o: Record<string, unknown>): FileKeys {
  const str = (key: string) => {
    if (typeof o[key] !== 'string') bad(file, key, 'expected a string');
    return o[key] as string;
  };
  return {
    file,
    o,
    str,
    size: (key) => (typeof o[key] === 'number' && Number.isSafeInteger(o[key]) && (o[key] as number) >= 0 ? String(o[key]) : str(key)),
    wrap: (key, f) => {
      try {
        return f();
      } catch (e) {
        if (e instanceof JobqError && e.code === 'CONFIG') throw e;
        return bad(file, key, (e as Error).message);
      }
    },
  };
}

/** How one key of a file is validated and applied to cfg, with its source. */
type Apply = (k: FileKeys, cfg: Config, sources: Sources) => void;

/** A key that sets one setting from its validated value, the file as that setting's source. */
const sets =
  <K extends keyof Config>(to: K, read: (k: FileKeys) => Config[K]): Apply =>
  (k, cfg, sources) => {
    cfg[to] = read(k);
    sources[to] = k.file;
  };

/** "queues": each NAME: {"slots": N, "backend"?, "slurmOptions"?} added over the queues defined before. */
function applyQueues({ file, o, wrap }: FileKeys, cfg: Config, sources: Sources): void {
  const qs = o.queues;
  if (!qs || typeof qs !== 'object' || Array.isArray(qs)) bad(file, 'queues', 'expected an object of NAME: {"slots": N}');
  for (const [name, def] of Object.entries(qs as Record<string, unknown>)) {
    wrap(`queues.${name}`, () => validateQueue(name));
    const d = (def ?? {}) as { slots?: unknown; backend?: unknown; slurmOptions?: unknown };
    const slots = d.slots ?? 1;
    if (!Number.isInteger(slots) || (slots as number) < 1) bad(file, `queues.${name}.slots`, 'expected a whole number of slots, 1 or more');
    // Which places exist is the backend's to say (backend/places.ts), when a job is run there.
    if (d.backend !== undefined && (typeof d.backend !== 'string' || !/^[a-z][a-z0-9-]*$/.test(d.backend)))
      bad(file, `queues.${name}.backend`, 'expected a backend name, e.g. "slurm"');
    const opts = d.slurmOptions === undefined ? undefined : strings(file, `queues.${name}.slurmOptions`, d.slurmOptions);
    cfg.queues = {
      ...cfg.queues,
      [name]: { slots: slots as number, ...(d.backend ? { backend: d.backend as string } : {}), ...(opts ? { slurmOptions: opts } : {}) },
    };
    sources[`queues.${name}`] = file;
  }
}

/** "presets": each NAME: {VAR: "value"} added to the preset of that name, or replacing it with "replace": true. */
function applyPresets({ file, o }: FileKeys, cfg: Config, sources: Sources): void {
  const p = o.presets;
  if (!p || typeof p !== 'object' || Array.isArray(p)) bad(file, 'presets', 'expected an object of NAME: {VAR: "value"}');
  for (const [name, vars] of Object.entries(p as Record<string, unknown>)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name)) bad(file, `presets.${name}`, 'invalid preset name');
    if (!vars || typeof vars !== 'object' || Array.isArray(vars)) bad(file, `presets.${name}`, 'expected an object of VAR: "value"');
    const clean: Record<string, string> = {};
    // "replace": true drops the earlier preset of that name; by default a preset adds to it.
    let replace = false;
    for (const [k, v] of Object.entries(vars as Record<string, unknown>)) {
      if (k === 'replace' && typeof v === 'boolean') {
        replace = v;
        continue;
      }
      if (!ENV_NAME.test(k)) bad(file, `presets.${name}.${k}`, 'invalid variable name');
      if (typeof v !== 'string') bad(file, `presets.${name}.${k}`, 'expected a string value');
      clean[k] = v;
    }
    cfg.presets = { ...cfg.presets, [name]: replace ? clean : { ...cfg.presets[name], ...clean } };
    sources[`presets.${name}`] = file;
  }
}

/** "agents": {"maxLive": N, "maxMemLimit": "16G"}, what an agent may start through `jobq mcp`. */
const applyAgents = sets('agents', ({ file, o, wrap }) => {
  const a = o.agents as { maxLive?: unknown; maxMemLimit?: unknown } | null;
  if (!a || typeof a !== 'object' || Array.isArray(a)) bad(file, 'agents', 'expected an object: {"maxLive": 4, "maxMemLimit": "16G"}');
  for (const k of Object.keys(a)) if (k !== 'maxLive' && k !== 'maxMemLimit') bad(file, `agents.${k}`, 'unknown key (known: maxLive, maxMemLimit)');
  const { maxLive, maxMemLimit } = a;
  if (maxLive !== undefined && (!Number.isInteger(maxLive) || (maxLive as number) < 1)) bad(file, 'agents.maxLive', 'expected a whole number, 1 or more');
  if (maxMemLimit !== undefined && typeof maxMemLimit !== 'string') bad(file, 'agents.maxMemLimit', 'expected a size, e.g. "16G"');
  return {
    ...(maxLive !== undefined ? { maxLive: maxLive as number } : {}),
    ...(maxMemLimit !== undefined ? { maxMemLimitBytes: wrap('agents.maxMemLimit', () => parseSize(maxMemLimit as string, 'agents.maxMemLimit')) } : {}),
  };
});

/** Each key a config file may hold and how it is applied, in the order they are applied (the first bad key is the one reported). */
const APPLY: Record<string, Apply> = {
  stateDir: sets('stateDir', ({ file, str }) => path.resolve(path.dirname(file), str('stateDir').replace(/^~(?=$|\/)/, os.homedir()))),
  grace: sets('graceMs', ({ str, wrap }) => wrap('grace', () => parseDuration(str('grace'), 'grace'))),
  signal: sets('signal', ({ str, wrap }) => wrap('signal', () => parseSignal(str('signal')))),
  isolation: sets('isolation', ({ file, str }) => {
    const v = str('isolation');
    if (!(ISOLATION_MODES as readonly string[]).includes(v))
      bad(file, 'isolation', `expected ${ISOLATION_MODES.slice(0, -1).join(', ')} or ${ISOLATION_MODES.at(-1)}`);
    return v as Config['isolation'];
  }),
  oomScoreAdj: sets('oomScoreAdj', ({ file, o }) => {
    const v = o.oomScoreAdj;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -1000 || v > 1000) bad(file, 'oomScoreAdj', 'expected an integer from -1000 to 1000');
    return v as number;
  }),
  queues: applyQueues,
  defaultQueue: sets('defaultQueue', ({ str, wrap }) => wrap('defaultQueue', () => validateQueue(str('defaultQueue')))),
  sampleInterval: sets('sampleMs', ({ file, str, wrap }) => {
    const ms = wrap('sampleInterval', () => parseDuration(str('sampleInterval'), 'sampleInterval'));
    if (ms < 100) bad(file, 'sampleInterval', 'at least 100ms');
    return ms;
  }),
  backend: sets('backend', ({ file, str }) => {
    if (!/^[a-z][a-z0-9-]*$/.test(str('backend'))) bad(file, 'backend', 'expected a backend name, e.g. "slurm"');
    return str('backend');
  }),
  slurmOptions: sets('slurmOptions', ({ file, o }) => strings(file, 'slurmOptions', o.slurmOptions)),
  memReserve: sets('memReserveBytes', ({ size, wrap }) => wrap('memReserve', () => parseSize(size('memReserve'), 'memReserve', { zero: true }))),
  gpuBusyMemory: sets('gpuBusyMiB', ({ size, wrap }) =>
    Math.floor(wrap('gpuBusyMemory', () => parseSize(size('gpuBusyMemory'), 'gpuBusyMemory', { zero: true })) / 1024 ** 2),
  ),
  gpus: sets('gpus', ({ file, o }) => {
    const g = o.gpus;
    const list = Array.isArray(g) ? g.join(',') : typeof g === 'string' ? g : undefined;
    if (list === undefined || !gpuListOk(list)) bad(file, 'gpus', GPU_LIST_HINT);
    return list.replace(/\s/g, '');
  }),
  maxLogSize: sets('maxLogBytes', ({ size, wrap }) => wrap('maxLogSize', () => parseSize(size('maxLogSize'), 'maxLogSize'))),
  presets: applyPresets,
  agents: applyAgents,
  pressureGuard: sets('pressureGuard', ({ o, wrap }) => wrap('pressureGuard', () => parsePressureGuard(o.pressureGuard))),
};

/** A config file's object, if there is one and it may be obeyed; an unreadable or malformed one is an error. */
function readConfigFile(file: string, warnings: string[]): Record<string, unknown> | undefined {
  if (!fs.existsSync(file)) return undefined;
  const distrust = untrustedConfig(file);
  if (distrust) {
    warnings.push(`ignoring config ${file}: ${distrust}`);
    return undefined;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new JobqError('CONFIG', `bad config ${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new JobqError('CONFIG', `bad config ${file}: expected a JSON object`);
  return raw as Record<string, unknown>;
}

/** Applies one config file on top of cfg, recording where each value came from; false if there is none or it is not trusted. */
function applyFile(cfg: Config, sources: Sources, file: string, warnings: string[]): boolean {
  const o = readConfigFile(file, warnings);
  if (!o) return false;
  for (const key of Object.keys(o)) {
    if (!KEYS.includes(key)) bad(file, key, `unknown key (known: ${KEYS.join(', ')})`);
  }
  const k = fileKeys(file, o);
  for (const [key, apply] of Object.entries(APPLY)) {
    if (key in o) apply(k, cfg, sources);
  }
  return true;
}

const GPU_LIST_HINT = 'expected GPU indices, e.g. "0,1", [0, 1] or, with their memory for --gpu-mem, "0:80G,1:80G"';

/** A GPU list: indices, each with its memory if given ("0:80G"; a size of at least 1M, with its unit). */
function gpuListOk(list: string): boolean {
  return list.split(',').every((item) => {
    const m = /^\s*\d+\s*(?::\s*(\S+)\s*)?$/.exec(item);
    if (!m) return false;
    if (m[1] === undefined) return true;
    try {
      return /[a-z]$/i.test(m[1]) && parseSize(m[1], 'gpus') >= 1024 ** 2;
    } catch {
      return false;
    }
  });
}

/** Loads the merged configuration for a working directory, with where each value came from and the files really read. */
export function loadConfig(cwd = callerCwd(), env: NodeJS.ProcessEnv = process.env): { config: Config; sources: Sources; files: string[]; warnings: string[] } {
  const config: Config = { ...DEFAULTS, presets: { ...DEFAULTS.presets }, queues: {} };
  const sources: Sources = {};
  const warnings: string[] = [];
  for (const k of Object.keys(DEFAULTS) as Array<keyof Config>) sources[k] = 'default';
  for (const name of Object.keys(BUILTIN_PRESETS)) sources[`presets.${name}`] = 'built-in';
  // Without a working directory (deleted under us) there is no project to look in.
  const candidates = [userConfigPath(env), cwd === undefined ? undefined : projectConfigPath(cwd)];
  const files = candidates.filter((f): f is string => !!f && applyFile(config, sources, f, warnings));
  // JOBQ_GPUS names the machine's GPUs over the config file: folded in here, so run's check, the pool recorded
  // with the job (dispatch uses it, whatever its own environment) and `jobq config` all say the same.
  if (env.JOBQ_GPUS !== undefined) {
    // Empty: no GPUs here.
    if (env.JOBQ_GPUS.trim() && !gpuListOk(env.JOBQ_GPUS)) throw new JobqError('CONFIG', `bad JOBQ_GPUS '${env.JOBQ_GPUS}': ${GPU_LIST_HINT}`);
    config.gpus = env.JOBQ_GPUS;
    sources.gpus = 'env JOBQ_GPUS';
  }
  // JOBQ_PRESSURE_GUARD=1 turns the guard on (a config file's thresholds kept), =0 off.
  const guard = env.JOBQ_PRESSURE_GUARD;
  if (guard !== undefined && guard !== '') {
    if (!['0', '1', 'true', 'false'].includes(guard)) throw new JobqError('CONFIG', `bad JOBQ_PRESSURE_GUARD '${guard}': expected 1 or 0`);
    config.pressureGuard = guard === '1' || guard === 'true' ? (config.pressureGuard ?? { ...PRESSURE_DEFAULTS }) : undefined;
    sources.pressureGuard = 'env JOBQ_PRESSURE_GUARD';
  }
  if (env.JOBQ_HOME) {
    config.stateDir = path.isAbsolute(env.JOBQ_HOME) ? env.JOBQ_HOME : path.resolve(cwd ?? '/', env.JOBQ_HOME);
    sources.stateDir = 'env JOBQ_HOME';
  }
  return { config, sources, files, warnings };
}
