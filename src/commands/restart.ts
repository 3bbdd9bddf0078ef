import type { Command } from 'commander';
import { EXIT } from '../domain/errors.js';
import { jobJson } from '../output/json.js';
import { context, out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

export default async function restart(ref: string, o: { json?: boolean; keep?: boolean }, cmd: Command): Promise<number> {
  const ctx = context(cmd);
  const warn = (line: string) => process.stderr.write(`jobq: ${line}\n`);
  const { old, rec } = await ctx.backend.restart(ref, { keep: o.keep, callerEnv: process.env, warn });
  if (o.json) printJson(jobJson({ rec, state: rec.state, supervisorAlive: true }));
  if (rec.state.status === 'failed-to-start') {
    process.stderr.write(`jobq: ${rec.id} failed to start: ${rec.state.error}\n`);
    return EXIT.failedToStart;
  }
  if (!o.json) out(`restarted ${old.id} as ${rec.id}${rec.seq !== undefined ? `  #${rec.seq}` : ''}  pid ${rec.job?.pid}\nlog: ${rec.log}\n`);
  return EXIT.ok;
}

export const command: CommandDef = {
  name: 'restart',
  summary: "start a job's argv, cwd and jobq-added env again, as a new job (stopping the live one first)",
  arguments: [{ name: '<job>', description: 'NAME, ID or number' }],
  options: [
    { flags: '--keep', description: 'leave a live job of that name running and start a second copy beside it' },
    { flags: '--json', description: 'print the new record as JSON' },
  ],
  afterHelp:
    '\nExamples:\n  jobq restart train          # cancels a running train first, as pm2/systemd do\n  jobq restart train --keep   # a second copy beside it',
  load: () => import('./restart.js'),
};
