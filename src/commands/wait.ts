// `jobq wait JOB... [--timeout DURATION]`
import type { Command } from 'commander';
import type { JobView } from '../backend/backend.js';
import { EXIT, JobqError } from '../domain/errors.js';
import { exitCodeOf, JSON_SCHEMA, parseId } from '../domain/job.js';
import { formatDuration, parseDuration } from '../domain/units.js';
import { lastLine } from '../output/follow.js';
import { elapsedMs, stateLabel } from '../output/format.js';
import { jobJson } from '../output/json.js';
import { context, printJson, unansweredWatch } from './context.js';
import type { CommandDef } from './definition.js';

export default async function wait(refs: string[], o: { timeout?: string; json?: boolean; all?: boolean }, cmd: Command): Promise<number> {
  const { backend } = context(cmd, { reads: true });
  if (o.all && refs.length) throw new JobqError('USAGE', 'give job names or --all, not both');
  if (!o.all && !refs.length) throw new JobqError('USAGE', 'which job? jobq wait NAME|ID... (or --all)');
  // An array's name means all its elements, in index order; --all, every job live now, oldest first.
  const { ids, arrays } = o.all
    ? { ids: backend.liveIds().sort((a, b) => (parseId(a)!.sortKey < parseId(b)!.sortKey ? -1 : 1)), arrays: 0 }
    : backend.expand(refs);
  if (o.all && !ids.length && !o.json) process.stderr.write('jobq: no live jobs\n');
  const deadline = o.timeout ? Date.now() + parseDuration(o.timeout, '--timeout') : Infinity;
  const tty = process.stderr.isTTY && !o.json;
  // On a TTY, one status line: elapsed time and the job's last output line.
  const tick = tty
    ? (v: JobView) => {
        const e = elapsedMs(v);
        const line = `${v.rec.id} ${stateLabel(v)} ${e === undefined ? '' : formatDuration(e)}  ${lastLine(v.rec.log)}`;
        process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns || 80) - 1)}`);
      }
    : undefined;
  const done: JobView[] = [];
  const unanswered = unansweredWatch();
  for (const id of ids) {
    const v = await backend.waitFinal(id, deadline, (v) => {
      unanswered(v);
      tick?.(v);
    });
    if (tty) process.stderr.write('\r\x1b[2K');
    if (!v) {
      process.stderr.write(`jobq: timed out waiting for ${id}\n`);
      return EXIT.timeout;
    }
    done.push(v);
    // One line per job named; an array's elements only when they did not succeed.
    if (!o.json && ids.length > 1 && (!arrays || v.state.status !== 'succeeded')) process.stderr.write(`${id}: ${stateLabel(v)}\n`);
    // A job that never ran (or whose end is unknown) has no exit code of its own to explain itself: say why.
    const s = v.state;
    const why = s.status === 'skipped' ? s.reason : s.status === 'failed-to-start' ? s.error : s.status === 'lost' ? s.reason : undefined;
    if (!o.json && ids.length === 1 && why) process.stderr.write(`jobq: ${id} ${s.status}: ${why}\n`);
  }
  if (o.json) printJson({ schema: JSON_SCHEMA, jobs: done.map(jobJson) });
  const failed = done.find((v) => exitCodeOf(v.state) !== 0);
  return failed ? exitCodeOf(failed.state) : EXIT.ok;
}

export const command: CommandDef = {
  name: 'wait',
  summary: "block until jobs end; exit with the job's code",
  arguments: [{ name: '[jobs...]', description: 'NAMEs, IDs, numbers or array names' }],
  options: [
    { flags: '-a, --all', description: 'every job live now (running, paused, queued)' },
    { flags: '-t, --timeout <duration>', description: 'give up after this long (exit 124)' },
    { flags: '--json', description: 'print the final records as JSON' },
  ],
  afterHelp:
    '\nExamples:\n  jobq wait train && make eval\n  jobq wait --timeout 2h train etl\n  jobq wait --all                 # everything live now, e.g. before a reboot\nA Slurm job whose controller stops answering: one line says so; exit 1 after JOBQ_REMOTE_TIMEOUT (default 5m).',
  load: () => import('./wait.js'),
};
