import type { Command } from 'commander';
import type { RunSpec } from '../backend/backend.js';
import { BACKENDS, PLACES } from '../backend/places.js';
import { type RunOpts, specFrom } from '../backend/spec.js';
import { EXIT, JobqError } from '../domain/errors.js';
import { ISOLATION_MODES, type JobRecord, JSON_SCHEMA } from '../domain/job.js';
import { sleep } from '../domain/units.js';
import { jobJson } from '../output/json.js';
import { lightEvents } from '../store/events.js';
import { context, out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

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

export default async function run(name: string, argv: string[], o: RunOpts, cmd: Command): Promise<number> {
  requireDoubleDash((cmd.parent as Command & { rawArgs: string[] }).rawArgs.slice(2), name);
  // `--cwd -- cmd`: the option took the separator as its value.
  const swallowed = Object.entries(o).find(([, v]) => v === '--' || (Array.isArray(v) && v.includes('--')));
  if (swallowed) {
    const flag = swallowed[0].replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    throw new JobqError('USAGE', `--${flag} needs a value before the '--' that starts the command`);
  }
  // A queued submission's line is written as pino writes it, without loading pino (~15 ms of each submission).
  lightEvents(true);
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
  // The job's number, for the commands that take a JOB (jobq tail 42).
  const num = rec.seq !== undefined ? `  #${rec.seq}` : '';
  const pl = rec.placement;
  if (pl) {
    out(`${c.green('submitted')} ${c.bold(rec.id)}${num}  ${rec.backend} job ${pl.id}${pl.cluster ? ` on ${pl.cluster}` : ''}\nlog: ${rec.log}\n`);
    return EXIT.ok;
  }
  if (s.status === 'queued' || !rec.job) {
    const [v] = await ctx.backend.withWaits([rec.id]);
    const w = v?.waiting;
    const where = rec.queue ? `  queue ${rec.queue}  position ${w?.position ?? '?'}` : '';
    out(`${c.cyan('queued')} ${c.bold(rec.id)}${num}${where}${w?.reason ? `  waiting: ${w.reason}` : ''}\nlog: ${rec.log}\n`);
    return EXIT.ok;
  }
  const j = rec.job;
  out(`${c.green('started')} ${c.bold(rec.id)}${num}  pid ${j.pid}  pgid ${j.pgid}  isolation ${rec.protection.isolation}\nlog: ${rec.log}\n`);
  if (s.status !== 'running') out(`(already ${s.status})\n`);
  return EXIT.ok;
}

/** An array: one line per element (-q: the ids), or the records as JSON. */
async function runArray(ctx: ReturnType<typeof context>, spec: RunSpec, o: RunOpts): Promise<number> {
  const recs = await ctx.backend.runArray(spec);
  if (o.json) printJson({ schema: JSON_SCHEMA, jobs: recs.map((rec) => jobJson({ rec, state: rec.state, supervisorAlive: false })) });
  else if (o.quiet) out(recs.map((r) => r.id).join('\n') + '\n');
  else {
    const cap = spec.array?.cap ? `, at most ${spec.array.cap} at once` : '';
    const nums = recs[0]?.seq !== undefined ? ` (#${recs[0].seq}…#${recs.at(-1)!.seq})` : '';
    out(`array ${spec.name}: ${recs.length} jobs ${spec.name}.1…${spec.name}.${recs.length}${nums}${cap}${spec.queue ? ` in queue ${spec.queue}` : ''}\n`);
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
    { flags: '--mem-high <size>', description: 'soft limit: above it the kernel throttles and reclaims, never kills (cgroup v2), e.g. 6G' },
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
    { flags: '--gpu-mem <size>', description: 'VRAM to reserve on each GPU (default --gpus 1): jobs share a GPU while reservations fit' },
    { flags: '--gpu-mem-enforce', description: 'end the job (oom, gpu-mem) once its processes hold more GPU memory than --gpu-mem' },
    { flags: '--backend <where>', description: BACKENDS.map((b) => `${b} (${PLACES[b]!.help})`).join(' or ') },
    { flags: '--slurm-opt <opt>', description: 'an extra sbatch option, e.g. --partition=gpu (repeatable)', repeatable: true },
    { flags: '--retry <n>', description: 'run it again up to N more times after a failure (JOBQ_ATTEMPT=1, 2, … in the job)' },
    { flags: '--retry-on <ends>', description: 'which ends are retried: exit,signal,oom,timeout,lost (default: all; a cancel never)' },
    { flags: '--retry-delay <duration>', description: 'wait before the next attempt, doubled each time (default 0s)' },
    { flags: '--mem-grow <factor>', description: 'with --retry-on oom: each attempt after an OOM gets --mem-limit × FACTOR, e.g. 1.5x' },
    { flags: '--joblog <file>', description: "append each end to FILE in GNU parallel's --joblog format (an array has one in the state dir anyway)" },
    { flags: '--owner <label>', description: "who asks, to find its jobs later (status/cancel --owner), e.g. an agent's session id; default $JOBQ_OWNER" },
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
  jobq run sweep --array 1-64%16 --gpu-mem 20G -- python train.py --seed {}   # 4 per 80G GPU
  jobq run etl --mem-high 6G --mem-limit 8G -- ./etl.sh   # slowed above 6G, killed only past 8G
  jobq run fetch --retry 3 --retry-delay 10s -- ./download.sh   # flaky: up to 4 attempts, 10s, 20s, 40s apart
  jobq run train --mem-limit 8G --retry 2 --retry-on oom --mem-grow 1.5x -- python train.py
  jobq run train --owner agent-7f3 -- python train.py   # jobq status --owner agent-7f3 finds it
  jobq run train --backend slurm --gpus 1 --timeout 6h --slurm-opt=--partition=gpu -- python train.py

A NAME names one live job: run refuses a NAME that is queued, starting, running or paused (exit 1) unless
--replace or --allow-duplicate says what to do.

The job gets BG_JOB=1, JOBQ_JOB_ID, JOBQ_JOB_NAME, JOBQ_LOG and PYTHONUNBUFFERED=1 (unless set).
A command that cannot start exits 127 at once, and its record says why.
The job's supervisor starts beside run (bin/jobq); JOBQ_STANDBY=0 jobq run ... starts it after run instead.`,
  load: () => import('./run.js'),
};
