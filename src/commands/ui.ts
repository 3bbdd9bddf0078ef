// `jobq ui [--port N] [--open] [--detach]`: a local dashboard on 127.0.0.1, behind a random token.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import type { Backend, JobView } from '../backend/backend.js';
import { EXIT, JobqError } from '../domain/errors.js';
import { exitCodeOf, isFinal } from '../domain/job.js';
import { outcomeOf, startedAtOf } from '../domain/lifecycle.js';
import { formatDuration, formatSize } from '../domain/units.js';
import { lastLinesText } from '../output/follow.js';
import { elapsedMs, exitText, stateLabel } from '../output/format.js';
import { openDetached, spawnCli } from '../process/spawn.js';
import { PAGE } from '../ui/page.js';
import { context } from './context.js';
import type { CommandDef } from './definition.js';

const LOG_LINES = 200;

/** One row of the jobs table. */
function row(v: JobView) {
  const s = v.state;
  const e = elapsedMs(v);
  const peak = outcomeOf(s)?.peakMemBytes;
  return {
    id: v.rec.id,
    name: v.rec.name,
    status: s.status,
    label: stateLabel(v),
    pid: v.rec.job?.pid,
    started: (startedAtOf(s) || v.rec.createdAt).replace('T', ' ').slice(0, 19),
    elapsed: e === undefined ? '-' : formatDuration(e),
    exit: exitText(s),
    mem: v.memBytes ? formatSize(v.memBytes) : peak ? formatSize(peak) : '-',
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

/** The jobs table as the dashboard shows it: the live and recent jobs, with the counts in its header. */
async function jobsTable(b: Backend) {
  const { views, hidden } = await b.list({ all: false, recent: 100, withMemory: true });
  return {
    jobs: views.map(row),
    hidden,
    total: views.length + hidden,
    running: views.filter((v) => v.state.status === 'running').length,
    waiting: views.filter((v) => v.state.status === 'queued').length,
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
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const why = allowed(req, url, site.port, site.token);
  const send: Send = (code, body, type = 'application/json') => {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  if (why) return send(403, { error: why === 'host' ? 'not a loopback Host' : why === 'token' ? 'token missing or wrong' : 'cross-origin request refused' });
  try {
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (url.pathname === '/') return page(res);
    return await api(site, req, res, parts, send);
  } catch (e) {
    return send(e instanceof JobqError && e.code === 'NOT_FOUND' ? 404 : 400, { error: (e as Error).message });
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
    'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  });
  return res.end(PAGE.replace('<script>', `<script nonce="${nonce}">`));
}

/** The API the page uses: the jobs feed, one job, its log as events, cancel and restart. */
async function api(site: Site, req: http.IncomingMessage, res: http.ServerResponse, parts: string[], send: Send) {
  const { b, jobs } = site;
  if (parts[0] !== 'api') return send(404, { error: 'not found' });
  if (parts[1] === 'events') return jobs.follow(res);
  if (parts[1] === 'jobs' && parts.length === 2) return send(200, await jobs.current());
  const id = parts[2] ? b.resolve(parts[2]) : '';
  if (parts[1] === 'jobs' && parts.length === 3 && req.method === 'GET') return send(200, await jobDetail(b, id));
  if (parts[1] === 'jobs' && parts[3] === 'log' && req.method === 'GET') return stream(res, () => logEvents(b, id));
  if (parts[1] === 'jobs' && req.method === 'POST' && parts[3] === 'cancel') {
    const r = await b.cancel(id, {});
    return send(200, { message: `${r.outcome}: ${stateLabel({ state: r.state, supervisorAlive: false })}`, state: r.state.status });
  }
  if (parts[1] === 'jobs' && req.method === 'POST' && parts[3] === 'restart') {
    const newId = await site.restart(id);
    return send(200, { message: `restarted as ${newId}`, id: newId });
  }
  return send(404, { error: 'not found' });
}

/** One job's panel: its row, and what only the panel shows (command, log path, limit, samples). */
async function jobDetail(b: Backend, id: string) {
  const v = await b.get(id, { withMemory: true });
  return {
    ...row(v),
    final: isFinal(v.state),
    command: v.rec.argv.join(' '),
    log: v.rec.log,
    waiting: v.waiting?.reason,
    memLimit: v.rec.protection.memLimitBytes,
    samples: b.samples(id),
  };
}

/** The events of a job's log stream: the log's last lines, and its state as the panel shows it. */
async function logEvents(b: Backend, id: string) {
  const v = await b.view(id);
  return {
    log: { text: lastLinesText(v.rec.log, LOG_LINES) },
    state: { status: v.state.status, label: stateLabel(v), final: isFinal(v.state), exit: isFinal(v.state) ? exitCodeOf(v.state) : null },
  };
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
  const server = http.createServer((req, res) => handle(site, req, res));
  await listen(server, opts.port, site.jobs);
  server.on('close', () => site.jobs.close());
  // --port 0: the kernel picked one; the Host check uses the real one.
  site.port = (server.address() as AddressInfo).port;
  return { server, port: site.port };
}

/** How old a jobs snapshot may be when nothing changed: memory figures move without a file changing. */
const FRESH_MS = 1000;

/** An SSE frame: `event: NAME` and one `data:` line of JSON (JSON.stringify escapes every newline). */
const frame = (event: string, json: string) => `event: ${event}\ndata: ${json}\n\n`;

type Snap = { json: string; frame: Buffer; version: number; at: number };

/** The feed's state, shared by every viewer of the server. */
interface Feed {
  compute: () => Promise<unknown>;
  /** Bumped by each change seen; a snapshot is current if it was started after the latest one. */
  changes: number;
  snap?: Snap;
  running?: { version: number; done: Promise<Snap> };
  viewers: Set<(s: Snap | Error) => void>;
  timer?: NodeJS.Timeout;
  pumping: boolean;
  again: boolean;
}

/** Starts the one computation of a snapshot that every caller at this moment shares. */
function recompute(f: Feed): Promise<Snap> {
  const version = f.changes;
  const at = Date.now();
  const done: Promise<Snap> = f
    .compute()
    .then((v) => {
      const json = JSON.stringify(v);
      // Unchanged content keeps the same string, so each viewer's "already sent" check is a pointer compare.
      f.snap = json === f.snap?.json ? { ...f.snap, version, at } : { json, frame: Buffer.from(frame('jobs', json)), version, at };
      return f.snap;
    })
    .finally(() => {
      // Done or failed, the next caller starts afresh: an error is not cached.
      if (f.running?.done === done) f.running = undefined;
    });
  f.running = { version, done };
  return done;
}

/** The snapshot as of this call: no older than FRESH_MS and started after every change seen so far. */
async function snapshot(f: Feed): Promise<Snap> {
  const want = f.changes;
  for (;;) {
    if (f.snap && f.snap.version >= want && Date.now() - f.snap.at < FRESH_MS) return f.snap;
    if (f.running && f.running.version >= want) return f.running.done;
    // One computation at a time: one that started before the change is waited out, then one more serves everyone.
    if (f.running) await f.running.done.catch(() => undefined);
    else return recompute(f);
  }
}

/** Sends the current snapshot to every viewer; changes seen meanwhile make one more round, however many they were. */
async function pump(f: Feed): Promise<void> {
  if (f.pumping) {
    f.again = true;
    return;
  }
  f.pumping = true;
  try {
    do {
      f.again = false;
      const s = await snapshot(f).catch((e: Error) => e);
      for (const send of f.viewers) send(s);
    } while (f.again && f.viewers.size > 0);
  } finally {
    f.pumping = false;
  }
}

/** A change of the state dir (or the 1 s tick): viewers get the new snapshot. */
function changed(f: Feed): void {
  f.changes++;
  if (f.viewers.size > 0) void pump(f);
}

/** `/api/events`: a `jobs` event now and whenever the snapshot changes. */
function follow(f: Feed, res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
  let last: string | undefined;
  const send = (s: Snap | Error) => {
    if (s instanceof Error) res.write(frame('error', JSON.stringify({ error: s.message })));
    else if (s.json !== last) {
      last = s.json;
      res.write(s.frame);
    }
  };
  f.viewers.add(send);
  // Memory figures change with no file changing: while anyone watches, a fresh snapshot each second.
  f.timer ??= setInterval(() => changed(f), FRESH_MS);
  snapshot(f).then(send, send);
  res.on('close', () => {
    f.viewers.delete(send);
    if (f.viewers.size === 0) {
      clearInterval(f.timer);
      f.timer = undefined;
    }
  });
}

/**
 * The jobs table, one snapshot for the whole server: computed once per change of `dir` (watched once, not per viewer),
 * or when older than FRESH_MS, by one computation that every caller at that moment shares; its serialized frame is
 * written as is to every viewer. A 1 s timer runs only while a viewer is connected.
 */
function jobsFeed(compute: () => Promise<unknown>, dir: string) {
  const f: Feed = { compute, changes: 0, viewers: new Set(), pumping: false, again: false };
  let watcher: fs.FSWatcher | undefined;
  try {
    watcher = fs.watch(dir, () => changed(f));
    watcher.on('error', () => undefined);
  } catch {
    /* FRESH_MS still bounds how stale it gets */
  }

  return {
    current: async () => (await snapshot(f)).json,
    /** `/api/events`: a `jobs` event now and whenever the snapshot changes. */
    follow: (res: http.ServerResponse): void => follow(f, res),
    close(): void {
      clearInterval(f.timer);
      watcher?.close();
    },
  };
}

/**
 * Server-sent events for one client: each named field of `next()` as an event of that name, sent when it changes;
 * checked every second until the client goes.
 */
function stream(res: http.ServerResponse, next: () => Promise<Record<string, unknown>>): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
  const last = new Map<string, string>();
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      for (const [event, value] of Object.entries(await next())) {
        const data = JSON.stringify(value);
        if (last.get(event) === data) continue;
        last.set(event, data);
        res.write(frame(event, data));
      }
    } catch (e) {
      res.write(frame('error', JSON.stringify({ error: (e as Error).message })));
    } finally {
      busy = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), 1000);
  res.on('close', () => clearInterval(timer));
}

/**
 * `--detach`: the dashboard as a jobq job of its own (it outlives this terminal; `jobq cancel jobq-ui` ends it). The
 * token goes in the environment, never on a command line other users can read in /proc; the URL printed is the one
 * the job bound (with --port 0, the port it got), read back from its log.
 */
async function detach(port: number, token: string): Promise<number> {
  const jobq = [process.execPath, process.argv[1]!];
  const r = spawnCli(['run', 'jobq-ui', '--json', '--replace', '--', ...jobq, 'ui', '--port', String(port)], { ...process.env, JOBQ_UI_TOKEN: token });
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
  // The key stays with this server: jobs it restarts must not inherit it.
  delete process.env.JOBQ_UI_TOKEN;
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
  process.stdout.write(`dashboard: ${here}\n(serving on 127.0.0.1 only; Ctrl-C to stop; the token in the URL is its key)\n`);
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
  summary: 'a local web dashboard: live jobs table, logs, memory charts, cancel and restart (127.0.0.1, behind a token)',
  options: [
    { flags: '-p, --port <n>', description: 'port on 127.0.0.1', default: '8765' },
    { flags: '--open', description: 'open it in the browser (xdg-open gets a page only you can read, never the tokened URL)' },
    { flags: '--detach', description: 'run it as a jobq job of its own (jobq cancel jobq-ui stops it)' },
  ],
  afterHelp: `
It prints a URL with a random token; requests without the token, with a Host other than
127.0.0.1/localhost, or a POST from another origin are refused (docs/ui.md).

Examples:
  jobq ui                  # foreground; Ctrl-C stops it
  jobq ui --port 9000 --open
  jobq ui --detach         # survives the terminal
  ssh -L 8765:127.0.0.1:8765 gpubox   # then open the printed URL on your laptop`,
  load: () => import('./ui.js'),
};
