// `jobq run NAME [options] -- CMD [ARGS...]`
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { BACKEND_HELP, BACKENDS, type RunSpec } from '../backend/backend.js';
import { callerCwd } from '../config/config.js';
import { parseEnvPairs } from '../domain/env.js';
import { EXIT, JobqError } from '../domain/errors.js';
import { ISOLATION_MODES, type JobRecord, SCHEMA_VERSION, validateQueue } from '../domain/job.js';
import { formatSize, parseDuration, parseSignal, parseSize, sleep } from '../domain/units.js';
import { jobJson } from '../output/json.js';
import { noUserManager, userManager } from '../process/isolation.js';
import { context, out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

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
  backend?: string;
  slurmOpt?: string[];
}

/** Checks that the command came after `--` and after NAME, or after NAME with nothing option-like after it. */
function requireDoubleDash(raw: string[], name: string): void {
  const ri = raw.indexOf('run');
  const dd = raw.indexOf('--', ri + 1);
  // `jobq run train python3 train.py`: as tsp and pueue take it, when nothing after NAME could be an option of ours.
  const after = raw.slice(raw.indexOf(name, ri + 1) + 1);
  if (dd < 0 && after.length && !after.some((a) => a.startsWith('-'))) return;
  if (dd < 0) throw new JobqError('USAGE', "missing '--' before the command: jobq run NAME [options] -- CMD [ARGS...]");
  if (!raw.slice(ri + 1, dd).includes(name)) throw new JobqError('USAGE', 'missing job NAME before --: jobq run NAME [options] -- CMD [ARGS...]');
}

/** The queue and priority a run asks for: --queue, else config's defaultQueue (--no-queue: start now regardless). */
function queueOf(o: RunOpts, config: ReturnType<typeof context>['config']): Pick<RunSpec, 'queue' | 'priority'> {
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
function admissionOf(o: RunOpts, argv: string[]): Pick<RunSpec, 'after' | 'array' | 'memBytes' | 'gpus'> {
  const out: Pick<RunSpec, 'after' | 'array' | 'memBytes' | 'gpus'> = {};
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
  return out;
}

/** Where it runs: --backend, else its queue's backend, else config's; sbatch options from config, queue and --slurm-opt. */
function backendOf(o: RunOpts, config: ReturnType<typeof context>['config']): Pick<RunSpec, 'backend' | 'slurmOptions'> {
  const q = o.queue === false ? undefined : (o.queue ?? config.defaultQueue);
  const qdef = q ? config.queues[q] : undefined;
  const backend = o.backend ?? qdef?.backend ?? config.backend;
  if (!BACKENDS.includes(backend)) throw new JobqError('USAGE', `unknown --backend '${backend}' (${BACKENDS.join(' or ')})`);
  if (backend === 'local') {
    if (o.slurmOpt?.length) throw new JobqError('USAGE', '--slurm-opt goes with --backend slurm');
    return {};
  }
  return { backend, slurmOptions: [...config.slurmOptions, ...(qdef?.slurmOptions ?? []), ...(o.slurmOpt ?? [])] };
}

/** Turns flags and config into a RunSpec (pure but for reading the caller's cwd and env). */
export function specFrom(name: string, argv: string[], o: RunOpts, config: ReturnType<typeof context>['config']): RunSpec {
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
  const where = backendOf(o, config);
  // A cluster's nodes are not this machine: Slurm itself refuses a limit no node can meet.
  if (memLimitBytes && memLimitBytes > os.totalmem() && where.backend !== 'slurm') {
    throw new JobqError('USAGE', `--mem-limit ${o.memLimit} is more than this machine's memory (${formatSize(os.totalmem())})`);
  }
  const isolationMode = o.isolation ?? config.isolation;
  // Refused here, before a record exists: a scope asked for where no user manager can make one.
  if (isolationMode === 'scope' && where.backend !== 'slurm') {
    const why = userManager();
    if (why) throw new JobqError('USAGE', noUserManager(why));
  }
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
    machine: { memReserveBytes: config.memReserveBytes, ...(config.gpus !== undefined ? { gpus: config.gpus } : {}) },
  };
}

