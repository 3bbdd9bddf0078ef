// `jobq ui [--port N] [--open] [--detach]`: a local dashboard on 127.0.0.1, behind a random token.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { Chalk } from 'chalk';
import type { Command } from 'commander';
import type { Backend, JobView } from '../backend/backend.js';
import { EXIT, JobqError } from '../domain/errors.js';
import { exitCodeOf, isFinal } from '../domain/job.js';
import { outcomeOf, startedAtOf } from '../domain/lifecycle.js';
import { formatDuration, formatSize, shellWords } from '../domain/units.js';
import { lastLinesText, openLogForReading } from '../output/follow.js';
import { detailLines, elapsedMs, exitText, stateLabel } from '../output/format.js';
import { openDetached, spawnCli } from '../process/spawn.js';
import { jobsFeed, stream } from '../ui/feed.js';
import { FAVICON_SVG, keyPage, pageHtml } from '../ui/page.js';
import { context } from './context.js';
import type { CommandDef } from './definition.js';

const LOG_LINES = 200;
/** A search of a log stops after this many matching lines (the page says there were more). */
const SEARCH_MATCHES = 200;
const plain = new Chalk({ level: 0 });

/** States that ended badly: the list gives each its reason in one line. */
const BAD = new Set(['failed', 'killed', 'timeout', 'oom', 'lost', 'failed-to-start']);

/** The last log line of a finished job, cached: it no longer changes, and the list is rebuilt every second. */
const lastLines = new Map<string, string>();
function finalLastLine(v: JobView): string {
  let line = lastLines.get(v.rec.id);
  if (line === undefined) {
    if (lastLines.size > 5000) lastLines.clear();
    // jobq's own end marker repeats the state: the job's last words are the line before it.
    const lines = lastLinesText(v.rec.log, 5, 64 * 1024).split('\n');
    line = (lines.filter((l) => l.trim() && !l.startsWith('[jobq] ')).pop() ?? '').slice(0, 300);
    lastLines.set(v.rec.id, line);
  }
  return line;
}

/** Why a job is where it is, in one line: why it waits, why it ended badly (its reason, else its last log line). */
function whyOf(v: JobView): string | undefined {
  const s = v.state;
  if (s.status === 'queued') return v.waiting?.reason;
  if (s.status === 'paused')
    return `${s.reason ? `frozen by the pressure guard (${s.reason})` : 'paused'} at ${new Date(s.pausedAt).toTimeString().slice(0, 8)}`;
  if (s.status === 'skipped') return s.reason;
  if (s.status === 'failed-to-start') return s.error;
  if (!BAD.has(s.status)) return undefined;
  const reason = s.status === 'lost' || s.status === 'oom' ? s.reason : undefined;
  const last = finalLastLine(v);
  return [reason, last && `last output: ${last}`].filter(Boolean).join('; ') || undefined;
}

/** One row of the jobs list: what the list shows, with times as ISO strings for the page to format in its own zone. */
function row(v: JobView) {
  const s = v.state;
  const e = elapsedMs(v);
  const done = outcomeOf(s);
  const mem = v.memBytes ?? done?.peakMemBytes;
  const a = v.rec.admission?.array;
  return {
    id: v.rec.id,
    seq: v.rec.seq,
    name: v.rec.name,
    status: s.status,
    label: stateLabel(v),
    final: isFinal(s),
    why: whyOf(v),
    array: a ? { name: a.name, index: a.index, size: a.size, run: a.run } : undefined,
    queue: v.rec.queue,
    createdAt: v.rec.createdAt,
    startedAt: startedAtOf(s),
    elapsedMs: e ?? null,
    elapsed: e === undefined ? '' : formatDuration(e),
    exit: exitText(s),
    mem: mem ? formatSize(mem) : '',
  };
}

