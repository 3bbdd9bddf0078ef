// `jobq mcp`: an MCP server over stdio, so a coding agent runs heavy work through jobq instead of in its own shell.

import fs from 'node:fs';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { type JSONRPCMessage, JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Command } from 'commander';
import { z } from 'zod';
import type { Backend, JobView, RunSpec } from '../backend/backend.js';
import { specFrom } from '../backend/spec.js';
import { EXIT, JobqError } from '../domain/errors.js';
import { exitCodeOf, globOf, isFinal, type ProcId, RETRY_ON, statesOf, VERSION, validateOwner } from '../domain/job.js';
import { outcomeOf } from '../domain/lifecycle.js';
import { formatDuration, formatSize, parseDuration, sleep } from '../domain/units.js';
import { lastLine, lastLinesText, readSince } from '../output/follow.js';
import { elapsedMs, stateLabel } from '../output/format.js';
import { jobJson } from '../output/json.js';
import { bootId, isAlive, isOrphan, procId } from '../process/proc.js';
import { context } from './context.js';
import type { CommandDef } from './definition.js';

const MAX_TAIL_BYTES = 16 * 1024;
/** The longest line (one JSON-RPC message) read from stdin: the SDK's own stdio bound, so memory stays bounded. */
const MAX_LINE_BYTES = 10 * 1024 * 1024;

/**
 * The SDK's StdioServerTransport, but no bad line goes unanswered or ends the server (JSON-RPC 2.0): not JSON gets
 * -32700, JSON that is not a JSON-RPC message -32600, and a line over MAX_LINE_BYTES -32600 at once, the rest of it
 * dropped up to its newline as it comes; every valid line goes to the SDK as before.
 */
class LineTransport implements Transport {
  onmessage?: (message: JSONRPCMessage) => void;
  onerror?: (error: Error) => void;
  onclose?: () => void;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private skipping = false;

  async start(): Promise<void> {
    process.stdin.on('data', this.onData);
    process.stdin.on('error', this.onError);
  }

  async close(): Promise<void> {
    process.stdin.off('data', this.onData);
    process.stdin.off('error', this.onError);
    this.held = [];
    this.onclose?.();
  }

  send(message: JSONRPCMessage): Promise<void> {
    return this.write(message);
  }

  private write(message: object): Promise<void> {
    return new Promise((resolve) => (process.stdout.write(`${JSON.stringify(message)}\n`) ? resolve() : process.stdout.once('drain', resolve)));
  }

  /** Answers a line the SDK never sees; id null unless the line is a request whose id can be read. */
  private fail(code: number, message: string, id: string | number | null = null): void {
    void this.write({ jsonrpc: '2.0', id, error: { code, message } });
  }

  private onError = (e: Error) => this.onerror?.(e);

  private onData = (chunk: Buffer) => {
    for (let rest = chunk; ; ) {
      const nl = rest.indexOf(10);
      const part = nl === -1 ? rest : rest.subarray(0, nl);
      if (!this.skipping && this.heldBytes + part.length > MAX_LINE_BYTES) {
        this.held = [];
        this.heldBytes = 0;
        this.skipping = true;
        this.fail(-32600, `Invalid Request: line longer than ${MAX_LINE_BYTES} bytes (10 MiB), skipped up to its newline`);
      }
      if (!this.skipping) {
        this.held.push(part);
        this.heldBytes += part.length;
      }
      if (nl === -1) return;
      if (!this.skipping) this.line(Buffer.concat(this.held, this.heldBytes).toString('utf8'));
      this.held = [];
      this.heldBytes = 0;
      this.skipping = false;
      rest = rest.subarray(nl + 1);
    }
  };

  private line(text: string): void {
    if (text.trim() === '') return; // a blank line is no message: nothing to answer
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.fail(-32700, 'Parse error: the line is not valid JSON');
      return;
    }
    const m = JSONRPCMessageSchema.safeParse(value);
    if (m.success) {
      this.onmessage?.(m.data);
      return;
    }
    // Echo only a request's id: an id on a malformed response is the client's own and would settle its request.
    const r = (typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {}) as { id?: unknown; method?: unknown };
    const id = 'method' in r && (typeof r.id === 'string' || typeof r.id === 'number') ? r.id : null;
    this.fail(-32600, 'Invalid Request: not a JSON-RPC 2.0 message', id);
  }
}

