// `jobq resume JOB...`: continue paused jobs.
import type { Command } from 'commander';
import { pauseOrResume } from './pause.js';

export default function resume(refs: string[], o: { json?: boolean }, cmd: Command): Promise<number> {
  return pauseOrResume('resume', refs, o, cmd);
}