/** Whether a request may be served: loopback Host (no DNS rebinding), the token, and no cross-origin POST. */
export function allowed(req: http.IncomingMessage, url: URL, port: number, token: string): string | undefined {
  const host = (req.headers.host ?? '').toLowerCase();
  if (![`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(host)) return 'host';
  const given = String(req.headers['x-jobq-token'] ?? url.searchParams.get('token') ?? '');
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  if (a.length !== b.length || !timingSafeEqual(a, b)) return 'token';
  if (req.method !== 'GET') {
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${host}`) return 'origin';
    // A cross-site form cannot set this header: only the page's own fetch can.
    if (req.headers['x-jobq-token'] !== token) return 'origin';
  }
  return undefined;
}

/** A finished job's state never changes: read once. */
const finalStatus = new Map<string, string>();
/** An array's elements (its latest run), looked up again every few seconds, not at every snapshot. */
const arrayElements = new Map<string, { ids: string[]; at: number }>();

/** Each listed array's latest run counted over all of its elements: the list holds only the newest finished jobs. */
async function arrayCounts(b: Backend, views: JobView[]) {
  const live = new Map(views.map((v) => [v.rec.id, v.state.status as string]));
  const out: Record<string, { run?: string; size: number; counts: Record<string, number> }> = {};
  for (const name of new Set(views.flatMap((v) => v.rec.admission?.array?.name ?? []))) {
    let el = arrayElements.get(name);
    if (!el || Date.now() - el.at > 5000) {
      el = { ids: b.arrayIds(name), at: Date.now() };
      arrayElements.set(name, el);
    }
    const counts: Record<string, number> = {};
    let run: string | undefined;
    for (const id of el.ids) {
      let st = live.get(id) ?? finalStatus.get(id);
      if (!st) {
        const v = await b.view(id).catch(() => undefined);
        if (!v) continue;
        st = v.state.status;
        run ??= v.rec.admission?.array?.run;
        if (isFinal(v.state)) finalStatus.set(id, st);
      }
      counts[st] = (counts[st] ?? 0) + 1;
    }
    const first = views.find((v) => v.rec.admission?.array?.name === name && el.ids.includes(v.rec.id))?.rec.admission?.array;
    out[name] = { run: first?.run ?? run, size: el.ids.length, counts };
  }
  return out;
}

/** The list as the dashboard shows it: the live and recent jobs, arrays counted whole, the queues with their slots, the counts. */
async function jobsTable(b: Backend) {
  const { views, hidden } = await b.list({ all: false, recent: 100, withMemory: true });
  const count = (f: (v: JobView) => boolean) => views.filter(f).length;
  const queues = b.queueNames().map((name) => {
    const mine = views.filter((v) => v.rec.queue === name);
    return {
      name,
      ...b.queueSettings(name),
      running: mine.filter((v) => v.state.status === 'running' || v.state.status === 'starting' || v.state.status === 'paused').length,
      waiting: mine.filter((v) => v.state.status === 'queued').length,
    };
  });
  return {
    jobs: views.map(row),
    arrays: await arrayCounts(b, views),
    queues,
    hidden,
    total: views.length + hidden,
    running: count((v) => v.state.status === 'running' || v.state.status === 'starting'),
    waiting: count((v) => v.state.status === 'queued' || v.state.status === 'paused'),
    failed: count((v) => BAD.has(v.state.status)),
  };
}

/** What the request handler needs: the backend, the shared jobs feed, the key, the bound port, how to restart. */
interface Site {
  b: Backend;
  jobs: ReturnType<typeof jobsFeed>;
  token: string;
  /** The port asked for until the server is bound, then the one it got: the Host check compares with it. */
  port: number;
  restart: (id: string) => Promise<string>;
}

type Send = (code: number, body: unknown, type?: string) => void;