export default async function run(name: string, argv: string[], o: RunOpts, cmd: Command): Promise<number> {
  requireDoubleDash((cmd.parent as Command & { rawArgs: string[] }).rawArgs.slice(2), name);
  // `--cwd -- cmd`: the option took the separator as its value.
  const swallowed = Object.entries(o).find(([, v]) => v === '--' || (Array.isArray(v) && v.includes('--')));
  if (swallowed) {
    const flag = swallowed[0].replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    throw new JobqError('USAGE', `--${flag} needs a value before the '--' that starts the command`);
  }
  const ctx = context(cmd);
  // commander keeps the separator in the variadic argument.
  const spec = specFrom(name, argv[0] === '--' ? argv.slice(1) : argv, o, ctx.config);
  if (spec.array) return runArray(ctx, spec, o);
  let rec = await ctx.backend.run(spec);
  // Claimed by a freed slot meanwhile counts as not started yet: starting is waited for too.
  if (o.waitStart && (rec.state.status === 'queued' || rec.state.status === 'starting')) rec = await waitStarted(ctx.backend, rec.id);
  const s = rec.state;
  for (const w of rec.protection.warnings) process.stderr.write(`jobq: warning: ${w}\n`);
  if (o.json) printJson(jobJson({ rec, state: s, supervisorAlive: s.status === 'running' }));
  if (s.status === 'failed-to-start') {
    process.stderr.write(`jobq: ${rec.id} failed to start: ${s.error}\n`);
    return EXIT.failedToStart;
  }
  if (o.json) return EXIT.ok;
  if (o.quiet) {
    out(rec.id + '\n');
    return EXIT.ok;
  }
  const c = ctx.chalk;
  if (rec.slurm) {
    const sid = rec.slurm.arrayJobId ? `${rec.slurm.arrayJobId}_${rec.slurm.arrayTaskId}` : rec.slurm.jobId;
    out(`${c.green('submitted')} ${c.bold(rec.id)}  slurm job ${sid}${rec.slurm.cluster ? ` on ${rec.slurm.cluster}` : ''}\nlog: ${rec.log}\n`);
    return EXIT.ok;
  }
  if (s.status === 'queued' || !rec.job) {
    const [v] = await ctx.backend.withWaits([rec.id]);
    const w = v?.waiting;
    const where = rec.queue ? `  queue ${rec.queue}  position ${w?.position ?? '?'}` : '';
    out(`${c.cyan('queued')} ${c.bold(rec.id)}${where}${w?.reason ? `  waiting: ${w.reason}` : ''}\nlog: ${rec.log}\n`);
    return EXIT.ok;
  }
  const j = rec.job;
  out(`${c.green('started')} ${c.bold(rec.id)}  pid ${j.pid}  pgid ${j.pgid}  isolation ${rec.protection.isolation}\nlog: ${rec.log}\n`);
  if (s.status !== 'running') out(`(already ${s.status})\n`);
  return EXIT.ok;
}

/** An array: one line per element (-q: the ids), or the records as JSON. */
async function runArray(ctx: ReturnType<typeof context>, spec: RunSpec, o: RunOpts): Promise<number> {
  const recs = await ctx.backend.runArray(spec);
  if (o.json) printJson({ schema: SCHEMA_VERSION, jobs: recs.map((rec) => jobJson({ rec, state: rec.state, supervisorAlive: false })) });
  else if (o.quiet) out(recs.map((r) => r.id).join('\n') + '\n');
  else {
    const cap = spec.array?.cap ? `, at most ${spec.array.cap} at once` : '';
    out(`array ${spec.name}: ${recs.length} jobs ${spec.name}.1…${spec.name}.${recs.length}${cap}${spec.queue ? ` in queue ${spec.queue}` : ''}\n`);
    out(`see: jobq status ${spec.name}; wait: jobq wait ${spec.name}\n`);
  }
  return EXIT.ok;
}

/** Polls a queued job's record until it has started (or ended without starting). */
async function waitStarted(backend: ReturnType<typeof context>['backend'], id: string): Promise<JobRecord> {
  for (;;) {
    const v = await backend.view(id);
    if (v.state.status !== 'queued' && v.state.status !== 'starting') return v.rec;
    await sleep(100);
  }
}