/** A tool's answer: structured (its outputSchema) and the same JSON as text (what every client shows), or jobq's one-line error as a tool error. */
async function answer(fn: () => Promise<Record<string, unknown>>) {
  try {
    const structuredContent = await fn();
    return { content: [{ type: 'text' as const, text: JSON.stringify(structuredContent, null, 2) }], structuredContent };
  } catch (e) {
    return { content: [{ type: 'text' as const, text: `jobq: ${(e as Error).message}` }], isError: true };
  }
}

/** One line of why a job ended as it did (or waits), for an agent to act on; undefined when the state says it all. */
function reasonOf(v: JobView): string | undefined {
  const s = v.state;
  if (s.status === 'failed-to-start') return s.error;
  if (s.status === 'skipped' || s.status === 'lost') return s.reason;
  if (s.status === 'oom') return s.reason ?? 'out of memory';
  if (s.status === 'timeout') return s.reason === 'idle' ? 'no output for its --idle-timeout' : 'ran past its --timeout';
  if (s.status === 'cancelled') return `cancelled by ${s.cancel.by} (${s.cancel.signal})`;
  if (s.status === 'queued') return v.waiting?.reason;
  return undefined;
}

/**
 * The one summary shape every tool returns: what the job is, how it stands or ended and why, its time, memory and
 * GPUs, its last line as a terminal shows it, where its log is. A job that has just exited is looked at again for a
 * moment, so its outcome is what comes back, not "recording".
 */
async function summary(b: Backend, id: string) {
  let v = await b.get(id, { withMemory: true });
  for (const until = Date.now() + 1000; !isFinal(v.state) && v.supervisorAlive && v.rec.job && !isAlive(v.rec.job) && Date.now() < until; ) {
    await sleep(20);
    v = await b.get(id, { withMemory: true });
  }
  const s = v.state;
  const done = outcomeOf(s);
  const e = elapsedMs(v);
  const reason = reasonOf(v);
  const last = lastLine(v.rec.log);
  return {
    id,
    name: v.rec.name,
    state: stateLabel(v),
    status: s.status,
    final: isFinal(s),
    exitCode: isFinal(s) ? exitCodeOf(s) : null,
    ...(done?.signal ? { signal: done.signal } : {}),
    ...(reason ? { reason } : {}),
    ...(e === undefined ? {} : { elapsed: formatDuration(e), elapsedMs: e }),
    ...(v.memBytes ? { memBytes: v.memBytes } : {}),
    ...(done?.peakMemBytes ? { peakMemBytes: done.peakMemBytes } : {}),
    ...(v.rec.protection.memLimitBytes ? { memLimitBytes: v.rec.protection.memLimitBytes } : {}),
    ...(v.rec.gpus?.length ? { gpus: v.rec.gpus } : {}),
    ...(v.rec.admission?.gpuMemBytes ? { gpuMemBytes: v.rec.admission.gpuMemBytes } : {}),
    ...(v.vramBytes !== undefined ? { vramBytes: v.vramBytes } : {}),
    ...(done?.peakVramBytes !== undefined ? { peakVramBytes: done.peakVramBytes } : {}),
    ...(last ? { lastLine: last } : {}),
    log: v.rec.log,
    ...(v.waiting ? { waiting: { position: v.waiting.position, reason: v.waiting.reason } } : {}),
    ...(v.rec.owner ? { owner: v.rec.owner.id, ...(v.rec.owner.cleanup ? { cleanup: v.rec.owner.cleanup } : {}) } : {}),
    ...(isOrphan(v) ? { orphan: true } : {}),
  };
}

/** The summary's shape, for the tools' output schemas (loose: a tool adds its own fields). */
function summarySchema() {
  return z.looseObject({
    id: z.string(),
    name: z.string(),
    state: z.string().describe('as jobq status labels it, e.g. "failed (3)", "queued (gpu #1)"'),
    status: z.string(),
    final: z.boolean(),
    exitCode: z.number().int().nullable().describe("once final: wait's code (128+signal for a signal, 124 timeout)"),
    signal: z.string().optional(),
    reason: z.string().optional().describe('why it ended as it did, or waits, in one line'),
    elapsed: z.string().optional(),
    elapsedMs: z.number().optional(),
    memBytes: z.number().optional(),
    peakMemBytes: z.number().optional(),
    memLimitBytes: z.number().optional(),
    gpus: z.array(z.number()).optional(),
    gpuMemBytes: z.number().optional().describe('VRAM reserved on each of its GPUs (--gpu-mem)'),
    vramBytes: z.number().optional().describe("GPU memory the job's processes hold now (bytes)"),
    peakVramBytes: z.number().optional(),
    lastLine: z.string().optional(),
    log: z.string(),
    waiting: z.object({ position: z.number(), reason: z.string().optional() }).optional(),
    owner: z.string().optional(),
    cleanup: z.literal('session').optional(),
    orphan: z.boolean().optional().describe('live, but the MCP session that started it is gone'),
  });
}

