// `jobq rm JOB...`: remove finished jobs (their record and their log in the state dir); a live one is refused.
import type { Command } from 'commander';
import { EXIT } from '../domain/errors.js';
import { JSON_SCHEMA } from '../domain/job.js';
import { context, out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

export default async function rm(refs: string[], o: { json?: boolean }, cmd: Command): Promise<number> {
  const { backend } = context(cmd);
  const ids = [...new Set(refs.map((r) => backend.resolve(r)))];
  const removed: Array<{ id: string; status: string; log?: string }> = [];
  let code: number = EXIT.ok;
  for (const id of ids) {
    try {
      removed.push(await backend.remove(id));
    } catch (e) {
      process.stderr.write(`jobq: ${(e as Error).message}\n`);
      code = EXIT.failure;
    }
  }
  if (o.json) printJson({ schema: JSON_SCHEMA, removed });
  else for (const r of removed) out(`removed ${r.id} (${r.status})${r.log ? ` — its log ${r.log} is outside the state dir and stays` : ''}\n`);
  return code;
}

export const command: CommandDef = {
  name: 'rm',
  summary: 'remove finished jobs (record and log); a running one is refused',
  arguments: [{ name: '<jobs...>', description: 'NAMEs (their latest job), IDs or numbers' }],
  options: [{ flags: '--json', description: 'print JSON' }],
  afterHelp: '\nExamples:\n  jobq rm train_20261124_101500\n  jobq rm etl',
  load: () => import('./rm.js'),
};
