// Human formatting of jobs: the status table, the detail view, and state colours.
import type { ChalkInstance } from 'chalk';
import type { BrokenRecord, JobView } from '../backend/backend.js';
import { exitCodeOf, GPU_MEM_PAST, isFinal, type JobRecord, type JobState } from '../domain/job.js';
import { outcomeOf, startedAtOf } from '../domain/lifecycle.js';
import { formatDuration, formatSize, shellWords } from '../domain/units.js';

export { shellWords };

/** The state as a short word, with the exit detail that matters. */
export function stateLabel(v: Pick<JobView, 'state' | 'supervisorAlive' | 'note'> & { rec?: JobView['rec']; waiting?: JobView['waiting'] }): string {
  const s = v.state;
  switch (s.status) {
    case 'failed':
      return `failed (${s.exitCode})`;
    case 'killed':
      return s.note ? `killed (${s.note})` : `killed (${s.signal})`;
    case 'timeout':
      return `timeout (${s.reason})`;
    case 'oom':
      return s.by ? `oom (${s.by})` : 'oom';
    case 'running':
      if (v.note?.startsWith('ended')) return 'ended (recording)';
      return v.supervisorAlive ? 'running' : 'running (no supervisor)';
    case 'queued':
      // Queued elsewhere: in the place's own words, under its name (`slurm: Resources`).
      if (v.rec?.placement && v.rec.backend)
        return `queued (${v.waiting?.reason?.replace(new RegExp(`^${v.rec.backend}: `, 'i'), `${v.rec.backend}: `) ?? v.rec.backend})`;
      // Sent back by --retry: which attempt comes next, of how many.
      if (s.retry) return `queued (attempt ${s.retry.attempt}/${(v.rec?.retry?.max ?? 0) + 1})`;
      if (v.rec?.queue) return `queued (${v.rec.queue} #${v.waiting?.position ?? '?'})`;
      return v.waiting?.reason ? `queued (${v.waiting.reason.split(' ')[0]})` : 'queued';
    case 'paused':
      // Paused by jobq's pressure guard, not by a person: say so, it will thaw by itself.
      return s.reason ? 'paused (memory pressure)' : 'paused';
    default:
      return s.status;
  }
}

/** Colours a state word by how it ended. */
export function paintState(c: ChalkInstance, status: JobState['status'], text: string): string {
  switch (status) {
    case 'succeeded':
      return c.green(text);
    case 'running':
    case 'starting':
      return c.cyan(text);
    case 'queued':
    case 'paused':
      return c.blue(text);
    case 'cancelled':
    case 'skipped':
      return c.yellow(text);
    default:
      return c.red(text);
  }
}

/** Elapsed time: the recorded duration when finished, else time since start. */
export function elapsedMs(v: JobView, now = Date.now()): number | undefined {
  const done = outcomeOf(v.state);
  if (done) return done.durationMs;
  const s = startedAtOf(v.state);
  // A lost job's clock stops when it was found gone (its end is unknown, not still running).
  const end = v.state.status === 'lost' ? Date.parse(v.state.detectedAt) : now;
  return s ? Math.max(0, end - Date.parse(s)) : undefined;
}

function shortTime(iso: string | undefined, now = new Date()): string {
  if (!iso) return '-';
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  const hm = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  return d.toDateString() === now.toDateString() ? hm : `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${hm}`;
}

/** The EXIT column: the exit code or signal of a Done job, `?` where it is unknown, `-` while it lives. */
export function exitText(s: JobState): string {
  const done = outcomeOf(s);
  if (!done) return s.status === 'failed-to-start' || s.status === 'lost' ? '?' : '-';
  if (done.signal) return done.signal;
  return done.exitCode === null ? '?' : String(done.exitCode);
}

