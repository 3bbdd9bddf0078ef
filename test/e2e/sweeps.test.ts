// Sweeps that finish: --retry (a failed job runs again in its record, each end kept) and GNU parallel's joblog.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HAS_CGROUP, IS_ROOT, pollUntil, start, useWorld } from '../helpers/jobq.js';

const w = useWorld();

describe('retries', () => {
  it('a job failing twice then succeeding under --retry 2 ends succeeded, three attempts known, JOBQ_ATTEMPT 1 2 3', async () => {
    const id = await start(w, 'flaky', ['sh', '-c', 'echo "attempt $JOBQ_ATTEMPT"; [ "$JOBQ_ATTEMPT" = 3 ] || exit 3'], ['--retry', '2']);
    const r = await w.run(['wait', id, '--timeout', '30s']);
    expect(r.exitCode).toBe(0);
    const rec = w.record(id);
    expect(rec.state.status).toBe('succeeded');
    expect(rec.attempts.map((a: { attempt: number; status: string; exitCode: number }) => [a.attempt, a.status, a.exitCode])).toEqual([
      [1, 'failed', 3],
      [2, 'failed', 3],
    ]);
    const log = fs.readFileSync(rec.log, 'utf8');
    expect(log.match(/^attempt \d$/gm)).toEqual(['attempt 1', 'attempt 2', 'attempt 3']);
    expect(log).toMatch(/\[jobq\] attempt 1 of 3 ended failed \(3\); attempt 2 now/);
    const detail = (await w.run(['status', id])).stdout;
    expect(detail).toMatch(/retry\s+up to 2 more on exit,signal,oom,timeout,lost, at once/);
    expect(detail).toMatch(/attempt 1\s+failed \(3\) after/);
  });

  it("attempts run out: the last end is the job's, and wait returns its code", async () => {
    const id = await start(w, 'always', ['sh', '-c', 'exit 4'], ['--retry', '1']);
    expect((await w.run(['wait', id, '--timeout', '30s'])).exitCode).toBe(4);
    const rec = w.record(id);
    expect(rec.state).toMatchObject({ status: 'failed', exitCode: 4 });
    expect(rec.attempts).toHaveLength(1);
  });

  it('--retry-on oom does not retry a timeout; --retry-on timeout does', async () => {
    const a = await start(w, 'slow1', ['sleep', '30'], ['--timeout', '1s', '--grace', '1s', '--retry', '2', '--retry-on', 'oom']);
    expect((await w.run(['wait', a, '--timeout', '30s'])).exitCode).toBe(124);
    expect(w.record(a).attempts).toBeUndefined();
    const b = await start(
      w,
      'slow2',
      ['sh', '-c', '[ "$JOBQ_ATTEMPT" = 2 ] || sleep 30'],
      ['--timeout', '1s', '--grace', '1s', '--retry', '1', '--retry-on', 'timeout'],
    );
    expect((await w.run(['wait', b, '--timeout', '30s'])).exitCode).toBe(0);
    expect(w.record(b).attempts).toEqual([expect.objectContaining({ attempt: 1, status: 'timeout', reason: 'wall' })]);
  });

  it('between attempts it waits its --retry-delay, says so, and a cancel then ends it without another attempt', async () => {
    const id = await start(w, 'later', ['sh', '-c', 'echo ran >> ran.txt; exit 1'], ['--retry', '2', '--retry-delay', '30s', '--cwd', w.home]);
    await pollUntil(() => w.tryRecord(id)?.state.status === 'queued', 15_000, 'the job to wait for its retry');
    const st = (await w.run(['status'])).stdout;
    expect(st).toMatch(/queued \(attempt 2\/3\)/);
    expect((await w.run(['status', id])).stdout).toMatch(/waiting\s+retry: attempt 2 at \d\d:\d\d:\d\d/);
    const c = await w.run(['cancel', id]);
    expect(c.exitCode).toBe(0);
    expect(w.record(id).state.status).toBe('cancelled');
    expect(w.record(id).attempts).toHaveLength(1);
    expect((await w.run(['wait', id])).exitCode).toBe(143);
    expect(fs.readFileSync(`${w.home}/ran.txt`, 'utf8')).toBe('ran\n');
  });

  it('a delayed attempt starts once its delay is over, with no command typed (the dispatcher starts it)', async () => {
    const id = await start(w, 'soon', ['sh', '-c', '[ "$JOBQ_ATTEMPT" = 2 ] || exit 7'], ['--retry', '1', '--retry-delay', '1s']);
    await pollUntil(() => w.tryRecord(id)?.state.status === 'succeeded', 20_000, 'the second attempt to succeed');
    const rec = w.record(id);
    expect(Date.parse(rec.state.startedAt) - Date.parse(rec.attempts[0].endedAt)).toBeGreaterThanOrEqual(1000);
  });

  it.skipIf(!HAS_CGROUP || !IS_ROOT)('an OOM with --mem-grow: the next attempt gets the larger limit and finishes', async () => {
    // Needs about 100M with node's own: 64M is too little, 192M enough.
    const need = [process.execPath, '-e', 'const b=Buffer.alloc(90<<20,1); console.log("ok", b.length)'];
    const id = await start(w, 'grow', need, ['--mem-limit', '64M', '--retry', '1', '--retry-on', 'oom', '--mem-grow', '3x']);
    expect((await w.run(['wait', id, '--timeout', '60s'])).exitCode).toBe(0);
    const rec = w.record(id);
    expect(rec.attempts).toEqual([expect.objectContaining({ attempt: 1, status: 'oom', memLimitBytes: 64 << 20 })]);
    expect(rec.protection.memLimitBytes).toBe(192 << 20);
    expect(fs.readFileSync(rec.log, 'utf8')).toMatch(/attempt 2 now, --mem-limit 192M/);
  });

  it('each attempt finds its own protection: an RLIMIT_AS --mem-limit holds in every attempt', async () => {
    const id = await start(w, 'rl', ['sh', '-c', 'echo "limit $(ulimit -v)"; exit 3'], ['--isolation', 'none', '--mem-limit', '256M', '--retry', '1']);
    expect((await w.run(['wait', id, '--timeout', '30s'])).exitCode).toBe(3);
    expect(fs.readFileSync(w.record(id).log, 'utf8').match(/^limit .*$/gm)).toEqual(['limit 262144', 'limit 262144']);
    expect(w.record(id).protection.memLimitHow).toBe('rlimit-as');
  });

  it('--retry-on lost: a job whose supervisor and processes were SIGKILLed runs again once a reader finds it lost; without lost it stays lost', async () => {
    const marks = path.join(w.home, 'attempts');
    const cmd = (name: string) => ['sh', '-c', `echo ${name} $JOBQ_ATTEMPT >> ${marks}; [ "$JOBQ_ATTEMPT" = 2 ] && exit 0; exec sleep 60`];
    const a = await start(w, 'lossy', cmd('a'), ['--retry', '1', '--retry-on', 'lost']);
    const b = await start(w, 'kept', cmd('b'), ['--retry', '1', '--retry-on', 'exit,signal']);
    const env = (id: string) => fs.existsSync(path.join(w.home, 'jobs', id, 'env.json'));
    for (const id of [a, b]) {
      await pollUntil(() => w.record(id).state.status === 'running' && fs.existsSync(marks), 10_000, `${id} running`);
      // Its environment stays on disk (0600, as while a job waits) only while a loss could be retried.
      expect(env(id)).toBe(id === a);
      const rec = w.record(id);
      process.kill(rec.supervisor.pid, 'SIGKILL');
      await pollUntil(() => !fs.existsSync(`/proc/${rec.supervisor.pid}`), 5000, 'the supervisor gone');
      process.kill(-rec.job.pid, 'SIGKILL');
    }
    // No jobq process is left to notice: the next reader does, and has the retry dispatched.
    await w.run(['status']);
    expect((await w.run(['wait', a, '--timeout', '30s'])).exitCode).toBe(0);
    const ra = w.record(a);
    expect(ra.state.status).toBe('succeeded');
    expect(ra.attempts.map((x: { attempt: number; status: string }) => [x.attempt, x.status])).toEqual([[1, 'lost']]);
    expect(env(a)).toBe(false);
    expect(fs.readFileSync(path.join(w.home, 'events.log'), 'utf8')).toMatch(/"msg":"lost; run again \(--retry-on lost\)"/);
    expect((await w.run(['status', a])).stdout).toMatch(/attempt 1\s+lost/);
    expect((await w.run(['wait', b, '--timeout', '10s'])).exitCode).toBe(1);
    expect(w.record(b).state.status).toBe('lost');
    expect(w.record(b).attempts).toBeUndefined();
    expect(fs.readFileSync(marks, 'utf8').split('\n').filter(Boolean).sort()).toEqual(['a 1', 'a 2', 'b 1']);
  });

  it('bad retry flags are one-line usage errors, nothing written', async () => {
    for (const [flags, msg] of [
      [['--retry', '0'], /^jobq: invalid --retry '0': how many more attempts, 1 to 100$/],
      [['--retry', '2', '--retry-on', 'exit,cancel'], /^jobq: invalid --retry-on 'cancel': one or more of exit, signal, oom, timeout/],
      [['--retry-delay', '5s'], /^jobq: --retry-on, --retry-delay and --mem-grow go with --retry N$/],
      [['--retry', '1', '--retry-on', 'oom', '--mem-grow', '1.5x'], /^jobq: --mem-grow grows the --mem-limit: give one$/],
      [['--retry', '1', '--mem-limit', '1G', '--mem-grow', '0.5'], /^jobq: invalid --mem-grow '0.5'/],
    ] as const) {
      const r = await w.run(['run', 'bad', ...flags, '--', 'true']);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr.trim()).toMatch(msg);
    }
    expect(w.ids()).toEqual([]);
  });
});

