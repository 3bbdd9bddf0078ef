// `jobq mcp`: an MCP server over stdio, so a coding agent runs heavy work through jobq instead of in its own shell.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { type JSONRPCMessage, JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Command } from 'commander';
import { z } from 'zod';
import type { Backend } from '../backend/backend.js';
import { EXIT } from '../domain/errors.js';
import { exitCodeOf, isFinal } from '../domain/job.js';
import { parseDuration } from '../domain/units.js';
import { lastLinesText } from '../output/follow.js';
import { stateLabel } from '../output/format.js';
import { jobJson } from '../output/json.js';
import { context } from './context.js';
import { specFrom } from './run.js';

declare const JOBQ_VERSION: string;
const version = typeof JOBQ_VERSION === 'string' ? JOBQ_VERSION : '0.0.0-dev';

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

/** A tool's answer: JSON as text (what every MCP client shows), or jobq's one-line error as a tool error. */
async function answer(fn: () => Promise<unknown>) {
  try {
    return { content: [{ type: 'text' as const, text: JSON.stringify(await fn(), null, 2) }] };
  } catch (e) {
    return { content: [{ type: 'text' as const, text: `jobq: ${(e as Error).message}` }], isError: true };
  }
}

/** A short summary of a job for an agent: what it is, how it stands, where its log is. */
async function summary(b: Backend, id: string) {
  const v = await b.view(id);
  return {
    id,
    name: v.rec.name,
    state: stateLabel(v),
    status: v.state.status,
    final: isFinal(v.state),
    exitCode: isFinal(v.state) ? exitCodeOf(v.state) : null,
    log: v.rec.log,
    ...(v.waiting ? { waiting: v.waiting } : {}),
  };
}

