// jobq where users run it: a normal user, systemd as PID 1, cgroup v2, a user manager, systemd-oomd on. Every job
// here gets a transient scope (`--isolation auto`); each test checks what the user and systemd see of it.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, pollUntil, start, type World, world } from '../helpers/jobq.js';

const GUEST = !!process.env.JOBQ_GUEST;
const WHY = 'JOBQ_GUEST is not set: these tests run in the systemd guest (bash scripts/systemd-vm.sh test)';

/** A user command's output (never throws; the exit code is in the result). */
async function sh(cmd: string, env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const r = await execa('sh', ['-c', cmd], { reject: false, env, stdin: 'ignore', timeout: 120_000 });
  return { code: r.exitCode ?? -1, out: `${r.stdout}${r.stderr ? `\n${r.stderr}` : ''}` };
}

/** The transient units systemctl --user lists now (loaded, any state). */
async function scopes(): Promise<string> {
  return (await sh('systemctl --user list-units --all --plain --no-legend --type=scope')).out;
}

const unitOf = (id: string) => `jobq-${id}.scope`;

/** What a failed expectation should show: the record's state and the supervisor's log of the job. */
function dump(w: World, id: string): string {
  const diag = path.join(w.home, 'jobs', id, 'supervisor.log');
  return `${JSON.stringify(w.tryRecord(id)?.state)}\n${fs.existsSync(diag) ? fs.readFileSync(diag, 'utf8') : '(no supervisor.log)'}`;
}