/** Lays out rows as aligned columns (colour codes do not count towards width). */
export function columns(rows: string[][]): string {
  const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
  const widths: number[] = [];
  for (const r of rows)
    r.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, plain(cell).length);
    });
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell + ' '.repeat(widths[i]! - plain(cell).length)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A table column: its cells as plain text, painted once laid out. */
interface Col {
  head: string;
  cells: string[];
  paint?: (text: string, row: number) => string;
  /** Left out, lowest first, when the table is wider than the terminal. */
  drop?: number;
  /** Cut (with …) to `soft` characters before any column is left out, and to `floor` after. */
  soft?: number;
  floor?: number;
  /** Takes the width the others leave (counted as 16 while fitting); left out if under 10. */
  rest?: boolean;
}

const cut = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, Math.max(0, n - 1))}…`);

/** Fits columns into `width`: long cells are cut, then the least useful columns go, then cells are cut to their floor. */
export function fitColumns(cols: Col[], width: number): Col[] {
  let out = cols.map((c) => ({ ...c, cells: [...c.cells] }));
  const w = (c: Col) => Math.max(c.head.length, ...c.cells.map((x) => x.length));
  const over = () => out.reduce((n, c) => n + (c.rest ? Math.min(w(c), 16) : w(c)), 0) + 2 * (out.length - 1) - width;
  const cutTo = (c: Col, floor: number) => {
    if (over() <= 0) return;
    const n = Math.max(floor, c.head.length, w(c) - over());
    c.cells = c.cells.map((x) => cut(x, n));
  };
  for (const c of out) if (c.soft) cutTo(c, c.soft);
  for (const c of out.filter((x) => x.drop !== undefined).sort((a, b) => a.drop! - b.drop!)) {
    if (over() <= 0) break;
    out = out.filter((x) => x !== c);
  }
  for (const c of out) if (c.floor) cutTo(c, c.floor);
  const rest = out.find((c) => c.rest);
  if (rest) {
    const room = Math.min(w(rest), 16) - over();
    if (room < 10) out = out.filter((c) => c !== rest);
    else rest.cells = rest.cells.map((x) => cut(x, room));
  }
  return out;
}

/** A column of the status table. */
const col = (head: string, cells: string[], more: Partial<Col> = {}): Col => ({ head, cells, ...more });

/** What a GPU job asked for and holds: `1 (holds GPU 0)`, or with --gpu-mem `1, 30G reserved on it (shares GPU 0)`. */
function gpuNeed(a: NonNullable<JobRecord['admission']>, held: number[] | undefined): string {
  const on = held?.length ? `GPU ${held.join(', ')}` : '';
  if (!a.gpuMemBytes) return `${a.gpus}${on ? ` (holds ${on})` : ''}`;
  const each = a.gpus === 1 ? 'on it' : 'on each';
  return `${a.gpus}, ${formatSize(a.gpuMemBytes)} reserved ${each}${on ? ` (shares ${on})` : ''}${a.gpuMemEnforce ? ', ended past it' : ''}`;
}

/** GPU memory now (or its peak) on its GPUs, against what it reserved: past it is said, the kernel cannot hold VRAM to it. */
function gpuMemoryLine(c: ChalkInstance, v: JobView, peak: number | undefined): string {
  const r = v.rec;
  const on = r.gpus?.length ? ` on GPU ${r.gpus.join(', ')}` : '';
  const used = v.vramBytes ?? peak!;
  const text = v.vramBytes !== undefined ? `${formatSize(used)} now${on}` : `peak ${formatSize(used)}${on}`;
  const reserved = r.admission?.gpuMemBytes;
  if (!reserved) return text;
  const each = (r.gpus?.length ?? 0) > 1 ? ' on each' : '';
  // Past it as its supervisor judged, per GPU (its use on a GPU it does not hold is not against its reservation).
  const past = r.protection.warnings.some((w) => w.startsWith(GPU_MEM_PAST));
  return past
    ? `${text}, ${c.yellow(`past its ${formatSize(reserved)} reserved${each ? ' on one' : ''}`)}`
    : `${text} of ${formatSize(reserved)} reserved${each}`;
}

/** The MEM column, and a VRAM column when some job listed holds or held GPU memory. */
function memoryCols(c: ChalkInstance, views: JobView[]): Col[] {
  const cols: Col[] = [];
  const live = (v: JobView) => !!v.memBytes;
  cols.push(
    col(
      'MEM',
      views.map((v) => {
        const mem = v.memBytes || outcomeOf(v.state)?.peakMemBytes;
        return mem ? formatSize(mem) : '-';
      }),
      { drop: 6, paint: (t, i) => (live(views[i]!) || t === '-' ? t : c.dim(t)) },
    ),
  );
  // GPU memory, the figure ML users watch: a column only when some job listed holds or held GPU memory.
  const vram = (v: JobView) => v.vramBytes ?? outcomeOf(v.state)?.peakVramBytes;
  if (views.some((v) => vram(v) !== undefined))
    cols.push(
      col(
        'VRAM',
        views.map((v) => (vram(v) !== undefined ? formatSize(vram(v)!) : '-')),
        { drop: 6, paint: (t, i) => (views[i]!.vramBytes !== undefined || t === '-' ? t : c.dim(t)) },
      ),
    );
  return cols;
}

/** The status table; with a width (a terminal's), it fits: no line longer, least useful columns left out first. */
export function formatTable(c: ChalkInstance, views: JobView[], opts: { memory: boolean; lastLine?: (v: JobView) => string; width?: number }): string {
  const cols: Col[] = [
    // The number, what a JOB is quickest typed as; kept to the last (older records have none: no column then).
    ...(views.some((v) => v.rec.seq !== undefined)
      ? [
          col(
            '#',
            views.map((v) => (v.rec.seq === undefined ? '-' : String(v.rec.seq))),
            { drop: 8 },
          ),
        ]
      : []),
    col(
      'NAME',
      views.map((v) => v.rec.name),
      { soft: 24, floor: 12 },
    ),
    // The id repeats the name: the first to go on a narrow terminal (the name finds the newest job of that name).
    col(
      'ID',
      views.map((v) => v.rec.id),
      { drop: 1 },
    ),
    col('STATE', views.map(stateLabel), { soft: 28, floor: 14, paint: (t, i) => paintState(c, views[i]!.state.status, t) }),
    col(
      'PID',
      views.map((v) => (v.rec.job ? String(v.rec.job.pid) : '-')),
      { drop: 2 },
    ),
    col(
      'STARTED',
      // A job that has not started (queued, or never will) has no start time to show; a Slurm job has one but no pid here.
      views.map((v) => (startedAtOf(v.state) ? shortTime(startedAtOf(v.state)) : v.rec.job ? shortTime(v.rec.createdAt) : '-')),
      { drop: 3 },
    ),
    col(
      'ELAPSED',
      views.map((v) => {
        const e = elapsedMs(v);
        return e === undefined ? '-' : formatDuration(e);
      }),
      { drop: 7 },
    ),
    col(
      'EXIT',
      views.map((v) => exitText(v.state)),
      { drop: 5 },
    ),
  ];
  if (opts.memory) cols.push(...memoryCols(c, views));
  if (opts.lastLine) cols.push(col('LAST OUTPUT', views.map(opts.lastLine), { rest: true, drop: 4, paint: (t) => c.dim(t) }));
  const fitted = opts.width ? fitColumns(cols, opts.width) : cols;
  const rows = [fitted.map((x) => c.bold(x.head))];
  views.forEach((_, i) => {
    rows.push(fitted.map((x) => (x.paint ? x.paint(x.cells[i]!, i) : x.cells[i]!)));
  });
  return columns(rows);
}

/** One line per unreadable record, naming the file. */
export function formatBroken(broken: BrokenRecord[]): string[] {
  return broken.map((b) => `jobq: skipped ${b.id}: ${b.error}`);
}

/** A sweep job's joblog, --retry policy and each earlier attempt's end, for the detail view. */
function sweepLines(r: JobRecord): Array<[string, string]> {
  const lines: Array<[string, string]> = [];
  if (r.joblog) lines.push(['joblog', r.joblog]);
  if (r.retry) {
    const rp = r.retry;
    const grow = rp.memGrow ? `, --mem-limit ×${rp.memGrow} after an oom` : '';
    const apart = rp.delayMs ? `${formatDuration(rp.delayMs)} after the first end, ×${rp.backoff} each time` : 'at once';
    lines.push(['retry', `up to ${rp.max} more on ${rp.on.join(',')}, ${apart}${grow}`]);
  }
  for (const t of r.attempts ?? []) {
    const code = t.signal ? t.signal : String(t.exitCode);
    const mem = t.peakMemBytes ? `, peak ${formatSize(t.peakMemBytes)}${t.memLimitBytes ? ` of ${formatSize(t.memLimitBytes)}` : ''}` : '';
    lines.push([
      `attempt ${t.attempt}`,
      `${t.status} (${code}${t.reason ? `, ${t.reason}` : ''}) after ${formatDuration(t.durationMs)}, ended ${t.endedAt}${mem}`,
    ]);
  }
  return lines;
}

/** The detail view of one job. */
export function formatDetail(c: ChalkInstance, v: JobView): string {
  const lines = detailLines(c, v);
  const width = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, val]) => `${c.dim(k.padEnd(width))}  ${val}`).join('\n');
}

/** Where a job runs and what protects it: its placement or isolation, memory high and limit, oom_score_adj. */
function protectionLines(v: JobView): Array<[string, string]> {
  const { rec: r, state: s } = v;
  const p = r.protection;
  const lines: Array<[string, string]> = [];
  // A job that will never start (skipped, cancelled while queued, failed to start) has nothing "chosen when it starts".
  const notYet = isFinal(s) ? 'never applied: it never started' : 'applied when it starts';
  const pl = r.placement;
  if (pl) lines.push([r.backend ?? 'placed', `job ${pl.id}${pl.cluster ? ` on cluster ${pl.cluster}` : ''}${pl.state ? ` (${pl.state})` : ''}`]);
  else if (!r.job) lines.push(['isolation', `${p.isolationMode} asked (${notYet})`]);
  // A scope by its unit name (what systemctl --user takes); any other cgroup by its path.
  else lines.push(['isolation', `${p.isolation}${p.unit ? ` (${p.unit})` : p.cgroups?.length ? ` (${p.cgroups[0]})` : ''}`]);
  if (p.memHighBytes) {
    const n = outcomeOf(s)?.memHighEvents ?? v.memHighEvents;
    const how = r.job ? ` via ${p.memHighHow ?? 'none'}` : ` (${notYet})`;
    lines.push(['mem high', `${formatSize(p.memHighBytes)}${how}${n ? `; throttled ${n} time${n === 1 ? '' : 's'} (slowed, not killed)` : ''}`]);
  }
  if (p.memLimitBytes) lines.push(['mem limit', `${formatSize(p.memLimitBytes)}${r.job ? ` via ${p.memLimitHow ?? 'none'}` : ` (${notYet})`}`]);
  if (p.oomScoreAdj && !r.placement)
    lines.push(['oom_score_adj', r.job ? `${p.oomScoreAdj.actual ?? '?'} (asked ${p.oomScoreAdj.requested})` : `${p.oomScoreAdj.requested} asked (${notYet})`]);
  return lines;
}

/** What `status JOB` tells of a job, as (label, value) pairs: the terminal lays them out, the dashboard lists them. */
export function detailLines(c: ChalkInstance, v: JobView): Array<[string, string]> {
  const r = v.rec;
  const s = v.state;
  const p = r.protection;
  const lines: Array<[string, string]> = [
    ['id', r.id],
    ...(r.seq !== undefined ? [['number', String(r.seq)] as [string, string]] : []),
    ['name', r.name],
    ['state', paintState(c, s.status, stateLabel(v))],
    ['command', shellWords(r.argv)],
    ['cwd', r.cwd],
    ['log', r.log],
  ];
  if (r.job) lines.push(['pid', `${r.job.pid} (pgid ${r.job.pgid}, session ${r.job.pid})`]);
  if (r.supervisor) lines.push(['supervisor', `${r.supervisor.pid} ${v.supervisorAlive ? '(alive)' : '(gone)'}`]);
  lines.push(['created', r.createdAt]);
  const done = outcomeOf(s);
  const startedAt = startedAtOf(s);
  if (startedAt) lines.push(['started', startedAt]);
  if (done) lines.push(['ended', `${done.endedAt} (${formatDuration(done.durationMs)})`]);
  else {
    const e = elapsedMs(v);
    if (e !== undefined) lines.push(['elapsed', formatDuration(e)]);
  }
  if (done || s.status === 'failed-to-start' || s.status === 'lost') lines.push(['exit', `${exitText(s)} (jobq wait returns ${exitCodeOf(s)})`]);
  if (s.status === 'failed-to-start') lines.push(['error', s.error]);
  if (s.status === 'lost' || (s.status === 'oom' && s.reason)) lines.push(['reason', s.reason!]);
  if (s.status === 'skipped') lines.push(['skipped', s.reason]);
  lines.push(...sweepLines(r));
  const a = r.admission;
  if (a?.after?.length) lines.push(['after', a.after.map((d) => `${d.id}${d.kind === 'any' ? ' (any end)' : ''}`).join(', ')]);
  if (a?.array)
    lines.push([
      'array',
      `${a.array.name}: element ${a.array.index} of ${a.array.size}, value ${a.array.value}${a.array.cap ? `, at most ${a.array.cap} at once` : ''}`,
    ]);
  if (a?.memBytes) lines.push(['needs memory', formatSize(a.memBytes)]);
  if (a?.gpus) lines.push(['needs gpus', gpuNeed(a, r.gpus)]);
  if (r.gpuUuids?.length) lines.push(['gpu uuids', r.gpuUuids.join(', ')]);
  if (r.queue) lines.push(['queue', `${r.queue}, priority ${r.priority ?? 0}${v.waiting ? `, position ${v.waiting.position}` : ''}`]);
  if (v.waiting?.reason) lines.push(['waiting', v.waiting.reason]);
  if (s.status === 'paused')
    lines.push([
      'paused',
      `since ${s.pausedAt} (${s.how === 'freezer' ? 'cgroup frozen' : 'SIGSTOP'}${s.reason ? `, by the pressure guard: ${s.reason}; thawed when pressure eases` : ''}; jobq resume ${r.name})`,
    ]);
  if (v.note) lines.push(['note', c.yellow(v.note)]);
  if (r.owner)
    lines.push([
      'owner',
      `${r.owner.id}${r.owner.session ? ` (MCP session pid ${r.owner.session.pid}${r.owner.cleanup ? ', cancelled when it closes' : ''})` : ''}`,
    ]);
  if (s.status === 'cancelled') lines.push(['cancelled', `${s.cancel.signal} by ${s.cancel.by} at ${s.cancel.at}`]);
  lines.push(...protectionLines(v));
  if (p.timeoutMs) lines.push(['timeout', formatDuration(p.timeoutMs)]);
  if (p.idleTimeoutMs) lines.push(['idle timeout', formatDuration(p.idleTimeoutMs)]);
  if (v.memBytes) lines.push(['memory now', formatSize(v.memBytes)]);
  if (done?.peakMemBytes) lines.push(['peak memory', formatSize(done.peakMemBytes)]);
  if (v.vramBytes !== undefined || done?.peakVramBytes !== undefined) lines.push(['gpu memory', gpuMemoryLine(c, v, done?.peakVramBytes)]);
  if (done?.cpuMs !== undefined) lines.push(['cpu time', formatDuration(done.cpuMs)]);
  const added = Object.entries(r.env.added)
    .map(([k, val]) => `${k}=${val}`)
    .join(' ');
  lines.push(['env added', added + (r.env.presets.length ? `  [presets: ${r.env.presets.join(', ')}]` : '')]);
  for (const w of p.warnings) lines.push(['warning', c.yellow(w)]);
  return lines;
}
