// Issue 14: `jobq mcp` driven by the MCP SDK's own client over stdio — list tools, run, wait, tail, cancel, errors.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alive, BIN, pollUntil, type World, world } from '../helpers/jobq.js';

let w: World;
let client: Client;
beforeEach(async () => {
  w = world();
  client = new Client({ name: 'jobq-test', version: '1.0.0' });
  await client.connect(
    new StdioClientTransport({ command: process.execPath, args: [BIN, 'mcp'], env: { ...(process.env as Record<string, string>), ...w.env } }),
  );
});
afterEach(async () => {
  await client.close();
  await w.cleanup();
});

/** Calls a tool and returns its JSON answer (or throws with the tool error's text). */
async function call(name: string, args: Record<string, unknown>): Promise<any> {
  const r = (await client.callTool({ name, arguments: args })) as { content: Array<{ text: string }>; isError?: boolean };
  if (r.isError) throw new Error(r.content[0]!.text);
  return JSON.parse(r.content[0]!.text);
}

describe('jobq mcp', () => {
  it('lists its tools, each telling an agent what it is for', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['cancel', 'pause', 'queue', 'resume', 'run', 'status', 'tail', 'wait']);
    expect(tools.find((t) => t.name === 'run')!.description).toMatch(/instead of running such commands in your own shell/);
  });

  it('run, wait, tail (\\r collapsed, bounded), status', async () => {
    const r = await call('run', { name: 'agentjob', command: ['sh', '-c', 'printf "step 1\\rstep 2\\rstep 3\\n"; echo "BG=$BG_JOB"; exit 3'] });
    expect(r).toMatchObject({ name: 'agentjob', log: expect.stringContaining('agentjob_') });
    const done = await call('wait', { job: 'agentjob', timeoutSeconds: 30 });
    expect(done).toMatchObject({ status: 'failed', exitCode: 3, final: true, timedOut: false });
    const t = await call('tail', { job: 'agentjob', lines: 5 });
    expect(t.output).toBe('step 3\nBG=1\n');
    const s = await call('status', {});
    expect(s.jobs[0]).toMatchObject({ name: 'agentjob', state: 'failed (3)' });
  });

  it('wait is bounded and says so; cancel stops the job and its handler runs', async () => {
    await call('run', { name: 'long', command: ['sh', '-c', 'trap "echo bye; exit 0" TERM; while :; do sleep 0.1; done'] });
    const w1 = await call('wait', { job: 'long', timeoutSeconds: 1 });
    expect(w1).toMatchObject({ status: 'running', final: false, timedOut: true });
    const c = await call('cancel', { job: 'long' });
    expect(c.results[0]).toMatchObject({ outcome: 'cancelled', state: { status: 'cancelled', exitCode: 0 } });
    expect((await call('tail', { job: 'long' })).output).toMatch(/bye\n\[jobq\] cancelled at /);
  });

  it('queue, pause and resume: an agent holds a queue, sees why a job waits, then lets it go', async () => {
    const q = await call('queue', { queue: 'agents', slots: 1, paused: true });
    expect(q).toEqual([{ name: 'agents', slots: 1, paused: true, running: [], waiting: [] }]);
    const r = await call('run', { name: 'held', queue: 'agents', command: ['sh', '-c', 'echo go; sleep 30'] });
    const [waiting] = (await call('queue', { queue: 'agents' }))[0].waiting;
    expect(waiting).toMatchObject({ id: r.id, position: 1, waitingFor: 'queue-paused' });
    await call('queue', { queue: 'agents', paused: false });
    // Resumed: the dispatcher starts it within a round or two.
    for (let i = 0; i < 100 && (await call('status', { job: r.id })).state.status !== 'running'; i++) await new Promise((res) => setTimeout(res, 100));
    expect((await call('status', { job: r.id })).state.status).toBe('running');
    const p = await call('pause', { job: 'held' });
    expect(p[0]).toMatchObject({ status: 'paused' });
    const back = await call('resume', { job: 'held' });
    expect(back[0]).toMatchObject({ status: 'running' });
    await call('cancel', { job: 'held' });
  });

  it("errors come back as tool errors with jobq's one-line message", async () => {
    await expect(call('tail', { job: 'nosuchjob' })).rejects.toThrow(/^jobq: no job named or with id 'nosuchjob'/);
    await expect(call('run', { name: 'bad name!', command: ['true'] })).rejects.toThrow(/^jobq: invalid job name/);
    const r = (await client.callTool({ name: 'wait', arguments: { job: 'x', timeoutSeconds: 9999 } })) as { isError?: boolean };
    expect(r.isError).toBe(true);
  });
});

