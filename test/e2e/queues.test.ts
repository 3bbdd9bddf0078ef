// Issue 11: queues with slots and priorities, pause and resume — no resident daemon, files as the truth, and a
// queue that drains whichever jobq process is SIGKILLed.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, bystander, gate, HAS_CGROUP, IS_ROOT, killBystanders, peakRunning, pollUntil, start, taggedPids, tmpDir, useWorld } from '../helpers/jobq.js';
import { plantRecord, startTicks } from '../helpers/records.js';

const w = useWorld();

const state = (id: string) => w.record(id).state;

/** Live processes of this test with `marker` as a whole word of their command line (`sleep`: the jobs' own sleeps). */
function running(marker: string): number[] {
  return taggedPids(w.tag).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').includes(marker);
    } catch {
      return false;
    }
  });
}

/** Samples `running(marker)` every 50 ms until stop(); returns the most seen at once. */
function sampleRunning(marker: string): { stop(): number } {
  let max = 0;
  let on = true;
  const tick = () => {
    max = Math.max(max, running(marker).length);
    if (on) setTimeout(tick, 50);
  };
  tick();
  return {
    stop() {
      on = false;
      return max;
    },
  };
}

/** The pids of jobq's own processes (supervisors and dispatchers) for this test. */
function jobqProcs(kind: 'supervisor' | 'dispatcher'): number[] {
  return taggedPids(w.tag).filter((pid) => {
    try {
      const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
      return args.some((a) => a.endsWith('supervisor.js')) && (kind === 'dispatcher') === args.includes('--dispatch');
    } catch {
      return false;
    }
  });
}

/** The dispatcher dispatcher.json names, once it is the only one (one an earlier command started may still be leaving). */
async function registeredDispatcher(): Promise<number> {
  const file = path.join(w.home, 'dispatcher.json');
  const registered = () => {
    const all = jobqProcs('dispatcher');
    const d = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')).pid : 0;
    return all.length === 1 && all[0] === d ? (d as number) : 0;
  };
  return pollUntil(registered, 10_000, 'one registered dispatcher');
}

