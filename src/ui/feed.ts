// The dashboard's live feeds: one jobs snapshot per change shared by every viewer, and per-client event streams.
import fs from 'node:fs';
import type http from 'node:http';

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
export function jobsFeed(compute: () => Promise<unknown>, dir: string) {
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
export function stream(res: http.ServerResponse, next: () => Promise<Record<string, unknown>>): void {
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
      // Said once, not every second: the page shows it and stops asking (a removed job does not come back).
      const data = JSON.stringify({ error: (e as Error).message });
      if (last.get('error') !== data) res.write(frame('error', data));
      last.set('error', data);
    } finally {
      busy = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), 1000);
  res.on('close', () => clearInterval(timer));
}
