// Issue 14: `jobq mcp` driven by the MCP SDK's own client over stdio — list tools, run, wait, tail, cancel, errors.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alive, BIN, pollUntil, start, useWorld } from '../helpers/jobq.js';

const w = useWorld();
let client: Client;
const others: Client[] = [];
/** A client of a new `jobq mcp` server, as an agent starts one (its name is the default owner's). */
async function connect(name = 'jobq-test', args: string[] = []): Promise<Client> {
  const c = new Client({ name, version: '1.0.0' });
  await c.connect(
    new StdioClientTransport({ command: process.execPath, args: [BIN, 'mcp', ...args], env: { ...(process.env as Record<string, string>), ...w.env } }),
  );
  return c;
}
beforeEach(async () => {
  client = await connect();
});
afterEach(async () => {
  await client.close();
  for (const c of others.splice(0)) await c.close();
});

/** Calls a tool and returns its JSON answer (or throws with the tool error's text); the structured answer is the same JSON. */
async function call(name: string, args: Record<string, unknown>, via = client): Promise<any> {
  const r = (await via.callTool({ name, arguments: args })) as { content: Array<{ text: string }>; isError?: boolean; structuredContent?: unknown };
  if (r.isError) throw new Error(r.content[0]!.text);
  const answer = JSON.parse(r.content[0]!.text);
  expect(r.structuredContent).toEqual(answer);
  return answer;
}

