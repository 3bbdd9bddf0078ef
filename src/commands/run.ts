// `jobq run NAME [options] -- CMD [ARGS...]`
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import type { RunSpec } from '../backend/backend.js';
import { callerCwd } from '../config/config.js';
import { parseEnvPairs } from '../domain/env.js';
import { EXIT, JobqError } from '../domain/errors.js';
import { type JobRecord, validateQueue } from '../domain/job.js';
import { formatSize, parseDuration, parseSignal, parseSize } from '../domain/units.js';
import { jobJson } from '../output/json.js';
import { context, printJson } from './context.js';

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
}

/** Checks that the command came after `--` and after NAME. */
function requireDoubleDash(raw: string[], name: string): void {
  const ri = raw.indexOf('run');
  const dd = raw.indexOf('--', ri + 1);
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
  const memLimitBytes = o.memLimit ? parseSize(o.memLimit, '--mem-limit') : undefined;
  if (memLimitBytes && memLimitBytes > os.totalmem()) {
    throw new JobqError('USAGE', `--mem-limit ${o.memLimit} is more than this machine's memory (${formatSize(os.totalmem())})`);
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
    isolationMode: o.isolation ?? config.isolation,
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
    ...queueOf(o, config),
  };
}

export default async function run(name: string, argv: string[], o: RunOpts, cmd: Command): Promise<number> {
  requireDoubleDash((cmd.parent as Command & { rawArgs: string[] }).rawArgs.slice(2), name);
  const ctx = context(cmd);
  // commander keeps the separator in the variadic argument.
  const spec = specFrom(name, argv[0] === '--' ? argv.slice(1) : argv, o, ctx.config);
  let rec = await ctx.backend.run(spec);
  if (o.waitStart && rec.state.status === 'queued') rec = await waitStarted(ctx.backend, rec.id);
  const s = rec.state;
  for (const w of rec.protection.warnings) process.stderr.write(`jobq: warning: ${w}\n`);
  if (o.json) printJson(jobJson({ rec, state: s, supervisorAlive: s.status === 'running' }));
  if (s.status === 'failed-to-start') {
    process.stderr.write(`jobq: ${rec.id} failed to start: ${s.error}\n`);
    return EXIT.failedToStart;
  }
  if (o.json) return EXIT.ok;
  if (o.quiet) {
    process.stdout.write(rec.id + '\n');
    return EXIT.ok;
  }
  const c = ctx.chalk;
  if (s.status === 'queued' || !rec.job) {
    const [v] = await ctx.backend.withWaits([rec.id]);
    const w = v?.waiting;
    process.stdout.write(
      `${c.cyan('queued')} ${c.bold(rec.id)}  queue ${rec.queue}  position ${w?.position ?? '?'}${w?.reason ? ` (${w.reason})` : ''}\nlog: ${rec.log}\n`,
    );
    return EXIT.ok;
  }
  const j = rec.job;
  process.stdout.write(`${c.green('started')} ${c.bold(rec.id)}  pid ${j.pid}  pgid ${j.pgid}  isolation ${rec.protection.isolation}\nlog: ${rec.log}\n`);
  if (s.status !== 'running') process.stdout.write(`(already ${s.status})\n`);
  return EXIT.ok;
}

/** Polls a queued job's record until it has started (or ended without starting). */
async function waitStarted(backend: ReturnType<typeof context>['backend'], id: string): Promise<JobRecord> {
  for (;;) {
    const v = await backend.view(id);
    if (v.state.status !== 'queued' && v.state.status !== 'starting') return v.rec;
    await new Promise((r) => setTimeout(r, 100));
  }
}
