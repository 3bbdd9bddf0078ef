import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { EXIT, JobqError } from '../domain/errors.js';
import { followFile, printLastLines } from '../output/follow.js';
import { levelName } from '../store/events.js';
import { context } from './context.js';
import type { CommandDef } from './definition.js';

/** One event line for people: time, level, message, then the other fields. */
function pretty(line: string): string {
  try {
    const { level, time, msg, pid: _p, hostname: _h, ...rest } = JSON.parse(line) as Record<string, unknown>;
    const extra = Object.entries(rest)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    return `${new Date(time as number).toISOString()} ${levelName(level as number).padEnd(5)} ${msg} ${extra}`.trimEnd();
  } catch {
    return line;
  }
}

export default async function events(o: { follow?: boolean; lines: string; json?: boolean }, cmd: Command): Promise<number> {
  const { backend } = context(cmd, { reads: true });
  const file = backend.eventsFile();
  let partial = '';
  const out = o.json
    ? process.stdout
    : new Writable({
        write(chunk: Buffer, _enc, cb) {
          const lines = (partial + chunk.toString('utf8')).split('\n');
          partial = lines.pop()!;
          for (const l of lines) if (l) process.stdout.write(pretty(l) + '\n');
          cb();
        },
      });
  const n = Number(o.lines);
  if (!/^\d+$/.test(o.lines) || !Number.isSafeInteger(n)) throw new JobqError('USAGE', `invalid --lines '${o.lines}': a whole number`);
  const offset = printLastLines(file, n, out);
  if (o.follow) await followFile(file, offset, out, async () => false);
  return EXIT.ok;
}

export const command: CommandDef = {
  name: 'events',
  summary: "read jobq's own event log (started, signalled, escalated, recorded, reconciled)",
  options: [
    { flags: '-f, --follow', description: 'keep printing new events' },
    { flags: '-n, --lines <n>', description: 'how many recent events', default: '50' },
    { flags: '--json', description: 'raw JSON lines' },
  ],
  afterHelp: '\nExamples:\n  jobq events\n  jobq events -f --json',
  load: () => import('./events.js'),
};
