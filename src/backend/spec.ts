// What a job is asked to be, three ways: `run`'s options (and config) → a RunSpec; a record → the RunSpec that runs
// it again (restart, from the CLI, the dashboard or MCP). Backends turn a RunSpec into records (backend/jobs.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Config, callerCwd } from '../config/config.js';
import { parseEnvPairs } from '../domain/env.js';
import { JobqError } from '../domain/errors.js';
import { isRedacted, type JobRecord, RETRY_ON, type RetryOn, type RetryPolicy, validateOwner, validateQueue } from '../domain/job.js';
import { formatSize, parseDuration, parseSignal, parseSize } from '../domain/units.js';
import { noUserManager, userManager } from '../process/isolation.js';
import type { RestartOpts, RunSpec } from './backend.js';
import { BACKENDS } from './places.js';

/** Options of `run` as commander hands them over. */
export interface RunOpts {
  env?: string[];
  cwd?: string;
  guardVar?: string[];
  memsafe?: boolean;
  preset?: string[];
  log?: string;
  isolation?: RunSpec['isolationMode'];
  memLimit?: string;
  memHigh?: string;
  oomScoreAdj?: string;
  timeout?: string;
  idleTimeout?: string;
  timeoutSignal?: string;
  signal?: string;
  grace?: string;
  maxLogSize?: string;
  onExit?: string;
  quiet?: boolean;
  json?: boolean;
  replace?: boolean;
  allowDuplicate?: boolean;
  queue?: string | false;
  priority?: string;
  waitStart?: boolean;
  after?: string[];
  afterAny?: string[];
  array?: string;
  arrayFile?: string;
  mem?: string;
  gpus?: string;
  gpuMem?: string;
  gpuMemEnforce?: boolean;
  backend?: string;
  slurmOpt?: string[];
  owner?: string;
  retry?: string;
  retryOn?: string;
  retryDelay?: string;
  memGrow?: string;
  joblog?: string;
}

/** --retry N [--retry-on ENDS] [--retry-delay D] [--mem-grow F]: how a failed job is run again, or none. */
function retryOf(o: RunOpts, backend: string | undefined): RetryPolicy | undefined {
  const related = o.retryOn ?? o.retryDelay ?? o.memGrow;
  if (o.retry === undefined) {
    if (related !== undefined) throw new JobqError('USAGE', '--retry-on, --retry-delay and --mem-grow go with --retry N');
    return undefined;
  }
  if (!/^\d+$/.test(o.retry) || Number(o.retry) < 1 || Number(o.retry) > 100)
    throw new JobqError('USAGE', `invalid --retry '${o.retry}': how many more attempts, 1 to 100`);
  // A cluster requeues in its own way; this machine's supervisor is what runs a job again.
  if (backend && backend !== 'local') throw new JobqError('USAGE', `--retry is for jobs on this machine, not on ${backend}`);
  const on = (o.retryOn ?? RETRY_ON.join(',')).split(',').map((w) => w.trim().toLowerCase());
  for (const w of on)
    if (!(RETRY_ON as readonly string[]).includes(w))
      throw new JobqError('USAGE', `invalid --retry-on '${w}': one or more of ${RETRY_ON.join(', ')} (a cancel is never retried)`);
  let memGrow: number | undefined;
  if (o.memGrow !== undefined) {
    const m = /^(\d+(?:\.\d+)?)x?$/i.exec(o.memGrow.trim());
    memGrow = m ? Number(m[1]) : Number.NaN;
    if (!(memGrow > 1 && memGrow <= 16)) throw new JobqError('USAGE', `invalid --mem-grow '${o.memGrow}': a factor over 1, e.g. 1.5x`);
    if (!on.includes('oom')) throw new JobqError('USAGE', '--mem-grow acts after an oom: add oom to --retry-on');
  }
  return {
    max: Number(o.retry),
    on: [...new Set(on)] as RetryOn[],
    delayMs: o.retryDelay ? parseDuration(o.retryDelay, '--retry-delay') : 0,
    backoff: 2,
    ...(memGrow ? { memGrow } : {}),
  };
}

/** The queue and priority a run asks for: --queue, else config's defaultQueue (--no-queue: start now regardless). */
function queueOf(o: RunOpts, config: Config): Pick<RunSpec, 'queue' | 'priority'> {
  const priority = o.priority === undefined ? 0 : Number(o.priority);
  if (!/^-?\d+$/.test(o.priority ?? '0') || !Number.isSafeInteger(priority))
    throw new JobqError('USAGE', `invalid --priority '${o.priority}': a whole number (higher starts first)`);
  const queue = o.queue === false ? undefined : (o.queue ?? config.defaultQueue);
  if (queue === undefined) {
    if (o.priority !== undefined) throw new JobqError('USAGE', '--priority needs a queue (--queue Q, or defaultQueue in config)');
    return {};
  }
  return { queue: validateQueue(queue), priority };
}