/** One request: refused unless allowed, else the page or an API answer; an error is answered as JSON. */
async function handle(site: Site, req: http.IncomingMessage, res: http.ServerResponse) {
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://127.0.0.1');
  } catch {
    // A request line no URL parser takes (`GET http://[/`): refused, before any check, and the server lives on.
    res.writeHead(400).end();
    return;
  }
  const send: Send = (code, body, type = 'application/json') => {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  const why = allowed(req, url, site.port, site.token);
  // The icon is no secret: served without the key (never to a foreign Host), so a browser's own request is no 403.
  if (why !== 'host' && (url.pathname === '/favicon.ico' || url.pathname === '/favicon.svg')) return send(200, FAVICON_SVG, 'image/svg+xml');
  // A person who opened the bare address gets a page that says how to get the URL again, not raw JSON.
  if (why === 'token' && url.pathname === '/' && req.method === 'GET') return send(403, keyPage(), 'text/html; charset=utf-8');
  if (why) return send(403, { error: why === 'host' ? 'not a loopback Host' : why === 'token' ? 'token missing or wrong' : 'cross-origin request refused' });
  try {
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (url.pathname === '/') return page(res);
    return await api(site, { req, res, url, parts, send });
  } catch (e) {
    if (res.headersSent) return res.destroy();
    const code = e instanceof JobqError ? (e.code === 'NOT_FOUND' ? 404 : e.code === 'BUSY' ? 429 : 400) : 400;
    return send(code, { error: (e as Error).message });
  }
}

/** The dashboard page, its script allowed by a fresh nonce and nothing else (CSP). */
function page(res: http.ServerResponse) {
  const nonce = randomBytes(16).toString('base64');
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  });
  return res.end(pageHtml(nonce));
}

interface Call {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  url: URL;
  parts: string[];
  send: Send;
}

/** The API the page uses: the jobs feed, one job, its log (live, whole, searched), and the actions. */
async function api(site: Site, c: Call) {
  const { b, jobs } = site;
  const { req, res, parts, send } = c;
  if (parts[0] !== 'api') return send(404, { error: 'not found' });
  if (parts[1] === 'events') return jobs.follow(res);
  if (parts[1] === 'jobs' && parts.length === 2) return send(200, await jobs.current());
  if (parts[1] !== 'jobs') return send(404, { error: 'not found' });
  const id = b.resolve(parts[2] ?? '');
  const what = parts.slice(3).join('/');
  if (req.method === 'GET') {
    if (what === '') return send(200, await jobDetail(b, id));
    if (what === 'log') return stream(res, () => logEvents(b, id));
    if (what === 'log/full') return wholeLog(b, id, c);
    if (what === 'log/search')
      return send(200, {
        q: c.url.searchParams.get('q'),
        ...(await searchLog(b, id, c.url.searchParams.get('q') ?? '', () => req.destroyed || res.destroyed)),
      });
  } else if (req.method === 'POST' && ACTIONS.has(what)) {
    return send(200, await act(site, id, what));
  }
  return send(404, { error: 'not found' });
}

const ACTIONS = new Set(['cancel', 'restart', 'pause', 'resume']);

/** An action from the page, its result said once in plain words (`Cancelled train #4 after 2h 13m.`). */
async function act(site: Site, id: string, what: string): Promise<{ message: string; id?: string }> {
  const { b } = site;
  const before = await b.view(id);
  const who = `${before.rec.name}${before.rec.seq !== undefined ? ` #${before.rec.seq}` : ''}`;
  if (what === 'cancel') {
    const r = await b.cancel(id, { by: 'dashboard' });
    if (r.outcome === 'cancelled') return { message: `Cancelled ${who}${r.elapsedMs ? ` after ${formatDuration(r.elapsedMs)}` : ''}.` };
    if (r.outcome === 'already-ended') return { message: `${who} had already ended (${stateLabel({ state: r.state, supervisorAlive: false })}).` };
    return { message: `${who} was not signalled: ${r.detail ?? 'it could not be proven to be the job'}.` };
  }
  if (what === 'restart') {
    const newId = await site.restart(id);
    const rec = (await b.view(newId)).rec;
    return { message: `Restarted ${before.rec.name} as #${rec.seq ?? rec.id}.`, id: newId };
  }
  const v = what === 'pause' ? await b.pause(id) : await b.resume(id);
  return { message: `${what === 'pause' ? 'Paused' : 'Resumed'} ${who}: now ${stateLabel(v)}.` };
}