describe('a queue with slots', () => {
  it('20 jobs through 2 slots: never more than 2 at once (from /proc), all succeed, first come first served; a higher priority submitted last starts next', async () => {
    const order = path.join(w.home, 'order.txt');
    const probe = sampleRunning('sleep');
    await w.run(['queue', 'set', 'two', '--slots', '2']);
    // Held while they are submitted, so the start order is the queue's alone.
    await w.run(['queue', 'pause', 'two']);
    const submitted: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await w.run([
        'run',
        `j${String(i).padStart(2, '0')}`,
        '-q',
        '--queue',
        'two',
        '--',
        'sh',
        '-c',
        `echo $JOBQ_JOB_NAME >> ${order}; exec sleep 0.3`,
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
      submitted.push(r.stdout.trim());
    }
    const vip = (
      await w.run(['run', 'vip', '-q', '--queue', 'two', '--priority', '10', '--', 'sh', '-c', `echo vip >> ${order}; exec sleep 0.3`])
    ).stdout.trim();
    await w.run(['queue', 'resume', 'two']);
    expect((await w.run(['wait', ...submitted, vip, '--timeout', '60s'])).exitCode).toBe(0);
    // Never more than 2 in /proc (a sampler can miss 0.3 s jobs under load) nor by the records' times (they cannot).
    expect(probe.stop()).toBeLessThanOrEqual(2);
    expect(peakRunning(w, [...submitted, vip])).toBeLessThanOrEqual(2);
    for (const id of [...submitted, vip]) expect(state(id).status).toBe('succeeded');
    // The claims, in the order dispatch made them (two jobs that start together may print in either order).
    const claims = [...fs.readFileSync(path.join(w.home, 'events.log'), 'utf8').matchAll(/"id":"([^"]+)","from":"queued"/g)].map((m) => m[1]);
    expect(claims).toEqual([vip, ...submitted]);
    expect(fs.readFileSync(order, 'utf8').trim().split('\n').sort()).toEqual(['vip', ...submitted.map((_, i) => `j${String(i).padStart(2, '0')}`)].sort());
    // Nothing of jobq lives once nothing runs or waits.
    await pollUntil(() => jobqProcs('supervisor').length + jobqProcs('dispatcher').length === 0, 10_000, 'no jobq process left');
  }, 120_000);

  it('50 concurrent run --queue: each job starts exactly once, never more than the slots', async () => {
    const log = path.join(w.home, 'starts.txt');
    await w.run(['queue', 'set', 'race', '--slots', '3']);
    const probe = sampleRunning('sleep');
    const runs = await Promise.all(
      Array.from({ length: 50 }, (_, i) => w.run(['run', `r${i}`, '-q', '--queue', 'race', '--', 'sh', '-c', `echo $JOBQ_JOB_ID >> ${log}; exec sleep 0.1`])),
    );
    expect(runs.filter((r) => r.exitCode !== 0).map((r) => r.stderr)).toEqual([]);
    const all = runs.map((r) => r.stdout.trim());
    expect((await w.run(['wait', ...all, '--timeout', '90s'])).exitCode).toBe(0);
    expect(probe.stop()).toBeLessThanOrEqual(3);
    expect(peakRunning(w, all)).toBeLessThanOrEqual(3);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    expect(lines.length).toBe(50);
    expect(new Set(lines).size).toBe(50);
  }, 120_000);

  it('a SIGKILLed supervisor of a running queued job does not stall the queue: the rest runs with no command typed', async () => {
    const g = gate(w, 'a');
    const a = (await w.run(['run', 'a', '-q', '--queue', 'k', '--', 'sh', '-c', g.hold])).stdout.trim();
    const rest: string[] = [];
    for (const n of ['b', 'c', 'd']) rest.push((await w.run(['run', n, '-q', '--queue', 'k', '--', 'sleep', '0.2'])).stdout.trim());
    process.kill(w.record(a).supervisor.pid, 'SIGKILL');
    g.open();
    // No jobq command from here on: only the files are watched.
    await pollUntil(() => rest.every((id) => w.tryRecord(id)?.state.status === 'succeeded'), 30_000, 'the rest of the queue');
    expect(w.record(a).state.status).toBe('lost');
  }, 60_000);

  it('a SIGKILLed dispatcher does not stall the queue either', async () => {
    const g = gate(w, 'first');
    const first = (await w.run(['run', 'first', '-q', '--queue', 'kd', '--', 'sh', '-c', g.hold])).stdout.trim();
    const rest: string[] = [];
    for (const n of ['e', 'f', 'g']) rest.push((await w.run(['run', n, '-q', '--queue', 'kd', '--', 'sleep', '0.2'])).stdout.trim());
    const disp = await registeredDispatcher();
    process.kill(disp, 'SIGKILL');
    g.open();
    await pollUntil(() => [first, ...rest].every((id) => w.tryRecord(id)?.state.status === 'succeeded'), 30_000, 'the rest of the queue');
  }, 60_000);

  it('the dispatcher SIGKILLed, then the supervisor that just claimed the next job: that job still runs, with no command typed', async () => {
    const marker = path.join(w.home, 'crashed');
    const g = gate(w, 'one');
    const one = (
      await w.run(['run', 'one', '-q', '--queue', 'kc', '--', 'sh', '-c', g.hold], { env: { JOBQ_TEST_CRASH_AT: `slot-claimed:${marker}` } })
    ).stdout.trim();
    const two = (await w.run(['run', 'two', '-q', '--queue', 'kc', '--', 'sh', '-c', 'echo ran >> ran.txt'], { cwd: w.home })).stdout.trim();
    const disp = await registeredDispatcher();
    process.kill(disp, 'SIGKILL');
    await pollUntil(() => !alive(disp), 5000, 'the dispatcher gone');
    // One a command started just before may still be on its way up: it too goes, so that only one's supervisor can claim two.
    let quietSince = Date.now();
    await pollUntil(
      () => {
        for (const pid of jobqProcs('dispatcher')) {
          process.kill(pid, 'SIGKILL');
          quietSince = Date.now();
        }
        return Date.now() - quietSince > 1000;
      },
      10_000,
      'no dispatcher for a second',
    );
    g.open();
    // No jobq command from here on: only the files are watched.
    await pollUntil(() => fs.existsSync(marker), 20_000, "one's supervisor to claim two and die");
    await pollUntil(() => w.tryRecord(two)?.state.status === 'succeeded', 30_000, 'the claimed job to run');
    expect(w.record(one).state.status).toBe('succeeded');
    expect(fs.readFileSync(path.join(w.home, 'ran.txt'), 'utf8')).toBe('ran\n');
  }, 60_000);

  for (const [step, left] of [
    ['queued', 'queued'],
    ['claimed', 'starting'],
  ] as const) {
    it(`a run --queue SIGKILLed once its job is ${step}: the job still runs, with no command typed`, async () => {
      // Nothing else runs or waits, so no supervisor's end and no earlier dispatcher would start it.
      const r = await w.run(['run', 'orphaned', '-q', '--queue', 'solo', '--', 'sh', '-c', 'echo ran'], { env: { JOBQ_TEST_CRASH_AT: step } });
      expect(r.exitCode).not.toBe(0);
      const id = w.ids()[0]!;
      expect(state(id).status).toBe(left);
      await pollUntil(() => w.tryRecord(id)?.state.status === 'succeeded', 20_000, 'the job to run');
      expect(fs.readFileSync(w.record(id).log, 'utf8')).toBe('ran\n');
    }, 40_000);
  }

  it('a supervisor SIGKILLed while it holds a claimed job (before the release): the job waits again and runs once', async () => {
    const marker = path.join(w.home, 'crashed');
    // A spawned supervisor (with the standby, `run` itself starts a fresh one: standby.test.ts).
    const r = await w.run(['run', 'again', '-q', '--queue', 'solo', '--', 'sh', '-c', 'echo ran >> ran.txt'], {
      env: { JOBQ_TEST_CRASH_AT: `held:${marker}`, JOBQ_STANDBY: '0' },
      cwd: w.home,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const id = r.stdout.trim();
    await pollUntil(() => w.tryRecord(id)?.state.status === 'succeeded', 20_000, 'the job to run');
    expect(fs.existsSync(marker)).toBe(true);
    expect(fs.readFileSync(path.join(w.home, 'ran.txt'), 'utf8')).toBe('ran\n');
    const moves = fs
      .readFileSync(path.join(w.home, 'events.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes(id))
      .map((l) => JSON.parse(l).msg);
    expect(moves.filter((m) => m === 'starting')).toHaveLength(2);
    expect(moves.filter((m) => m === 'running')).toHaveLength(1);
  }, 40_000);

  it('a queue a job named is still known after its jobs ended: queue NAME answers, and a typo is still refused', async () => {
    const id = await start(w, 'once', ['true'], ['--queue', 'adhoc']);
    expect((await w.run(['wait', id, '--timeout', '30s'])).exitCode).toBe(0);
    const q = await w.run(['queue', 'adhoc', '--json']);
    expect(q.exitCode, q.stderr).toBe(0);
    expect(JSON.parse(q.stdout).queues[0]).toMatchObject({ name: 'adhoc', running: [], waiting: [] });
    const typo = await w.run(['queue', 'adhok']);
    expect(typo.exitCode).toBe(1);
    expect(typo.stderr).toContain("did you mean 'adhoc'?");
  });

  it('queue lists the jobs that wait in no queue, with why (an array cap, --after); queue NAME and a queue job stay apart', async () => {
    const arr = (await w.run(['run', 'capd', '-q', '--array', '1-3%1', '--', 'sleep', '30'])).stdout.trim().split('\n');
    const dep = (await w.run(['run', 'dep', '-q', '--after', 'capd', '--', 'true'])).stdout.trim();
    const inQ = await start(w, 'inq', ['sleep', '30'], ['--queue', 'solo']);
    await pollUntil(() => w.record(arr[0]!).state.status === 'running', 10_000, 'the first element to run');
    const text = (await w.run(['queue'])).stdout;
    expect(text).toMatch(/^\(no queue\) {2}3 waiting$/m);
    expect(text).toMatch(new RegExp(`^ {2}#\\d +${arr[1]} .*array capd: 1 running \\(%1\\)$`, 'm'));
    expect(text).toMatch(new RegExp(`^ {2}#\\d +${dep} .*after ${arr[0]} \\(running\\)`, 'm'));
    expect(text).toMatch(/^solo {2}1\/1 slot busy/m);
    const j = JSON.parse((await w.run(['queue', '--json'])).stdout);
    expect(j.waitingOutsideQueues.map((x: { id: string; waitingFor: string }) => [x.id, x.waitingFor]).sort()).toEqual(
      [
        [arr[1], 'array-cap'],
        [arr[2], 'array-cap'],
        [dep, 'after'],
      ].sort(),
    );
    // One queue asked for: only it.
    const one = await w.run(['queue', 'solo', '--json']);
    expect(JSON.parse(one.stdout)).not.toHaveProperty('waitingOutsideQueues');
    expect((await w.run(['queue', 'solo'])).stdout).not.toContain('(no queue)');
    await w.run(['cancel', 'capd', 'dep', inQ]);
  });

  it('a claim whose supervisor never came does not hold the slot for ever, though its claimer lives', async () => {
    // As a dispatcher leaves it when the supervisor it launched dies before taking the job: the claimer lives on.
    const claimer = bystander();
    const at = new Date(Date.now() - 20_000);
    const stuck = plantRecord(
      w.home,
      'stuck',
      {
        argv: ['sh', '-c', 'echo ran'],
        queue: 'one',
        priority: 0,
        state: { status: 'starting', claim: { by: { pid: claimer, startTicks: startTicks(claimer) }, token: 'gone', at: at.toISOString(), requeue: true } },
      },
      at,
    );
    fs.writeFileSync(path.join(w.home, 'jobs', stuck, 'env.json'), JSON.stringify({ ...process.env, ...w.env }), { mode: 0o600 });
    const next = (await w.run(['run', 'next', '-q', '--queue', 'one', '--', 'true'])).stdout.trim();
    await pollUntil(() => w.tryRecord(next)?.state.status === 'succeeded', 20_000, 'the next job of the queue');
    expect(w.record(stuck).state.status).toBe('succeeded');
    expect(fs.readFileSync(w.record(stuck).log, 'utf8')).toBe('ran\n');
    killBystanders();
  }, 40_000);

  it('queue pause stops starts (running jobs go on); resume continues', async () => {
    const a = (await w.run(['run', 'pa', '-q', '--queue', 'p', '--', 'sleep', '0.5'])).stdout.trim();
    await w.run(['queue', 'pause', 'p']);
    const b = (await w.run(['run', 'pb', '-q', '--queue', 'p', '--', 'true'])).stdout.trim();
    expect((await w.run(['wait', a])).exitCode).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    expect(state(b).status).toBe('queued');
    const q = JSON.parse((await w.run(['queue', 'p', '--json'])).stdout).queues[0];
    expect(q).toMatchObject({ name: 'p', paused: true, slots: 1 });
    expect(q.waiting[0]).toMatchObject({ id: b, position: 1, reason: 'queue p is paused (jobq queue resume p)' });
    await w.run(['queue', 'resume', 'p']);
    expect((await w.run(['wait', b, '--timeout', '20s'])).exitCode).toBe(0);
  });

  it('status shows queued jobs with queue and position; cancel removes one that never started; wait and tail -f wait for the start', async () => {
    const g = gate(w, 'sa');
    const a = (await w.run(['run', 'sa', '-q', '--queue', 's', '--', 'sh', '-c', g.hold])).stdout.trim();
    const b = (await w.run(['run', 'sb', '-q', '--queue', 's', '--', 'sh', '-c', 'echo from-b'])).stdout.trim();
    // run prints where the job stands: its queue, its position, why it waits.
    const printed = (await w.run(['run', 'sc', '--queue', 's', '--', 'true'])).stdout;
    expect(printed).toMatch(/^queued (sc_\S+) {2}#3 {2}queue s {2}position 2 {2}waiting: queue s: 1 of 1 slot busy\nlog: /);
    const c = /^queued (\S+)/.exec(printed)![1]!;
    expect((await w.run(['status'])).stdout).toMatch(/sb\s+sb_\S+\s+queued \(s #1\)/);
    const x = JSON.parse((await w.run(['status', c, '--json'])).stdout);
    expect(x.waiting).toMatchObject({ position: 2 });
    const detail = (await w.run(['status', c])).stdout;
    expect(detail).toMatch(/waiting\s+queue s: 1 of 1 slot busy/);
    // Not started yet: what protects it is decided at its start, not shown as if it were off.
    expect(detail).toMatch(/isolation\s+auto asked \(applied when it starts\)/);
    expect(detail).toMatch(/oom_score_adj\s+500 asked \(applied when it starts\)/);
    const cr = await w.run(['cancel', c]);
    expect(cr.stdout).toMatch(/cancelled/);
    expect(state(c)).toMatchObject({ status: 'cancelled', exitCode: null });
    // Cancelled before it started: nothing was ever applied, and status says so.
    expect((await w.run(['status', c])).stdout).toMatch(/isolation\s+auto asked \(never applied: it never started\)/);
    expect(w.record(c).job).toBeUndefined();
    const tail = w.run(['tail', '-f', b]);
    const tailing = () =>
      taggedPids(w.tag).some((pid) => {
        try {
          const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
          return args.includes('tail') && args.includes(b);
        } catch {
          return false;
        }
      });
    await pollUntil(tailing, 10_000, 'tail -f to wait on the queued job');
    expect(state(b).status).toBe('queued');
    g.open();
    const waited = await w.run(['wait', b]);
    expect(waited.exitCode).toBe(0);
    expect((await tail).stdout).toContain('from-b');
    expect(state(a).status).toBe('succeeded');
  });

  it('run --wait-start blocks until it runs; config may define queues and a default queue', async () => {
    fs.mkdirSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq'), { recursive: true });
    fs.writeFileSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json'), JSON.stringify({ defaultQueue: 'heavy', queues: { heavy: { slots: 2 } } }));
    const ga = gate(w, 'ha');
    const a = (await w.run(['run', 'ha', '-q', '--', 'sh', '-c', ga.hold])).stdout.trim();
    const b = (await w.run(['run', 'hb', '-q', '--', 'sh', '-c', gate(w, 'hb').hold])).stdout.trim();
    expect(w.record(a).queue).toBe('heavy');
    // Two slots from the config: both run at once.
    expect([state(a).status, state(b).status]).toEqual(['running', 'running']);
    const blocked = w.run(['run', 'hc', '--wait-start', '--', 'true']);
    // It is queued (both slots busy) and run blocks on it until a slot frees.
    await pollUntil(() => w.ids().some((id) => id.startsWith('hc_') && w.tryRecord(id)?.state.status === 'queued'), 10_000, 'hc queued');
    ga.open();
    const c = await blocked;
    expect(c.stdout).toMatch(/^started hc_/);
    const now = await w.run(['run', 'hd', '-q', '--no-queue', '--', 'true']);
    expect(w.record(now.stdout.trim()).queue).toBeUndefined();
  });
});

describe('pause and resume a job', () => {
  const writer = ['sh', '-c', 'trap "echo got-term; exit 3" TERM; while :; do echo tick; sleep 0.05; done'];

  async function pauseCheck(flags: string[]) {
    const id = await start(w, 'pz', writer, flags);
    const rec = w.record(id);
    await pollUntil(() => fs.statSync(rec.log).size > 10, 5000, 'output');
    const p = await w.run(['pause', id]);
    expect(p.exitCode, p.stderr).toBe(0);
    expect(state(id).status).toBe('paused');
    const st = (pid: number) => fs.readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]![0]!;
    // Every process of the job is stopped (T) or frozen by the cgroup freezer (D, or T).
    const stopped = () =>
      running('0.05')
        .concat(rec.job.pid)
        .every((pid) => ['T', 't', 'D'].includes(st(pid)));
    await pollUntil(stopped, 5000, 'every process held');
    const size = fs.statSync(rec.log).size;
    await new Promise((r) => setTimeout(r, 600));
    expect(fs.statSync(rec.log).size).toBe(size);
    await w.run(['resume', id]);
    expect(state(id).status).toBe('running');
    await pollUntil(() => fs.statSync(rec.log).size > size, 5000, 'output again');
    await w.run(['pause', id]);
    // Cancel of a paused job runs its TERM handler.
    await w.run(['cancel', id, '--grace', '5s']);
    expect(state(id)).toMatchObject({ status: 'cancelled', exitCode: 3 });
    expect(fs.readFileSync(rec.log, 'utf8')).toContain('got-term');
    return rec;
  }

  it.skipIf(!IS_ROOT || !HAS_CGROUP)('with a cgroup: frozen; no output grows; resume gives it back; cancel runs the handler', async () => {
    await pauseCheck([]);
  });

  it('without a cgroup: SIGSTOP to the group; the same holds', async () => {
    await pauseCheck(['--isolation', 'none']);
  });

  it.each([
    ['freezer', []],
    ['SIGSTOP', ['--isolation', 'none']],
  ])(
    'concurrent pause and resume (%s), 20 rounds: the record always says what the job is doing',
    async (_, flags) => {
      const id = await start(w, 'pr', writer, flags as string[]);
      const rec = w.record(id);
      await pollUntil(() => fs.statSync(rec.log).size > 10, 5000, 'output');
      for (let round = 0; round < 20; round++) {
        const order = round % 2 ? ['pause', 'resume', 'pause', 'resume'] : ['resume', 'pause', 'resume', 'pause'];
        await Promise.all(order.map((c) => w.run([c, id])));
        const size = fs.statSync(rec.log).size;
        if (state(id).status === 'paused') {
          // Held: no tick within 600 ms (a running writer prints one every 50 ms).
          await new Promise((r) => setTimeout(r, 600));
          expect(fs.statSync(rec.log).size, `round ${round}: recorded paused, but the job runs`).toBe(size);
        } else {
          expect(state(id).status).toBe('running');
          await pollUntil(() => fs.statSync(rec.log).size > size, 5000, `round ${round}: recorded running, so output grows`);
        }
      }
      await w.run(['cancel', id]);
    },
    120_000,
  );

  it('a paused job keeps its slot, and paused time does not count toward --idle-timeout', async () => {
    const a = (
      await w.run(['run', 'ka', '-q', '--queue', 'slot', '--idle-timeout', '3s', '--', 'sh', '-c', 'while :; do echo x; sleep 0.2; done'])
    ).stdout.trim();
    const b = (await w.run(['run', 'kb', '-q', '--queue', 'slot', '--', 'true'])).stdout.trim();
    await w.run(['pause', a]);
    // Paused longer than the idle timeout: were paused time counted, the job would be ended now.
    await new Promise((r) => setTimeout(r, 4000));
    expect(state(a).status).toBe('paused');
    expect(state(b).status).toBe('queued');
    await w.run(['resume', a]);
    await new Promise((r) => setTimeout(r, 500));
    expect(state(a).status).toBe('running');
    await w.run(['cancel', a]);
    expect((await w.run(['wait', b, '--timeout', '20s'])).exitCode).toBe(0);
  });
});

describe('edit', () => {
  it("changes a queued job's priority where it waits, so it starts first; a running job or no change is refused in one line", async () => {
    await w.run(['queue', 'pause', 'pe']);
    const ids: string[] = [];
    for (const n of ['a', 'b', 'c']) ids.push((await w.run(['run', n, '-q', '--queue', 'pe', '--', 'true'])).stdout.trim());
    const e = await w.run(['edit', 'c', '--priority', '5']);
    expect([e.exitCode, e.stdout.trim()]).toEqual([0, expect.stringMatching(/^c_\S+: priority 5, queue pe position 1 /)]);
    expect(w.record(ids[2]!).priority).toBe(5);
    const q = JSON.parse((await w.run(['queue', 'pe', '--json'])).stdout).queues[0].waiting.map((j: { name: string }) => j.name);
    expect(q).toEqual(['c', 'a', 'b']);
    await w.run(['queue', 'resume', 'pe']);
    expect((await w.run(['wait', ...ids, '--timeout', '30s'])).exitCode).toBe(0);
    const started = (id: string) => Date.parse(w.record(id).state.startedAt);
    expect(started(ids[2]!)).toBeLessThan(started(ids[0]!));
    for (const [args, code] of [
      [['edit', 'a', '--priority', '1'], 1],
      [['edit', 'a'], 2],
      [['edit', 'a', '--priority', 'high'], 2],
    ] as [string[], number][]) {
      const r = await w.run(args);
      expect([r.exitCode, r.stderr.trim().split('\n').length], args.join(' ')).toEqual([code, 1]);
    }
  });
});

describe('edit a command', () => {
  it("replaces a queued job's command and cwd: the log shows the new command's output; a started or ended job is refused", async () => {
    await w.run(['queue', 'pause', 'pc']);
    const id = (await w.run(['run', 'x', '-q', '--queue', 'pc', '--', 'sh', '-c', 'echo old'])).stdout.trim();
    const dir = tmpDir();
    const e = await w.run(['edit', String(w.record(id).seq), '--cwd', dir, '--', 'sh', '-c', 'echo "new in $(pwd)"']);
    expect([e.exitCode, e.stdout.trim()]).toEqual([
      0,
      `${id}: command sh -c 'echo "new in $(pwd)"', cwd ${dir}, queue pc position 1 (queue pc is paused (jobq queue resume pc))`,
    ]);
    expect(w.record(id)).toMatchObject({ argv: ['sh', '-c', 'echo "new in $(pwd)"'], cwd: dir, state: { status: 'queued' } });
    expect((await w.run(['status', 'x'])).stdout).toMatch(/^command\s+sh -c 'echo "new in \$\(pwd\)"'$/m);
    await w.run(['queue', 'resume', 'pc']);
    expect((await w.run(['wait', id, '--timeout', '30s'])).exitCode).toBe(0);
    expect(fs.readFileSync(w.record(id).log, 'utf8')).toBe(`new in ${fs.realpathSync(dir)}\n`);
    // Started or ended: refused in one line (exit 1), the record as it was.
    const g = gate(w, 'r');
    const r = await start(w, 'r', ['sh', '-c', g.hold]);
    for (const [ref, status] of [
      [r, 'running'],
      [id, 'succeeded'],
    ]) {
      const no = await w.run(['edit', ref!, '--', 'echo', 'other']);
      expect([no.exitCode, no.stderr]).toEqual([1, `jobq: ${ref} is ${status}: only a queued job can be edited`]);
    }
    expect(w.record(r).argv).toEqual(['sh', '-c', g.hold]);
    g.open();
    // A directory that is not there, or no change at all: usage errors, one line.
    for (const args of [
      ['edit', 'r', '--cwd', path.join(dir, 'nope')],
      ['edit', 'r'],
      ['edit', 'r', '--'],
    ]) {
      const u = await w.run(args);
      expect([u.exitCode, u.stderr.trim().split('\n').length], args.join(' ')).toEqual([2, 1]);
    }
  });

  it('is atomic against a dispatch starting the job: what ran is what the record says, whichever came first', async () => {
    for (let i = 0; i < 4; i++) {
      await w.run(['queue', 'pause', `race${i}`]);
      const id = (await w.run(['run', `race${i}`, '-q', '--queue', `race${i}`, '--', 'echo', 'old'])).stdout.trim();
      const [, e] = await Promise.all([w.run(['queue', 'resume', `race${i}`]), w.run(['edit', id, '--', 'echo', 'new'])]);
      expect((await w.run(['wait', id, '--timeout', '30s'])).exitCode).toBe(0);
      const ran = fs.readFileSync(w.record(id).log, 'utf8');
      // Edited before the claim: the new command ran; refused (it had started): the old one, and the record kept it.
      if (e.exitCode === 0) expect([ran, w.record(id).argv]).toEqual(['new\n', ['echo', 'new']]);
      else expect([e.exitCode, ran, w.record(id).argv]).toEqual([1, 'old\n', ['echo', 'old']]);
    }
  });
});

describe("the caller's config in the state dir", () => {
  it('is noted only by commands that change jobs: status, tail, wait and events write none of it', async () => {
    const proj = path.join(w.home, 'proj');
    fs.mkdirSync(proj);
    fs.writeFileSync(path.join(proj, '.jobq.json'), JSON.stringify({ queues: { cq: { slots: 3 } }, memReserve: '2G' }));
    const noted = path.join(w.home, 'queues', 'cq.json');
    const settings = path.join(w.home, 'dispatch.json');
    const old = await start(w, 'old', ['true']);
    await w.run(['wait', old]);
    fs.rmSync(noted, { force: true });
    fs.rmSync(settings, { force: true });
    for (const args of [['status'], ['status', 'old'], ['tail', 'old'], ['wait', 'old'], ['events', '-n', '1']]) {
      expect((await w.run(args, { cwd: proj })).exitCode, args.join(' ')).toBe(0);
    }
    expect([fs.existsSync(noted), fs.existsSync(settings)]).toEqual([false, false]);
    const id = (await w.run(['run', 'cj', '-q', '--queue', 'cq', '--', 'true'], { cwd: proj })).stdout.trim();
    expect((await w.run(['wait', id])).exitCode).toBe(0);
    expect(JSON.parse(fs.readFileSync(noted, 'utf8')).configured).toBe(3);
    expect(JSON.parse(fs.readFileSync(settings, 'utf8')).memReserveBytes).toBe(2 * 1024 ** 3);
  });
});

describe('a busy dispatch lock', () => {
  it('is not a failure: a supervisor whose job ended leaves the queue to the dispatcher, which starts the next job once the lock is free', async () => {
    const g = gate(w, 'a');
    const a = (await w.run(['run', 'a', '-q', '--queue', 'busy', '--', 'sh', '-c', g.hold])).stdout.trim();
    const b = (await w.run(['run', 'b', '-q', '--queue', 'busy', '--', 'true'])).stdout.trim();
    await pollUntil(() => state(a).status === 'running', 10_000, 'a to run');
    // Another jobq holding the dispatch lock for long (kept fresh, as proper-lockfile's holder does): 32 s, past the
    // 30 s any lock is waited for.
    const lock = path.join(w.home, 'locks', 'dispatch.lock');
    // The dispatcher may hold it for a moment as we come: take it as another jobq would, once it is free.
    const take = () => {
      try {
        fs.mkdirSync(lock);
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        return false;
      }
    };
    await pollUntil(take, 10_000, 'the dispatch lock to be free', 20);
    const fresh = setInterval(() => fs.utimesSync(lock, new Date(), new Date()), 1000);
    try {
      g.open();
      await pollUntil(() => state(a).status === 'succeeded', 10_000, 'a to end');
      const until = Date.now() + 32_000;
      await pollUntil(() => Date.now() > until, 40_000, 'the hold to pass', 500);
      expect(state(b).status).toBe('queued');
    } finally {
      clearInterval(fresh);
      fs.rmdirSync(lock);
    }
    await pollUntil(() => w.tryRecord(b)?.state.status === 'succeeded', 20_000, 'b to run once the lock is free');
    const events = fs.readFileSync(path.join(w.home, 'events.log'), 'utf8');
    expect(events).not.toMatch(/supervisor failed|supervisor error|is busy/);
  }, 90_000);
});

describe('an idle dispatcher', () => {
  it('1,000 jobs in a paused queue cost it no CPU while nothing changes; a slot freed by a SIGKILLed supervisor is still seen', async () => {
    await w.run(['queue', 'pause', 'idle']);
    for (let i = 0; i < 1000; i++)
      plantRecord(w.home, `idle${i}`, { queue: 'idle', priority: 0, state: { status: 'queued', since: new Date().toISOString() } });
    const g = gate(w, 'x');
    const x = (await w.run(['run', 'x', '-q', '--queue', 'b', '--', 'sh', '-c', g.hold])).stdout.trim();
    const y = (await w.run(['run', 'y', '-q', '--queue', 'b', '--', 'true'])).stdout.trim();
    const disp = await registeredDispatcher();
    const ticks = () => {
      const f = fs.readFileSync(`/proc/${disp}/stat`, 'latin1').split(') ')[1]!.split(' ');
      return Number(f[11]) + Number(f[12]);
    };
    // Its first rounds read every record: give it up to 20 s to go quiet, then measure. Quiet is 3 s without a tick:
    // with a live supervisor (x's) it takes a change in a round up to 2 s later (docs/queues.md).
    let last = -1;
    let still = 0;
    for (const until = Date.now() + 20_000; Date.now() < until && still < 6; ) {
      const now = ticks();
      still = now === last ? still + 1 : 0;
      last = now;
      await new Promise((r) => setTimeout(r, 500));
    }
    const t0 = ticks();
    await new Promise((r) => setTimeout(r, 5000));
    // Work done, not speed: under 1% of a core over 5 s (a round over 1,000 records costs tens of ms).
    const used = ticks() - t0;
    if (process.env.JOBQ_TEST_SHOW) console.log(`dispatcher ticks over 5 s: ${used}`);
    expect(used).toBeLessThanOrEqual(5);
    expect(state(y).status).toBe('queued');
    // No jobq command from here on: x's supervisor dies, x ends, and the dispatcher sees the slot free.
    process.kill(w.record(x).supervisor.pid, 'SIGKILL');
    g.open();
    await pollUntil(() => w.tryRecord(y)?.state.status === 'succeeded', 20_000, 'y to run in the freed slot');
  }, 90_000);
});

describe('after a reboot', () => {
  it('a queued job survives (another boot id) and runs at the first jobq command; a job that was running is lost and frees its slot', async () => {
    const other = '00000000-0000-0000-0000-000000000000';
    const ran = path.join(w.home, 'ran.txt');
    const gone = plantRecord(w.home, 'wasrunning', {
      boot: other,
      queue: 'rb',
      priority: 0,
      supervisor: { pid: 4_100_001, startTicks: 5 },
      job: { pid: 4_100_002, pgid: 4_100_002, startTicks: 6 },
      state: { status: 'running', startedAt: new Date().toISOString() },
    });
    const waiting = plantRecord(w.home, 'waiter', {
      boot: other,
      queue: 'rb',
      priority: 0,
      argv: ['sh', '-c', `echo ran > ${ran}`],
      cwd: w.home,
      state: { status: 'queued', since: new Date().toISOString() },
    });
    fs.writeFileSync(path.join(w.home, 'jobs', waiting, 'env.json'), JSON.stringify({ PATH: process.env.PATH, JOBQ_TEST_TAG: w.tag }), { mode: 0o600 });
    // Any command will do: status starts the dispatcher, which reconciles the old job and starts the waiting one.
    await w.run(['status']);
    await pollUntil(() => w.tryRecord(waiting)?.state.status === 'succeeded', 20_000, 'the queued job to run');
    expect(fs.readFileSync(ran, 'utf8')).toBe('ran\n');
    expect(state(gone).status).toBe('lost');
    expect(alive(4_100_002)).toBe(false);
  });
});