/** A joblog's rows by parallel's column names. */
function joblog(file: string): Array<Record<string, string>> {
  const [head, ...rows] = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
  const cols = head!.split('\t');
  return rows.map((r) => Object.fromEntries(r.split('\t').map((v, i) => [cols[i], v])));
}

describe('joblog', () => {
  it("an array's ends go to its joblog in parallel's columns, one line each as it ends; awk reads it", async () => {
    const r = await w.run(['run', 'sw', '--array', '1-4', '--retry', '1', '--retry-on', 'signal', '--', 'sh', '-c', 'echo out{}; [ {} != 3 ]']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await w.run(['wait', 'sw', '--timeout', '30s'])).exitCode).toBe(1);
    const file = path.join(w.home, 'joblogs', 'sw.tsv');
    expect(fs.readFileSync(file, 'utf8').split('\n')[0]).toBe('Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand');
    const rows = joblog(file).sort((a, b) => Number(a.Seq) - Number(b.Seq));
    expect(rows.map((x) => [x.Seq, x.Host, x.Exitval, x.Signal, x.Receive, x.Send])).toEqual([
      ['1', ':', '0', '0', '5', '0'],
      ['2', ':', '0', '0', '5', '0'],
      ['3', ':', '1', '0', '5', '0'],
      ['4', ':', '0', '0', '5', '0'],
    ]);
    expect(rows[2]!.Command).toBe("sh -c 'echo out3; [ 3 != 3 ]'");
    for (const x of rows) {
      expect(x.Starttime).toMatch(/^\d{10}\.\d{3}$/);
      expect(x.JobRuntime).toMatch(/^\d+\.\d{3}$/);
    }
    // The one-liner people keep for parallel's joblog: which sequence numbers failed.
    expect(execFileSync('awk', ['-F', '\t', 'NR>1 && $7!=0 {print $1}', file], { encoding: 'utf8' })).toBe('3\n');
    expect((await w.run(['status', 'sw'])).stdout).toContain(`joblog: ${file}`);
  });

  it('a command that cannot start is its joblog line (Exitval 127), written before its record: wait sees every line', async () => {
    const r = await w.run(['run', 'nf', '--array', '1-12', '--', '/nonexistent/cmd', '{}']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await w.run(['wait', 'nf', '--timeout', '30s'])).exitCode).toBe(127);
    const rows = joblog(path.join(w.home, 'joblogs', 'nf.tsv'));
    expect(rows.map((x) => [x.Exitval, x.JobRuntime])).toEqual(Array.from({ length: 12 }, () => ['127', '0.000']));
    expect(rows.map((x) => Number(x.Seq)).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  });

  it('--joblog FILE for one job: a signal is its Signal column, each --retry attempt a line; a planted symlink is refused', async () => {
    const file = path.join(w.home, 'my.joblog');
    const id = await start(w, 'sig', ['sh', '-c', '[ "$JOBQ_ATTEMPT" = 2 ] || kill -9 $$'], ['--joblog', file, '--retry', '1']);
    expect((await w.run(['wait', id, '--timeout', '30s'])).exitCode).toBe(0);
    expect(joblog(file).map((x) => [x.Exitval, x.Signal])).toEqual([
      ['0', '9'],
      ['0', '0'],
    ]);
    const planted = path.join(w.home, 'planted.joblog');
    fs.symlinkSync('/etc/hostname', planted);
    const before = w.ids().length;
    const r = await w.run(['run', 'nope', '--joblog', planted, '--', 'true']);
    expect([r.exitCode, r.stderr.trim()]).toEqual([1, `jobq: refusing joblog ${planted}: it is a symlink`]);
    expect(w.ids()).toHaveLength(before);
  });
});