/** One job's panel: its row, its details as `jobq status JOB` lists them, its limits and samples. */
async function jobDetail(b: Backend, id: string) {
  const v = await b.get(id, { withMemory: true });
  const p = v.rec.protection;
  return {
    ...row(v),
    command: shellWords(v.rec.argv),
    details: detailLines(plain, v).filter(([k]) => k !== 'state' && k !== 'id'),
    log: v.rec.log,
    memNow: v.memBytes ?? null,
    memPeak: outcomeOf(v.state)?.peakMemBytes ?? null,
    memLimit: p.memLimitBytes ?? null,
    memHigh: p.memHighBytes ?? null,
    samples: b.samples(id),
  };
}

/** The events of a job's log stream: the log's last lines, and its state as the panel shows it. */
async function logEvents(b: Backend, id: string) {
  const v = await b.view(id);
  return {
    log: { text: lastLinesText(v.rec.log, LOG_LINES), size: logSize(v.rec.log) },
    state: { status: v.state.status, label: stateLabel(v), final: isFinal(v.state), exit: isFinal(v.state) ? exitCodeOf(v.state) : null },
  };
}

function logSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** The whole log, streamed as it is on disk (bounded memory whatever its size); `?download=1` saves it as NAME.log. */
async function wholeLog(b: Backend, id: string, c: Call) {
  const v = await b.view(id);
  const fd = openLogForReading(v.rec.log);
  const name = `${v.rec.name.replace(/[^\w.-]/g, '_')}.log`;
  const size = fs.fstatSync(fd).size;
  c.res.writeHead(200, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(size),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...(c.url.searchParams.get('download') ? { 'content-disposition': `attachment; filename="${name}"` } : {}),
  });
  if (size === 0) {
    fs.closeSync(fd);
    return c.res.end();
  }
  // Up to the size it had when asked: a log that grows meanwhile does not make the answer longer than it said.
  const s = fs.createReadStream('', { fd, end: size - 1, highWaterMark: 256 * 1024 });
  let sent = 0;
  s.on('data', (d) => (sent += d.length));
  // A log cut shorter meanwhile (its cap): the answer ends short, so the client is told at once, not left waiting.
  s.on('end', () => sent < size && c.res.destroy());
  s.pipe(c.res);
  c.res.on('close', () => s.destroy());
}

/** Searches run at once; more wait their turn rather than each holding its own read of a big log. */
let searching = 0;
const MAX_SEARCHES = 2;
/** A matching line keeps this much of its text; the rest of a longer line is only scanned. */
const HIT_CHARS = 400;

/**
 * The lines of a log holding `q` (case-insensitive), read in fixed chunks up to the size it had when asked: memory
 * stays bounded whatever the log (even one 50 MB line), and a client that goes away stops the scan.
 */
async function searchLog(b: Backend, id: string, q: string, gone: () => boolean) {
  if (!q) throw new JobqError('USAGE', 'nothing to search for');
  if (q.length > 200) throw new JobqError('USAGE', 'search text too long (200 characters at most)');
  if (searching >= MAX_SEARCHES) throw new JobqError('BUSY', 'two searches are running already: try again in a moment');
  const v = await b.view(id);
  const fd = openLogForReading(v.rec.log);
  searching++;
  try {
    return await scanLines(fd, fs.fstatSync(fd).size, q.toLowerCase(), gone);
  } finally {
    searching--;
    fs.closeSync(fd);
  }
}

