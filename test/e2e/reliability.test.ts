// Issue 3: nothing lost under load, faults and bad input; nothing signalled that is not the job.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, bystander, IS_ROOT, pollUntil, start, taggedPids, useWorld } from '../helpers/jobq.js';
import { plantRecord, startTicks } from '../helpers/records.js';

const isRoot = IS_ROOT;
const w = useWorld();

describe('load', () => {
  it('200 concurrent runs give 200 distinct, complete, correct records while status --json runs in a loop', async () => {
    let stop = false;
    const statusErrors: string[] = [];
    let statusRuns = 0;
    const loop = (async () => {
      while (!stop) {
        const r = await w.run(['status', '--all', '--json']);
        statusRuns++;
        if (r.exitCode !== 0) statusErrors.push(r.stderr);
        else {
          try {
            const j = JSON.parse(r.stdout);
            if (j.broken.length) statusErrors.push(JSON.stringify(j.broken));
            for (const job of j.jobs) if (!job.id || !job.state?.status) statusErrors.push(`half record ${job.id}`);
          } catch (e) {
            statusErrors.push(String(e));
          }
        }
      }
    })();
    const kinds = (i: number) =>
      i % 4 === 0 ? ['true'] : i % 4 === 1 ? ['sleep', '0.3'] : i % 4 === 2 ? ['sh', '-c', 'exit 5'] : ['sh', '-c', 'kill -TERM $$'];
    const runs = await Promise.all(Array.from({ length: 200 }, (_, i) => w.run(['run', `load${i % 7}`, '-q', '--allow-duplicate', '--', ...kinds(i)])));
    expect(runs.filter((r) => r.exitCode !== 0).map((r) => r.stderr)).toEqual([]);
    const ids = runs.map((r) => r.stdout.trim());
    expect(new Set(ids).size).toBe(200);
    await w.run(['wait', ...ids, '--timeout', '120s']);
    stop = true;
    await loop;
    expect(statusErrors).toEqual([]);
    expect(statusRuns).toBeGreaterThan(0);
    ids.forEach((id, i) => {
      const want = ['succeeded', 'succeeded', 'failed', 'killed'][i % 4];
      expect(w.record(id).state.status, id).toBe(want);
    });
  }, 240_000);

  it('two concurrent cancels of one job: one cancels, the other waits for that and says so', async () => {
    const id = await start(w, 'twice', ['bash', '-c', 'trap "" TERM; while :; do sleep 0.1; done']);
    // A grace long enough that the second cancel (its node may start seconds later on a loaded machine) finds the
    // first one still at work.
    const [a, b] = await Promise.all([w.run(['cancel', id, '--grace', '5s']), w.run(['cancel', id, '--grace', '5s'])]);
    expect([a.exitCode, b.exitCode]).toEqual([0, 0]);
    const outs = [a.stdout, b.stdout];
    expect(outs.filter((o) => o.startsWith('cancelled ')).length).toBe(1);
    expect(outs.filter((o) => o.includes('already being cancelled by') && o.includes('it ended: cancelled')).length).toBe(1);
    expect(w.record(id).state.status).toBe('cancelled');
  });

  it('status stays correct with 2,000 finished jobs: recent ones by default, all with --all', async () => {
    const base = Date.now() - 3 * 86_400_000;
    for (let i = 0; i < 2000; i++) {
      const at = new Date(base + i * 1000);
      plantRecord(
        w.home,
        `old${i % 10}`,
        { state: { status: 'succeeded', startedAt: at.toISOString(), exitCode: 0, signal: null, endedAt: at.toISOString(), durationMs: 5 } },
        at,
      );
    }
    const live = await start(w, 'live', ['sleep', '30']);
    const def = JSON.parse((await w.run(['status', '--json'])).stdout);
    // The live job, then the 20 most recent finished ones.
    expect(def.jobs.length).toBe(21);
    expect(def.hidden).toBe(2001 - 21);
    expect(def.jobs[0].id).toBe(live);
    const all = JSON.parse((await w.run(['status', '--all', '--json'])).stdout);
    expect(all.jobs.length).toBe(2001);
    expect(all.broken).toEqual([]);
    const table = (await w.run(['status'])).stdout;
    expect(table).toContain('1980 older jobs not shown');
  });
});