describe.skipIf(!GUEST)(GUEST ? 'under a systemd user manager, as a normal user' : `systemd guest (skipped: ${WHY})`, () => {
  let w: World;
  beforeAll(() => {
    w = world();
  });
  afterAll(async () => {
    await w.cleanup();
  });

  it('50 consecutive `jobq run` starts: none fails to start, each in its own scope', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push(await start(w, `s${i}`, ['true']));
    for (const id of ids) await pollUntil(() => w.record(id).state.endedAt, 60_000, `${id} to end`);
    const states = ids.map((id) => w.record(id));
    expect(states.filter((r) => r.state.status === 'failed-to-start').map((r) => r.state.error)).toEqual([]);
    expect(states.map((r) => r.state.status)).toEqual(ids.map(() => 'succeeded'));
    expect(new Set(states.map((r) => r.protection.isolation))).toEqual(new Set(['systemd-scope']));
  });

  it('run, status, tail, wait: the scope is named for the job and described by its command', async () => {
    const id = await start(w, 'hello', ['sh', '-c', 'echo "hello from $BG_JOB"; sleep 3; exit 3']);
    const rec = await pollUntil(() => w.tryRecord(id)?.protection?.unit && w.record(id), 10_000, 'the record to name its unit');
    expect(rec.protection.unit).toBe(unitOf(id));
    // What `systemctl --user` and the journal show: the user's command, not jobq's wrapper.
    const show = await sh(`systemctl --user show -p Description -p ControlGroup ${unitOf(id)}`);
    expect(show.out).toContain(`Description=sh -c 'echo "hello from $BG_JOB"; sleep 3; exit 3'`);
    expect(show.out).toContain(`/app.slice/${unitOf(id)}`);
    expect(fs.readFileSync(`/proc/${rec.job.pid}/cgroup`, 'utf8')).toContain(`/${unitOf(id)}`);
    const status = await w.run(['status', 'hello']);
    expect(status.stdout).toMatch(/isolation +systemd-scope \(jobq-hello_.*\.scope\)/);
    expect((await w.run(['wait', 'hello'])).exitCode).toBe(3);
    expect((await w.run(['tail', 'hello'])).stdout).toContain('hello from 1');
    expect(w.record(id).state).toMatchObject({ status: 'failed', exitCode: 3 });
    await pollUntil(async () => !(await scopes()).includes(unitOf(id)), 10_000, 'the scope to be collected');
  });

  it('cancel: TERM, grace, KILL to a job that ignores TERM and its grandchild; nothing left, scope gone', async () => {
    const id = await start(w, 'stubborn', ['sh', '-c', "trap '' TERM; (trap '' TERM; sleep 300) & sleep 300"]);
    const rec = await pollUntil(() => w.tryRecord(id)?.state.status === 'running' && w.record(id), 10_000, 'running');
    const dir = rec.protection.cgroups[0];
    // The job's part of its scope; the scope's other part holds jobq's keeper (see docs/protection.md).
    expect(dir).toMatch(new RegExp(`/${unitOf(id).replace(/\./g, '\\.')}/job$`));
    await pollUntil(() => fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').trim().split('\n').length >= 3, 10_000, 'the grandchild');
    const pids = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').trim().split('\n').map(Number);
    const r = await w.run(['cancel', 'stubborn', '--grace', '1s']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SIGKILL/);
    expect(pids.filter(alive)).toEqual([]);
    expect(w.record(id).state).toMatchObject({ status: 'cancelled' });
    await pollUntil(() => !fs.existsSync(dir), 10_000, 'the scope cgroup to go');
    await pollUntil(async () => !(await scopes()).includes(unitOf(id)), 10_000, 'the scope unit to go');
  });

  it('--timeout ends the job (state timeout) and its scope goes', async () => {
    const id = await start(w, 'slow', ['sleep', '300'], ['--timeout', '2s', '--grace', '1s']);
    expect((await w.run(['wait', 'slow'])).exitCode).toBe(124);
    expect(w.record(id).state).toMatchObject({ status: 'timeout', reason: 'wall' });
    await pollUntil(async () => !(await scopes()).includes(unitOf(id)), 10_000, 'the scope to go');
  });

  it('--mem-limit: MemoryMax on the scope, read back; going over it ends the job as oom (memory-limit)', async () => {
    const id = await start(w, 'capped', ['python3', '-c', 'a = bytearray(400 << 20)'], ['--mem-limit', '100M']);
    const waited = await w.run(['wait', 'capped', '--timeout', '100s']);
    expect(waited.exitCode, `${waited.stderr}\n${dump(w, id)}`).toBe(137);
    const rec = w.record(id);
    expect(rec.protection.memLimitHow).toBe('cgroup');
    expect(rec.state).toMatchObject({ status: 'oom', by: 'memory-limit', signal: 'SIGKILL' });
    expect(rec.state.reason).toContain('memory limit (100M)');
    expect((await w.run(['status', 'capped'])).stdout).toMatch(/state +oom \(memory-limit\)[\s\S]*reason +the job reached its memory limit/);
  });

  it('peak memory and CPU come from the scope cgroup itself', async () => {
    const id = await start(w, 'peak', ['python3', '-c', 'a = bytearray(60 << 20); a[::4096] = b"x" * len(a[::4096])']);
    expect((await w.run(['wait', 'peak'])).exitCode).toBe(0);
    const s = w.record(id).state;
    expect(s.peakMemBytes).toBeGreaterThan(60 * 2 ** 20);
    expect(s.peakMemBytes).toBeLessThan(200 * 2 ** 20);
    expect(s.cpuMs).toBeGreaterThan(0);
  });

  it('pause and resume freeze and thaw the scope through its own (delegated) v2 freezer', async () => {
    const id = await start(w, 'frozen', ['sh', '-c', 'while :; do date +%s%N; sleep 0.2; done']);
    const rec = await pollUntil(() => w.tryRecord(id)?.state.status === 'running' && w.record(id), 10_000, 'running');
    const dir = rec.protection.cgroups[0];
    expect((await sh(`systemctl --user show -p Delegate ${unitOf(id)}`)).out).toContain('Delegate=yes');
    expect((await w.run(['pause', 'frozen'])).stdout).toContain('cgroup frozen');
    expect(w.record(id).state).toMatchObject({ status: 'paused', how: 'freezer' });
    expect(fs.readFileSync(path.join(dir, 'cgroup.events'), 'utf8')).toContain('frozen 1');
    expect((await w.run(['resume', 'frozen'])).exitCode).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'cgroup.events'), 'utf8')).toContain('frozen 0');
    expect((await w.run(['cancel', 'frozen'])).exitCode).toBe(0);
  });

  it('queues, arrays, --after and --mem: every job started that way also gets its scope', async () => {
    expect((await w.run(['queue', 'set', 'gq', '--slots', '1'])).exitCode).toBe(0);
    for (const n of ['q1', 'q2', 'q3']) expect((await w.run(['run', n, '--queue', 'gq', '--', 'sleep', '0.5'])).exitCode).toBe(0);
    expect((await w.run(['run', 'arr', '--array', '1-3', '--', 'sh', '-c', 'echo {}'])).exitCode).toBe(0);
    expect((await w.run(['run', 'next', '--after', 'q3', '--', 'true'])).exitCode).toBe(0);
    expect((await w.run(['run', 'roomy', '--mem', '10M', '--', 'true'])).exitCode).toBe(0);
    const names = ['q1', 'q2', 'q3', 'arr', 'next', 'roomy'];
    for (const n of names) expect((await w.run(['wait', n, '--timeout', '120s'])).exitCode, n).toBe(0);
    const recs = w
      .ids()
      .map((id) => w.record(id))
      .filter((r) => names.includes(r.name) || r.name.startsWith('arr.'));
    expect(recs).toHaveLength(8);
    for (const r of recs) expect([r.name, r.state.status, r.protection.isolation]).toEqual([r.name, 'succeeded', 'systemd-scope']);
  });

  it('--retry: each attempt in a scope of its own, run at once after the last ended; an OOM attempt grows its MemoryMax', async () => {
    const id = await start(w, 'again', ['sh', '-c', 'echo "attempt $JOBQ_ATTEMPT in $(cat /proc/self/cgroup)"; [ "$JOBQ_ATTEMPT" = 3 ]'], ['--retry', '2']);
    expect((await w.run(['wait', id, '--timeout', '120s'])).exitCode).toBe(0);
    const rec = w.record(id);
    expect([rec.state.status, rec.attempts.length, rec.protection.isolation]).toEqual(['succeeded', 2, 'systemd-scope']);
    const lines = fs.readFileSync(rec.log, 'utf8').match(/^attempt \d in .*$/gm)!;
    expect(lines.map((l) => /jobq-[^/]+\.scope/.exec(l)?.[0])).toEqual([`jobq-${id}.scope`, `jobq-${id}-a2.scope`, `jobq-${id}-a3.scope`]);
    const hog = [process.execPath, '-e', 'const b=Buffer.alloc(90<<20,1); console.log("ok", b.length)'];
    const g = await start(w, 'grow', hog, ['--mem-limit', '64M', '--retry', '1', '--retry-on', 'oom', '--mem-grow', '3x']);
    expect((await w.run(['wait', g, '--timeout', '120s'])).exitCode).toBe(0);
    expect(w.record(g).attempts).toEqual([expect.objectContaining({ status: 'oom', memLimitBytes: 64 << 20 })]);
  });

  it('--mem-high: MemoryHigh on the scope; a job whose page cache goes over it is throttled, not killed, and says so', async () => {
    // A file on disk (not tmpfs): its page cache is charged to the scope and can be reclaimed above memory.high.
    const script = 'f="$HOME/jobq-high.$$"; dd if=/dev/zero of="$f" bs=1M count=200 status=none; cat "$f" > /dev/null; rm -f "$f"; echo done';
    const id = await start(w, 'high', ['sh', '-c', script], ['--mem-high', '32M']);
    expect((await w.run(['wait', id, '--timeout', '120s'])).exitCode).toBe(0);
    const rec = w.record(id);
    expect(rec.protection).toMatchObject({ memHighBytes: 32 << 20, memHighHow: 'cgroup' });
    expect(rec.state.status).toBe('succeeded');
    expect(rec.state.memHighEvents).toBeGreaterThan(0);
    expect((await w.run(['status', id])).stdout).toMatch(/mem high\s+32M via cgroup; throttled \d+ times? \(slowed, not killed\)/);
  });

  it('the standby start and a direct start (JOBQ_STANDBY=0) both get the scope', async () => {
    const a = await start(w, 'via-standby', ['true']);
    const r = await w.run(['run', 'direct', '-q', '--', 'true'], { env: { JOBQ_STANDBY: '0' } });
    expect(r.exitCode, r.stderr).toBe(0);
    for (const id of [a, r.stdout.trim()]) {
      await pollUntil(() => w.record(id).state.endedAt, 30_000, `${id} to end`);
      expect(w.record(id)).toMatchObject({ state: { status: 'succeeded' }, protection: { isolation: 'systemd-scope' } });
    }
  });

  it('--max-log-size caps the log of a job writing faster than it is sampled', async () => {
    const id = await start(w, 'noisy', ['sh', '-c', 'yes 0123456789abcdef | head -c 20000000'], ['--max-log-size', '1M']);
    expect((await w.run(['wait', 'noisy'])).exitCode).toBe(0);
    expect(fs.statSync(w.record(id).log).size).toBeLessThanOrEqual(1024 * 1024);
  });

  it('without a user manager: auto warns at run naming what is missing and the fix; scope asked is refused (exit 2)', async () => {
    const env = { XDG_RUNTIME_DIR: '', DBUS_SESSION_BUS_ADDRESS: '' };
    const before = w.ids().length;
    const refused = await w.run(['run', 'noscope', '--isolation', 'scope', '--', 'true'], { env });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/needs a systemd user manager.*XDG_RUNTIME_DIR is not set.*loginctl enable-linger/);
    expect(w.ids()).toHaveLength(before);
    const warned = await w.run(['run', 'plain', '--', 'true'], { env });
    expect(warned.exitCode, warned.stderr).toBe(0);
    expect(warned.stderr).toMatch(/warning: no cgroup of its own .*XDG_RUNTIME_DIR is not set.*loginctl enable-linger alice.*--isolation none/);
    const quiet = await w.run(['run', 'plain2', '--isolation', 'none', '--', 'true'], { env });
    expect(quiet.stderr).not.toMatch(/warning/);
  });

  it('doctor says what a job gets here: a scope, delegated memory, oomd and its policy; none when no manager answers', async () => {
    const r = await w.run(['doctor', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.isolation.auto).toBe('systemd-scope');
    expect(d.cgroup.version).toBe('v2');
    expect(d.delegation.controllers).toContain('memory');
    expect(d.systemd.linger).toBe(true);
    expect(d.oomd).toMatchObject({ active: 'active', user: { memoryPressure: 'kill' }, pressureDurationSec: 20 });
    const none = await w.run(['doctor'], { env: { XDG_RUNTIME_DIR: '', NO_COLOR: '1' } });
    expect(none.stdout).toMatch(/^warn +isolation +auto → none/m);
    expect(none.stdout).toMatch(/To fix:\n +export XDG_RUNTIME_DIR=\/run\/user\/\d+/);
  });

  it('a job cannot hide from cancel in its scope: a double fork moved into keep dies, a frozen scope goes', async () => {
    // The scope's parts are the user's to write: a hostile job moves a setsid'd child into `keep`, then freezes the
    // whole scope (keeper included). Cancel must still end every process of it, and the scope must go.
    const script = path.join(w.home, 'hide.sh');
    fs.writeFileSync(
      script,
      `cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)\n(setsid sh -c "echo \\$\\$ > $cg/../keep/cgroup.procs; exec sleep 1005" &)\nsleep 1; echo 1 > $cg/../cgroup.freeze; exec sleep 1000\n`,
      { mode: 0o755 },
    );
    const id = await start(w, 'hide', ['sh', script]);
    const rec = await pollUntil(() => w.tryRecord(id)?.state.status === 'running' && w.record(id), 10_000, 'running');
    const scope = path.dirname(rec.protection.cgroups[0]);
    await pollUntil(() => fs.readFileSync(path.join(scope, 'cgroup.events'), 'utf8').includes('frozen 1'), 20_000, 'the job to freeze its scope');
    const r = await w.run(['cancel', 'hide', '--grace', '1s']);
    expect(r.exitCode, r.stderr).toBe(0);
    await pollUntil(async () => !(await sh('pgrep -f "sleep 100[05]"')).out.trim(), 20_000, 'both sleeps to die');
    await pollUntil(async () => !(await scopes()).includes(unitOf(id)), 20_000, `the scope to go\n${dump(w, id)}`);
    expect(w.record(id).state.status).toBe('cancelled');
  });

  it('not an OOM: a kill from outside after the job touched its own cgroup, or a child OOM the job survived', async () => {
    const id = await start(w, 'touchy', ['sh', '-c', 'cg=/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup); mkdir $cg/x; touch $cg; exec sleep 100']);
    const rec = await pollUntil(() => w.tryRecord(id)?.state.status === 'running' && w.record(id), 10_000, 'running');
    await new Promise((r) => setTimeout(r, 1000));
    process.kill(rec.job.pid, 'SIGKILL');
    expect((await w.run(['wait', 'touchy'])).exitCode).toBe(137);
    expect(w.record(id).state).toMatchObject({ status: 'killed', signal: 'SIGKILL' });
    const hog = await start(w, 'survivor', ['sh', '-c', 'python3 -c "a = bytearray(400 << 20)"; echo child=$?; exit 0'], ['--mem-limit', '60M']);
    expect((await w.run(['wait', 'survivor'])).exitCode, dump(w, hog)).toBe(0);
    expect(w.record(hog).state.status).toBe('succeeded');
    expect((await w.run(['tail', 'survivor'])).stdout).toContain('child=137');
  });
});
