// `jobq pause JOB...` / `jobq resume JOB...`: hold every process of a job (freezer, else SIGSTOP) and let it go on.
import type { Command } from 'commander';
import { EXIT } from '../domain/errors.js';
import { JSON_SCHEMA } from '../domain/job.js';
import { jobJson } from '../output/json.js';
import { context, out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

/** Pauses (or, as `resume`, continues) each job named; a NAME means each of its live jobs. */
export async function pauseOrResume(what: 'pause' | 'resume', refs: string[], o: { json?: boolean }, cmd: Command): Promise<number> {
  const { backend } = context(cmd);
  const ids = (await Promise.all(refs.map((r) => backend.resolveAll(r)))).flat();
  const done = [];
  let code: number = EXIT.ok;
  for (const id of [...new Set(ids)]) {
    try {
      const before = (await backend.view(id)).state.status;
      const v = what === 'pause' ? await backend.pause(id) : await backend.resume(id);
      done.push(v);
      if (o.json) continue;
      if (before === (what === 'pause' ? 'paused' : 'running')) out(`${id} was already ${before}\n`);
      else
        out(
          `${what === 'pause' ? 'paused' : 'resumed'} ${id}${v.state.status === 'paused' ? ` (${v.state.how === 'freezer' ? 'cgroup frozen' : 'SIGSTOP'})` : ''}\n`,
        );
    } catch (e) {
      process.stderr.write(`jobq: ${(e as Error).message}\n`);
      code = EXIT.failure;
    }
  }
  if (o.json) printJson({ schema: JSON_SCHEMA, jobs: done.map(jobJson) });
  return code;
}

export default function pause(refs: string[], o: { json?: boolean }, cmd: Command): Promise<number> {
  return pauseOrResume('pause', refs, o, cmd);
}

export const command: CommandDef = {
  name: 'pause',
  summary: 'stop every process of a running job (cgroup freezer, else SIGSTOP); it keeps its queue slot',
  arguments: [{ name: '<jobs...>', description: 'NAMEs (each live job of that name), IDs or numbers (42, #42)' }],
  options: [{ flags: '--json', description: 'print JSON' }],
  afterHelp:
    '\nExamples:\n  jobq pause train     # while you need the GPU for a moment\n  jobq resume train\nPaused time does not count toward --idle-timeout; cancel of a paused job still runs its TERM handler.',
  load: () => import('./pause.js'),
};