describe('faults', () => {
  it('supervisor SIGKILLed: the job keeps logging, cancel still ends it, the end is never succeeded', async () => {
    const id = await start(w, 'nosup', ['sh', '-c', 'while :; do echo tick; sleep 0.1; done']);
    const rec = w.record(id);
    process.kill(rec.supervisor.pid, 'SIGKILL');
    await pollUntil(() => !alive(rec.supervisor.pid), 5000, 'supervisor gone');
    const size = fs.statSync(rec.log).size;
    await pollUntil(() => fs.statSync(rec.log).size > size, 5000, 'job still logging');
    const r = await w.run(['cancel', id]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^cancelled ${id} \\(SIGTERM; gone in`));
    expect(alive(rec.job.pid)).toBe(false);
    // With no supervisor, cancel itself records the end: cancelled, exit status unknown.
    const end = w.record(id).state;
    expect(end.status).toBe('cancelled');
    expect(end.exitCode).toBeNull();
  });

  it('a spawned supervisor SIGKILLed while it holds the job (before the release): failed-to-start in one line, and the command never runs', async () => {
    const marker = path.join(w.home, 'crashed');
    const r = await w.run(['run', 'held', '-q', '--', 'sh', '-c', 'echo ran > ran.txt'], {
      env: { JOBQ_STANDBY: '0', JOBQ_TEST_CRASH_AT: `held:${marker}` },
      cwd: w.home,
    });
    expect(fs.existsSync(marker)).toBe(true);
    expect(r.exitCode).toBe(127);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/failed to start: the supervisor stopped before starting the job/);
    const [id] = w.ids();
    expect(w.record(id!).state.status).toBe('failed-to-start');
    // The held wrapper saw its pipe close and exited without exec'ing the command.
    await pollUntil(() => taggedPids(w.tag).length === 0, 5000, 'the held wrapper to exit');
    expect(fs.existsSync(path.join(w.home, 'ran.txt'))).toBe(false);
  });

  it('a spawned supervisor SIGKILLed before it took its job (nothing recorded yet): run says failed-to-start, never queued', async () => {
    const marker = path.join(w.home, 'crashed');
    const r = await w.run(['run', 'early', '--', 'sh', '-c', 'echo ran > ran.txt'], {
      env: { JOBQ_STANDBY: '0', JOBQ_TEST_CRASH_AT: `begun:${marker}` },
      cwd: w.home,
    });
    expect(fs.existsSync(marker)).toBe(true);
    expect([r.exitCode, r.stdout]).toEqual([127, '']);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/failed to start: its supervisor stopped before the job started/);
    const [id] = w.ids();
    expect(w.record(id!).state.status).toBe('failed-to-start');
    expect(fs.existsSync(path.join(w.home, 'ran.txt'))).toBe(false);
    expect((await w.run(['wait', id!])).exitCode).toBe(127);
  });

  it.each([
    ['a spawned supervisor', '0'],
    ['the standby', '1'],
  ])('%s SIGKILLed between recording running and "go": run says failed-to-start, and the command never runs', async (_, standby) => {
    const marker = path.join(w.home, 'crashed');
    const r = await w.run(['run', 'gate', '-q', '--', 'sh', '-c', 'echo ran > ran.txt'], {
      env: { JOBQ_STANDBY: standby, JOBQ_TEST_CRASH_AT: `running:${marker}` },
      cwd: w.home,
    });
    expect(fs.existsSync(marker)).toBe(true);
    expect(r.exitCode, `${r.stdout} ${r.stderr} ${JSON.stringify(w.record(w.ids()[0]!).state)}`).toBe(127);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/failed to start: the supervisor stopped before the command ran/);
    const [id] = w.ids();
    expect(w.record(id!).state.status).toBe('failed-to-start');
    expect(fs.readFileSync(path.join(w.home, 'jobs', id!, 'gate'), 'latin1')).toBe('h');
    await pollUntil(() => taggedPids(w.tag).length === 0, 5000, 'the held wrapper to exit');
    expect(fs.existsSync(path.join(w.home, 'ran.txt'))).toBe(false);
    expect((await w.run(['wait', id!])).exitCode).toBe(127);
    // What the killed supervisor did before it died is in events.log, in order: nothing was held in its memory.
    const moves = fs
      .readFileSync(path.join(w.home, 'events.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.id === id && e.from)
      .map((e) => `${e.from}>${e.msg}`);
    expect(moves).toEqual(['starting>running', 'running>failed-to-start']);
    // Its cgroups went with it: the reader that wrote failed-to-start removed them, empty as they were.
    for (const d of w.record(id!).protection.cgroups ?? []) expect(fs.existsSync(d), d).toBe(false);
  });

  it('a supervisor SIGKILLed after "go": the command ran, so the job is lost, never failed-to-start', async () => {
    const r = await w.run(['run', 'went', '-q', '--', 'sh', '-c', 'echo ran > ran.txt; sleep 0.5'], { cwd: w.home });
    expect(r.exitCode).toBe(0);
    const id = r.stdout.trim();
    const rec = w.record(id);
    expect(fs.readFileSync(path.join(w.home, 'jobs', id, 'gate'), 'latin1')).toBe('g');
    process.kill(rec.supervisor.pid, 'SIGKILL');
    await pollUntil(() => !alive(rec.job.pid), 5000, 'the job to end');
    expect(JSON.parse((await w.run(['status', id, '--json'])).stdout).state.status).toBe('lost');
    expect(fs.readFileSync(path.join(w.home, 'ran.txt'), 'utf8')).toBe('ran\n');
  });

  it('launcher killed before the job started: the record does not stay starting', async () => {
    const id = plantRecord(w.home, 'halfway', { state: { status: 'starting' } });
    const st = JSON.parse((await w.run(['status', id, '--json'])).stdout);
    expect(st.state.status).toBe('failed-to-start');
    expect(w.record(id).state.status).toBe('failed-to-start');
    expect((await w.run(['wait', id])).exitCode).toBe(127);
  });

  it('job and supervisor both gone (reboot): lost', async () => {
    const id = plantRecord(w.home, 'reboot', {
      supervisor: { pid: 4_000_000, startTicks: 5 },
      job: { pid: 4_000_001, pgid: 4_000_001, startTicks: 6 },
      state: { status: 'running', startedAt: new Date().toISOString() },
    });
    const st = JSON.parse((await w.run(['status', id, '--json'])).stdout);
    expect(st.state.status).toBe('lost');
    expect(st.state.reason).toMatch(/exit status unknown/);
    expect((await w.run(['status'])).stdout).toMatch(/reboot\S*\s+\S+\s+lost/);
  });

  it('a garbled or truncated record is named in one line; every other job is listed; the file is left as it is', async () => {
    const good = await start(w, 'good', ['true']);
    const bad1 = plantRecord(w.home, 'garbled', { state: { status: 'running', startedAt: new Date().toISOString() } });
    const bad2 = plantRecord(w.home, 'trunc', { state: { status: 'running', startedAt: new Date().toISOString() } });
    const f1 = path.join(w.home, 'jobs', bad1, 'job.json');
    const f2 = path.join(w.home, 'jobs', bad2, 'job.json');
    fs.writeFileSync(f1, '\x00\x01garbage{{{');
    fs.writeFileSync(f2, fs.readFileSync(f2, 'utf8').slice(0, 40));
    const r = await w.run(['status']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(good);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.join('\n')).toContain(f1);
    expect(lines.join('\n')).toContain(f2);
    expect(fs.readFileSync(f1, 'utf8')).toBe('\x00\x01garbage{{{');
    const j = JSON.parse((await w.run(['status', '--json'])).stdout);
    expect(j.broken.map((b: { id: string }) => b.id).sort()).toEqual([bad1, bad2].sort());
  });

  it('pid reuse: a record whose pid is now another process is lost and that process is never signalled', async () => {
    const other = bystander();
    const id = plantRecord(w.home, 'reused', {
      supervisor: { pid: 4_000_002, startTicks: 5 },
      job: { pid: other, pgid: other, startTicks: startTicks(other) - 1 },
      state: { status: 'running', startedAt: new Date().toISOString() },
    });
    const st = JSON.parse((await w.run(['status', id, '--json'])).stdout);
    expect(st.state.status).toBe('lost');
    expect(st.state.reason).toMatch(/another process/);
    const id2 = plantRecord(w.home, 'reused2', {
      supervisor: { pid: 4_000_003, startTicks: 5 },
      job: { pid: other, pgid: other, startTicks: startTicks(other) + 7 },
      state: { status: 'running', startedAt: new Date().toISOString() },
    });
    await w.run(['cancel', id2, '--grace', '200ms']);
    expect(alive(other)).toBe(true);
  });

  it.skipIf(!isRoot)('a full or read-only state dir: run fails clearly before the job starts', async () => {
    const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mnt]);
    try {
      const home = path.join(mnt, 'state');
      fs.mkdirSync(home, { mode: 0o700 });
      await w.run(['status'], { env: { JOBQ_HOME: home } });
      fs.writeFileSync(path.join(mnt, 'fill'), Buffer.alloc(1));
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${path.join(mnt, 'fill')}`, 'bs=4k', 'count=100'], { stdio: 'ignore' });
      } catch {
        /* disk full is the point */
      }
      const marker = `full-${Date.now()}`;
      const r = await w.run(['run', 'full', '--', 'sh', '-c', `echo ran > /tmp/${marker}`], { env: { JOBQ_HOME: home } });
      expect(r.exitCode).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/ENOSPC|no space/i);
      expect(fs.existsSync(`/tmp/${marker}`)).toBe(false);
      fs.rmSync(path.join(mnt, 'fill'));
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      const ro = await w.run(['run', 'ro', '--', 'sh', '-c', `echo ran > /tmp/${marker}`], { env: { JOBQ_HOME: home } });
      expect(ro.exitCode).toBe(1);
      expect(ro.stderr).toMatch(/EROFS|read-only/i);
      expect(fs.existsSync(`/tmp/${marker}`)).toBe(false);
    } finally {
      execFileSync('umount', [mnt]);
      fs.rmSync(mnt, { recursive: true, force: true });
    }
  });

  it('gigabytes of output without newlines do not grow the supervisor', async () => {
    const id = await start(w, 'flood', ['sh', '-c', 'head -c 1500M /dev/zero; echo; echo done; sleep 30'], ['--max-log-size', '200M']);
    const rec = w.record(id);
    await pollUntil(() => fs.readFileSync(rec.log).subarray(-200).toString().includes('done'), 60_000, 'flood written', 100);
    const status = fs.readFileSync(`/proc/${rec.supervisor.pid}/status`, 'utf8');
    const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)![1]);
    expect(hwmKb).toBeLessThan(80 * 1024);
    await pollUntil(() => fs.statSync(rec.log).size <= 200 * 1024 * 1024, 5000, 'log capped');
    const head = Buffer.alloc(120);
    const fd = fs.openSync(rec.log, 'r');
    fs.readSync(fd, head, 0, 120, 0);
    fs.closeSync(fd);
    expect(head.toString()).toMatch(/^\[jobq\] \d+ bytes of older output dropped/);
  }, 120_000);
});