/** The scan: each line's head kept (for the hit's text) and the line matched as a whole through a rolling window. */
async function scanLines(fd: number, size: number, needle: string, gone: () => boolean) {
  const matches: Array<{ line: number; text: string }> = [];
  let line = 1;
  let more = 0;
  let head = '';
  let tail = '';
  let hit = false;
  const chunk = Buffer.alloc(256 * 1024);
  const decoder = new StringDecoder('utf8');
  const endLine = () => {
    if (hit) {
      // A \r progress line as a terminal shows it: its last state.
      const text = head.split('\r').filter(Boolean).pop() ?? '';
      if (matches.length < SEARCH_MATCHES) matches.push({ line, text: text.length > HIT_CHARS ? `${text.slice(0, HIT_CHARS)}…` : text });
      else more++;
    }
    line++;
    head = '';
    tail = '';
    hit = false;
  };
  for (let pos = 0; pos < size; ) {
    if (gone()) throw new JobqError('IO', 'the client went away');
    const n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, size - pos), pos);
    if (n <= 0) break;
    pos += n;
    const parts = decoder.write(chunk.subarray(0, n)).split('\n');
    parts.forEach((part, i) => {
      if (i > 0) endLine();
      if (head.length <= HIT_CHARS) head += part.slice(0, HIT_CHARS + 1 - head.length);
      // Matched across chunk edges: the end of what came before, then this part.
      const win = (tail + part).toLowerCase();
      if (!hit && win.includes(needle)) hit = true;
      tail = win.slice(-(needle.length - 1) || win.length);
    });
    // Another client's turn between chunks: a big log does not hold the server.
    await new Promise((r) => setImmediate(r));
  }
  if (head || tail || hit) endLine();
  return { matches, more, lines: line - 1 };
}

/** Binds 127.0.0.1:port; a port in use is the user's error to fix, and the feed goes with a server that failed. */
function listen(server: http.Server, port: number, jobs: { close(): void }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      jobs.close();
      reject(e.code === 'EADDRINUSE' ? new JobqError('IO', `port ${port} on 127.0.0.1 is in use: choose another with --port`) : e);
    });
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

/** Serves the dashboard until the process is stopped. */
export async function serve(b: Backend, opts: { port: number; token: string; restart: (id: string) => Promise<string> }) {
  const site: Site = { b, jobs: jobsFeed(() => jobsTable(b), b.changesPath()), token: opts.token, port: opts.port, restart: opts.restart };
  // Whatever a request does, it never takes the server down: a failure ends that one answer.
  const server = http.createServer((req, res) => void handle(site, req, res).catch(() => res.destroy()));
  await listen(server, opts.port, site.jobs);
  server.on('close', () => site.jobs.close());
  // --port 0: the kernel picked one; the Host check uses the real one.
  site.port = (server.address() as AddressInfo).port;
  return { server, port: site.port };
}

/**
 * `--detach`: the dashboard as a jobq job of its own (it outlives this terminal; `jobq cancel jobq-ui` ends it). The
 * token goes in the environment, never on a command line other users can read in /proc; the URL printed is the one
 * the job bound (with --port 0, the port it got), read back from its log.
 */
