// What protects a job: its own cgroup, memory limits and OOM, escapees, oom_score_adj, and its memory measured live.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectFacts } from '../../src/process/isolation.js';
import { alive, gate, HAS_CGROUP, IS_ROOT, pollUntil, ROOT, start, taggedPids, useWorld } from '../helpers/jobq.js';

const facts = detectFacts();
/** jobq can make a job cgroup here (a base it may write); HAS_CGROUP asks only whether a memory hierarchy exists. */
const hasCgroup = !!(facts.v1Bases || facts.v2Base);
const w = useWorld();

const HOG = [process.execPath, '-e', 'const a=[];for(;;){a.push(Buffer.alloc(8<<20,1))}'];
const state = (id: string) => w.record(id).state;

describe.skipIf(!hasCgroup)('with a cgroup of its own', () => {
  it('a job allocating past --mem-limit 100M ends oom while a process outside it lives on', async () => {
    const sibling = spawn('sleep', ['60'], { stdio: 'ignore', detached: true, env: { ...process.env, JOBQ_TEST_TAG: w.tag } });
    const id = await start(w, 'hog', HOG, ['--mem-limit', '100M']);
    const r = await w.run(['wait', id, '--timeout', '60s']);
    expect(r.exitCode).toBe(137);
    const rec = w.record(id);
    expect(rec.state.status).toBe('oom');
    expect(rec.protection.memLimitHow).toBe('cgroup');
    expect(rec.protection.memLimitBytes).toBe(100 * 1024 * 1024);
    expect(rec.state.peakMemBytes).toBeGreaterThan(80 * 1024 * 1024);
    expect(alive(sibling.pid!)).toBe(true);
    expect((await w.run(['status', id])).stdout).toMatch(/state\s+oom/);
  });

  it('records isolation, limit, peak memory and CPU time; status --json carries them', async () => {
    const id = await start(
      w,
      'figures',
      [process.execPath, '-e', 'const b=Buffer.alloc(64<<20,1); let x=0; while(process.cpuUsage().user<400000) x++;'],
      ['--mem-limit', '1G'],
    );
    await w.run(['wait', id]);
    const j = JSON.parse((await w.run(['status', id, '--json'])).stdout);
    expect(j.protection.isolation).toMatch(/^cgroup-v[12]$/);
    expect(j.protection.cgroups[0]).toContain(id);
    expect(j.protection.memLimitBytes).toBe(1024 ** 3);
    expect(j.state.peakMemBytes).toBeGreaterThan(60 * 1024 * 1024);
    expect(j.state.cpuMs).toBeGreaterThan(200);
    expect(fs.existsSync(j.protection.cgroups[0])).toBe(false);
  });

  it('a child that calls setsid leaves nothing behind after cancel', async () => {
    const id = await start(w, 'escape', ['bash', '-c', 'setsid sleep 300 & setsid bash -c "sleep 301 & wait" & sleep 302']);
    const cg = w.record(id).protection.cgroups[0];
    await pollUntil(() => fs.readFileSync(`${cg}/cgroup.procs`, 'utf8').trim().split('\n').length >= 4, 5000, 'escapees started');
    const pids = fs.readFileSync(`${cg}/cgroup.procs`, 'utf8').trim().split('\n').map(Number);
    const r = await w.run(['cancel', id]);
    expect(r.exitCode).toBe(0);
    for (const pid of pids) expect(alive(pid), String(pid)).toBe(false);
  });
});

describe.skipIf(!hasCgroup)('a job that hops to a new pid', () => {
  it('a process that ignores TERM and keeps re-forking itself (setsid, exit) is ended by --timeout and by cancel', async () => {
    const hop = path.join(w.home, 'hop.sh');
    fs.writeFileSync(hop, `#!/bin/sh\ntrap '' TERM\n[ "$(date +%s)" -ge "$HOP_UNTIL" ] && exit 0\nsetsid ${hop} &\nexit 0\n`, { mode: 0o755 });
    const until = String(Math.floor(Date.now() / 1000) + 20);
    const env = { HOP_UNTIL: until };
    const t = (await w.run(['run', 'hop', '-q', '--timeout', '1s', '--grace', '300ms', '--', 'sh', '-c', `${hop}; sleep 60`], { env })).stdout.trim();
    expect((await w.run(['wait', t, '--timeout', '30s'])).exitCode).toBe(124);
    // The record is final only once nothing of it is left: no hopper is running now.
    expect(taggedPids(w.tag)).toEqual([]);
    const c = (await w.run(['run', 'hop2', '-q', '--grace', '300ms', '--', 'sh', '-c', `${hop}; sleep 60`], { env })).stdout.trim();
    expect((await w.run(['cancel', c])).exitCode).toBe(0);
    expect(taggedPids(w.tag)).toEqual([]);
  }, 60_000);
});

