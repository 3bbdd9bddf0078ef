// `jobq resume JOB...`: continue paused jobs.
import type { Command } from 'commander';
import type { CommandDef } from './definition.js';
import { pauseOrResume } from './pause.js';

export default function resume(refs: string[], o: { json?: boolean }, cmd: Command): Promise<number> {
  return pauseOrResume('resume', refs, o, cmd);
}

export const command: CommandDef = {
  name: 'resume',
  summary: 'continue a paused job',
  arguments: [{ name: '<jobs...>', description: 'NAMEs, IDs or numbers' }],
  options: [{ flags: '--json', description: 'print JSON' }],
  afterHelp: '\nExamples:\n  jobq resume train',
  load: () => import('./resume.js'),
};
