// Trust boundaries: file modes, what another user can plant is data not authority, ids and pids that stay in bounds, secrets.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, bystander, HAS_CGROUP, IS_ROOT, pollUntil, start, tmpDir, tmpPaths, useWorld } from '../helpers/jobq.js';
import { plantRecord, startTicks } from '../helpers/records.js';

const w = useWorld();

/** Runs a shell snippet as the unprivileged user `nobody` (the second user on the machine). */
function asNobody(script: string): void {
  execFileSync('runuser', ['-u', 'nobody', '--', 'sh', '-c', script], { stdio: 'ignore' });
}

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
    if (IS_ROOT) {
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

describe.skipIf(!IS_ROOT)('what another user can plant is data, never authority', () => {
  it('a project .jobq.json another user could write is ignored with a one-line warning', async () => {
    const shared = tmpDir(0o777);
    asNobody(`printf '%s' '{"presets":{"memsafe":{"LD_PRELOAD":"/tmp/evil.so"}},"signal":"CONT","grace":"7d","isolation":"none"}' > ${shared}/.jobq.json`);
    const r = await w.run(['run', 'p', '-q', '--memsafe', '--', 'sh', '-c', 'echo "pre=$LD_PRELOAD"'], { cwd: shared });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/ignoring config .*\.jobq\.json: .*(uid 65534|writable by others)/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const id = r.stdout.trim();
    await w.run(['wait', id]);
    const rec = w.record(id);
    expect(fs.readFileSync(rec.log, 'utf8')).toContain('pre=\n');
    expect(rec.protection.stopSignal).toBe('SIGTERM');
    expect(rec.protection.graceMs).toBe(10_000);
    const sticky = tmpDir(0o1777);
    asNobody(`printf '%s' '{"grace":"7d"}' > ${sticky}/.jobq.json`);
    expect((await w.run(['config'], { cwd: sticky })).stderr).toMatch(/ignoring config .*uid 65534/);
    // Root's own file is not enough when the directory lets others swap it.
    const mine = tmpDir(0o777);
    fs.writeFileSync(path.join(mine, '.jobq.json'), '{"grace":"7d"}');
    expect((await w.run(['config'], { cwd: mine })).stderr).toMatch(/ignoring config .*writable by others/);
    const loose = tmpDir(0o755);
    fs.writeFileSync(path.join(loose, '.jobq.json'), '{"grace":"7d"}', { mode: 0o666 });
    fs.chmodSync(path.join(loose, '.jobq.json'), 0o666);
    expect((await w.run(['config'], { cwd: loose })).stderr).toMatch(/ignoring config .*mode 666/);
  });

  it.skipIf(!HAS_CGROUP)('a forged cgroup path in a record makes cancel touch nothing in that cgroup', async () => {
    const base = '/sys/fs/cgroup/pids';
    const victimCg = fs.mkdtempSync(path.join(base, 'jobq-victim-'));
    tmpPaths.push(victimCg);
    const by = bystander();
    fs.writeFileSync(path.join(victimCg, 'cgroup.procs'), String(by));
    // The record's own job is real (so cancel acts); only its cgroup path is forged to point at the victim.
    const own = bystander();
    const id = plantRecord(w.home, 'forged', {
      supervisor: { pid: 4_000_011, startTicks: 1 },
      job: { pid: own, pgid: own, startTicks: startTicks(own) },
      protection: { isolationMode: 'auto', isolation: 'cgroup-v1', cgroups: [victimCg], graceMs: 100, stopSignal: 'SIGTERM', warnings: [] },
      state: { status: 'running', startedAt: new Date().toISOString() },
    });
    await w.run(['cancel', id, '--grace', '100ms']);
    await pollUntil(() => !alive(own), 5000, "the record's own job to end");
    expect(alive(by)).toBe(true);
    fs.writeFileSync(path.join(base, 'cgroup.procs'), String(by));
  });

  it('a state dir reached through a symlink another user made, or through a directory others can write, is refused', async () => {
    const by = bystander();
    const theirs = tmpDir(0o755);
    fs.chownSync(theirs, 65534, 65534);
    // nobody builds a state dir holding a forged record that names root's bystander.
    const forged = path.join(theirs, 'state');
    plantRecord(forged, 'victim', {
      boot: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      supervisor: { pid: by, startTicks: startTicks(by) },
      job: { pid: by, pgid: by, startTicks: startTicks(by) },
      state: { status: 'running', startedAt: new Date().toISOString() },
    });
    execFileSync('chown', ['-R', '65534:65534', forged]);
    fs.chmodSync(forged, 0o700);
    const link = path.join(os.tmpdir(), `jobq-link-${process.pid}-${Date.now()}`);
    tmpPaths.push(link);
    asNobody(`ln -s ${forged} ${link}`);
    for (const home of [link, forged]) {
      const r = await w.run(['cancel', '--all'], { env: { JOBQ_HOME: home } });
      expect(r.exitCode, home).toBe(1);
      expect(r.stderr, home).toMatch(/refusing state dir .*uid 65534/);
    }
    const open = tmpDir(0o777);
    const r2 = await w.run(['status'], { env: { JOBQ_HOME: path.join(open, 'state') } });
    expect(r2.exitCode).toBe(1);
    expect(r2.stderr).toMatch(/refusing state dir .*writable by others/);
    expect(alive(by)).toBe(true);
  });

  it('--log into a shared directory: a planted file, FIFO or symlinked parent is refused; a fresh file is ours, 0600', async () => {
    const shared = tmpDir(0o1777);
    asNobody(`umask 0; echo theirs > ${shared}/planted.log; mkfifo ${shared}/fifo.log; mkdir ${shared}/realdir; ln -s ${shared}/realdir ${shared}/linkdir`);
    const cases: Array<[string, RegExp]> = [
      [`${shared}/planted.log`, /owned by uid 65534/],
      [`${shared}/fifo.log`, /uid 65534|FIFO/],
      [`${shared}/linkdir/out.log`, /uid 65534/],
    ];
    for (const [log, why] of cases) {
      const r = await w.run(['run', 'lg', '--log', log, '--', 'echo', 'secret'], { timeout: 20_000 });
      expect(r.exitCode, log).toBe(1);
      expect(r.stderr, log).toMatch(why);
    }
    expect(fs.readFileSync(`${shared}/planted.log`, 'utf8')).toBe('theirs\n');
    const open = tmpDir(0o777);
    const r = await w.run(['run', 'lg', '--log', `${open}/out.log`, '--', 'true']);
    expect(r.stderr).toMatch(/writable by others/);
    const fresh = `${shared}/mine/deep/out.log`;
    const ok = await w.run(['run', 'lg', '-q', '--log', fresh, '--', 'echo', 'hello']);
    expect(ok.exitCode).toBe(0);
    await w.run(['wait', ok.stdout.trim()]);
    expect(fs.statSync(fresh).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(fresh)).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(fresh, 'utf8')).toBe('hello\n');
  });
});

