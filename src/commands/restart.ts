import type { Command } from 'commander';
import type { RunSpec } from '../backend/backend.js';
import { EXIT, JobqError } from '../domain/errors.js';
import { isRedacted } from '../domain/job.js';
import { jobJson } from '../output/json.js';
import { context, out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

const JOBQ_OWN = new Set(['BG_JOB', 'JOBQ_JOB_ID', 'JOBQ_JOB_NAME', 'JOBQ_LOG']);

export default async function restart(ref: string, o: { json?: boolean; keep?: boolean }, cmd: Command): Promise<number> {
  const ctx = context(cmd);
  const b = ctx.backend;
  const elements = b.arrayIds(ref);
  if (elements.length) {
    // Each element is a job of its own: restarting all of them at once would be a new array, which run --array makes.
    const last = elements.at(-1)!.replace(/_\d{8}_\d{6}$/, '');
    throw new JobqError('USAGE', `${ref} is an array of ${elements.length} jobs: restart one element (jobq restart ${last}), or run the array again`);
  }
  const old = (await b.get(ref)).rec;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(old.env.added)) {
    if (JOBQ_OWN.has(k)) continue;
    if (isRedacted(v)) {
      // Secret values were never written down: take them from the caller's environment, if there.
      if (process.env[k] !== undefined) env[k] = process.env[k]!;
      else process.stderr.write(`jobq: warning: ${k} was redacted in ${old.id} and is not set here; the new job runs without it\n`);
      continue;
    }
    env[k] = v;
  }
  const p = old.protection;
  const spec: RunSpec = {
    name: old.name,
    argv: old.argv,
    cwd: old.cwd,
    callerEnv: process.env,
    presets: old.env.presets.filter((n) => n in ctx.config.presets),
    presetTable: ctx.config.presets,
    env,
    // Guard variables were set in env.added at the first run: they come back with it.
    guardVars: [],
    log: b.logIsOwn(old) ? undefined : old.log,
    isolationMode: p.isolationMode,
    memLimitBytes: p.memLimitBytes,
    oomScoreAdj: p.oomScoreAdj?.requested ?? 0,
    timeoutMs: p.timeoutMs,
    idleTimeoutMs: p.idleTimeoutMs,
    warnSignal: p.warnSignal,
    graceMs: p.graceMs,
    stopSignal: p.stopSignal,
    maxLogBytes: old.maxLogBytes,
    onExit: old.onExit,
    sampleMs: old.sampleMs,
    // Where and how it was admitted: a Slurm job restarts on the cluster, a queued one in its queue. Its
    // dependencies were met (or not) for the first run; a restart is asked for now.
    ...(old.queue !== undefined ? { queue: old.queue, priority: old.priority ?? 0 } : {}),
    ...(old.admission?.memBytes ? { memBytes: old.admission.memBytes } : {}),
    ...(old.admission?.gpus ? { gpus: old.admission.gpus } : {}),
    // The machine as this command sees it, else the GPU list the first run was given.
    machine: {
      memReserveBytes: ctx.config.memReserveBytes,
      ...(ctx.config.gpus !== undefined ? { gpus: ctx.config.gpus } : old.admission?.gpuList ? { gpus: old.admission.gpuList.join(',') } : {}),
    },
    ...(old.backend ? { backend: old.backend, slurmOptions: old.slurm?.options ?? [] } : {}),
    // pm2 / systemd semantics: a live job of that name is stopped first, unless --keep starts a second copy.
    onLive: o.keep ? 'allow' : 'replace',
    onReplaced: (id, outcome) => process.stderr.write(`jobq: stopped ${id} first (${outcome})\n`),
  };
  const rec = await b.run(spec);
  if (o.json) printJson(jobJson({ rec, state: rec.state, supervisorAlive: true }));
  if (rec.state.status === 'failed-to-start') {
    process.stderr.write(`jobq: ${rec.id} failed to start: ${rec.state.error}\n`);
    return EXIT.failedToStart;
  }
  if (!o.json) out(`restarted ${old.id} as ${rec.id}  pid ${rec.job?.pid}\nlog: ${rec.log}\n`);
  return EXIT.ok;
}

export const command: CommandDef = {
  name: 'restart',
  summary: "start a job's argv, cwd and jobq-added env again, as a new job (stopping the live one first)",
  arguments: [{ name: '<job>', description: 'NAME or ID' }],
  options: [
    { flags: '--keep', description: 'leave a live job of that name running and start a second copy beside it' },
    { flags: '--json', description: 'print the new record as JSON' },
  ],
  afterHelp:
    '\nExamples:\n  jobq restart train          # cancels a running train first, as pm2/systemd do\n  jobq restart train --keep   # a second copy beside it',
  load: () => import('./restart.js'),
};