/** Parses --array FROM-TO[:STEP][%K] into its values and cap. */
export function parseArray(text: string): { values: string[]; cap?: number } {
  const m = /^(\d+)-(\d+)(?::(\d+))?(?:%(\d+))?$/.exec(text.trim());
  if (!m) throw new JobqError('USAGE', `invalid --array '${text}': expected FROM-TO[:STEP][%K], e.g. 1-20, 0-100:10, 1-50%4`);
  const [from, to, step = 1] = [Number(m[1]), Number(m[2]), Number(m[3] ?? 1)];
  if (to < from || step < 1) throw new JobqError('USAGE', `invalid --array '${text}': TO must be at least FROM, STEP at least 1`);
  const values: string[] = [];
  for (let v = from; v <= to; v += step) values.push(String(v));
  if (values.length > 10_000) throw new JobqError('USAGE', `invalid --array '${text}': ${values.length} elements (at most 10000)`);
  return { values, ...(m[4] ? { cap: positive(m[4], '--array %K') } : {}) };
}

function positive(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1) throw new JobqError('USAGE', `invalid ${what} '${text}': a whole number, 1 or more`);
  return n;
}

/** A job's memory: under 1 MiB is a slip (`--mem-limit 8` is 8 bytes, and would OOM the job at once). */
function memSize(text: string, flag: string): number {
  const n = parseSize(text, flag);
  if (n >= 1024 ** 2) return n;
  const hint = /^\s*\d+\s*$/.test(text) ? ` (did you mean ${text.trim()}G?)` : '';
  throw new JobqError('USAGE', `${flag} ${text} is ${formatSize(n)}: too little for a job, at least 1M${hint}`);
}