describe('secrets', () => {
  it('MYSQL_PWD, DB_PASS, PASSPHRASE, GH_PAT and a password in a URL are redacted in records, events and --json', async () => {
    const secrets = { MYSQL_PWD: 's3cret1', DB_PASS: 's3cret2', PASSPHRASE: 's3cret3', GH_PAT: 's3cret4', DATABASE_URL: 'postgres://app:s3cret5@db:5432/x' };
    const args = Object.entries(secrets).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
    const r = await w.run(['run', 'sec', '--json', ...args, '--env', 'MY_PATH=/keep/me', '--', 'sh', '-c', 'echo "$DATABASE_URL"']);
    expect(r.stdout).not.toMatch(/s3cret/);
    const j = JSON.parse(r.stdout);
    expect(j.env.added.DATABASE_URL).toBe('postgres://app:<redacted>@db:5432/x');
    expect(j.env.added.MY_PATH).toBe('/keep/me');
    await w.run(['wait', j.id]);
    expect(fs.readFileSync(path.join(w.home, 'jobs', j.id, 'job.json'), 'utf8')).not.toMatch(/s3cret/);
    expect(fs.readFileSync(path.join(w.home, 'events.log'), 'utf8')).not.toMatch(/s3cret/);
    // restart takes redacted values from the caller's environment, never from the record.
    const re = await w.run(['restart', j.id, '--json'], { env: { DATABASE_URL: 'postgres://app:again@db/x' } });
    const nj = JSON.parse(re.stdout);
    await w.run(['wait', nj.id]);
    expect(fs.readFileSync(nj.log, 'utf8')).toContain('postgres://app:again@db/x');
  });
});