/** An answer that lists jobs: `{ jobs: [summary…] }` and what a tool adds. */
const jobsSchema = () => z.looseObject({ jobs: z.array(summarySchema()) });

/** What the server tells an agent when it connects: when to use jobq, and how to wait without timing out. */
const INSTRUCTIONS = `jobq runs heavy or long commands (training, data processing, builds, anything that may take minutes or much memory) detached from this session, each in its own process group and cgroup, with a log and a recorded outcome. Use jobq_run for such commands instead of your own shell: a Bash tool times out, a background shell dies with the session, and an OOM kill in your shell can take the session down. Then jobq_wait (it returns within 50 s by default, "still running" included: call it again, or pass timeoutSeconds with a progress token for longer), jobq_tail (pass since: next from the last answer to read only what is new), jobq_status, jobq_cancel.`;

/** This connection: the owner its jobs get unless told, its process (gone: its jobs are orphans), the jobs it cancels on close. */
interface Session {
  owner: () => string;
  proc: ProcId & { boot: string };
  cleanup: Set<string>;
  /** Runs starts one after another: a guard rail's count and the start it allows are not raced by a second call. */
  serial: <T>(fn: () => Promise<T>) => Promise<T>;
}

/** What every tool uses: the server it is registered on, the backend, the config run reads, the jobs whose end is announced. */
interface Tools {
  server: McpServer;
  b: Backend;
  config: ReturnType<typeof context>['config'];
  watched: Set<string>;
  session: Session;
}

// Built when the server starts, not at load: a command definition read at every start must not touch zod.
const job = () => z.string().describe('a job NAME (its latest job), id or number');
const READ_ONLY = { readOnlyHint: true, destructiveHint: false, openWorldHint: false };

/** Jobs this client started: when one ends, a logging notification says so (no polling needed by the agent). */
function announceEnds(b: Backend, server: McpServer): Set<string> {
  const watched = new Set<string>();
  const endWatch = setInterval(() => {
    for (const id of watched) {
      void b
        .view(id)
        .then(async (v) => {
          if (!isFinal(v.state) || !watched.delete(id)) return;
          const s = await summary(b, id);
          await server.sendLoggingMessage({ level: s.exitCode === 0 ? 'info' : 'warning', logger: 'jobq', data: { event: 'job ended', ...s } });
          server.sendResourceListChanged();
        })
        .catch(() => watched.delete(id));
    }
  }, 1000);
  endWatch.unref();
  return watched;
}

/** A string option's value: given empty it is refused, never taken as not given (an agent's unset variable). */
const given = () => z.string().min(1, 'empty: leave it out, or give a value');

/** jobq_run's arguments: `jobq run`'s options, as an agent passes them. */
function runInput() {
  return {
    name: z.string().describe('job name: letters, digits, . _ -'),
    command: z.array(z.string()).min(1).describe('the command and its arguments, e.g. ["python", "train.py", "--epochs", "3"]'),
    cwd: given().optional().describe("working directory (default: the server's)"),
    env: z.record(z.string(), z.string()).optional().describe('extra environment variables'),
    memLimit: given().optional().describe('memory limit enforced by the kernel, e.g. "8G"'),
    memHigh: given().optional().describe('soft limit: above it the job is throttled, never killed (cgroup v2), e.g. "6G"'),
    timeout: given().optional().describe('end the job after this long, e.g. "2h"'),
    idleTimeout: given().optional().describe('end the job after this long without output'),
    memsafe: z.boolean().optional().describe('single-threaded BLAS/OpenMP and fewer malloc arenas'),
    queue: given().optional().describe('wait for a free slot of this queue'),
    priority: z.number().int().optional().describe('within the queue, higher starts first'),
    after: z.array(z.string()).optional().describe('start only after these jobs succeeded'),
    array: given().optional().describe('a job array FROM-TO[:STEP][%K], e.g. "1-20%4": one job NAME.i per value, {} in the command replaced by it'),
    gpus: z.number().int().positive().optional().describe('GPUs it needs (CUDA_VISIBLE_DEVICES is set)'),
    gpuMem: given().optional().describe('VRAM to reserve on each of its GPUs, e.g. "20G": jobs share a GPU while their reservations fit'),
    gpuMemEnforce: z.boolean().optional().describe('end the job (oom, by gpu-mem) once it holds more GPU memory than gpuMem'),
    mem: given().optional().describe('memory it needs free before it starts, e.g. "16G" (it waits for it)'),
    replace: z.boolean().optional().describe('if a job of this name is live, cancel it first (the answer names it)'),
    retry: z.number().int().min(1).max(100).optional().describe('run it again up to this many more times after a failure (JOBQ_ATTEMPT in the job)'),
    retryOn: z.array(z.enum(RETRY_ON)).optional().describe('which ends are retried (default: all; a cancel never)'),
    retryDelay: given().optional().describe('wait before the next attempt, doubled each time, e.g. "10s"'),
    owner: given().optional().describe("who the job belongs to, to find it later (jobq_status owner); default: this session's owner"),
    cleanup: z
      .enum(['detached', 'session'])
      .optional()
      .describe('detached (default): the job outlives this session; session: it is cancelled when this connection closes'),
  };
}

