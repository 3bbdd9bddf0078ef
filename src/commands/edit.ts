// `jobq edit JOB --priority N`: change a queued job where it waits (pueue edit, scontrol update).
import type { Command } from 'commander';
import { EXIT, JobqError } from '../domain/errors.js';
import { jobJson } from '../output/json.js';
import { context, out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

export default async function edit(ref: string, o: { priority?: string; json?: boolean }, cmd: Command): Promise<number> {
  if (o.priority === undefined) throw new JobqError('USAGE', 'nothing to change: jobq edit JOB --priority N');
  const priority = Number(o.priority);
  if (!/^-?\d+$/.test(o.priority) || !Number.isSafeInteger(priority))
    throw new JobqError('USAGE', `invalid --priority '${o.priority}': a whole number (higher starts first)`);
  const { backend } = context(cmd);
  const v = await backend.setPriority(ref, priority);
  if (o.json) printJson(jobJson(v));
  else if (v.state.status === 'queued')
    out(`${v.rec.id}: priority ${priority}, queue ${v.rec.queue} position ${v.waiting?.position ?? '?'}${v.waiting?.reason ? ` (${v.waiting.reason})` : ''}\n`);
  else out(`${v.rec.id}: priority ${priority}; it is ${v.state.status} now\n`);
  return EXIT.ok;
}

export const command: CommandDef = {
  name: 'edit',
  summary: "change a queued job's priority where it waits (its place in the queue follows)",
  arguments: [{ name: '<job>', description: 'NAME (its latest job) or ID of a queued job' }],
  options: [
    { flags: '-p, --priority <n>', description: 'the new priority (higher starts first)' },
    { flags: '--json', description: 'print JSON' },
  ],
  afterHelp: '\nExamples:\n  jobq edit eval --priority 10     # let it jump the queue\n  jobq edit sweep.7 --priority -1  # last',
  load: () => import('./edit.js'),
};
