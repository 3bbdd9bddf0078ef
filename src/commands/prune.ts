// `jobq prune [JOB...] [--older-than D] [--keep N] [--state S] [--all] [--dry-run]`: remove finished jobs and their logs.
import type { Command } from 'commander';
import { EXIT, JobqError } from '../domain/errors.js';
import { FINAL_STATUSES, isValidName, JSON_SCHEMA, parseId, parseSeqRef } from '../domain/job.js';
import { type PruneSelector, selectForPrune, selects } from '../domain/prune.js';
import { parseDuration } from '../domain/units.js';
import { context, out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

interface PruneOpts {
  olderThan?: string;
  keep?: string;
  state?: string[];
  all?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

export default async function prune(refs: string[], o: PruneOpts, cmd: Command): Promise<number> {
  const { backend } = context(cmd);
  const keep = o.keep === undefined ? undefined : Number(o.keep);
  if (keep !== undefined && (!/^\d+$/.test(o.keep!) || !Number.isSafeInteger(keep))) throw new JobqError('USAGE', `invalid --keep '${o.keep}': a whole number`);
  for (const r of refs)
    if (!isValidName(r) && parseSeqRef(r) === undefined) throw new JobqError('BAD_NAME', `invalid job name or id ${JSON.stringify(r).slice(0, 80)}`);
  // Each JOB names something, as for every other command: an id, a NAME, or an array (all its elements); a typo
  // gets the same "did you mean" and exit 1 instead of "0 jobs removed".
  const ids: string[] = [];
  const names: string[] = [];
  for (const r of refs) {
    const elements = parseId(r) ? [] : backend.arrayIds(r);
    if (elements.length) ids.push(...elements);
    else {
      const id = backend.resolve(r);
      // A NAME selects every job of it; an id or a number, that one job.
      if (parseId(id)!.name === r) names.push(r);
      else ids.push(id);
    }
  }
  // A state that no job can have would select nothing and say '0 removed': a typo must not look like it worked.
  const known = [...FINAL_STATUSES, 'half-made', 'unreadable'];
  const badState = o.state?.find((s) => !known.includes(s as never));
  if (badState) throw new JobqError('USAGE', `invalid --state '${badState}': one of ${known.join(', ')}`);
  const sel: PruneSelector = {
    olderThanMs: o.olderThan ? parseDuration(o.olderThan, '--older-than') : undefined,
    keep,
    states: o.state,
    all: o.all,
    refs: refs.length ? { ids, names } : undefined,
  };
  // Nothing selected: show what would go and how to really prune; never delete on a bare `prune`.
  const dry = o.dryRun || !selects(sel);
  const chosen = selectForPrune(await backend.pruneEntries(), selects(sel) ? sel : { all: true }, Date.now());
  const removed: Array<{ id: string; status: string; log?: string }> = dry
    ? chosen.map((e) => ({ id: e.id, status: e.status }))
    : await backend.removeAll(chosen.map((e) => e.id));
  if (o.json) printJson({ schema: JSON_SCHEMA, dryRun: dry, removed });
  else {
    for (const r of removed)
      out(`${dry ? 'would remove' : 'removed'} ${r.id} (${r.status})${r.log ? ` — its log ${r.log} is outside the state dir and stays` : ''}\n`);
    out(`${removed.length} job${removed.length === 1 ? '' : 's'} ${dry ? 'would be removed' : 'removed'}\n`);
    if (!selects(sel) && removed.length) out('nothing removed: say which, e.g. jobq prune --older-than 7d, --keep 3, --state failed, a NAME, or --all\n');
  }
  return EXIT.ok;
}

export const command: CommandDef = {
  name: 'prune',
  summary: 'remove finished jobs and their logs (bare: only shows what it would remove)',
  arguments: [{ name: '[jobs...]', description: 'only jobs of these NAMEs, IDs or numbers' }],
  options: [
    { flags: '--older-than <duration>', description: 'only jobs that ended longer ago than this, e.g. 7d' },
    { flags: '--keep <n>', description: 'keep the newest N finished jobs of each name' },
    { flags: '--state <state>', description: 'only jobs that ended so: failed, cancelled, lost, half-made... (repeatable)', repeatable: true },
    { flags: '--all', description: 'every finished job' },
    { flags: '--dry-run', description: 'list what would go, remove nothing' },
    { flags: '--json', description: 'print JSON' },
  ],
  afterHelp: `
Without a selector (--older-than, --keep, --state, --all or a JOB) prune removes nothing and shows what it would.
Running and queued jobs are never removed; nor is a record this jobq cannot read (a newer jobq may own it).

Examples:
  jobq prune                          # show what a prune of everything finished would remove
  jobq prune --older-than 7d
  jobq prune --keep 3 --dry-run
  jobq prune --state failed --state lost
  jobq prune train                    # the finished jobs named train`,
  load: () => import('./prune.js'),
};