describe('without a cgroup', () => {
  it('cancel: a child that called setsid and ignores TERM is KILLed after the grace, though the leader died of the TERM', async () => {
    const id = await start(
      w,
      'resettle',
      ['bash', '-c', `setsid bash -c 'trap "" TERM; echo $$ > kid.pid; while :; do sleep 0.1; done' & sleep 60`],
      ['--isolation', 'none', '--grace', '500ms', '--cwd', w.home],
    );
    const pidFile = `${w.home}/kid.pid`;
    await pollUntil(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim(), 5000, 'child pid');
    const kid = Number(fs.readFileSync(pidFile, 'utf8'));
    expect((await w.run(['cancel', id])).exitCode).toBe(0);
    expect(alive(kid)).toBe(false);
  });

  it('a child that calls setsid is found through parent links and ended by cancel', async () => {
    const id = await start(w, 'escape2', ['bash', '-c', 'setsid sleep 300 & echo $! > esc.pid; sleep 302'], ['--isolation', 'none', '--cwd', w.home]);
    const pidFile = `${w.home}/esc.pid`;
    await pollUntil(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim(), 5000, 'escapee pid');
    const esc = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(alive(esc)).toBe(true);
    await w.run(['cancel', id]);
    expect(alive(esc)).toBe(false);
    expect(w.record(id).protection.isolation).toBe('none');
  });

  it('--mem-limit falls back to RLIMIT_AS with a warning that says what that means', async () => {
    const r = await w.run(['run', 'rl', '--isolation', 'none', '--mem-limit', '50M', '--', 'sh', '-c', 'ulimit -v']);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/RLIMIT_AS/);
    const id = /started (\S+)/.exec(r.stdout)![1]!;
    await w.run(['wait', id]);
    expect(fs.readFileSync(w.record(id).log, 'utf8').trim()).toBe(String(50 * 1024));
    expect(w.record(id).protection.memLimitHow).toBe('rlimit-as');
  });

  it('an unrequested SIGKILL is shown as possibly OOM', async () => {
    const id = await start(w, 'k9', ['sh', '-c', 'kill -KILL $$'], ['--isolation', 'none']);
    await w.run(['wait', id]);
    expect(w.record(id).state).toMatchObject({ status: 'killed', signal: 'SIGKILL', note: 'SIGKILL, possibly OOM' });
    expect((await w.run(['status'])).stdout).toContain('killed (SIGKILL, possibly OOM)');
  });
});

describe('oom_score_adj', () => {
  it('is set before the job runs: default 500, or the value asked', async () => {
    const a = await start(w, 'adj', ['cat', '/proc/self/oom_score_adj']);
    const b = await start(w, 'adj2', ['cat', '/proc/self/oom_score_adj'], ['--oom-score-adj', '321']);
    const c = await start(w, 'adj0', ['cat', '/proc/self/oom_score_adj'], ['--oom-score-adj', '0']);
    await w.run(['wait', a, b, c]);
    expect(fs.readFileSync(w.record(a).log, 'utf8').trim()).toBe('500');
    expect(fs.readFileSync(w.record(b).log, 'utf8').trim()).toBe('321');
    expect(w.record(b).protection.oomScoreAdj).toEqual({ requested: 321, actual: 321 });
    expect(fs.readFileSync(w.record(c).log, 'utf8').trim()).toBe(fs.readFileSync('/proc/self/oom_score_adj', 'utf8').trim());
  });
});

