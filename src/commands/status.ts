// `jobq status [JOB|GLOB] [--all] [--state S,…] [--json] [--watch]`
import fs from 'node:fs';
import type { Command } from 'commander';
import type { JobView } from '../backend/backend.js';
import { EXIT, JobqError } from '../domain/errors.js';
import { globOf, isFinal, JSON_SCHEMA, statesOf, validateOwner } from '../domain/job.js';
import { memoryChart } from '../output/chart.js';
import { stdoutIsTTY } from '../output/color.js';
import { lastLine } from '../output/follow.js';
import { formatBroken, formatDetail, formatTable } from '../output/format.js';
import { jobJson, listJson } from '../output/json.js';
import { isOrphan } from '../process/proc.js';
import { context, out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

interface StatusOpts {
  all?: boolean;
  state?: string;
  owner?: string;
  orphans?: boolean;
  recent: string;
  watch?: boolean;
  json?: boolean;
}

export default async function status(ref: string | undefined, o: StatusOpts, cmd: Command): Promise<number> {
  const ctx = context(cmd, { reads: true });
  const c = ctx.chalk;
  // A pattern (resnet*) or --state filters the list, over every job, not only the recent ones.
  const pattern = ref && /[*?]/.test(ref) ? globOf(ref) : undefined;
  const states = o.state === undefined ? undefined : statesOf(o.state);
  const owner = o.owner === undefined ? undefined : validateOwner(o.owner);
  // A filter looks at every job, not only the recent ones; the orphans are live jobs whose MCP session is gone.
  const chosen = (v: JobView) =>
    (!pattern || pattern(v.rec.name)) && (!states || states.has(v.state.status)) && (!owner || v.rec.owner?.id === owner) && (!o.orphans || isOrphan(v));
  const filtered = !!(pattern || states || owner || o.orphans);
  if (pattern) ref = undefined;
  if (ref && (states || owner || o.orphans)) throw new JobqError('USAGE', '--state, --owner and --orphans filter the list: give no JOB, or a pattern');
  if (ref) {
    // An array's name (no job is called just that): a summary, then its elements.
    const elements = ctx.backend.arrayIds(ref);
    if (elements.length) {
      const waiting = new Map((await ctx.backend.withWaits(elements)).map((v) => [v.rec.id, v]));
      const views = await Promise.all(elements.map(async (id) => waiting.get(id) ?? (await ctx.backend.view(id))));
      const counts: Record<string, number> = {};
      for (const v of views) counts[v.state.status] = (counts[v.state.status] ?? 0) + 1;
      if (o.json) printJson({ schema: JSON_SCHEMA, array: ref, counts, jobs: views.map(jobJson) });
      else {
        const parts = ['queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled', 'skipped'].map((k) => `${counts[k] ?? 0} ${k}`);
        const other = Object.entries(counts).filter(([k]) => !['queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled', 'skipped'].includes(k));
        out(`array ${ref}: ${views.length} jobs: ${parts.join(', ')}${other.map(([k, n]) => `, ${n} ${k}`).join('')}\n`);
        if (views[0]?.rec.joblog) out(`joblog: ${views[0].rec.joblog}\n`);
        out(formatTable(c, views, { memory: false, width: stdoutIsTTY() ? process.stdout.columns : undefined }) + '\n');
      }
      return EXIT.ok;
    }
    const v = await ctx.backend.get(ref, { withMemory: true });
    const samples = ctx.backend.samples(v.rec.id);
    if (o.json) printJson({ ...jobJson(v), samples });
    else {
      out(formatDetail(c, v) + '\n');
      const width = Math.max(20, Math.min(100, (process.stdout.columns || 80) - 16));
      if (samples.length) out('\n' + memoryChart(samples, { limit: v.rec.protection.memLimitBytes, width }).join('\n') + '\n');
    }
    return EXIT.ok;
  }
  const recent = Number(o.recent);
  if (!/^\d+$/.test(o.recent) || !Number.isSafeInteger(recent)) throw new JobqError('USAGE', `invalid -n/--recent '${o.recent}': a whole number (0 or more)`);
  const render = async (forWatch: boolean) => {
    const listed = await ctx.backend.list({ all: !!o.all || filtered, recent, withMemory: true });
    const { broken } = listed;
    const all = listed.views.filter(chosen);
    const hidden = filtered ? 0 : listed.hidden;
    if (o.json) return { text: JSON.stringify(listJson(all, broken, hidden), null, 2) + '\n', broken: [] as string[] };
    // A terminal's width is the table's; --watch also keeps to its height (header, rows, the two lines below).
    // The stream is made only for a terminal: a piped status never pays for it.
    const term = stdoutIsTTY() ? process.stdout : undefined;
    const width = term?.columns;
    const rows = forWatch && term?.rows ? Math.max(1, term.rows - 4) : Number.POSITIVE_INFINITY;
    const views = all.slice(0, all.length > rows ? rows - 1 : rows);
    let text = views.length
      ? formatTable(c, views, { memory: true, width, lastLine: forWatch ? (v) => (isFinal(v.state) ? '' : lastLine(v.rec.log)) : undefined }) + '\n'
      : broken.length || hidden
        ? ''
        : filtered
          ? 'no job matches\n'
          : 'no jobs yet (start one: jobq run NAME -- CMD)\n';
    if (views.length < all.length) text += c.dim(`… ${all.length - views.length} more below (a taller terminal, or jobq status)`) + '\n';
    if (hidden > 0) text += c.dim(`${hidden} older job${hidden === 1 ? '' : 's'} not shown (--all to list them)`) + '\n';
    const notes = views.filter((v) => v.note).map((v) => `jobq: ${v.rec.id}: ${v.note}`);
    return { text, broken: [...notes, ...formatBroken(broken)] };
  };
  if (o.watch && stdoutIsTTY() && !o.json) return watch(ctx.backend.changesPath(), render);
  const { text, broken } = await render(false);
  out(text);
  for (const b of broken) process.stderr.write(b + '\n');
  return EXIT.ok;
}

/** Redraws the table when a job starts or ends (inotify on the active index) and every second for elapsed times. */
async function watch(dir: string, render: (w: boolean) => Promise<{ text: string; broken: string[] }>): Promise<number> {
  let wake: (() => void) | undefined;
  const watcher = fs.watch(dir, { recursive: false }, () => wake?.());
  watcher.on('error', () => undefined);
  out('\x1b[?25l');
  const restore = () => out('\x1b[?25h');
  process.once('SIGINT', () => {
    restore();
    process.exit(EXIT.ok);
  });
  try {
    for (;;) {
      const { text, broken } = await render(true);
      out('\x1b[H\x1b[2J' + text + broken.join('\n') + `\n\x1b[2m${new Date().toTimeString().slice(0, 8)}  Ctrl-C to quit\x1b[0m\n`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 1000);
        wake = () => {
          clearTimeout(t);
          setTimeout(r, 50);
        };
      });
    }
  } finally {
    watcher.close();
    restore();
  }
}