/** Dependencies, an array, memory and GPU needs from the flags. */
function admissionOf(o: RunOpts, argv: string[]): Pick<RunSpec, 'after' | 'array' | 'memBytes' | 'gpus' | 'gpuMemBytes' | 'gpuMemEnforce'> {
  const out: Pick<RunSpec, 'after' | 'array' | 'memBytes' | 'gpus' | 'gpuMemBytes' | 'gpuMemEnforce'> = {};
  const after = [...(o.after ?? []).map((ref) => ({ ref, kind: 'ok' as const })), ...(o.afterAny ?? []).map((ref) => ({ ref, kind: 'any' as const }))];
  if (after.length) out.after = after;
  if (o.array && o.arrayFile) throw new JobqError('USAGE', '--array and --array-file: choose one');
  if (o.array) out.array = parseArray(o.array);
  if (o.arrayFile) {
    let text: string;
    try {
      text = fs.readFileSync(o.arrayFile, 'utf8');
    } catch (e) {
      throw new JobqError('USAGE', `cannot read --array-file ${o.arrayFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const values = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    if (!values.length) throw new JobqError('USAGE', `--array-file ${o.arrayFile} holds no values (one per line)`);
    out.array = { values };
  }
  if (out.array && !argv.some((a) => a.includes('{}')))
    process.stderr.write('jobq: note: no {} in the command: every element gets the same arguments (JOBQ_ARRAY_VALUE holds its value)\n');
  if (o.mem) out.memBytes = memSize(o.mem, '--mem');
  if (o.gpus) out.gpus = positive(o.gpus, '--gpus');
  if (o.gpuMem) {
    out.gpuMemBytes = memSize(o.gpuMem, '--gpu-mem');
    out.gpus ??= 1;
  }
  if (o.gpuMemEnforce) {
    if (!o.gpuMem) throw new JobqError('USAGE', '--gpu-mem-enforce goes with --gpu-mem SIZE (the reservation it enforces)');
    out.gpuMemEnforce = true;
  }
  return out;
}

/** Where it runs: --backend, else its queue's backend, else config's; sbatch options from config, queue and --slurm-opt. */
function backendOf(o: RunOpts, config: Config): Pick<RunSpec, 'backend' | 'submitOptions'> {
  const q = o.queue === false ? undefined : (o.queue ?? config.defaultQueue);
  const qdef = q ? config.queues[q] : undefined;
  const backend = o.backend ?? qdef?.backend ?? config.backend;
  if (!BACKENDS.includes(backend)) {
    const known = BACKENDS.join(' or ');
    if (o.backend) throw new JobqError('USAGE', `unknown --backend '${backend}' (${known})`);
    const key = qdef?.backend ? `queues.${q}.backend` : 'backend';
    throw new JobqError('CONFIG', `bad config: key '${key}': '${backend}' is not a backend (${known}); jobq config shows which file set it`);
  }
  if (backend === 'local') {
    if (o.slurmOpt?.length) throw new JobqError('USAGE', '--slurm-opt goes with --backend slurm');
    return {};
  }
  return { backend, submitOptions: [...config.slurmOptions, ...(qdef?.slurmOptions ?? []), ...(o.slurmOpt ?? [])] };
}

/** Turns flags and config into a RunSpec (pure but for reading the caller's cwd and env). */
export function specFrom(name: string, argv: string[], o: RunOpts, config: Config): RunSpec {
  const oom = o.oomScoreAdj === undefined ? config.oomScoreAdj : Number(o.oomScoreAdj);
  if (!Number.isInteger(oom) || oom < -1000 || oom > 1000)
    throw new JobqError('USAGE', `invalid --oom-score-adj '${o.oomScoreAdj}': an integer from -1000 to 1000`);
  let warnSignal: RunSpec['warnSignal'];
  if (o.timeoutSignal) {
    const m = /^([^@]+)@(.+)$/.exec(o.timeoutSignal);
    if (!m) throw new JobqError('USAGE', `invalid --timeout-signal '${o.timeoutSignal}': expected SIG@LEAD, e.g. USR1@60s`);
    warnSignal = { signal: parseSignal(m[1]!), leadMs: parseDuration(m[2]!, '--timeout-signal lead') };
    if (!o.timeout) throw new JobqError('USAGE', '--timeout-signal needs --timeout');
  }
  if (o.replace && o.allowDuplicate) throw new JobqError('USAGE', '--replace and --allow-duplicate contradict each other: choose one');
  const presets = [...(o.memsafe ? ['memsafe'] : []), ...(o.preset ?? [])];
  if (argv.length && !argv[0]) throw new JobqError('USAGE', "empty command: the first word after '--' is ''");
  const here = callerCwd();
  // Relative paths are taken from where jobq was called, like a shell's; a deleted cwd cannot anchor them.
  const fromHere = (p: string, what: string) => {
    if (path.isAbsolute(p)) return path.normalize(p);
    if (here === undefined) throw new JobqError('USAGE', `the current directory no longer exists: give ${what} as an absolute path`);
    return path.resolve(here, p);
  };
  if (!o.cwd && here === undefined) throw new JobqError('USAGE', 'the current directory no longer exists (deleted?): cd elsewhere or pass --cwd DIR');
  const memLimitBytes = o.memLimit ? memSize(o.memLimit, '--mem-limit') : undefined;
  const memHighBytes = o.memHigh ? memSize(o.memHigh, '--mem-high') : undefined;
  if (memHighBytes && memLimitBytes && memHighBytes >= memLimitBytes)
    throw new JobqError('USAGE', `--mem-high ${o.memHigh} must be below --mem-limit ${o.memLimit}: it throttles before the limit kills`);
  const where = backendOf(o, config);
  // A cluster's nodes are not this machine: Slurm itself refuses a limit no node can meet.
  if (memLimitBytes && memLimitBytes > os.totalmem() && where.backend !== 'slurm') {
    throw new JobqError('USAGE', `--mem-limit ${o.memLimit} is more than this machine's memory (${formatSize(os.totalmem())})`);
  }
  const retry = retryOf(o, where.backend);
  if (o.joblog && where.backend) throw new JobqError('USAGE', `--joblog is for jobs on this machine, not on ${where.backend}`);
  if (retry?.memGrow && !memLimitBytes) throw new JobqError('USAGE', '--mem-grow grows the --mem-limit: give one');
  const isolationMode = o.isolation ?? config.isolation;
  // Refused here, before a record exists: a scope asked for where no user manager can make one.
  if (isolationMode === 'scope' && where.backend !== 'slurm') {
    const why = userManager();
    if (why) throw new JobqError('USAGE', noUserManager(why));
  }
  // An agent's shell sets JOBQ_OWNER once; every job it starts is then found by it.
  const owner = o.owner ?? (process.env.JOBQ_OWNER || undefined);
  return {
    name,
    argv,
    cwd: o.cwd ? fromHere(o.cwd, '--cwd') : here!,
    callerEnv: process.env,
    presets: [...new Set(presets)],
    presetTable: config.presets,
    env: parseEnvPairs(o.env ?? []),
    guardVars: o.guardVar ?? [],
    log: o.log ? fromHere(o.log, '--log') : undefined,
    isolationMode,
    memLimitBytes,
    ...(memHighBytes ? { memHighBytes } : {}),
    oomScoreAdj: oom,
    timeoutMs: o.timeout ? parseDuration(o.timeout, '--timeout') : undefined,
    idleTimeoutMs: o.idleTimeout ? parseDuration(o.idleTimeout, '--idle-timeout') : undefined,
    warnSignal,
    graceMs: o.grace ? parseDuration(o.grace, '--grace') : config.graceMs,
    stopSignal: o.signal ? parseSignal(o.signal) : config.signal,
    maxLogBytes: o.maxLogSize ? parseSize(o.maxLogSize, '--max-log-size') : config.maxLogBytes,
    onExit: o.onExit,
    onLive: o.replace ? 'replace' : o.allowDuplicate ? 'allow' : 'refuse',
    onReplaced: (id, outcome) => process.stderr.write(`jobq: replaced ${id} (${outcome})\n`),
    ...queueOf(o, config),
    ...admissionOf(o, argv),
    ...where,
    sampleMs: config.sampleMs,
    ...(owner !== undefined ? { owner: { id: validateOwner(owner) } } : {}),
    ...(retry ? { retry } : {}),
    ...(o.joblog ? { joblog: fromHere(o.joblog, '--joblog') } : {}),
    machine: { memReserveBytes: config.memReserveBytes, ...(config.gpus !== undefined ? { gpus: config.gpus } : {}) },
  };
}

/** The GPU list a first run was given, as config writes it ("0:80G,1"). */
function gpuListOf(a: JobRecord['admission']): { gpus?: string } {
  if (!a?.gpuList) return {};
  return { gpus: a.gpuList.map((i, k) => (a.gpuListMiB?.[k] ? `${i}:${a.gpuListMiB[k]}M` : String(i))).join(',') };
}

/** Variables jobq sets on every job itself: a restart's job gets its own, not the old job's. */
const JOBQ_OWN = new Set(['BG_JOB', 'JOBQ_JOB_ID', 'JOBQ_JOB_NAME', 'JOBQ_LOG']);

/** The RunSpec that runs a recorded job again, as it was asked for (its own log only if it chose one). */
export function specFromRecord(old: JobRecord, config: Config, ownLog: boolean, o: RestartOpts): RunSpec {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(old.env.added)) {
    if (JOBQ_OWN.has(k)) continue;
    if (isRedacted(v)) {
      // Secret values were never written down: take them from the caller's environment, if there.
      if (o.callerEnv[k] !== undefined) env[k] = o.callerEnv[k]!;
      else o.warn(`${k} was redacted in ${old.id} and is not set here; the new job runs without it`);
      continue;
    }
    env[k] = v;
  }
  const p = old.protection;
  return {
    name: old.name,
    argv: old.argv,
    cwd: old.cwd,
    callerEnv: o.callerEnv,
    presets: old.env.presets.filter((n) => n in config.presets),
    presetTable: config.presets,
    env,
    // Guard variables were set in env.added at the first run: they come back with it.
    guardVars: [],
    log: ownLog ? undefined : old.log,
    isolationMode: p.isolationMode,
    memLimitBytes: o.memLimitBytes ?? p.memLimitBytes,
    ...(p.memHighBytes ? { memHighBytes: p.memHighBytes } : {}),
    oomScoreAdj: p.oomScoreAdj?.requested ?? 0,
    timeoutMs: p.timeoutMs,
    idleTimeoutMs: p.idleTimeoutMs,
    warnSignal: p.warnSignal,
    graceMs: p.graceMs,
    stopSignal: p.stopSignal,
    maxLogBytes: old.maxLogBytes,
    onExit: old.onExit,
    sampleMs: old.sampleMs,
    ...(old.retry ? { retry: old.retry } : {}),
    ...(old.joblog ? { joblog: old.joblog } : {}),
    // Where and how it was admitted: a Slurm job restarts on the cluster, a queued one in its queue. Its
    // dependencies were met (or not) for the first run; a restart is asked for now.
    ...(old.queue !== undefined ? { queue: old.queue, priority: old.priority ?? 0 } : {}),
    ...(old.admission?.memBytes ? { memBytes: old.admission.memBytes } : {}),
    ...(old.admission?.gpus ? { gpus: old.admission.gpus } : {}),
    ...(old.admission?.gpuMemBytes ? { gpuMemBytes: old.admission.gpuMemBytes } : {}),
    ...(old.admission?.gpuMemEnforce ? { gpuMemEnforce: true } : {}),
    // The machine as the caller sees it, else the GPU list the first run was given.
    machine: { memReserveBytes: config.memReserveBytes, ...(config.gpus !== undefined ? { gpus: config.gpus } : gpuListOf(old.admission)) },
    ...(old.backend ? { backend: old.backend, submitOptions: old.placement?.options ?? [] } : {}),
    // pm2 / systemd semantics: a live job of that name is stopped first, unless keep starts a second copy.
    onLive: o.keep ? 'allow' : 'replace',
    ...(o.owner ? { owner: o.owner } : old.owner ? { owner: { id: old.owner.id } } : {}),
    onReplaced: (id, outcome) => o.warn(`stopped ${id} first (${outcome})`),
  };
}
