// `jobq tail JOB [-n N] [-f]`
import fs from 'node:fs';
import type { Command } from 'commander';
import { EXIT, JobqError } from '../domain/errors.js';
import { exitCodeOf, isFinal } from '../domain/job.js';
import { followFile, printLastLines } from '../output/follow.js';
import { context, unansweredWatch } from './context.js';

export default async function tail(ref: string, o: { lines: string; follow?: boolean; raw?: boolean }, cmd: Command): Promise<number> {
  const n = Number(o.lines);
  if (!/^\d+$/.test(o.lines) || !Number.isSafeInteger(n)) throw new JobqError('USAGE', `invalid --lines '${o.lines}': a whole number`);
  const { backend } = context(cmd);
  const id = backend.resolve(ref);
  let v = await backend.view(id);
  const log = v.rec.log;
  if (!fs.existsSync(log)) throw new JobqError('NOT_FOUND', `log of ${id} is gone: ${log}`);
  // What a terminal would show (\r updates collapsed) unless --raw; -f then streams the raw bytes live.
  const offset = printLastLines(log, n, process.stdout, !!o.raw);
  if (!o.follow) return EXIT.ok;
  // Ctrl-C stops following only: the job runs in its own session and never sees this terminal's signals.
  const unanswered = unansweredWatch();
  await followFile(log, offset, process.stdout, async () => {
    v = await backend.view(id);
    unanswered(v);
    return isFinal(v.state);
  });
  return exitCodeOf(v.state);
}