async function detach(port: number, token: string): Promise<number> {
  const jobq = [process.execPath, process.argv[1]!];
  const r = spawnCli(['run', 'jobq-ui', '--json', '--replace', '--', ...jobq, 'ui', '--port', String(port)], {
    ...process.env,
    JOBQ_UI_TOKEN: token,
    JOBQ_UI_DETACHED: '1',
  });
  let out = '';
  r.stdout.on('data', (d) => (out += d));
  const code = await new Promise<number>((resolve) => r.on('exit', (c) => resolve(c ?? 1)));
  if (code !== 0) return code;
  const rec = JSON.parse(out) as { id: string; log: string };
  const until = Date.now() + 15_000;
  for (;;) {
    const line = /^dashboard: (\S+)/m.exec(fs.existsSync(rec.log) ? fs.readFileSync(rec.log, 'utf8') : '');
    if (line) {
      process.stdout.write(`dashboard: ${line[1]}\n(running as job ${rec.id}; stop it: jobq cancel jobq-ui)\n`);
      return EXIT.ok;
    }
    if (Date.now() > until) throw new JobqError('IO', `the dashboard job ${rec.id} did not start serving; see jobq tail ${rec.id}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** How long the browser has to read the launch page before it is removed. */
const LAUNCH_PAGE_MS = 60_000;

/**
 * `--open`: the browser gets the path of a page only we can read (0600 in a fresh 0700 directory) that forwards it to
 * the tokened URL; the URL itself would land in xdg-open's and the browser's argv, which every local user reads in ps.
 */
function openInBrowser(url: string): { remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-ui-'));
  const page = path.join(dir, 'open.html');
  const attr = url.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
  fs.writeFileSync(
    page,
    `<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer"><meta http-equiv="refresh" content="0;url=${attr}"><title>jobq dashboard</title><a href="${attr}">open the jobq dashboard</a>\n`,
    { mode: 0o600, flag: 'wx' },
  );
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  setTimeout(remove, LAUNCH_PAGE_MS).unref();
  openDetached(page, () => process.stderr.write('jobq: --open: xdg-open is not available; open the URL above yourself\n'));
  return { remove };
}

export default async function ui(o: { port?: string; open?: boolean; detach?: boolean }, cmd: Command): Promise<number> {
  const port = o.port === undefined ? 8765 : Number(o.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new JobqError('USAGE', `invalid --port '${o.port}': 0 (any free one) to 65535`);
  const token = process.env.JOBQ_UI_TOKEN || randomBytes(16).toString('hex');
  const detached = process.env.JOBQ_UI_DETACHED === '1';
  // The key stays with this server: jobs it restarts must not inherit it.
  delete process.env.JOBQ_UI_TOKEN;
  delete process.env.JOBQ_UI_DETACHED;
  if (o.detach) return detach(port, token);
  const ctx = context(cmd);
  const b = ctx.backend;
  const { server, port: bound } = await serve(b, {
    port,
    token,
    // The same operation as `jobq restart ID`, its warnings in the server's output.
    restart: async (id) => {
      const warn = (line: string) => process.stderr.write(`jobq: ${line}\n`);
      const { rec } = await b.restart(id, { callerEnv: process.env, warn });
      if (rec.state.status === 'failed-to-start') throw new JobqError('IO', `${rec.id} failed to start: ${rec.state.error}`);
      return rec.id;
    },
  });
  const here = `http://127.0.0.1:${bound}/?token=${token}`;
  // Its log is read by someone with no terminal on it: a detached dashboard stops by its job name.
  const stop = detached ? 'stop it: jobq cancel jobq-ui' : 'Ctrl-C to stop';
  process.stdout.write(`dashboard: ${here}\n(serving on 127.0.0.1 only; ${stop}; the token in the URL is its key)\n`);
  const launcher = o.open ? openInBrowser(here) : undefined;
  // A closed terminal (HUP) stops it as Ctrl-C does, so the launch page goes with it.
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => resolve());
  });
  launcher?.remove();
  server.close();
  server.closeAllConnections();
  return EXIT.ok;
}

export const command: CommandDef = {
  name: 'ui',
  summary: 'a local web dashboard: live jobs, logs (whole, searched), memory and CPU charts, confirmed actions (127.0.0.1, token)',
  options: [
    { flags: '-p, --port <n>', description: 'port on 127.0.0.1', default: '8765' },
    { flags: '--open', description: 'open it in the browser (xdg-open gets a page only you can read, never the tokened URL)' },
    { flags: '--detach', description: 'run it as a jobq job of its own (jobq cancel jobq-ui stops it)' },
  ],
  afterHelp: `
It prints a URL with a random token; requests without the token, with a Host other than
127.0.0.1/localhost, or a POST from another origin are refused (docs/ui.md).

The page: the list (filter by state and name; arrays as one row with their progress; why each
job waits or failed), and for a job its memory and CPU charts, its live log, the whole log
(streamed, searchable, downloadable), and Cancel / Pause / Resume / Restart, each confirmed.
Keys: / filter, j k or arrows move, Enter opens an array.

Examples:
  jobq ui                  # foreground; Ctrl-C stops it
  jobq ui --port 9000 --open
  jobq ui --detach         # survives the terminal
  ssh -L 8765:127.0.0.1:8765 gpubox   # then open the printed URL on your laptop`,
  load: () => import('./ui.js'),
};