describe('security', () => {
  it('state dir 0700, records and logs 0600', async () => {
    const id = await start(w, 'perm', ['true']);
    await w.run(['wait', id]);
    const home = path.join(w.home, 'fresh');
    await w.run(['run', 'perm2', '--', 'true'], { env: { JOBQ_HOME: home } });
    expect(fs.statSync(home).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(w.home, 'jobs', id, 'job.json')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(w.home, 'jobs', id, 'output.log')).mode & 0o777).toBe(0o600);
  });

  it('refuses a group/world-writable state dir, and one owned by another user', async () => {
    const open = path.join(w.home, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    const r = await w.run(['status'], { env: { JOBQ_HOME: open } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/refusing state dir .*mode 777/);
    if (isRoot) {
      const theirs = path.join(w.home, 'theirs');
      fs.mkdirSync(theirs, { mode: 0o700 });
      fs.chownSync(theirs, 65534, 65534);
      const t = await w.run(['run', 'x', '--', 'true'], { env: { JOBQ_HOME: theirs } });
      expect(t.exitCode).toBe(1);
      expect(t.stderr).toMatch(/owned by uid 65534/);
      expect(fs.readdirSync(theirs)).toEqual([]);
    }
  });

  it('ids never escape the state dir, and --log never follows a planted symlink', async () => {
    for (const ref of ['../../etc/passwd', 'a/../../b', '..', '.hidden', 'a\nb', '-rf']) {
      const r = await w.run(['status', ref]);
      expect(r.exitCode, ref).toBeGreaterThan(0);
    }
    const target = path.join(w.home, 'precious.txt');
    fs.writeFileSync(target, 'keep me');
    const link = path.join(w.home, 'planted.log');
    fs.symlinkSync(target, link);
    const r = await w.run(['run', 'sym', '--log', link, '--', 'echo', 'overwrite']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/symlink/);
    expect(fs.readFileSync(target, 'utf8')).toBe('keep me');
  });

  it('redacts secret-looking environment values in records and --json', async () => {
    const r = await w.run([
      'run',
      'secret',
      '--json',
      '--env',
      'API_TOKEN=abc123',
      '--env',
      'DB_PASSWORD=hunter2',
      '--env',
      'AWS_SECRET_ACCESS_KEY=zzz',
      '--env',
      'PLAIN=visible',
      '--',
      'sh',
      '-c',
      'echo "$API_TOKEN"',
    ]);
    expect(r.exitCode).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(r.stdout).not.toMatch(/abc123|hunter2|zzz/);
    expect(j.env.added).toMatchObject({ API_TOKEN: '<redacted>', DB_PASSWORD: '<redacted>', AWS_SECRET_ACCESS_KEY: '<redacted>', PLAIN: 'visible' });
    await w.run(['wait', j.id]);
    expect(fs.readFileSync(path.join(w.home, 'jobs', j.id, 'job.json'), 'utf8')).not.toMatch(/abc123|hunter2/);
    expect(fs.readFileSync(j.log, 'utf8')).toContain('abc123');
  });

  it('never signals pid 0, pgid 0 or 1, or a negative pid from a malformed record', async () => {
    const by = bystander();
    const cases = [
      { pid: 0, pgid: 0, startTicks: 1 },
      { pid: 1, pgid: 1, startTicks: startTicks(1) },
      { pid: -by, pgid: -by, startTicks: startTicks(by) },
      { pid: by, pgid: 1, startTicks: startTicks(by) },
      { pid: by, pgid: 0, startTicks: startTicks(by) },
      { pid: 'x' as unknown as number, pgid: by, startTicks: startTicks(by) },
    ];
    for (const job of cases) {
      const id = plantRecord(w.home, 'malformed', {
        supervisor: { pid: 4_000_009, startTicks: 1 },
        job,
        state: { status: 'running', startedAt: new Date().toISOString() },
      });
      await w.run(['cancel', id, '--grace', '100ms']);
      expect(alive(by), JSON.stringify(job)).toBe(true);
      expect(alive(1)).toBe(true);
    }
  });
});