export const command: CommandDef = {
  name: 'run',
  summary: 'start a job detached, in its own session, with a log and a record',
  description: 'Start CMD as a detached job named NAME. Returns once the job has really started (a job that must wait: once it is queued).',
  arguments: [
    { name: '<name>', description: 'job name (letters, digits, . _ -); NAME later means its latest job' },
    { name: '[command...]', description: "the command after -- (the -- may go when no word of the command starts with '-')" },
  ],
  options: [
    { flags: '--env <K=V>', description: 'set a variable for the job (repeatable)', repeatable: true },
    { flags: '--cwd <dir>', description: 'working directory (default: here)' },
    { flags: '--guard-var <name>', description: 'also set NAME=1 for scripts that check it (repeatable)', repeatable: true },
    { flags: '--memsafe', description: 'preset: single-threaded BLAS/OpenMP, MALLOC_ARENA_MAX=2' },
    { flags: '--preset <name>', description: 'apply a named env preset (repeatable; see jobq config)', repeatable: true },
    { flags: '--log <file>', description: 'write the log here instead of the state dir' },
    {
      flags: '--isolation <mode>',
      description: 'systemd scope or own cgroup for the job (auto warns if it gets neither; jobq doctor says which)',
      choices: [...ISOLATION_MODES],
    },
    { flags: '--mem-limit <size>', description: 'memory limit enforced by the kernel, e.g. 8G' },
    { flags: '--oom-score-adj <n>', description: "make the job the OOM killer's first pick (default 500; 0 leaves it)" },
    { flags: '--timeout <duration>', description: 'end the job after this wall-clock time, e.g. 6h or 1h30m (state: timeout; wait gives 124)' },
    { flags: '--idle-timeout <duration>', description: 'end the job after this long without new output (\\r counts)' },
    { flags: '--timeout-signal <SIG@LEAD>', description: 'send SIG to the main process this long before --timeout, e.g. USR1@60s' },
    { flags: '--signal <sig>', description: 'signal timeouts send first (default TERM)' },
    { flags: '--grace <duration>', description: 'time between the first signal and SIGKILL on timeout (default 10s)' },
    { flags: '--max-log-size <size>', description: 'cap the log; the oldest half is dropped with a marker (default 1G)' },
    { flags: '--on-exit <cmd>', description: 'run this shell command when the job ends (JOBQ_JOB_STATE etc. set)' },
    { flags: '--queue <queue>', description: 'wait for a free slot of this queue (a new queue has 1 slot); default: config defaultQueue' },
    { flags: '--no-queue', description: 'start now even if config names a defaultQueue' },
    { flags: '--priority <n>', description: 'within the queue, higher starts first (default 0); ties: first come, first served' },
    { flags: '--wait-start', description: 'if the job must wait (queue, --after, --mem, --gpus): block until it started, then print as run does' },
    {
      flags: '--after <job>',
      description: 'start only after JOB (NAME, id, or array name: all its elements) succeeded; else skipped (repeatable)',
      repeatable: true,
    },
    { flags: '--after-any <job>', description: 'start after JOB ended, however it ended (repeatable)', repeatable: true },
    { flags: '--array <from-to[:step][%k]>', description: 'a job array NAME.1, NAME.2, …: {} in the command is the value; %K caps how many run at once' },
    { flags: '--array-file <file>', description: 'a job array with one value per line of FILE' },
    { flags: '--mem <size>', description: 'memory the job needs to start: it waits until that much is free (--mem-limit is only a cap)' },
    { flags: '--gpus <n>', description: 'GPUs it needs: N free ones not held by another job (CUDA_VISIBLE_DEVICES set); it waits for them' },
    { flags: '--backend <where>', description: BACKENDS.map((b) => `${b} (${BACKEND_HELP[b]})`).join(' or ') },
    { flags: '--slurm-opt <opt>', description: 'an extra sbatch option, e.g. --partition=gpu (repeatable)', repeatable: true },
    { flags: '--replace', description: 'if a job of this NAME is live, cancel it (its usual grace) and then start' },
    { flags: '--allow-duplicate', description: 'if a job of this NAME is live, start another beside it' },
    { flags: '-q, --quiet', description: 'print only the job id' },
    { flags: '--json', description: 'print the record as JSON' },
  ],
  afterHelp: `
Examples:
  jobq run train -- python train.py --lr 3e-4
  jobq run etl --memsafe --env DATA=/srv/x -- ./etl.sh
  jobq run big --mem-limit 8G --timeout 6h --idle-timeout 20m -- python big.py
  jobq run render --guard-var GRAV_BG_JOB --on-exit 'notify-send "$JOBQ_JOB_NAME $JOBQ_JOB_STATE"' -- make render
  jobq run train --replace -- python train.py    # stop the running 'train' first
  jobq run render1 --queue heavy -- ./render.sh 1 # waits for a free slot of 'heavy'
  jobq run urgent --queue heavy --priority 10 -- ./render.sh 9
  jobq run eval --after train -- python eval.py   # skipped if train does not succeed
  jobq run sweep --array 1-20%4 -- python train.py --seed {}
  jobq run big --mem 12G --gpus 1 -- python big.py
  jobq run train --backend slurm --gpus 1 --timeout 6h --slurm-opt=--partition=gpu -- python train.py

A NAME names one live job: run refuses a NAME that is queued, starting, running or paused (exit 1) unless
--replace or --allow-duplicate says what to do.

The job gets BG_JOB=1, JOBQ_JOB_ID, JOBQ_JOB_NAME, JOBQ_LOG and PYTHONUNBUFFERED=1 (unless set).
A command that cannot start exits 127 at once, and its record says why.
The job's supervisor starts beside run (bin/jobq); JOBQ_STANDBY=0 jobq run ... starts it after run instead.`,
  load: () => import('./run.js'),
};