/** The config's guard rails for agents: a memory cap (also the default limit) and live jobs per owner; else a one-line refusal. */
async function guardRails(
  b: Backend,
  limits: Tools['config']['agents'],
  spec: Pick<RunSpec, 'memLimitBytes' | 'array'> & { adding?: number },
  owner: string,
  session: Session,
  memLimit = formatSize(spec.memLimitBytes ?? 0),
): Promise<number | undefined> {
  const max = limits.maxMemLimitBytes;
  if (max !== undefined && spec.memLimitBytes !== undefined && spec.memLimitBytes > max)
    throw new JobqError('USAGE', `memLimit ${memLimit} is over agents.maxMemLimit ${formatSize(max)} (jobq config shows where it is set)`);
  if (limits.maxLive !== undefined) {
    // This session's jobs count whatever owner they were given: a new owner label is no way around the limit.
    const live = (await b.liveOwnedBy(owner, session.proc)).length;
    const adding = spec.adding ?? spec.array?.values.length ?? 1;
    if (live + adding > limits.maxLive)
      throw new JobqError(
        'CONFLICT',
        `owner ${owner} has ${live} live job${live === 1 ? '' : 's'}; agents.maxLive allows ${limits.maxLive} (wait for one, or cancel one)`,
      );
  }
  return spec.memLimitBytes ?? max;
}

/** jobq_run's handler: starts the job (or array) as `jobq run` would, and watches for its end; a job that cannot start is an error. */
async function startJob({ b, config, watched, session }: Tools, a: z.infer<z.ZodObject<ReturnType<typeof runInput>>>) {
  const replaced: string[] = [];
  const owner = validateOwner(a.owner ?? session.owner());
  const asked = specFrom(
    a.name,
    a.command,
    {
      cwd: a.cwd,
      env: Object.entries(a.env ?? {}).map(([k, v]) => `${k}=${v}`),
      memLimit: a.memLimit,
      memHigh: a.memHigh,
      timeout: a.timeout,
      idleTimeout: a.idleTimeout,
      memsafe: a.memsafe,
      queue: a.queue,
      priority: a.priority === undefined ? undefined : String(a.priority),
      after: a.after,
      array: a.array,
      gpus: a.gpus === undefined ? undefined : String(a.gpus),
      gpuMem: a.gpuMem,
      gpuMemEnforce: a.gpuMemEnforce,
      mem: a.mem,
      replace: a.replace,
      retry: a.retry === undefined ? undefined : String(a.retry),
      retryOn: a.retryOn?.join(','),
      retryDelay: a.retryDelay,
    },
    config,
  );
  const limit = await guardRails(b, config.agents, asked, owner, session, a.memLimit);
  const spec = limit === undefined ? asked : { ...asked, memLimitBytes: limit };
  const cleanup = a.cleanup === 'session';
  // runArray submits one job, or an array's elements, alike.
  const recs = await b.runArray({
    ...spec,
    owner: { id: owner, session: session.proc, ...(cleanup ? { cleanup: 'session' as const } : {}) },
    onReplaced: (id) => replaced.push(id),
  });
  for (const rec of recs) {
    watched.add(rec.id);
    if (cleanup) session.cleanup.add(rec.id);
  }
  const rec = recs[0]!;
  if (!spec.array && rec.state.status === 'failed-to-start') throw new JobqError('START_FAILED', `${rec.id} failed to start: ${rec.state.error}`);
  const said = {
    ...(replaced.length ? { replaced } : {}),
    ...(rec.protection.warnings.length ? { warnings: rec.protection.warnings } : {}),
    ...(asked.memLimitBytes === undefined && spec.memLimitBytes !== undefined
      ? { note: `memLimit ${formatSize(spec.memLimitBytes)}: agents.maxMemLimit` }
      : {}),
  };
  if (spec.array) return { array: spec.name, jobs: await Promise.all(recs.map((r) => summary(b, r.id))), ...said };
  return { ...(await summary(b, rec.id)), ...said };
}

