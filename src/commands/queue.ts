// `jobq queue [Q] [--json]`, `jobq queue set Q --slots N`, `jobq queue pause|resume Q`: queues, their slots and who waits why.
import type { Command } from 'commander';
import { EXIT, JobqError } from '../domain/errors.js';
import { JSON_SCHEMA, validateQueue } from '../domain/job.js';
import { formatDuration } from '../domain/units.js';
import { stdoutIsTTY } from '../output/color.js';
import { elapsedMs, paintState, stateLabel } from '../output/format.js';
import { jobJson } from '../output/json.js';
import { closest } from '../store/store.js';
import { context, out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

const ACTIONS = ['set', 'pause', 'resume'];

export default async function queue(
  first: string | undefined,
  second: string | undefined,
  o: { slots?: string; json?: boolean },
  cmd: Command,
): Promise<number> {
  const ctx = context(cmd);
  const b = ctx.backend;
  const known = () => [...new Set([...b.queueNames(), ...Object.keys(ctx.config.queues)])].sort();
  // A queue exists once a job, `queue set` or config names it: a typo must not look like it worked.
  const unknown = (name: string): { near?: string; all: string[] } | undefined => {
    const all = known();
    return all.includes(name) ? undefined : { near: closest(name, all), all };
  };
  const existing = (name: string) => {
    const u = unknown(name);
    if (!u) return name;
    const also = u.near ? `; did you mean '${u.near}'?` : u.all.length ? ` (queues: ${u.all.join(', ')})` : '';
    throw new JobqError('NOT_FOUND', `no queue named '${name}'${also} — jobq queue set ${name} --slots N makes one`);
  };
  if (first && ACTIONS.includes(first)) {
    if (!second) throw new JobqError('USAGE', `which queue? jobq queue ${first} QUEUE`);
    const name = validateQueue(second);
    let patch: { slots?: number; paused?: boolean };
    if (first === 'set') {
      const slots = Number(o.slots);
      if (o.slots === undefined) throw new JobqError('USAGE', `missing --slots: jobq queue set ${name} --slots N`);
      if (!/^\d+$/.test(o.slots) || slots < 1) throw new JobqError('USAGE', `invalid --slots '${o.slots}': a whole number, 1 or more`);
      patch = { slots };
    } else {
      // Holding a queue before its first job is fine; a typo must still show.
      const u = unknown(name);
      if (u) process.stderr.write(`jobq: note: queue '${name}' is new (no job, config or queue set named it)${u.near ? `; did you mean '${u.near}'?` : ''}\n`);
      patch = { paused: first === 'pause' };
    }
    const s = await b.updateQueue(name, patch);
    if (o.json) printJson({ schema: JSON_SCHEMA, queue: name, slots: s.slots, paused: s.paused });
    else out(`queue ${name}: ${s.slots} slot${s.slots === 1 ? '' : 's'}${s.paused ? ', paused (running jobs go on; none start)' : ''}\n`);
    return EXIT.ok;
  }
  if (second) throw new JobqError('USAGE', `unknown queue action '${first}' (set, pause, resume; or a queue name alone)`);
  if (o.slots) throw new JobqError('USAGE', '--slots goes with set: jobq queue set QUEUE --slots N');
  const names = first ? [existing(validateQueue(first))] : known();
  const { queues, outside: all } = await b.queues(names);
  // Every queue asked for: the jobs that wait in none are shown too (an array's cap, --after, memory, GPUs, a retry).
  const outside = first ? [] : all;
  const waitJson = (w: (typeof all)[number]) => ({ ...jobJson(w.view), position: w.position, reason: w.reason, waitingFor: w.waitingFor });
  if (o.json) {
    printJson({
      schema: JSON_SCHEMA,
      queues: queues.map((q) => ({
        name: q.name,
        slots: q.slots,
        paused: q.paused,
        running: q.running.map(jobJson),
        waiting: q.waiting.map(waitJson),
      })),
      ...(first ? {} : { waitingOutsideQueues: outside.map(waitJson) }),
    });
    return EXIT.ok;
  }
  const c = ctx.chalk;
  // On a terminal too narrow for a job and its reason on one line, the reason goes under it, wrapped at words.
  const width = stdoutIsTTY() ? process.stdout.columns : undefined;
  const waitLine = (w: (typeof all)[number]) => {
    const [pos, rest, why] = [`#${w.position}`.padEnd(8), ` ${w.view.rec.id}  priority ${w.view.rec.priority ?? 0}`, w.reason ?? ''];
    const lead = `  ${c.dim(pos)}${rest}`;
    if (!width || 2 + pos.length + rest.length + 2 + why.length <= width) return out(`${lead}  ${c.dim(why)}\n`);
    out(
      `${lead}\n${wrapWords(why, width - 11)
        .map((l) => `${' '.repeat(11)}${c.dim(l)}\n`)
        .join('')}`,
    );
  };
  if (!queues.length && !outside.length) out('no queues yet (jobq run NAME --queue Q -- CMD, or jobq queue set Q --slots N)\n');
  for (const q of queues) {
    out(
      `${c.bold(q.name)}  ${q.running.length}/${q.slots} slot${q.slots === 1 ? '' : 's'} busy${q.paused ? c.yellow('  paused') : ''}  ${q.waiting.length} waiting\n`,
    );
    for (const v of q.running) {
      const e = elapsedMs(v);
      out(`  ${paintState(c, v.state.status, stateLabel(v).padEnd(8))} ${v.rec.id}${e === undefined ? '' : `  ${formatDuration(e)}`}\n`);
    }
    for (const w of q.waiting) waitLine(w);
  }
  if (outside.length) {
    out(`${c.bold('(no queue)')}  ${outside.length} waiting\n`);
    for (const w of outside) waitLine(w);
  }
  return EXIT.ok;
}

/** Lines of at most `width` characters, broken at spaces (a word longer than that stands alone). */
function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}

export const command: CommandDef = {
  name: 'queue',
  summary: 'queues: slots, running jobs, waiting jobs in start order and why each waits; set, pause, resume',
  arguments: [
    { name: '[action_or_queue]', description: 'a QUEUE to show, or set / pause / resume' },
    { name: '[queue]', description: 'the QUEUE for set / pause / resume' },
  ],
  options: [
    { flags: '--slots <n>', description: 'with set: how many jobs of the queue run at once' },
    { flags: '--json', description: 'print JSON' },
  ],
  afterHelp: `
Examples:
  jobq queue                       # every queue, then the jobs waiting in none (array cap, --after, --mem, --gpus)
  jobq queue heavy --json
  jobq queue set heavy --slots 2   # a new queue has 1 slot; config may define queues too
  jobq queue pause heavy           # running jobs go on; no new ones start
  jobq queue resume heavy`,
  load: () => import('./queue.js'),
};
