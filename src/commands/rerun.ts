// `jobq rerun --failed|--unfinished ARRAY|QUEUE [--dry-run] [--json]`
import type { Command } from 'commander';
import { EXIT, JobqError } from '../domain/errors.js';
import { JSON_SCHEMA } from '../domain/job.js';
import { stateLabel } from '../output/format.js';
import { context, out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

export default async function rerun(
  ref: string,
  o: { failed?: boolean; unfinished?: boolean; dryRun?: boolean; json?: boolean },
  cmd: Command,
): Promise<number> {
  if (!!o.failed === !!o.unfinished) throw new JobqError('USAGE', 'which ones? jobq rerun --failed ARRAY (or --unfinished)');
  const ctx = context(cmd);
  const warn = (line: string) => process.stderr.write(`jobq: ${line}\n`);
  const done = await ctx.backend.rerun(ref, o.failed ? 'failed' : 'unfinished', { callerEnv: process.env, warn, dryRun: o.dryRun });
  if (o.json) {
    printJson({
      schema: JSON_SCHEMA,
      dryRun: !!o.dryRun,
      jobs: done.map(({ old, rec, skipped }) => ({ old: old.id, ...(rec ? { id: rec.id, seq: rec.seq } : {}), ...(skipped ? { skipped } : {}) })),
    });
    return done.some((d) => d.skipped) ? EXIT.failure : EXIT.ok;
  }
  const word = o.failed ? 'failed' : 'unfinished';
  if (!done.length) out(`nothing ${word} in ${ref}\n`);
  for (const { old, rec, skipped } of done) {
    const was = stateLabel({ rec: old, state: old.state, supervisorAlive: false });
    if (skipped) process.stderr.write(`jobq: ${old.name}: not run again: ${skipped}\n`);
    else out(rec ? `${old.name}: ${was} -> ${rec.id}${rec.seq !== undefined ? `  #${rec.seq}` : ''}\n` : `${old.name}: ${was} (would run again)\n`);
  }
  const started = done.flatMap((d) => (d.rec ? [d.rec] : []));
  // An array is waited for by its name; a queue's jobs by their new numbers (a queue is no job).
  const waitFor = ctx.backend.arrayIds(ref).length ? ref : started.map((r) => String(r.seq ?? r.id)).join(' ');
  if (started.length) out(`${started.length} job${started.length === 1 ? '' : 's'} run again; jobq wait ${waitFor}\n`);
  return done.some((d) => d.skipped) ? EXIT.failure : EXIT.ok;
}

export const command: CommandDef = {
  name: 'rerun',
  summary: 'run again the jobs of an array (by index) or a queue (by NAME) that failed, or did not succeed',
  arguments: [{ name: '<array_or_queue>', description: 'an array NAME (its elements by index) or a queue (the latest job of each NAME in it)' }],
  options: [
    { flags: '--failed', description: 'those that failed: failed, killed, oom, timeout, lost, failed-to-start' },
    { flags: '--unfinished', description: 'every ended one that did not succeed (cancelled and skipped too)' },
    { flags: '-n, --dry-run', description: 'only say which would run again' },
    { flags: '--json', description: 'print JSON' },
  ],
  afterHelp: `
Examples:
  jobq rerun --failed sweep          # sweep.3 and sweep.17 failed: each runs again as sweep.3, sweep.17
  jobq rerun --unfinished sweep -n   # which would run again (cancelled and skipped elements too)
  jobq rerun --failed heavy          # the latest job of each NAME in queue heavy that failed

Each job runs again with its own command, cwd, env, limits, queue and --retry, as jobq restart does; an array's
element keeps its index, value and the array's %cap, so jobq status ARRAY and jobq wait ARRAY see the new one.`,
  load: () => import('./rerun.js'),
};