/** jobq_run: the tool an agent should use instead of its own shell for heavy work. */
function runTool(t: Tools): void {
  t.server.registerTool(
    'jobq_run',
    {
      title: 'Run a heavy command as a jobq job',
      description:
        'Start a heavy or long-running command (training, data processing, builds, rendering, anything that may take minutes or much memory) as a jobq job: detached in its own session and process group, logged to a file, protected by a memory limit and timeouts, so an OOM kill or a crash cannot take down this agent session or its terminal. Use this instead of running such commands in your own shell. Returns at once with the job summary (an array: its elements); follow it with jobq_wait and jobq_tail, or let it be: when it ends, a logging notification (logger "jobq", event "job ended") brings its summary. A command that cannot start is an error with the reason.',
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
      inputSchema: runInput(),
      outputSchema: summarySchema()
        .partial()
        .extend({ array: z.string().optional(), jobs: z.array(summarySchema()).optional(), replaced: z.array(z.string()).optional() }),
    },
    (a) => answer(() => t.session.serial(() => startJob(t, a))),
  );
}

/** jobq_status: summaries of the jobs (or one), filtered as `jobq status` filters them. */
function statusTool({ server, b }: Tools): void {
  server.registerTool(
    'jobq_status',
    {
      title: 'Jobs and how they stand',
      description:
        'List jobs (running first, then recent ones) as summaries: state, exit code or signal, the reason in one line, elapsed time, memory, last output line, log path. Filter by state, name, owner, or orphans (live jobs whose MCP session is gone). With job, that one job; with raw, its whole record too.',
      annotations: READ_ONLY,
      inputSchema: {
        job: job().optional(),
        state: z.array(z.string()).optional().describe('only jobs in these states (running, queued, failed, oom, …; live and ended for groups)'),
        name: z.string().optional().describe('only jobs whose NAME matches (* and ? as wildcards)'),
        owner: z.string().optional().describe("only jobs of this owner (jobq_run owner; a session id finds an earlier session's jobs)"),
        orphans: z.boolean().optional().describe('only live jobs whose MCP session is gone'),
        all: z.boolean().optional().describe('every job, not only running and the 20 most recent'),
        raw: z.boolean().optional().describe('with job: its whole record as stored, under record'),
      },
      outputSchema: summarySchema()
        .partial()
        .extend({ jobs: z.array(summarySchema()).optional(), hidden: z.number().int().optional(), record: z.looseObject({}).optional() }),
    },
    (a) =>
      answer(async () => {
        if (a.job) {
          const v = await b.get(a.job, { withMemory: true });
          return { ...(await summary(b, v.rec.id)), ...(a.raw ? { record: jobJson(v) } : {}) };
        }
        const states = a.state?.length ? statesOf(a.state.join(',')) : undefined;
        const named = a.name ? globOf(a.name) : undefined;
        const owner = a.owner === undefined ? undefined : validateOwner(a.owner);
        const filtered = !!(states || named || owner || a.orphans);
        const { views, hidden } = await b.list({ all: !!a.all || filtered, recent: 20, withMemory: false });
        const chosen = views.filter(
          (v) =>
            (!states || states.has(v.state.status)) && (!named || named(v.rec.name)) && (!owner || v.rec.owner?.id === owner) && (!a.orphans || isOrphan(v)),
        );
        return { jobs: await Promise.all(chosen.map((v) => summary(b, v.rec.id))), ...(filtered ? {} : { hidden }) };
      }),
  );
}

