// OOM where users meet it: a kernel OOM kill, systemd-oomd's pressure kill, and the seed incident (a hog beside
// tmux and a coding agent). What dies must be the job's scope alone, recorded `oom` with who killed it and why.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, BIN, pollUntil, start, type World, world } from '../helpers/jobq.js';
import { tmuxInScope, tmuxOn } from '../helpers/tmux.js';

const GUEST = !!process.env.JOBQ_GUEST;
const WHY = 'JOBQ_GUEST is not set: these tests run in the systemd guest (bash scripts/systemd-vm.sh test)';
const oomd = GUEST && spawnOk('systemctl', ['is-active', '-q', 'systemd-oomd']);

function spawnOk(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A hog that grows by `mb` MB every `every` seconds, touching each page, printing its size. */
function hogScript(dir: string, mb: number, every: number): string {
  const file = path.join(dir, `hog-${mb}-${every}.py`);
  fs.writeFileSync(
    file,
    `import time\na = []\nwhile True:\n    a.append(b"x" * (${mb} << 20))\n    print(len(a) * ${mb}, "MB", flush=True)\n    time.sleep(${every})\n`,
  );
  return file;
}

describe.skipIf(!GUEST)(GUEST ? 'OOM under a systemd user manager' : `OOM in the systemd guest (skipped: ${WHY})`, () => {
  let w: World;
  beforeAll(() => {
    w = world();
  });
  afterAll(async () => {
    await w.cleanup();
  });

  it.skipIf(!oomd)(
    oomd ? 'systemd-oomd killing a job for memory pressure is recorded oom, by systemd-oomd, with its figures' : 'systemd-oomd (skipped: not active here)',
    async () => {
      // The job holds more anonymous memory than the memory.high it then sets on its own (delegated) cgroup, and
      // rereads a file: each read's page-cache charge is reclaimed (pgscan rises: oomd wants reclaim activity) and,
      // the group staying over high, throttled (full pressure on user@UID.service over oomd's 50% for 20 s). Anon
      // must not grow: with no swap it is never scanned, and a job stalled allocating it would read nothing.
      const script = path.join(w.home, 'pressure.py');
      const data = path.join(w.home, 'pressure.data');
      fs.writeFileSync(
        script,
        [
          'import os',
          'cg = open("/proc/self/cgroup").read().strip().split("::")[1]',
          `with open(${JSON.stringify(data)}, "wb") as f:`,
          '    f.write(b"x" * (64 << 20)); f.flush(); os.fsync(f.fileno())',
          'hold = b"x" * (72 << 20)',
          'open("/sys/fs/cgroup" + cg + "/memory.high", "w").write(str(60 << 20))',
          'while True:',
          `    with open(${JSON.stringify(data)}, "rb") as f:`,
          '        while f.read(1 << 20): pass',
          '',
        ].join('\n'),
      );
      const id = await start(w, 'pressure', ['python3', script]);
      const waited = await w.run(['wait', 'pressure', '--timeout', '240s'], { timeout: 260_000 });
      // On failure: what oomd saw, and what else ran in the user manager (a busy process there lowers `full` pressure).
      const seen =
        waited.exitCode === 137
          ? ''
          : (await execa('sh', ['-c', 'oomctl; systemd-cgls --user --no-pager; tail -3 "$0"', w.record(id).log], { reject: false })).stdout;
      expect(waited.exitCode, seen).toBe(137);
      const s = w.record(id).state;
      expect(s).toMatchObject({ status: 'oom', by: 'systemd-oomd', signal: 'SIGKILL' });
      expect(s.reason).toMatch(/^systemd-oomd: memory pressure \d+% > 50% for 20s in user@\d+\.service$/);
      expect((await w.run(['status', 'pressure'])).stdout).toMatch(/state +oom \(systemd-oomd\)/);
    },
  );

  it('a kernel OOM kill of a job with no limit (the machine ran out) is recorded oom, by the kernel', async () => {
    // Faster than oomd's 20 s: the kernel's OOM killer acts first, and picks the job (oom_score_adj 500).
    const id = await start(w, 'bighog', ['python3', hogScript(w.home, 50, 0.1)]);
    expect((await w.run(['wait', 'bighog', '--timeout', '240s'])).exitCode).toBe(137);
    const s = w.record(id).state;
    expect(s).toMatchObject({ status: 'oom', by: 'kernel', signal: 'SIGKILL', reason: "the kernel's OOM killer: the machine ran out of memory" });
    expect(s.peakMemBytes).toBeGreaterThan(512 * 2 ** 20);
  });

  it('the seed incident: a hog beside tmux and an agent, in the user manager; through jobq only its scope dies', async () => {
    const sock = `seed-${process.pid}`;
    const tmux = tmuxOn(sock);
    const report: string[] = [];
    // tmux as a desktop terminal starts it: in a scope of its own under the user manager (where oomd watches).
    const startTmux = async (tag: string) => {
      const { server, agent } = await tmuxInScope(
        sock,
        'seed',
        `seed-tmux-${tag}-${process.pid}.scope`,
        "exec -a fake-agent python3 -c 'import time\nwhile True: time.sleep(1)'",
      );
      expect(alive(server) && alive(agent)).toBe(true);
      return { server, agent };
    };
    const hog = hogScript(w.home, 20, 1);
    try {
      // (a) The hog typed in a pane: whatever the kernel or oomd picks. Reported, not judged: that is the incident.
      const a = await startTmux('a');
      await tmux('split-window', '-t', 'seed', `python3 ${hog}; echo hog-exit=$?; exec sleep 600`);
      await pollUntil(async () => !(await execa('pgrep', ['-f', hog], { reject: false })).stdout.trim(), 300_000, 'the hog in the pane to end', 1000);
      report.push(`(a) hog in a tmux pane: tmux server ${alive(a.server) ? 'alive' : 'KILLED'}, agent ${alive(a.agent) ? 'alive' : 'KILLED'}`);
      await tmux('kill-server');

      // (b) The same hog through jobq from a pane: only the job's scope may die, and the record says it was an OOM.
      const b = await startTmux('b');
      const env = Object.entries(w.env)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      await tmux('split-window', '-t', 'seed', `env ${env} ${BIN} run hog -- python3 ${hog}; exec sleep 600`);
      const id = (await pollUntil(() => w.ids().find((i) => i.startsWith('hog_')), 60_000, 'the hog job')) as string;
      const s = await pollUntil(() => w.tryRecord(id)?.state?.endedAt && w.record(id).state, 300_000, 'the hog job to end', 1000);
      report.push(
        `(b) hog through jobq: ${s.status} by ${s.by} (${s.reason}); tmux server ${alive(b.server) ? 'alive' : 'KILLED'}, agent ${alive(b.agent) ? 'alive' : 'KILLED'}`,
      );
      console.log(`seed incident, systemd-oomd ${oomd ? 'on' : 'off'}:\n  ${report.join('\n  ')}`);
      expect(s).toMatchObject({ status: 'oom', signal: 'SIGKILL' });
      expect(['kernel', 'systemd-oomd']).toContain(s.by);
      expect(alive(b.server)).toBe(true);
      expect(alive(b.agent)).toBe(true);
    } finally {
      await tmux('kill-server');
    }
  });
});
