// `jobq edit JOB [--priority N] [--cwd DIR] [-- CMD ARGS...]`: change a queued job where it waits (pueue edit, scontrol update).
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { EXIT, JobqError } from '../domain/errors.js';
import type { JobPatch } from '../domain/job.js';
import { shellWords } from '../output/format.js';
import { jobJson } from '../output/json.js';
import { context, out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

const USAGE = 'jobq edit JOB [--priority N] [--cwd DIR] [-- CMD [ARGS...]]';

export default async function edit(ref: string, argv: string[], o: { priority?: string; cwd?: string; json?: boolean }, cmd: Command): Promise<number> {
  // commander keeps the separator in the variadic argument.
  const command = argv[0] === '--' ? argv.slice(1) : argv;
  const patch: JobPatch = {};
  if (o.priority !== undefined) {
    const priority = Number(o.priority);
    if (!/^-?\d+$/.test(o.priority) || !Number.isSafeInteger(priority))
      throw new JobqError('USAGE', `invalid --priority '${o.priority}': a whole number (higher starts first)`);
    patch.priority = priority;
  }
  if (command.length) {
    if (!command[0]) throw new JobqError('USAGE', "empty command: the first word after '--' is ''");
    patch.argv = command;
  }
  if (o.cwd !== undefined) patch.cwd = directory(o.cwd);
  if (!Object.keys(patch).length) throw new JobqError('USAGE', `nothing to change: ${USAGE}`);
  const { backend } = context(cmd);
  const v = await backend.edit(ref, patch);
  if (o.json) {
    printJson(jobJson(v));
    return EXIT.ok;
  }
  const what = [
    patch.priority !== undefined ? `priority ${patch.priority}` : '',
    patch.argv ? `command ${shellWords(patch.argv)}` : '',
    patch.cwd ? `cwd ${patch.cwd}` : '',
  ].filter(Boolean);
  if (v.state.status === 'queued') {
    const where = v.rec.queue !== undefined ? `, queue ${v.rec.queue} position ${v.waiting?.position ?? '?'}` : '';
    out(`${v.rec.id}: ${what.join(', ')}${where}${v.waiting?.reason ? ` (${v.waiting.reason})` : ''}\n`);
  } else out(`${v.rec.id}: ${what.join(', ')}; it is ${v.state.status} now\n`);
  return EXIT.ok;
}

/** DIR as an absolute path, from where jobq was called; it must be a directory now (the job starts there later). */
function directory(dir: string): string {
  let abs: string;
  try {
    abs = path.resolve(process.cwd(), dir);
  } catch {
    throw new JobqError('USAGE', 'the current directory no longer exists: give --cwd as an absolute path');
  }
  let isDir = false;
  try {
    isDir = fs.statSync(abs).isDirectory();
  } catch {
    /* missing: refused below */
  }
  if (!isDir) throw new JobqError('USAGE', `invalid --cwd '${dir}': ${abs} is not a directory`);
  return abs;
}

export const command: CommandDef = {
  name: 'edit',
  summary: "change a queued job's command, cwd or priority where it waits (pueue edit, scontrol update)",
  description: 'Change a job that is still queued. A job that started or ended is refused (exit 1): cancel it and run the new command instead.',
  arguments: [
    { name: '<job>', description: 'NAME (its latest job), ID or number of a queued job' },
    { name: '[command...]', description: 'the new command, after --' },
  ],
  options: [
    { flags: '-p, --priority <n>', description: 'the new priority (higher starts first; a job in a queue)' },
    { flags: '--cwd <dir>', description: 'the new working directory' },
    { flags: '--json', description: 'print JSON' },
  ],
  afterHelp: `
Examples:
  jobq edit eval --priority 10              # let it jump the queue
  jobq edit sweep.7 --priority -1           # last
  jobq edit 42 -- python train.py --lr 1e-4 # job number 42 runs this instead
  jobq edit eval --cwd ~/exp2 -- ./eval.sh  # another command, from another directory`,
  load: () => import('./edit.js'),
};