/** jobq_tail: a job's log, bounded, and from a cursor so that polling never reads anything twice. */
function tailTool({ server, b }: Tools): void {
  server.registerTool(
    'jobq_tail',
    {
      title: "A job's log, bounded",
      description:
        'A job\'s log as a terminal shows it (\\r progress collapses to its last state). Without since: the last lines (at most 500 and 16 KiB). With since (the next from a previous answer): only what was written since, and a new next, so polling never reads anything twice. match keeps only lines matching a regular expression (e.g. "loss=|Error").',
      annotations: READ_ONLY,
      inputSchema: {
        job: job(),
        lines: z.number().int().min(1).max(500).optional().describe('how many lines (default 50), without since'),
        since: z.number().int().min(0).optional().describe('a byte offset: the next of a previous answer (0: from the top)'),
        match: z.string().max(200).optional().describe('only lines matching this regular expression'),
      },
      outputSchema: summarySchema().extend({
        output: z.string(),
        next: z.number().int().describe('the byte offset to pass as since next time'),
        more: z.boolean().optional().describe('more was written than one answer holds: call again with next'),
        restarted: z.string().optional(),
      }),
    },
    (a) =>
      answer(async () => {
        const v = await b.get(a.job);
        let match: RegExp | undefined;
        try {
          match = a.match ? new RegExp(a.match) : undefined;
        } catch (e) {
          throw new JobqError('USAGE', `invalid match: ${(e as Error).message}`);
        }
        const s = await summary(b, v.rec.id);
        if (a.since !== undefined) return { ...s, ...readSince(v.rec.log, a.since, MAX_TAIL_BYTES, match) };
        let size = 0;
        try {
          size = fs.statSync(v.rec.log).size;
        } catch {
          /* not written yet */
        }
        const text = lastLinesText(v.rec.log, match ? 500 : (a.lines ?? 50), MAX_TAIL_BYTES);
        const output = match
          ? text
              .split('\n')
              .filter((l) => match.test(l))
              .slice(-(a.lines ?? 50))
              .join('\n')
          : text;
        return { ...s, output, next: size };
      }),
  );
}

/** jobq_wait: waits within a client's timeout, or longer with progress notifications that keep the client waiting. */
function waitTool({ server, b }: Tools): void {
  server.registerTool(
    'jobq_wait',
    {
      title: 'Wait for a job to end',
      description:
        'Wait for a job to end and return its summary (exit code, reason). Returns within 50 s by default, below common 60 s client timeouts, with timedOut: true if it still runs (call again). With a progress token it sends progress every 5 s, so a client that resets its timeout on progress can pass timeoutSeconds up to a day.',
      annotations: READ_ONLY,
      inputSchema: {
        job: job(),
        timeoutSeconds: z.number().positive().max(86_400).optional().describe('how long to wait (default 50; over 50 only with a progress token)'),
      },
      outputSchema: summarySchema().extend({ timedOut: z.boolean(), note: z.string().optional() }),
    },
    (a, extra) =>
      answer(async () => {
        const id = b.resolve(a.job);
        const token = extra._meta?.progressToken;
        // Without progress a client times out at its own limit (often 60 s): never wait past 50 s then.
        const seconds = token === undefined ? Math.min(a.timeoutSeconds ?? 50, 50) : (a.timeoutSeconds ?? 50);
        const t0 = Date.now();
        let said = t0;
        const v = await b.waitFinal(id, t0 + seconds * 1000, (now) => {
          if (token === undefined || Date.now() - said < 5000) return;
          said = Date.now();
          void extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken: token, progress: Math.round((said - t0) / 1000), message: `${stateLabel(now)} ${lastLine(now.rec.log)}`.trim() },
          });
        });
        const s = await summary(b, id);
        return v ? { ...s, timedOut: false } : { ...s, timedOut: true, note: `still ${s.state} after ${seconds} s: call jobq_wait again` };
      }),
  );
}

/** jobq_cancel: stops a job (or every live one of a NAME, or of an owner) as `jobq cancel` does. */
function cancelTool({ server, b }: Tools): void {
  server.registerTool(
    'jobq_cancel',
    {
      title: 'Stop a job',
      description:
        'Stop a job: SIGTERM to its whole process group (its TERM handler runs), SIGKILL after the grace. A NAME means its latest job; all: true stops every live job of that NAME (or every element of an array); owner (without job) every live job of that owner.',
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
      inputSchema: {
        job: job().optional(),
        all: z.boolean().optional().describe('every live job of that NAME'),
        owner: z.string().optional().describe('without job: every live job of this owner'),
        grace: z.string().optional().describe('time before SIGKILL, e.g. "30s" (default: the job\'s own --grace, else 10s)'),
      },
      outputSchema: jobsSchema(),
    },
    (a) =>
      answer(async () => {
        if ((a.job === undefined) === (a.owner === undefined)) throw new JobqError('USAGE', 'give job or owner: one of them');
        const graceMs = a.grace ? parseDuration(a.grace, 'grace') : undefined;
        const ids =
          a.job === undefined
            ? await b.liveOwnedBy(validateOwner(a.owner!))
            : a.all || b.arrayIds(a.job).length
              ? await b.resolveAll(a.job)
              : [b.resolve(a.job)];
        return {
          jobs: await Promise.all(
            ids.map(async (id) => {
              const { outcome } = await b.cancel(id, { graceMs });
              return { ...(await summary(b, id)), outcome };
            }),
          ),
        };
      }),
  );
}

