// `jobq cancel JOB... [--signal SIG] [--grace DURATION] [--all]`
import type { Command } from 'commander';
import { EXIT, JobqError } from '../domain/errors.js';
import { JSON_SCHEMA, validateOwner } from '../domain/job.js';
import { formatDuration, parseDuration, parseSignal } from '../domain/units.js';
import { stateLabel } from '../output/format.js';
import { context, out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

export default async function cancel(
  refs: string[],
  o: { signal?: string; grace?: string; all?: boolean; owner?: string; json?: boolean },
  cmd: Command,
): Promise<number> {
  const ctx = context(cmd);
  // Unless told here, each job gets its own signal and grace (run --signal/--grace, or the config's when it ran).
  const signal = o.signal ? parseSignal(o.signal) : undefined;
  const graceMs = o.grace ? parseDuration(o.grace, '--grace') : undefined;
  if ([o.all, o.owner !== undefined, refs.length > 0].filter(Boolean).length > 1) throw new JobqError('USAGE', 'give job names, --owner or --all: one of them');
  if (!o.all && o.owner === undefined && !refs.length) throw new JobqError('USAGE', 'which job? jobq cancel NAME|ID (or --owner LABEL, --all)');
  const b = ctx.backend;
  // A NAME means every live job of that name; an id means that job; an owner, each of its live jobs.
  const ids = o.all
    ? b.liveIds()
    : o.owner !== undefined
      ? await b.liveOwnedBy(validateOwner(o.owner))
      : (await Promise.all(refs.map((r) => b.resolveAll(r)))).flat();
  const results = await Promise.all([...new Set(ids)].map((id) => b.cancel(id, { signal, graceMs })));
  if (o.json) printJson({ schema: JSON_SCHEMA, results });
  let code: number = EXIT.ok;
  for (const r of results) {
    if (r.outcome === 'not-signalled') {
      code = EXIT.failure;
      process.stderr.write(`jobq: ${r.id}: ${r.detail}\n`);
    } else if (!o.json) {
      const label = stateLabel({ state: r.state, supervisorAlive: false });
      if (r.outcome === 'already-ended') out(r.detail ? `${r.id} was ${r.detail}; it ended: ${label}\n` : `${r.id} had already ended: ${label}\n`);
      else if (r.detail === 'never started') out(`cancelled ${r.id} (it was waiting and never started: nothing to signal)\n`);
      else {
        // The job may have ended on its own in the meantime: say so rather than claim a cancel.
        const how = r.state.status === 'cancelled' ? '' : `; it had ended: ${label}`;
        out(
          `cancelled ${r.id} (${r.signal}${r.escalated ? `, SIGKILL after ${formatDuration(r.graceMs ?? 0)}` : ''}; gone in ${formatDuration(r.elapsedMs)}${how})\n`,
        );
      }
    }
  }
  if ((o.all || o.owner !== undefined) && !results.length && !o.json) out(o.owner !== undefined ? `no live jobs of owner ${o.owner}\n` : 'no live jobs\n');
  return code;
}

export const command: CommandDef = {
  name: 'cancel',
  summary: 'stop a job: SIGTERM to its whole group, SIGKILL after the grace',
  arguments: [{ name: '[jobs...]', description: 'NAMEs (every live job of that name), IDs or numbers (42, #42)' }],
  options: [
    { flags: '-s, --signal <sig>', description: "first signal (default: the job's run --signal, else TERM)" },
    { flags: '-g, --grace <duration>', description: "wait this long before SIGKILL (default: the job's run --grace, else 10s)" },
    { flags: '-a, --all', description: 'cancel every live job (queued and paused ones too)' },
    { flags: '--owner <label>', description: 'cancel every live job run with this --owner' },
    { flags: '--json', description: 'print JSON' },
  ],
  afterHelp:
    '\nExamples:\n  jobq cancel train\n  jobq cancel train --signal INT --grace 30s\n  jobq cancel --all\n  jobq cancel --owner agent-7f3      # every live job that agent started\nA job run with --grace 2m gets 2m here too, unless --grace says otherwise.',
  load: () => import('./cancel.js'),
};