describe('jobq mcp', () => {
  it('lists its tools, prefixed, annotated, each telling an agent what it is for; the server says when to use it', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      'jobq_cancel',
      'jobq_pause',
      'jobq_queue',
      'jobq_restart',
      'jobq_resume',
      'jobq_run',
      'jobq_status',
      'jobq_tail',
      'jobq_wait',
    ]);
    const by = (n: string) => tools.find((t) => t.name === n)!;
    expect(by('jobq_run').description).toMatch(/instead of running such commands in your own shell/);
    for (const n of ['jobq_status', 'jobq_tail', 'jobq_wait']) expect(by(n).annotations).toMatchObject({ readOnlyHint: true });
    expect(by('jobq_cancel').annotations).toMatchObject({ destructiveHint: true, readOnlyHint: false });
    for (const t of tools) expect(t.inputSchema.type).toBe('object');
    // Every tool says what it returns; the summary's fields are typed for the client.
    for (const t of tools) expect(t.outputSchema?.type).toBe('object');
    expect(Object.keys(by('jobq_wait').outputSchema!.properties!)).toEqual(expect.arrayContaining(['id', 'state', 'exitCode', 'reason', 'timedOut']));
    expect(by('jobq_restart').annotations).toMatchObject({ destructiveHint: true });
    expect(client.getInstructions()).toMatch(/instead of your own shell/);
  });

  it('run, wait, tail (\\r collapsed, bounded), status: one summary shape', async () => {
    const r = await call('jobq_run', { name: 'agentjob', command: ['sh', '-c', 'printf "step 1\\rstep 2\\rstep 3\\n"; echo "BG=$BG_JOB"; exit 3'] });
    expect(r).toMatchObject({ name: 'agentjob', log: expect.stringContaining('agentjob_') });
    expect(r).not.toHaveProperty('asker');
    const done = await call('jobq_wait', { job: 'agentjob', timeoutSeconds: 30 });
    expect(done).toMatchObject({ status: 'failed', state: 'failed (3)', exitCode: 3, final: true, timedOut: false, lastLine: 'BG=1' });
    expect(typeof done.elapsedMs).toBe('number');
    const t = await call('jobq_tail', { job: 'agentjob', lines: 5 });
    expect(t.output).toBe('step 3\nBG=1\n');
    const s = await call('jobq_status', {});
    expect(s.jobs[0]).toMatchObject({ name: 'agentjob', state: 'failed (3)', exitCode: 3 });
    // One job: the summary, the raw record only on request.
    expect(await call('jobq_status', { job: 'agentjob' })).not.toHaveProperty('record');
    expect((await call('jobq_status', { job: 'agentjob', raw: true })).record).toHaveProperty('boot');
  });

  it('a fast job comes back ended, not "recording"; a missing command is an error with its reason', async () => {
    const fast = await call('jobq_run', { name: 'fast', command: ['true'] });
    expect(fast.state).not.toMatch(/recording/);
    expect(fast.status === 'running' || fast.status === 'succeeded').toBe(true);
    await expect(call('jobq_run', { name: 'nope', command: ['/no/such/binary'] })).rejects.toThrow(/^jobq: nope_\S+ failed to start: command not found/);
  });

  it('tail with since returns only what is new, and a next to go on from; match filters lines', async () => {
    const go = `${w.home}/go`;
    await call('jobq_run', {
      name: 'talk',
      command: ['sh', '-c', `echo loss=1; echo noise; while [ ! -e ${go} ]; do sleep 0.05; done; echo loss=2; echo Error: x`],
    });
    const first = await pollUntil(
      async () => {
        const t = await call('jobq_tail', { job: 'talk', since: 0 });
        return t.output.includes('noise') ? t : undefined;
      },
      10_000,
      'the first lines',
    );
    expect(first.output).toBe('loss=1\nnoise');
    fs.writeFileSync(go, '');
    await call('jobq_wait', { job: 'talk', timeoutSeconds: 20 });
    const second = await call('jobq_tail', { job: 'talk', since: first.next });
    expect(second.output).toBe('loss=2\nError: x');
    expect(second.next).toBeGreaterThan(first.next);
    expect((await call('jobq_tail', { job: 'talk', since: second.next })).output).toBe('');
    expect((await call('jobq_tail', { job: 'talk', match: 'loss=|Error' })).output).toBe('loss=1\nloss=2\nError: x');
    await expect(call('jobq_tail', { job: 'talk', match: '(' })).rejects.toThrow(/^jobq: invalid match/);
  });

  it('wait is bounded and says so; cancel of a NAME stops its latest job only, and its handler runs', async () => {
    const first = await call('jobq_run', { name: 'long', command: ['sh', '-c', 'trap "echo bye; exit 0" TERM; while :; do sleep 0.1; done'] });
    // A second live job of that NAME (a person's, beside it): the NAME means the latest.
    const second = (await w.run(['run', 'long', '-q', '--allow-duplicate', '--', 'sleep', '60'])).stdout.trim();
    const w1 = await call('jobq_wait', { job: first.id, timeoutSeconds: 1 });
    expect(w1).toMatchObject({ status: 'running', final: false, timedOut: true, note: expect.stringMatching(/call jobq_wait again/) });
    const c = await call('jobq_cancel', { job: 'long' });
    expect(c.jobs.map((j: { id: string }) => j.id)).toEqual([second]);
    expect(c.jobs[0]).toMatchObject({ outcome: 'cancelled', status: 'cancelled', exitCode: 143, reason: expect.stringMatching(/^cancelled by /) });
    expect(JSON.stringify(c)).not.toMatch(/startTicks|asker/);
    expect((await call('jobq_status', { job: first.id })).status).toBe('running');
    await call('jobq_cancel', { job: first.id });
    expect((await call('jobq_tail', { job: first.id })).output).toMatch(/bye\n\[jobq\] cancelled at /);
  });

  it('a job this client started sends a notification when it ends, with its summary', async () => {
    const got: Array<{ level: string; logger?: string; data: any }> = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      got.push(n.params as (typeof got)[number]);
    });
    const r = await call('jobq_run', { name: 'notify', command: ['sh', '-c', 'sleep 0.5; echo done; exit 2'] });
    const n = await pollUntil(() => got.find((m) => m.data?.id === r.id), 15_000, 'the end notification');
    expect(n).toMatchObject({ level: 'warning', logger: 'jobq', data: { event: 'job ended', status: 'failed', exitCode: 2, lastLine: 'done' } });
    // Once: by the time a later job's end is told (watch rounds after), the first was told no second time.
    const later = await call('jobq_run', { name: 'notify2', command: ['sleep', '1.5'] });
    await pollUntil(() => got.find((m) => m.data?.id === later.id), 15_000, 'the later end notification');
    expect(got.filter((m) => m.data?.id === r.id)).toHaveLength(1);
    expect(got.find((m) => m.data?.id === later.id)).toMatchObject({ level: 'info', data: { exitCode: 0 } });
  });

  it('run with replace names the job it stopped', async () => {
    const a = await call('jobq_run', { name: 'rep', command: ['sleep', '60'] });
    const b = await call('jobq_run', { name: 'rep', command: ['sleep', '60'], replace: true });
    expect(b.replaced).toEqual([a.id]);
    await call('jobq_cancel', { job: 'rep' });
  });

  it('queue, pause and resume: an agent holds a queue, sees why a job waits, then lets it go', async () => {
    const q = await call('jobq_queue', { queue: 'agents', slots: 1, paused: true });
    expect(q).toEqual({ queues: [{ name: 'agents', slots: 1, paused: true, running: [], waiting: [] }] });
    // No queue named: every queue, and what waits in none (here, an array's cap).
    const gated = await call('jobq_run', { name: 'gated', array: '1-2%1', command: ['sleep', '30'] });
    const all = await call('jobq_queue', {});
    expect(all.queues.map((x: { name: string }) => x.name)).toContain('agents');
    expect(all.waitingOutsideQueues).toEqual([expect.objectContaining({ id: gated.jobs[1].id, waitingFor: 'array-cap', position: 1 })]);
    await call('jobq_cancel', { job: 'gated' });
    const r = await call('jobq_run', { name: 'held', queue: 'agents', command: ['sh', '-c', 'echo go; sleep 30'] });
    expect(r).toMatchObject({ status: 'queued', reason: expect.stringMatching(/paused/) });
    const [waiting] = (await call('jobq_queue', { queue: 'agents' })).queues[0].waiting;
    expect(waiting).toMatchObject({ id: r.id, position: 1, waitingFor: 'queue-paused' });
    await call('jobq_queue', { queue: 'agents', paused: false });
    // Resumed: the dispatcher starts it within a round or two.
    await pollUntil(async () => (await call('jobq_status', { job: r.id })).status === 'running', 10_000, 'the job to start');
    expect((await call('jobq_status', { state: ['running'] })).jobs.map((j: { id: string }) => j.id)).toEqual([r.id]);
    expect((await call('jobq_status', { name: 'hel?' })).jobs).toHaveLength(1);
    const p = await call('jobq_pause', { job: 'held' });
    expect(p.jobs[0]).toMatchObject({ status: 'paused' });
    const back = await call('jobq_resume', { job: 'held' });
    expect(back.jobs[0]).toMatchObject({ status: 'running' });
    await call('jobq_cancel', { job: 'held' });
  });

  it('owners: a job run with an owner is found and cancelled by it; the default owner is the client and server', async () => {
    const mine = await call('jobq_run', { name: 'own1', owner: 'sess-1', command: ['sleep', '60'] });
    const also = await call('jobq_run', { name: 'own2', owner: 'sess-1', command: ['sleep', '60'] });
    const other = await call('jobq_run', { name: 'own3', command: ['sleep', '60'] });
    expect(mine.owner).toBe('sess-1');
    expect(other.owner).toMatch(/^jobq-test\.\d+$/);
    // An agent that restarted finds its jobs again by its session id, from another connection and from the CLI.
    const later = await connect('jobq-test-2');
    others.push(later);
    const found = await call('jobq_status', { owner: 'sess-1' }, later);
    expect(found.jobs.map((j: { id: string }) => j.id).sort()).toEqual([mine.id, also.id].sort());
    const cli = JSON.parse((await w.run(['status', '--owner', 'sess-1', '--json'])).stdout);
    expect(cli.jobs.map((j: { id: string }) => j.id).sort()).toEqual([mine.id, also.id].sort());
    const c = await call('jobq_cancel', { owner: 'sess-1' }, later);
    expect(c.jobs.map((j: { id: string; status: string }) => [j.id, j.status]).sort()).toEqual(
      [
        [mine.id, 'cancelled'],
        [also.id, 'cancelled'],
      ].sort(),
    );
    expect((await call('jobq_status', { job: other.id })).status).toBe('running');
    await expect(call('jobq_cancel', {})).rejects.toThrow(/^jobq: give job or owner/);
    expect((await w.run(['cancel', '--owner', other.owner])).stdout).toMatch(/^cancelled own3_/);
    expect((await w.run(['status', '--owner', 'bad owner!'])).stderr).toMatch(/^jobq: invalid owner/);
  });

  it('a session closing cancels its cleanup: session jobs; a detached one lives on, listed as an orphan', async () => {
    const agent = await connect('agent-x');
    const bound = await call(
      'jobq_run',
      { name: 'bound', cleanup: 'session', command: ['sh', '-c', 'trap "echo bye; exit 0" TERM; while :; do sleep 0.1; done'] },
      agent,
    );
    const free = await call('jobq_run', { name: 'free', command: ['sleep', '60'] }, agent);
    expect(bound).toMatchObject({ cleanup: 'session', status: 'running' });
    // Restarted by the session, it stays tied to it.
    const rebound = await call('jobq_restart', { job: bound.id }, agent);
    expect(rebound).toMatchObject({ cleanup: 'session', status: 'running' });
    expect(JSON.parse((await w.run(['status', '--orphans', '--json'])).stdout).jobs).toEqual([]);
    await agent.close();
    const gone = await pollUntil(
      async () => {
        const v = await call('jobq_status', { job: rebound.id });
        return v.final ? v : undefined;
      },
      15_000,
      'the session job to be cancelled',
    );
    expect(gone).toMatchObject({ status: 'cancelled', reason: expect.stringMatching(/^cancelled by jobq mcp: session of agent-x\.\d+ closed/) });
    expect(fs.readFileSync(gone.log, 'utf8')).toMatch(/bye/);
    expect((await call('jobq_status', { job: free.id })).status).toBe('running');
    // Orphans: live, with the session that started them gone; the CLI and the tool say the same.
    const orphans = await pollUntil(
      async () => {
        const o = JSON.parse((await w.run(['status', '--orphans', '--json'])).stdout).jobs;
        return o.length ? o : undefined;
      },
      10_000,
      'the orphan',
    );
    expect(orphans.map((j: { id: string }) => j.id)).toEqual([free.id]);
    expect((await call('jobq_status', { orphans: true })).jobs).toEqual([expect.objectContaining({ id: free.id, orphan: true })]);
    expect((await w.run(['status', free.id])).stdout).toMatch(/owner\s+agent-x\.\d+ \(MCP session pid \d+\)/);
    await w.run(['cancel', free.id]);
  });

  it('guard rails from config: a memory cap (and default limit) for agents, and live jobs per owner', async () => {
    fs.mkdirSync(`${w.env.XDG_CONFIG_HOME}/jobq`, { recursive: true });
    fs.writeFileSync(`${w.env.XDG_CONFIG_HOME}/jobq/config.json`, JSON.stringify({ agents: { maxLive: 2, maxMemLimit: '256M' } }));
    const agent = await connect('capped');
    others.push(agent);
    const a = await call('jobq_run', { name: 'cap1', command: ['sleep', '60'] }, agent);
    expect(a).toMatchObject({ memLimitBytes: 256 * 1024 ** 2, note: expect.stringMatching(/agents\.maxMemLimit/) });
    await expect(call('jobq_run', { name: 'cap2', memLimit: '1G', command: ['true'] }, agent)).rejects.toThrow(
      /^jobq: memLimit 1G is over agents\.maxMemLimit 256M/,
    );
    await expect(call('jobq_run', { name: 'cap3', array: '1-2', command: ['sleep', '60'] }, agent)).rejects.toThrow(
      /^jobq: owner capped\.\d+ has 1 live job; agents\.maxLive allows 2/,
    );
    // Neither a new owner label nor calls at once get past it: this session's jobs count, and starts are one at a time.
    const at = await Promise.allSettled([
      call('jobq_run', { name: 'cap4', owner: 'other-label', command: ['sleep', '60'] }, agent),
      call('jobq_run', { name: 'cap5', command: ['sleep', '60'] }, agent),
      call('jobq_run', { name: 'cap6', command: ['sleep', '60'] }, agent),
    ]);
    expect(at.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of at.filter((x) => x.status === 'rejected')) expect(String((r as PromiseRejectedResult).reason)).toMatch(/agents\.maxLive allows 2/);
    // A restart is held to the same rails: a second copy beside a live one is one too many; a job with no limit gets the cap.
    await expect(call('jobq_restart', { job: a.id, keep: true }, agent)).rejects.toThrow(/agents\.maxLive allows 2/);
    await call('jobq_cancel', { owner: 'other-label' }, agent);
    await call('jobq_cancel', { job: 'cap5' }, agent).catch(() => undefined);
    await call('jobq_cancel', { job: 'cap6' }, agent).catch(() => undefined);
    const shell = await start(w, 'nolimit', ['sleep', '60']);
    const again = await call('jobq_restart', { job: shell }, agent);
    expect(again.memLimitBytes).toBe(256 * 1024 ** 2);
    await call('jobq_cancel', { job: again.id }, agent);
    await call('jobq_cancel', { job: a.id }, agent);
    expect((await w.run(['config'])).stdout).toMatch(/agents\.maxLive\s+2/);
  });

  it('array and restart: an array comes back as its elements; restart runs a job again and names the old one', async () => {
    const flaky = await call('jobq_run', { name: 'flaky', retry: 1, command: ['sh', '-c', '[ "$JOBQ_ATTEMPT" = 2 ]'] });
    expect((await call('jobq_wait', { job: flaky.id, timeoutSeconds: 20 })).status).toBe('succeeded');
    const r = await call('jobq_run', { name: 'sw', array: '1-3', command: ['sh', '-c', 'echo value {}'] });
    expect(r.array).toBe('sw');
    expect(r.jobs.map((j: { name: string }) => j.name)).toEqual(['sw.1', 'sw.2', 'sw.3']);
    for (const j of r.jobs) await call('jobq_wait', { job: j.id, timeoutSeconds: 20 });
    expect((await call('jobq_tail', { job: 'sw.2' })).output).toBe('value 2\n');
    const again = await call('jobq_restart', { job: 'sw.2' });
    expect(again.restarted).toBe(r.jobs[1].id);
    expect(again.id).not.toBe(r.jobs[1].id);
    expect((await call('jobq_wait', { job: again.id, timeoutSeconds: 20 })).exitCode).toBe(0);
    // Jobs are resources too: listed, and read as their summary.
    const { resources } = await client.listResources();
    expect(resources.map((x) => x.uri)).toContain(`jobq://jobs/${again.id}`);
    const read = await client.readResource({ uri: `jobq://jobs/${again.id}` });
    expect(JSON.parse((read.contents[0] as { text: string }).text)).toMatchObject({ id: again.id, status: 'succeeded' });
  });

  it("errors come back as tool errors with jobq's one-line message", async () => {
    await expect(call('jobq_tail', { job: 'nosuchjob' })).rejects.toThrow(/^jobq: no job named or with id 'nosuchjob'/);
    await expect(call('jobq_run', { name: 'bad name!', command: ['true'] })).rejects.toThrow(/^jobq: invalid job name/);
    await expect(call('jobq_run', { name: '../../etc', command: ['true'] })).rejects.toThrow(/^jobq: invalid job name/);
    await expect(call('jobq_run', { name: 'ok', owner: '../x\n', command: ['true'] })).rejects.toThrow(/^jobq: invalid owner/);
    await expect(call('jobq_status', { owner: '$(id)' })).rejects.toThrow(/^jobq: invalid owner/);
    const r = (await client.callTool({ name: 'jobq_wait', arguments: { job: 'x', timeoutSeconds: 999_999 } })) as { isError?: boolean };
    expect(r.isError).toBe(true);
    const u = (await client.callTool({ name: 'no_such_tool', arguments: {} })) as { isError?: boolean };
    expect(u.isError).toBe(true);
    // An option given empty (an agent's unset variable) is refused, never taken as not given: no job is made.
    for (const opt of ['gpuMem', 'mem', 'timeout', 'queue']) {
      const e = (await client.callTool({ name: 'jobq_run', arguments: { name: 'empty', command: ['true'], [opt]: '' } })) as {
        isError?: boolean;
        content: Array<{ text: string }>;
      };
      expect(e.isError, opt).toBe(true);
      expect(e.content[0]!.text, opt).toMatch(/empty: leave it out/);
    }
    expect(w.ids().filter((id) => id.startsWith('empty'))).toEqual([]);
  });

  it('wait on a 90 s job: with default client options it returns normally within 50 s; with progress it waits to the end', async () => {
    await call('jobq_run', { name: 'slow', command: ['sleep', '90'] });
    const t0 = Date.now();
    let ticks = 0;
    const [plain, progressed] = await Promise.all([
      // A stock client: its own 60 s request timeout, no progress token.
      call('jobq_wait', { job: 'slow' }).then((r) => ({ r, at: Date.now() - t0 })),
      client
        .callTool({ name: 'jobq_wait', arguments: { job: 'slow', timeoutSeconds: 150 } }, undefined, {
          onprogress: () => ticks++,
          resetTimeoutOnProgress: true,
        })
        .then((r) => ({ r: JSON.parse((r as { content: Array<{ text: string }> }).content[0]!.text), at: Date.now() - t0 })),
    ]);
    expect(plain.at).toBeLessThan(60_000);
    expect(plain.r).toMatchObject({ timedOut: true, status: 'running' });
    expect(progressed.r).toMatchObject({ timedOut: false, status: 'succeeded', exitCode: 0 });
    expect(progressed.at).toBeGreaterThan(85_000);
    expect(ticks).toBeGreaterThanOrEqual(15);
  }, 150_000);
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
      expect(list.result.tools.map((t: { name: string }) => t.name)).toContain('jobq_run');
      expect(answers).toHaveLength(7);

      srv.stdin.end();
      expect(await pollUntil(() => srv.exitCode !== null && { code: srv.exitCode }, 10_000, 'the server to exit once stdin closed')).toEqual({ code: 0 });
    } finally {
      if (srv.exitCode === null && srv.signalCode === null) srv.kill('SIGKILL');
    }
  });
});