/** jobq_restart: a job's command, cwd and settings again as a new job (a live one of that NAME is stopped first). */
function restartTool({ server, b, config, session, watched }: Tools): void {
  server.registerTool(
    'jobq_restart',
    {
      title: 'Run a job again',
      description:
        "Run a job's command again, with its cwd, environment, limits and queue, as a new job of the same NAME; a live job of that NAME is stopped first (TERM, grace, KILL) unless keep: true starts the new one beside it. Returns the new job's summary and the old job's id.",
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
      inputSchema: { job: job(), keep: z.boolean().optional().describe('start beside a live job of that NAME instead of stopping it') },
      outputSchema: summarySchema().extend({ restarted: z.string(), notes: z.array(z.string()).optional() }),
    },
    (a) =>
      answer(() =>
        session.serial(async () => {
          const notes: string[] = [];
          const v = await b.get(a.job);
          const old = v.rec;
          const owner = { id: old.owner?.id ?? session.owner(), session: session.proc, ...(old.owner?.cleanup ? { cleanup: old.owner.cleanup } : {}) };
          // The same guard rails as a run: the limit it gets (config's cap if it had none), and live jobs per owner.
          // A live job it replaces (no keep) frees its place as the new one takes it.
          const adding = a.keep || isFinal(v.state) ? 1 : 0;
          const memLimitBytes = await guardRails(b, config.agents, { memLimitBytes: old.protection.memLimitBytes, adding }, owner.id, session);
          const { rec } = await b.restart(a.job, { keep: a.keep, owner, memLimitBytes, callerEnv: process.env, warn: (l) => notes.push(l) });
          watched.add(rec.id);
          if (owner.cleanup) session.cleanup.add(rec.id);
          return { ...(await summary(b, rec.id)), restarted: old.id, ...(notes.length ? { notes } : {}) };
        }),
      ),
  );
}

/** jobq_queue: the queues and why each waiting job waits; sets a queue's slots or pauses it. */
function queueTool({ server, b }: Tools): void {
  server.registerTool(
    'jobq_queue',
    {
      title: 'Queues',
      description:
        "Queues: slots, running jobs, waiting jobs in start order and why each waits; without a queue named, also the jobs waiting in none (an array's cap, a dependency, memory, GPUs). With slots, set a queue's slots; with paused, pause or resume it.",
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
      inputSchema: { queue: z.string().optional(), slots: z.number().int().positive().optional(), paused: z.boolean().optional() },
      outputSchema: {
        queues: z.array(z.looseObject({ name: z.string(), slots: z.number(), paused: z.boolean() })),
        waitingOutsideQueues: z.array(z.looseObject({ id: z.string() })).optional(),
      },
    },
    (a) =>
      answer(async () => {
        if (a.queue && (a.slots !== undefined || a.paused !== undefined)) {
          await b.updateQueue(a.queue, { ...(a.slots !== undefined ? { slots: a.slots } : {}), ...(a.paused !== undefined ? { paused: a.paused } : {}) });
        }
        const { queues, outside } = await b.queues(a.queue ? [a.queue] : b.queueNames());
        const waiting = (w: (typeof outside)[number]) => ({ id: w.view.rec.id, position: w.position, reason: w.reason, waitingFor: w.waitingFor });
        return {
          queues: queues.map((q) => ({
            name: q.name,
            slots: q.slots,
            paused: q.paused,
            running: q.running.map((v) => v.rec.id),
            waiting: q.waiting.map(waiting),
          })),
          // Without a queue named: the jobs that wait in none (an array's cap, a dependency, memory, GPUs, a retry).
          ...(a.queue ? {} : { waitingOutsideQueues: outside.map(waiting) }),
        };
      }),
  );
}

/** jobq_pause and jobq_resume: hold a running job where it is (it keeps its slot), and let it go on. */
function pauseTools({ server, b }: Tools): void {
  for (const [tool, act] of [
    ['jobq_pause', (id: string) => b.pause(id)],
    ['jobq_resume', (id: string) => b.resume(id)],
  ] as const) {
    server.registerTool(
      tool,
      {
        title: tool === 'jobq_pause' ? 'Pause a job' : 'Resume a job',
        description:
          tool === 'jobq_pause'
            ? 'Stop every process of a running job for now (cgroup freezer, else SIGSTOP); it keeps its queue slot.'
            : 'Continue a paused job.',
        annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
        inputSchema: { job: job() },
        outputSchema: jobsSchema(),
      },
      (a) =>
        answer(async () => {
          const ids = await b.resolveAll(a.job);
          for (const id of ids) await act(id);
          return { jobs: await Promise.all(ids.map((id) => summary(b, id))) };
        }),
    );
  }
}

