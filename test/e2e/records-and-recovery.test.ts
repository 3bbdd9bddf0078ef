// The record after faults: killed supervisors or launchers, reboots, pid reuse, broken records, a full or removed state dir.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alive, bystander, IS_ROOT, pollUntil, start, taggedPids, tmpDir, useWorld } from '../helpers/jobq.js';
import { plantRecord, startTicks } from '../helpers/records.js';

const w = useWorld();
const state = (id: string) => w.record(id).state;

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

  it('a supervisor SIGKILLed between the end on disk and its index: the next status or dispatch finishes the move', async () => {
    const marker = path.join(w.home, 'crashed');
    const r = await w.run(['run', 'unindexed', '-q', '--', 'true'], { env: { JOBQ_STANDBY: '0', JOBQ_TEST_CRASH_AT: `recorded:${marker}` } });
    expect(r.exitCode, r.stderr).toBe(0);
    const id = r.stdout.trim();
    const sup = w.record(id).supervisor;
    await pollUntil(() => fs.existsSync(marker) && !alive(sup.pid), 10_000, 'the supervisor to die after recording the end');
    const active = path.join(w.home, 'active', id);
    const events = () =>
      fs
        .readFileSync(path.join(w.home, 'events.log'), 'utf8')
        .split('\n')
        .filter((l) => l.includes(`"id":"${id}"`));
    const history = () => fs.readFileSync(path.join(w.home, 'history'), 'utf8');
    // Where it died: the record final, the job still in the active index, out of the history, no line for its end.
    expect(state(id).status).toBe('succeeded');
    expect(fs.existsSync(active)).toBe(true);
    expect(events().some((l) => l.includes('"msg":"succeeded"'))).toBe(false);
    const st = await w.run(['status', '--json']);
    expect(JSON.parse(st.stdout).jobs.find((j: { id: string }) => j.id === id).state.status).toBe('succeeded');
    expect(fs.existsSync(active)).toBe(false);
    expect(history()).toContain(id);
    expect(events().filter((l) => l.includes('"msg":"succeeded"'))).toHaveLength(1);
    // Once: a second reader finds nothing left to do.
    await w.run(['status']);
    expect(events().filter((l) => l.includes('"msg":"succeeded"'))).toHaveLength(1);
    expect(history().split(id).length - 1).toBe(1);
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

  it.skipIf(!IS_ROOT)('a full or read-only state dir: run fails clearly before the job starts', async () => {
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

describe('supervisor loss', () => {
  it('a SIGKILLed supervisor leaves the job running, status says so, and the end is never "succeeded"', async () => {
    const stop = `${w.home}/stop-orphan`;
    const id = await start(w, 'orphan', ['sh', '-c', `while [ ! -e ${stop} ]; do sleep 0.05; done; echo still-logging`]);
    const rec = w.record(id);
    process.kill(rec.supervisor.pid, 'SIGKILL');
    await pollUntil(() => !alive(rec.supervisor.pid), 5000, 'supervisor gone');
    expect(alive(rec.job.pid)).toBe(true);
    const st = JSON.parse((await w.run(['status', id, '--json'])).stdout);
    expect(st.state.status).toBe('running');
    expect(st.supervisorAlive).toBe(false);
    expect((await w.run(['status'])).stdout).toContain('running (no supervisor)');
    fs.writeFileSync(stop, '');
    await pollUntil(() => !alive(rec.job.pid), 10_000, 'job end');
    expect(fs.readFileSync(rec.log, 'utf8')).toContain('still-logging');
    const r = await w.run(['wait', id]);
    expect(r.exitCode).not.toBe(0);
    expect(w.record(id).state.status).toBe('lost');
  });
});

describe('a launcher that gives up has the last word', () => {
  it('run reports failure and the job never starts later', async () => {
    const marker = path.join(tmpDir(), 'ran');
    // A supervisor that comes to its job only after run gave up (a 1 ms patience; a stall, so a fast one cannot win).
    const r = await w.run(['run', 'stall', '--', 'sh', '-c', `echo ran > ${marker}`], { env: { JOBQ_START_TIMEOUT: '1', JOBQ_TEST_STALL_MS: '1500' } });
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toMatch(/did not report/);
    const id = w.ids()[0]!;
    const events = () => fs.readFileSync(path.join(w.home, 'events.log'), 'utf8');
    // Stood down: it never took the job, so nothing ran or can run.
    await pollUntil(() => events().includes('supervisor stood down'), 10_000, 'the late supervisor to stand down');
    expect(fs.existsSync(marker)).toBe(false);
    expect(state(id).status).toBe('failed-to-start');
  });
});

describe('what status lists', () => {
  it('half-made job dirs are listed as broken with a reason, shown by a bare prune, removed by prune', async () => {
    const old = new Date(Date.now() - 5 * 60_000);
    const a = path.join(w.home, 'jobs', 'half_20260101_000000');
    const b = path.join(w.home, 'jobs', 'half_20260101_000001');
    fs.mkdirSync(a, { recursive: true });
    fs.mkdirSync(b, { recursive: true });
    fs.writeFileSync(path.join(a, 'job.json.tmp-123-abc'), '{"id":');
    fs.writeFileSync(path.join(b, 'output.log'), 'some output\n');
    for (const d of [a, b]) fs.utimesSync(d, old, old);
    const st = await w.run(['status', '--json']);
    const broken = JSON.parse(st.stdout).broken;
    expect(broken.map((x: { id: string }) => x.id).sort()).toEqual(['half_20260101_000000', 'half_20260101_000001']);
    expect(broken[0].error).toMatch(/half-made/);
    expect((await w.run(['status'])).stdout).not.toContain('no jobs yet');
    const bare = await w.run(['prune']);
    expect(bare.stdout).toContain('would remove half_20260101_000000 (half-made)');
    expect(fs.existsSync(a)).toBe(true);
    await w.run(['prune', '--all']);
    expect(fs.existsSync(a) || fs.existsSync(b)).toBe(false);
  });

  it('a record with a status this jobq does not know is left untouched and listed as broken', async () => {
    const id = plantRecord(w.home, 'future', { state: { status: 'hibernating' } as never });
    const file = path.join(w.home, 'jobs', id, 'job.json');
    const before = fs.readFileSync(file, 'utf8');
    const st = await w.run(['status', '--json']);
    expect(JSON.parse(st.stdout).broken[0]).toMatchObject({ id });
    expect(JSON.parse(st.stdout).broken[0].error).toMatch(/unknown to this jobq/);
    await w.run(['prune', '--all']);
    await w.run(['cancel', '--all']);
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
  });

  it('readers leave a finished job exactly as they found it', async () => {
    const id = await start(w, 'done', ['true']);
    await w.run(['wait', id]);
    const snap = (...args: string[]) =>
      execFileSync('find', [...args, '-printf', '%p %s %T@\\n'])
        .toString()
        .split('\n')
        .filter((l) => !l.includes('events.log'))
        .sort()
        .join('\n');
    // A stale active entry (a writer killed before indexing the end, as planted here): the provable part, the
    // indexes, is finished by the first reader; the job's own files are left as they are.
    const files = snap(path.join(w.home, 'jobs', id), '-type', 'f');
    fs.writeFileSync(path.join(w.home, 'active', id), '');
    await w.run(['status']);
    expect(fs.existsSync(path.join(w.home, 'active', id))).toBe(false);
    expect(snap(path.join(w.home, 'jobs', id), '-type', 'f')).toBe(files);
    const before = snap(w.home);
    for (const args of [['status'], ['status', id], ['status', '--json'], ['tail', id], ['wait', id]]) await w.run(args);
    expect(snap(w.home)).toBe(before);
  });
});

describe('small things', () => {
  it('a running record from another boot is lost, and its pid (alive now, same start time) is never signalled', async () => {
    const by = bystander();
    const id = plantRecord(w.home, 'prevboot', {
      boot: '00000000-0000-0000-0000-000000000000',
      supervisor: { pid: by, startTicks: startTicks(by) },
      job: { pid: by, pgid: by, startTicks: startTicks(by) },
      state: { status: 'running', startedAt: new Date().toISOString() },
    });
    await w.run(['cancel', id, '--grace', '100ms']);
    expect(alive(by)).toBe(true);
    const st = JSON.parse((await w.run(['status', id, '--json'])).stdout);
    expect(st.state.status).toBe('lost');
    expect(st.state.reason).toMatch(/restarted/);
  });
});

describe('a state dir removed while a job runs', () => {
  it('the supervisor does not retry for ever: once the job ends it leaves', async () => {
    const id = await start(w, 'orphan', ['sleep', '0.5']);
    const sup = w.record(id).supervisor;
    // Gone at once, as the supervisor sees it (an rm -r it keeps writing into would race it); the tree goes later.
    const gone = `${w.home}.gone`;
    fs.renameSync(w.home, gone);
    try {
      await pollUntil(() => !alive(sup.pid), 15_000, 'the supervisor to leave');
    } finally {
      fs.rmSync(gone, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
    }
  });
});

describe.skipIf(!IS_ROOT)('a full or read-only state dir while a job runs', () => {
  let mnt: string;
  beforeEach(() => {
    mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', mnt]);
  });
  afterEach(() => {
    execFileSync('umount', ['-l', mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  });

  it('the outcome is held and recorded once space frees; status says why and never "no jobs"', async () => {
    const home = path.join(mnt, 'state');
    const go = path.join(tmpDir(), 'go');
    const env = { JOBQ_HOME: home };
    const r = await w.run(
      ['run', 'full', '-q', '--log', path.join(path.dirname(go), 'out.log'), '--', 'sh', '-c', `while [ ! -e ${go} ]; do sleep 0.05; done; exit 0`],
      { env },
    );
    expect(r.exitCode).toBe(0);
    const id = r.stdout.trim();
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${path.join(mnt, 'fill')}`, 'bs=4k', 'count=1000'], { stdio: 'ignore' });
    } catch {
      /* disk full is the point */
    }
    fs.writeFileSync(go, '');
    const st = (await pollUntil(
      async () => {
        const s = await w.run(['status'], { env });
        return s.stderr.includes('ENOSPC') ? s : undefined;
      },
      10_000,
      'status to say the state dir is full',
    ))!;
    expect(st.stdout).toContain(id);
    expect(st.stdout).not.toContain('no jobs yet');
    expect(st.stdout).toMatch(/ended \(recording\)/);
    // Not lost, not succeeded before it is on disk.
    expect((await w.run(['wait', id, '--timeout', '500ms'], { env })).exitCode).toBe(124);
    fs.rmSync(path.join(mnt, 'fill'));
    expect((await w.run(['wait', id, '--timeout', '60s'], { env })).exitCode).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(home, 'jobs', id, 'job.json'), 'utf8')).state.status).toBe('succeeded');
  }, 90_000);

  it('a log that filled the disk, deleted while the outcome waits: its space comes back and the outcome is recorded', async () => {
    const home = path.join(mnt, 'state');
    const go = path.join(tmpDir(), 'go');
    const env = { JOBQ_HOME: home };
    // The job fills the disk through its own log (in the state dir), then ends on its own.
    const r = await w.run(['run', 'filler', '-q', '--', 'sh', '-c', `while [ ! -e ${go} ]; do sleep 0.05; done; head -c 1M /dev/zero; exit 0`], { env });
    expect(r.exitCode, r.stderr).toBe(0);
    const id = r.stdout.trim();
    const log = path.join(home, 'jobs', id, 'output.log');
    const free = () => fs.statfsSync(mnt).bfree;
    fs.writeFileSync(go, '');
    // Full before any status runs: a status's write probe taking a page while the job fills would leave that page
    // free afterwards, and the outcome would then be recorded at once (nothing held, nothing to say).
    await pollUntil(() => free() === 0, 10_000, 'the job to fill the disk');
    await pollUntil(async () => (await w.run(['status'], { env })).stderr.includes('ENOSPC'), 10_000, 'status to say the state dir is full');
    const before = free();
    fs.rmSync(log);
    // Nothing holds the deleted log open: its blocks are free at once.
    await pollUntil(() => free() > before + 16, 5000, 'the deleted log to free its space');
    expect((await w.run(['wait', id, '--timeout', '60s'], { env })).exitCode).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(home, 'jobs', id, 'job.json'), 'utf8')).state.status).toBe('succeeded');
  }, 90_000);

  it('a read-only state dir: the same, and EROFS is named', async () => {
    const home = path.join(mnt, 'state');
    const go = path.join(tmpDir(), 'go');
    const env = { JOBQ_HOME: home };
    const id = (
      await w.run(['run', 'ro', '-q', '--log', path.join(path.dirname(go), 'out.log'), '--', 'sh', '-c', `while [ ! -e ${go} ]; do sleep 0.05; done; exit 0`], {
        env,
      })
    ).stdout.trim();
    execFileSync('mount', ['-o', 'remount,ro', mnt]);
    fs.writeFileSync(go, '');
    await pollUntil(async () => (await w.run(['status'], { env })).stderr.includes('EROFS'), 10_000, 'status to name EROFS');
    execFileSync('mount', ['-o', 'remount,rw', mnt]);
    expect((await w.run(['wait', id, '--timeout', '60s'], { env })).exitCode).toBe(0);
  }, 90_000);
});