describe('rerun', () => {
  it('rerun --failed ARRAY runs exactly the failed elements again, by index; wait and status see the new ones', async () => {
    for (const i of [1, 2, 4]) fs.writeFileSync(path.join(w.home, `ok.${i}`), '');
    const r = await w.run(['run', 'rr', '--array', '1-5', '--cwd', w.home, '--', 'sh', '-c', 'echo try {}; [ -e ok.{} ]']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await w.run(['wait', 'rr', '--timeout', '30s'])).exitCode).toBe(1);
    const before = w.ids().length;
    const dry = await w.run(['rerun', '--failed', 'rr', '--dry-run']);
    expect(dry.stdout.trim()).toBe('rr.3: failed (1) (would run again)\nrr.5: failed (1) (would run again)');
    expect(w.ids()).toHaveLength(before);
    fs.writeFileSync(path.join(w.home, 'ok.3'), '');
    const again = await w.run(['rerun', '--failed', 'rr']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout.trim()).toMatch(/^rr\.3: failed \(1\) -> rr\.3_\S+ {2}#\d+\nrr\.5: failed \(1\) -> rr\.5_\S+ {2}#\d+\n2 jobs run again; jobq wait rr$/);
    expect(w.ids()).toHaveLength(before + 2);
    expect((await w.run(['wait', 'rr', '--timeout', '30s'])).exitCode).toBe(1);
    const st = JSON.parse((await w.run(['status', 'rr', '--json'])).stdout);
    expect(st.counts).toEqual({ succeeded: 4, failed: 1 });
    const newest = st.jobs.map((j: { name: string; admission: { array: { index: number; value: string; size: number } } }) => [
      j.name,
      j.admission.array.index,
      j.admission.array.value,
      j.admission.array.size,
    ]);
    expect(newest).toEqual([1, 2, 3, 4, 5].map((i) => [`rr.${i}`, i, String(i), 5]));
    // The array's joblog has each run's line: Seq 3 and 5 twice.
    const seqs = joblog(path.join(w.home, 'joblogs', 'rr.tsv'))
      .map((x) => x.Seq)
      .sort();
    expect(seqs).toEqual(['1', '2', '3', '3', '4', '5', '5']);
    expect((await w.run(['rerun', '--failed', 'rr', '-n'])).stdout.trim()).toBe('rr.5: failed (1) (would run again)');
  });

  it('an array is its latest run: an older run of the NAME is not brought back, by status or by rerun', async () => {
    expect((await w.run(['run', 'sw2', '--array', '1-3', '--', 'false'])).exitCode).toBe(0);
    expect((await w.run(['wait', 'sw2', '--timeout', '30s'])).exitCode).toBe(1);
    expect((await w.run(['run', 'sw2', '--array', '1-1', '--', 'true'])).exitCode).toBe(0);
    expect((await w.run(['wait', 'sw2', '--timeout', '30s'])).exitCode).toBe(0);
    expect((await w.run(['status', 'sw2'])).stdout).toMatch(/^array sw2: 1 jobs: 0 queued, 0 running, 0 paused, 1 succeeded/);
    expect((await w.run(['rerun', '--failed', 'sw2', '-n'])).stdout.trim()).toBe('nothing failed in sw2');
  });

  it('rerun keeps --after: a dependent waits for its dependency run again, and starts once that succeeds', async () => {
    await w.run(['queue', 'set', 'dq', '--slots', '2']);
    const flag = path.join(w.home, 'second');
    const p = await start(w, 'dp', ['sh', '-c', `[ -e ${flag} ] && sleep 0.5`], ['--queue', 'dq']);
    const t = await start(w, 'dt', ['sh', '-c', 'echo after'], ['--queue', 'dq', '--after', p]);
    await w.run(['wait', p, t, '--timeout', '30s']);
    expect([w.record(p).state.status, w.record(t).state.status]).toEqual(['failed', 'skipped']);
    fs.writeFileSync(flag, '');
    const r = await w.run(['rerun', '--unfinished', 'dq', '--json']);
    const jobs = JSON.parse(r.stdout).jobs as Array<{ old: string; id: string; seq: number }>;
    const np = jobs.find((j) => j.old === p)!.id;
    const nt = jobs.find((j) => j.old === t)!.id;
    expect(w.record(nt).admission.after).toEqual([{ id: np, kind: 'ok' }]);
    expect((await w.run(['wait', np, nt, '--timeout', '30s'])).exitCode).toBe(0);
    expect(Date.parse(w.record(nt).state.startedAt)).toBeGreaterThanOrEqual(Date.parse(w.record(np).state.endedAt));
  });

  it('rerun of a queue takes the latest job of each NAME; --unfinished adds the cancelled; bad input is one line', async () => {
    await w.run(['queue', 'set', 'qq', '--slots', '3']);
    const a = await start(w, 'qa', ['false'], ['--queue', 'qq']);
    const b = await start(w, 'qb', ['true'], ['--queue', 'qq']);
    const c = await start(w, 'qc', ['sleep', '60'], ['--queue', 'qq']);
    await w.run(['wait', a, b, '--timeout', '30s']);
    await w.run(['cancel', c]);
    // A later job of a NAME outside the queue is that NAME's latest: qb's success there hides nothing, qx's hides its failure.
    const x = await start(w, 'qx', ['false'], ['--queue', 'qq']);
    await w.run(['wait', x, '--timeout', '30s']);
    await w.run(['wait', await start(w, 'qx', ['true']), '--timeout', '30s']);
    expect((await w.run(['rerun', '--failed', 'qq', '-n'])).stdout.trim()).toBe('qa: failed (1) (would run again)');
    expect((await w.run(['rerun', '--unfinished', 'qq', '-n'])).stdout.split('\n').filter(Boolean).sort()).toEqual([
      'qa: failed (1) (would run again)',
      'qc: cancelled (would run again)',
    ]);
    const ran = await w.run(['rerun', '--failed', 'qq']);
    expect(ran.stdout).toMatch(/^qa: failed \(1\) -> qa_\S+ {2}#(\d+)\n1 job run again; jobq wait (\d+)$/m);
    const m = /#(\d+)\n1 job run again; jobq wait (\d+)/.exec(ran.stdout)!;
    expect(m[1]).toBe(m[2]);
    const none = await w.run(['rerun', 'qq']);
    expect([none.exitCode, none.stderr.trim()]).toEqual([2, 'jobq: which ones? jobq rerun --failed ARRAY (or --unfinished)']);
    const unknown = await w.run(['rerun', '--failed', 'nosuch']);
    expect([unknown.exitCode, unknown.stderr.trim()]).toEqual([1, 'jobq: no array or queue named nosuch (jobq status lists arrays, jobq queue the queues)']);
  });
});

describe('a chain of small jobs', () => {
  /** The live jobq supervisors of this state dir's records, by the records (and /proc: only a supervisor is signalled). */
  function liveSupervisors(): number[] {
    const pids = new Set<number>();
    for (const id of fs.readdirSync(path.join(w.home, 'active'))) {
      try {
        const rec = w.record(id);
        for (const p of [rec.supervisor?.pid, rec.state.claim?.by?.pid]) if (p) pids.add(p);
      } catch {
        /* ended and gone meanwhile */
      }
    }
    return [...pids].filter((pid) => {
      try {
        // A job's supervisor, not the dispatcher (which a claim may name): that one is the safety net here.
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1');
        return cmd.includes('supervisor.js') && !cmd.includes('--dispatch');
      } catch {
        return false;
      }
    });
  }

  it("a capped array's first element starts while run still records the rest", async () => {
    const n = 400;
    const ids = (await w.run(['run', 'early', '-q', '--array', `1-${n}%1`, '--', 'sleep', '30'])).stdout.trim().split('\n');
    expect(ids).toHaveLength(n);
    await pollUntil(() => w.record(ids[0]!).state.status === 'running', 10_000, 'the first element to run');
    const startedAt = Date.parse(w.record(ids[0]!).state.startedAt);
    // Recorded ~1 ms an element: the first started ~0.1 s in, hundreds of records before the last.
    expect(startedAt).toBeLessThan(Date.parse(w.record(ids[n - 1]!).createdAt));
    expect(ids.slice(1).every((id) => w.record(id).state.status === 'queued')).toBe(true);
    await w.run(['cancel', 'early']);
  });

  it('one supervisor runs many elements in turn; SIGKILLed 100 times at random points, no element is lost or run twice', async () => {
    const n = 240;
    const ran = path.join(w.home, 'ran.txt');
    const id0 = (await w.run(['run', 'chain', '-q', '--array', `1-${n}%2`, '--', 'sh', '-c', `echo {} >> ${ran}; sleep 0.0$(( {} % 4 ))`])).stdout.trim();
    expect(id0.split('\n')).toHaveLength(n);
    // Unkilled, a chain keeps one Node per slot: the first elements are run by 2 supervisors, not one each.
    await pollUntil(() => fs.existsSync(ran) && fs.readFileSync(ran, 'utf8').split('\n').length > 12, 30_000, 'a dozen elements');
    // (the records: who supervised each of the first ten)
    const first = fs
      .readdirSync(path.join(w.home, 'jobs'))
      .filter((d) => /^chain\.([1-9]|10)_/.test(d))
      .map((d) => w.record(d).supervisor?.pid);
    expect(first).toHaveLength(10);
    expect(new Set(first).size).toBeLessThanOrEqual(3);
    let kills = 0;
    for (const until = Date.now() + 150_000; kills < 100 && Date.now() < until; ) {
      const live = liveSupervisors();
      if (!live.length) {
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      // A random point of its work: claiming, starting, watching, recording, claiming the next.
      await new Promise((r) => setTimeout(r, Math.random() * 40));
      const pid = live[Math.floor(Math.random() * live.length)]!;
      try {
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1');
        if (cmd.includes('supervisor.js') && !cmd.includes('--dispatch')) {
          process.kill(pid, 'SIGKILL');
          kills++;
        }
      } catch {
        /* gone on its own */
      }
    }
    expect(kills).toBe(100);
    const ids = fs.readdirSync(path.join(w.home, 'jobs')).filter((d) => d.startsWith('chain.'));
    await pollUntil(() => ids.every((id) => !['queued', 'starting', 'running'].includes(w.record(id).state.status)), 120_000, 'every element ended');
    const byIndex = new Map<string, number>();
    for (const line of fs.readFileSync(ran, 'utf8').trim().split('\n')) byIndex.set(line, (byIndex.get(line) ?? 0) + 1);
    // None twice, none lost: each index ran exactly once, whatever its record could learn of its end.
    expect([...byIndex.values()].filter((c) => c !== 1)).toEqual([]);
    const never = ids.filter((id) => !byIndex.has(String(w.record(id).admission.array.index)));
    expect(never.map((id) => [id, w.record(id).state])).toEqual([]);
    expect(byIndex.size).toBe(n);
    const states = ids.map((id) => w.record(id).state.status);
    expect(states.filter((s) => s !== 'succeeded' && s !== 'lost')).toEqual([]);
  }, 300_000);
});