/** Jobs as resources, jobq://jobs/ID: the live and recent ones listed, each read as its summary. */
function jobResources({ server, b }: Tools): void {
  server.registerResource(
    'job',
    new ResourceTemplate('jobq://jobs/{id}', {
      list: async () => ({
        resources: (await b.list({ all: false, recent: 20, withMemory: false })).views.map((v) => ({
          uri: `jobq://jobs/${v.rec.id}`,
          name: v.rec.id,
          description: `${v.rec.name}: ${stateLabel(v)}`,
          mimeType: 'application/json',
        })),
      }),
    }),
    { title: 'A jobq job', description: "A job's summary (as jobq_status returns it)", mimeType: 'application/json' },
    async (uri, { id }) => ({
      contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(await summary(b, b.resolve(String(id))), null, 2) }],
    }),
  );
}

/** The tools the server offers, in the order a client lists them, and its resources. */
const TOOLS = [runTool, statusTool, tailTool, waitTool, cancelTool, restartTool, queueTool, pauseTools, jobResources];

/** This server's session: its owner is `jobq mcp --owner`, else $JOBQ_OWNER, else the client's name and this pid. */
function openSession(server: McpServer, asked: string | undefined): Session {
  const me = procId(process.pid)!;
  let owner = asked === undefined ? undefined : validateOwner(asked);
  let chain: Promise<unknown> = Promise.resolve();
  return {
    owner: () => {
      const client = (server.server.getClientVersion()?.name ?? 'mcp').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '');
      owner ??= `${client.slice(0, 100) || 'mcp'}.${process.pid}`;
      return owner;
    },
    proc: { ...me, boot: bootId() },
    cleanup: new Set(),
    serial: (fn) => {
      const next = chain.then(fn);
      chain = next.catch(() => undefined);
      return next;
    },
  };
}

/** When the connection closes: the jobs run with cleanup: session are cancelled, each saying why. */
async function closeSession(b: Backend, session: Session): Promise<void> {
  const by = `jobq mcp: session of ${session.owner()} closed`;
  await Promise.all([...session.cleanup].map((id) => b.cancel(id, { by }).catch(() => undefined)));
}

export default async function mcp(o: { owner?: string }, cmd: Command): Promise<number> {
  const ctx = context(cmd);
  const b = ctx.backend;
  const server = new McpServer({ name: 'jobq', version: VERSION }, { instructions: INSTRUCTIONS, capabilities: { logging: {} } });
  const watched = announceEnds(b, server);
  const session = openSession(server, o.owner ?? (process.env.JOBQ_OWNER || undefined));
  for (const register of TOOLS) register({ server, b, config: ctx.config, watched, session });

  await server.connect(new LineTransport());
  // Serves until the client closes stdin (or ends the server with a signal).
  await new Promise<void>((resolve) => {
    process.stdin.once('close', resolve);
    for (const sig of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) process.once(sig, resolve);
  });
  await closeSession(b, session);
  return EXIT.ok;
}

export const command: CommandDef = {
  name: 'mcp',
  summary: 'serve jobq to a coding agent over stdio (Model Context Protocol): jobq_run, _status, _tail, _wait, _cancel, _restart, _queue, _pause, _resume',
  options: [
    { flags: '--owner <label>', description: "the owner of the jobs this session runs (default $JOBQ_OWNER, else the client's name and the server's pid)" },
  ],
  afterHelp: `
Register it with an agent (docs/agents.md), e.g.:
  claude mcp add jobq -- jobq mcp
  codex mcp add jobq -- jobq mcp
  { "mcpServers": { "jobq": { "command": "jobq", "args": ["mcp"] } } }
Its tool descriptions tell the agent to run heavy work through jobq rather than in its own shell.
Jobs run detached by default; jobq_run with cleanup: "session" cancels them when the connection closes.
config "agents": {"maxLive": 4, "maxMemLimit": "16G"} bounds what an agent may start (docs/config.md).

Examples:
  jobq mcp                      # speaks MCP on stdin/stdout until stdin closes
  jobq mcp --owner ci-agent     # its jobs are found by jobq status --owner ci-agent`,
  load: () => import('./mcp.js'),
};