// Issue 20 item 10: raw bytes on the server's stdin, as a broken or hostile client sends them.
describe('jobq mcp on a raw pipe', () => {
  it('answers bad lines with JSON-RPC errors (-32700, -32600, a line over 10 MiB dropped unheld) and serves on', async () => {
    const srv = spawn(process.execPath, [BIN, 'mcp'], { env: { ...(process.env as Record<string, string>), ...w.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      const answers: any[] = [];
      let out = '';
      srv.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        for (let i = out.indexOf('\n'); i !== -1; i = out.indexOf('\n')) {
          answers.push(JSON.parse(out.slice(0, i)));
          out = out.slice(i + 1);
        }
      });
      srv.stderr.resume();
      srv.stdin.on('error', () => {}); // a server that died shows as a failed expectation, not an EPIPE crash
      const send = (data: string | Buffer) => new Promise<void>((res, rej) => srv.stdin.write(data, (e) => (e ? rej(e) : res())));
      const answer = (n: number) => pollUntil(() => answers[n], 15_000, `answer ${n + 1}`);
      /** One line of `mib` MiB: a ping, valid but for its size, written 1 MiB at a time with no newline until the end. */
      const hugeLine = async (mib: number) => {
        await send('{"jsonrpc":"2.0","id":99,"method":"ping","params":{"pad":"');
        const piece = Buffer.alloc(1024 * 1024, 'x');
        for (let i = 0; i < mib; i++) await send(piece);
        await send('"}}\n');
      };
      const nullIdError = (code: number, message: RegExp) => ({ jsonrpc: '2.0', id: null, error: { code, message: expect.stringMatching(message) } });

      await send('{not json}\n');
      expect(await answer(0)).toEqual(nullIdError(-32700, /^Parse error/));
      await send('{"foo":1}\n');
      expect(await answer(1)).toEqual(nullIdError(-32600, /^Invalid Request/));
      await send('{"jsonrpc":"2.0","id":7,"method":5}\n');
      expect(await answer(2)).toMatchObject({ id: 7, error: { code: -32600 } });

      await hugeLine(12);
      expect(await answer(3)).toEqual(nullIdError(-32600, /10 MiB/));
      expect(alive(srv.pid!)).toBe(true);
      // Then a 200 MiB line: a server that held a line to its newline would pass 200 MB here.
      await hugeLine(200);
      expect(await answer(4)).toEqual(nullIdError(-32600, /10 MiB/));
      const hwmKb = Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${srv.pid}/status`, 'utf8'))![1]);
      expect(hwmKb, `peak RSS ${hwmKb} kB`).toBeLessThan(150 * 1024);

      // Still the SDK's server underneath: initialize and tools/list answered as ever.
      await send(
        `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })}\n`,
      );
      expect(await answer(5)).toMatchObject({ id: 1, result: { serverInfo: { name: 'jobq' } } });
      await send('{"jsonrpc":"2.0","method":"notifications/initialized"}\n{"jsonrpc":"2.0","id":2,"method":"tools/list"}\n');
      const list = await answer(6);
      expect(list.id).toBe(2);
      expect(list.result.tools.map((t: { name: string }) => t.name)).toContain('run');
      expect(answers).toHaveLength(7);

      srv.stdin.end();
      expect(await pollUntil(() => srv.exitCode !== null && { code: srv.exitCode }, 10_000, 'the server to exit once stdin closed')).toEqual({ code: 0 });
    } finally {
      if (srv.exitCode === null && srv.signalCode === null) srv.kill('SIGKILL');
    }
  });
});