export default async function mcp(_o: unknown, cmd: Command): Promise<number> {
  const ctx = context(cmd);
  const b = ctx.backend;
  const server = new McpServer({ name: 'jobq', version });
  const job = z.string().describe('a job NAME (its latest job) or id');

  server.registerTool(
    'run',
    {
      description:
        'Start a heavy or long-running command (training, data processing, builds, rendering, anything that may take minutes or much memory) as a jobq job: detached in its own session and process group, logged to a file, protected by a memory limit and timeouts, so an OOM kill or a crash cannot take down this agent session or its terminal. Use this instead of running such commands in your own shell. Returns at once with the job id; follow it with wait and tail.',
      inputSchema: {
        name: z.string().describe('job name: letters, digits, . _ -'),
        command: z.array(z.string()).min(1).describe('the command and its arguments, e.g. ["python", "train.py", "--epochs", "3"]'),
        cwd: z.string().optional().describe("working directory (default: the server's)"),
        env: z.record(z.string(), z.string()).optional().describe('extra environment variables'),
        memLimit: z.string().optional().describe('memory limit enforced by the kernel, e.g. "8G"'),
        timeout: z.string().optional().describe('end the job after this long, e.g. "2h"'),
        idleTimeout: z.string().optional().describe('end the job after this long without output'),
        memsafe: z.boolean().optional().describe('single-threaded BLAS/OpenMP and fewer malloc arenas'),
        queue: z.string().optional().describe('wait for a free slot of this queue'),
        after: z.array(z.string()).optional().describe('start only after these jobs succeeded'),
        gpus: z.number().int().positive().optional().describe('GPUs it needs (CUDA_VISIBLE_DEVICES is set)'),
        replace: z.boolean().optional().describe('if a job of this name runs, cancel it first'),
      },
    },
    (a) =>
      answer(async () => {
        const spec = specFrom(
          a.name,
          a.command,
          {
            cwd: a.cwd,
            env: Object.entries(a.env ?? {}).map(([k, v]) => `${k}=${v}`),
            memLimit: a.memLimit,
            timeout: a.timeout,
            idleTimeout: a.idleTimeout,
            memsafe: a.memsafe,
            queue: a.queue,
            after: a.after,
            gpus: a.gpus === undefined ? undefined : String(a.gpus),
            replace: a.replace,
          },
          ctx.config,
        );
        const rec = await b.run(spec);
        return { ...(await summary(b, rec.id)), warnings: rec.protection.warnings };
      }),
  );

  server.registerTool(
    'status',
    {
      description: 'List jobs (running first, then recent ones), or show one job in detail: state, exit code, pid, memory, log path, why it waits.',
      inputSchema: { job: job.optional(), all: z.boolean().optional().describe('every job, not only running and the 20 most recent') },
    },
    (a) =>
      answer(async () => {
        if (a.job) return jobJson(await b.get(a.job, { withMemory: true }));
        const { views, broken, hidden } = await b.list({ all: !!a.all, recent: 20, withMemory: true });
        return {
          jobs: views.map((v) => ({ id: v.rec.id, name: v.rec.name, state: stateLabel(v), ...(v.memBytes ? { memBytes: v.memBytes } : {}) })),
          broken,
          hidden,
        };
      }),
  );

  server.registerTool(
    'tail',
    {
      description:
        "The last lines of a job's log as a terminal would show them (progress bars written with \\r collapse to their last state). At most 500 lines and 16 KiB.",
      inputSchema: { job, lines: z.number().int().min(1).max(500).optional().describe('how many lines (default 50)') },
    },
    (a) =>
      answer(async () => {
        const v = await b.get(a.job);
        return { ...(await summary(b, v.rec.id)), output: lastLinesText(v.rec.log, a.lines ?? 50, MAX_TAIL_BYTES) };
      }),
  );

  server.registerTool(
    'wait',
    {
      description:
        'Wait for a job to end, up to a bounded time (default 60 s, at most 600 s); returns its state and exit code, or its current state if it is still running (then call wait again).',
      inputSchema: { job, timeoutSeconds: z.number().positive().max(600).optional() },
    },
    (a) =>
      answer(async () => {
        const id = b.resolve(a.job);
        const v = await b.waitFinal(id, Date.now() + (a.timeoutSeconds ?? 60) * 1000);
        return { ...(await summary(b, id)), timedOut: !v };
      }),
  );

  server.registerTool(
    'cancel',
    {
      description: 'Stop a job: SIGTERM to its whole process group (its TERM handler runs), SIGKILL after the grace; a NAME stops every live job of that name.',
      inputSchema: { job, grace: z.string().optional().describe('time before SIGKILL, e.g. "30s" (default: the job\'s own --grace, else 10s)') },
    },
    (a) =>
      answer(async () => {
        const graceMs = a.grace ? parseDuration(a.grace, 'grace') : undefined;
        const ids = await b.resolveAll(a.job);
        return { results: await Promise.all(ids.map((id) => b.cancel(id, { graceMs }))) };
      }),
  );

  server.registerTool(
    'queue',
    {
      description:
        "Queues: slots, running jobs, waiting jobs in start order and why each waits. With slots, set a queue's slots; with paused, pause or resume it.",
      inputSchema: { queue: z.string().optional(), slots: z.number().int().positive().optional(), paused: z.boolean().optional() },
    },
    (a) =>
      answer(async () => {
        if (a.queue && (a.slots !== undefined || a.paused !== undefined)) {
          await b.updateQueue(a.queue, { ...(a.slots !== undefined ? { slots: a.slots } : {}), ...(a.paused !== undefined ? { paused: a.paused } : {}) });
        }
        const qs = await b.queues(a.queue ? [a.queue] : b.queueNames());
        return qs.map((q) => ({
          name: q.name,
          slots: q.slots,
          paused: q.paused,
          running: q.running.map((v) => v.rec.id),
          waiting: q.waiting.map((w) => ({ id: w.view.rec.id, position: w.position, reason: w.reason, waitingFor: w.waitingFor })),
        }));
      }),
  );

  for (const [tool, act] of [
    ['pause', (id: string) => b.pause(id)],
    ['resume', (id: string) => b.resume(id)],
  ] as const) {
    server.registerTool(
      tool,
      {
        description:
          tool === 'pause' ? 'Stop every process of a running job for now (cgroup freezer, else SIGSTOP); it keeps its queue slot.' : 'Continue a paused job.',
        inputSchema: { job },
      },
      (a) =>
        answer(async () => {
          const ids = await b.resolveAll(a.job);
          for (const id of ids) await act(id);
          return Promise.all(ids.map((id) => summary(b, id)));
        }),
    );
  }

  await server.connect(new LineTransport());
  // Serves until the client closes stdin.
  await new Promise<void>((resolve) => process.stdin.once('close', resolve));
  return EXIT.ok;
}