describe.skipIf(process.getuid?.() !== 0 || spawnSync('sh', ['-c', 'command -v setpriv']).status !== 0)('as an unprivileged user', () => {
  it('runs without a cgroup, and a refused lower oom_score_adj is reported, not hidden', async () => {
    const dir = fs.mkdtempSync('/tmp/jobq-nobody-');
    fs.chmodSync(dir, 0o755);
    // The checkout may sit where nobody cannot read (a 0700 temp dir): run a world-readable copy of the bundle.
    const app = `${dir}/app`;
    for (const p of ['bin', 'dist', 'package.json']) fs.cpSync(`${ROOT}/${p}`, `${app}/${p}`, { recursive: true });
    spawnSync('chmod', ['-R', 'a+rX', app]);
    const state = `${dir}/state`;
    fs.mkdirSync(state, { mode: 0o700 });
    fs.chownSync(state, 65534, 65534);
    try {
      const r = spawnSync(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          process.execPath,
          `${app}/bin/jobq`,
          'run',
          'low',
          '--json',
          '--oom-score-adj',
          '-500',
          '--',
          'cat',
          '/proc/self/oom_score_adj',
        ],
        {
          env: { ...process.env, ...w.env, JOBQ_HOME: state, HOME: dir, XDG_CONFIG_HOME: `${dir}/config` },
          cwd: dir,
          encoding: 'utf8',
        },
      );
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/oom_score_adj -500 refused by the kernel .*CAP_SYS_RESOURCE.*it stays \d+/);
      const rec = JSON.parse(r.stdout);
      expect(rec.protection.isolation).toBe('none');
      expect(rec.protection.oomScoreAdj.requested).toBe(-500);
      expect(rec.protection.oomScoreAdj.actual).toBeGreaterThanOrEqual(0);
      expect(rec.user).toBe('nobody');
      // Its supervisor records the end after run returns: gone before the state dir goes.
      if (rec.supervisor?.pid) await pollUntil(() => !alive(rec.supervisor.pid), 10_000, "nobody's supervisor to exit");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!hasCgroup)('one memory measure', () => {
  it('the cgroup charge, live (table, --json, samples) and at the end: the recorded peak is never below a value shown', async () => {
    // Two Node processes share most pages: their RSS adds up to ~80M, the cgroup is charged ~15M.
    const go = path.join(w.home, 'go');
    const node = `${process.execPath} -e 'setInterval(()=>{if(require("fs").existsSync("${go}"))process.exit(0)},50)'`;
    fs.mkdirSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq'), { recursive: true });
    fs.writeFileSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json'), JSON.stringify({ sampleInterval: '200ms' }));
    const id = await start(w, 'shared', ['sh', '-c', `${node} & ${node} & wait`]);
    const units: Record<string, number> = { B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };
    const shown: number[] = [];
    await pollUntil(
      async () => {
        const j = JSON.parse((await w.run(['status', id, '--json'])).stdout);
        const row = (await w.run(['status'])).stdout.split('\n').find((l) => l.includes(id)) ?? '';
        const m = /([\d.]+)([BKMG])\s*$/.exec(row);
        if (m) shown.push(Number(m[1]) * units[m[2]!]! * 0.95);
        if (j.memBytes) shown.push(j.memBytes);
        return shown.length >= 6;
      },
      20_000,
      'memory shown three times',
    );
    fs.writeFileSync(go, '');
    expect((await w.run(['wait', id, '--timeout', '20s'])).exitCode).toBe(0);
    const end = JSON.parse((await w.run(['status', id, '--json'])).stdout);
    expect(end.state.peakMemBytes).toBeLessThan(60 * 1024 ** 2);
    const samples: number[] = end.samples.map((x: { mem: number }) => x.mem);
    expect(samples.length).toBeGreaterThan(0);
    expect(Math.max(...shown, ...samples)).toBeLessThanOrEqual(end.state.peakMemBytes);
  });
});

describe('live memory', () => {
  it('status shows the live RSS of a running job', async () => {
    const id = await start(w, 'rss', [process.execPath, '-e', 'const b=Buffer.alloc(50<<20,1); setTimeout(()=>{},30000)']);
    await pollUntil(async () => (JSON.parse((await w.run(['status', id, '--json'])).stdout).rssBytes ?? 0) > 40 * 1024 * 1024, 10_000, 'rss reported');
    const table = (await w.run(['status'])).stdout;
    expect(table).toMatch(/rss\S*\s+\S+\s+running.*\d+M/);
  });
});

describe.skipIf(!IS_ROOT || !HAS_CGROUP)('cgroups', () => {
  it('cancel and a normal end leave no false warning and no cgroup behind', async () => {
    const a = await start(w, 'kids', ['sh', '-c', 'sleep 100 & sleep 100 & wait']);
    const b = await start(w, 'linger', ['sh', '-c', '(sleep 0.4; echo late) & exit 0']);
    const dirs = [...w.record(a).protection.cgroups, ...w.record(b).protection.cgroups];
    expect(dirs.length).toBeGreaterThan(1);
    await w.run(['cancel', a]);
    await w.run(['wait', b]);
    for (const id of [a, b]) expect(w.record(id).protection.warnings.join(' ')).not.toMatch(/still ran/);
    for (const d of dirs) expect(fs.existsSync(d), d).toBe(false);
  });

  it('--mem-high: memory.high on cgroup v2; on v1 a warning says it is not applied; it must be below --mem-limit', async () => {
    const id = await start(w, 'soft', ['true'], ['--mem-high', '64M']);
    await w.run(['wait', id]);
    const p = w.record(id).protection;
    if (facts.v2Base) expect(p).toMatchObject({ memHighBytes: 64 << 20, memHighHow: 'cgroup' });
    else {
      expect(p.memHighHow).toBe('none');
      expect(p.warnings).toContain('--mem-high needs cgroup v2 (memory.high); this machine has cgroup v1: not applied (--mem-limit is)');
      expect((await w.run(['status', id])).stdout).toMatch(/mem high\s+64M via none/);
    }
    const bad = await w.run(['run', 'soft2', '--mem-high', '2G', '--mem-limit', '1G', '--', 'true']);
    expect([bad.exitCode, bad.stderr.trim()]).toEqual([2, 'jobq: --mem-high 2G must be below --mem-limit 1G: it throttles before the limit kills']);
  });

  it('the cgroup of a job whose supervisor was killed is removed by the next command that finds it empty', async () => {
    const g = gate(w, 'orphan');
    const id = await start(w, 'orphan', ['sh', '-c', g.hold]);
    const rec = w.record(id);
    process.kill(rec.supervisor.pid, 'SIGKILL');
    g.open();
    await pollUntil(() => !alive(rec.job.pid), 5000, 'job end');
    expect(rec.protection.cgroups.some((d: string) => fs.existsSync(d))).toBe(true);
    // Empty as the kernel sees it: a process that is still exiting keeps a cgroup busy for a moment under load.
    const empty = (d: string) => !fs.existsSync(d) || fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').trim() === '';
    await pollUntil(() => rec.protection.cgroups.every(empty), 5000, 'the cgroups to be empty');
    await w.run(['status']);
    expect(state(id).status).toBe('lost');
    for (const d of rec.protection.cgroups) expect(fs.existsSync(d), d).toBe(false);
  });
});

describe.skipIf(!IS_ROOT || !HAS_CGROUP)('cgroups that ended jobs left behind', () => {
  it('are removed by the next job to end, once empty; a live job of the same dir is never touched', async () => {
    // A job whose supervisor was killed while a stray process still ran in its cgroup: lost, cgroup left.
    const leader = gate(w, 'leader');
    const strayGate = gate(w, 'stray');
    const stray = await start(w, 'stray', ['sh', '-c', `(trap "" TERM; ${strayGate.hold}) & ${leader.hold}`]);
    const left = w.record(stray);
    process.kill(left.supervisor.pid, 'SIGKILL');
    leader.open();
    await pollUntil(() => !alive(left.job.pid), 5000, 'the leader to end');
    await w.run(['status']);
    expect(state(stray).status).toBe('lost');
    expect(
      left.protection.cgroups.some((d: string) => fs.existsSync(d)),
      'the stray keeps its cgroup',
    ).toBe(true);
    const live = await start(w, 'live', ['sleep', '30']);
    // The stray ends; no command runs until another job ends.
    strayGate.open();
    await pollUntil(
      () => left.protection.cgroups.every((d: string) => !fs.existsSync(`${d}/cgroup.procs`) || fs.readFileSync(`${d}/cgroup.procs`, 'utf8') === ''),
      10_000,
      'the stray to end',
    );
    const next = await start(w, 'next', ['true']);
    await w.run(['wait', next]);
    await pollUntil(() => left.protection.cgroups.every((d: string) => !fs.existsSync(d)), 10_000, 'the left cgroups to go');
    for (const d of w.record(live).protection.cgroups) expect(fs.existsSync(d), d).toBe(true);
    await w.run(['cancel', live]);
  });
});