export const command: CommandDef = {
  name: 'status',
  summary: 'list jobs, or show one in detail',
  arguments: [
    { name: '[job]', description: "NAME (its latest job), ID or number (42, #42) for the detail view; a pattern ('resnet*') lists the jobs it matches" },
  ],
  options: [
    { flags: '-a, --all', description: 'list every job, not only running and recent ones' },
    { flags: '-s, --state <states>', description: 'only jobs in these states: failed,oom,… or live, ended' },
    { flags: '--owner <label>', description: 'only jobs run with this --owner (an agent session id)' },
    { flags: '--orphans', description: 'only live jobs whose owner, an MCP session, is gone' },
    { flags: '-n, --recent <n>', description: 'how many recent finished jobs to list', default: '20' },
    { flags: '-w, --watch', description: 'redraw the table on change (TTY)' },
    { flags: '--json', description: 'print JSON (docs/json.md)' },
  ],
  afterHelp:
    "\nExamples:\n  jobq status\n  jobq status train\n  jobq status 42                            # job number 42 (the # column)\n  jobq status --state failed,oom,timeout   # what went wrong, all of it\n  jobq status 'resnet*' --state live\n  jobq status --owner agent-7f3            # the jobs an agent started (run --owner)\n  jobq status --orphans                    # live jobs whose MCP session has gone\n  jobq status --all --json | jq '.jobs[] | select(.state.status==\"failed\") | .id'\n  jobq status --watch\n\nOn a terminal the table fits its width (the ID, PID and start time go first on a narrow one;\nthe # column, each job's number, stays);\npiped, it has every column.",
  load: () => import('./status.js'),
};
