// Issue 25: the memory pressure guard under real pressure, in the systemd guest as alice (~1.5 GiB, no swap). The
// pressure is the kernel's own PSI, made by processes stalled over a memory.high (throttled, they wait for memory):
// a job's own, or the session's (app.slice) that a job fills beside tmux and a stand-in agent.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, pollUntil, start, type World, world } from '../helpers/jobq.js';
import { tmuxInScope, tmuxOn } from '../helpers/tmux.js';

const GUEST = !!process.env.JOBQ_GUEST;
const WHY = 'JOBQ_GUEST is not set: these tests run in the systemd guest (bash scripts/systemd-vm.sh test)';

const psi = (): string => fs.readFileSync('/proc/pressure/memory', 'utf8').split('\n')[0] ?? '';

/** Waits until memory pressure has settled (a test before this one may have left some). */
async function calm(): Promise<void> {
  await pollUntil(() => Number(/avg10=([\d.]+)/.exec(psi())![1]) < 3, 120_000, 'memory pressure to settle', 1000);
}

describe.skipIf(!GUEST)(GUEST ? 'the pressure guard under real memory pressure' : `the pressure guard in the systemd guest (skipped: ${WHY})`, () => {
  let w: World;
  beforeAll(() => {
    w = world();
    fs.mkdirSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq'), { recursive: true });
    fs.writeFileSync(
      path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json'),
      JSON.stringify({
        sampleInterval: '500ms',
        queues: { g: { slots: 4 } },
        pressureGuard: { some: 15, for: '2s', warn: '2s', thawBelow: 8, thawAfter: '2s', endAfter: '90s' },
      }),
    );
  });
  afterAll(async () => {
    await w.cleanup();
  });

  it('two jobs under pressure: the lower priority one is warned and frozen, the higher finishes, the frozen one is thawed and finishes', async () => {
    await calm();
    const marker = path.join(w.home, 'low.warned');
    // The low job: 60 half-second steps of work, a checkpoint note on its warning signal (USR1).
    const low = await start(
      w,
      'train-low',
      [
        'python3',
        '-c',
        `import signal, time\nsignal.signal(signal.SIGUSR1, lambda *a: open(${JSON.stringify(marker)}, "a").write("checkpoint\\n"))\nx = bytearray(32 << 20)\nfor i in range(60):\n    print("step", i, flush=True); time.sleep(0.5)`,
      ],
      ['--queue', 'g', '--priority', '0', '--timeout', '1h', '--timeout-signal', 'USR1@1m'],
    );
    // The high job grows past its memory.high: throttled (no swap to reclaim to), it stalls on memory and the machine's
    // PSI rises. Told to stop (a file) once the low one is frozen, it drops what it grew and ends, succeeded: a stall
    // no longer than that, as systemd-oomd (50% for 20 s in user@1000.service) would end whichever scope it picks.
    const stop = path.join(w.home, 'high.stop');
    const high = await start(
      w,
      'train-high',
      [
        'python3',
        '-c',
        `import os, signal, time\npid = os.fork()\nif pid == 0:\n    x = []\n    while True: x.append(bytearray(8 << 20))\nfor i in range(1200):\n    if os.path.exists(${JSON.stringify(stop)}): break\n    time.sleep(0.05)\nos.kill(pid, signal.SIGKILL); os.waitpid(pid, 0)\nprint("done", flush=True)`,
      ],
      ['--queue', 'g', '--priority', '5', '--mem-high', '48M'],
    );
    const seen: string[] = [];
    await pollUntil(
      () => {
        seen.push(`${psi()} low=${w.record(low).state.status}`);
        return w.record(low).state.status === 'paused';
      },
      60_000,
      'the low-priority job frozen',
      500,
    ).catch((e) => {
      throw new Error(`${e.message}\n${seen.slice(-10).join('\n')}`);
    });
    expect(fs.readFileSync(marker, 'utf8')).toBe('checkpoint\n');
    expect(w.record(low).state.reason).toMatch(/^pressure: some avg10 \d+% > 15% for \d/);
    expect(w.record(high).state.status).toBe('running');
    fs.writeFileSync(stop, '');
    expect((await w.run(['wait', high, '--timeout', '120s'])).exitCode).toBe(0);
    await pollUntil(() => w.record(low).state.status !== 'paused', 120_000, 'the frozen job thawed', 500);
    await w.run(['wait', low, '--timeout', '180s']);
    // What ended it, if not itself: the record and the event log say.
    const events = fs.readFileSync(path.join(w.home, 'events.log'), 'utf8');
    expect(w.record(low).state, events.slice(-2000)).toMatchObject({ status: 'succeeded' });
    expect(events).toMatch(/"msg":"pressure: thawed"/);
  });

  it('a job whose memory keeps its slice under pressure while frozen is ended oom (pressure …); tmux and a stand-in agent live', async () => {
    await calm();
    // A memory-bound session, as a desktop or a container limits it: the user's apps share 400 MB over which the kernel
    // throttles them (MemoryHigh on app.slice, where jobs' scopes, tmux and the agent all are). A job that fills it
    // keeps everyone there stalled even frozen (no swap: its memory stays); only its end frees the agent.
    await execa('systemctl', ['--user', 'set-property', '--runtime', 'app.slice', 'MemoryHigh=400M']);
    const cfg = path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json');
    const before = fs.readFileSync(cfg, 'utf8');
    fs.writeFileSync(
      cfg,
      JSON.stringify({ ...JSON.parse(before), pressureGuard: { some: 15, for: '2s', warn: '2s', thawBelow: 8, thawAfter: '2s', endAfter: '20s' } }),
    );
    const sock = `guard-${process.pid}`;
    const tmux = tmuxOn(sock);
    try {
      // The agent stand-in keeps working: a few MB allocated and dropped ten times a second, in tmux, in a scope of its own.
      const { server, agent } = await tmuxInScope(
        sock,
        'guard',
        `guard-tmux-${process.pid}.scope`,
        `exec -a fake-agent python3 -c 'import time\nwhile True:\n    b = bytearray(b"y" * (4 << 20)); time.sleep(0.1)'`,
      );
      const id = await start(
        w,
        'leaky',
        [
          'python3',
          '-c',
          'import signal, time\nsignal.signal(signal.SIGUSR1, lambda *a: print("checkpoint", flush=True))\nx = []\nfor i in range(35):\n    x.append(bytearray(b"x" * (12 << 20))); time.sleep(0.05)\nprint("holding", flush=True)\nwhile True: time.sleep(1)',
        ],
        ['--timeout', '1h', '--timeout-signal', 'USR1@1m'],
      );
      const seen: string[] = [];
      await pollUntil(
        () => {
          seen.push(`${psi()} ${w.record(id).state.status}`);
          return w.record(id).state.status === 'oom';
        },
        240_000,
        'the job ended for pressure',
        1000,
      ).catch((e) => {
        const diag = path.join(w.home, 'jobs', id, 'supervisor.log');
        const rec = w.record(id);
        throw new Error(
          `${e.message}\n${seen.slice(-15).join('\n')}\n${JSON.stringify(rec.state)}\n${fs.readFileSync(rec.log, 'utf8').slice(-500)}\n${fs.existsSync(diag) ? fs.readFileSync(diag, 'utf8').slice(-1500) : ''}`,
        );
      });
      const s = w.record(id).state;
      expect(s).toMatchObject({ status: 'oom', by: 'pressure' });
      expect(s.reason).toMatch(/^pressure: some avg10 \d+% > 15% for \d/);
      expect((await w.run(['status', id])).stdout).toMatch(/oom \(pressure\)/);
      expect(seen.some((l) => l.endsWith(' paused'))).toBe(true);
      expect(alive(server) && alive(agent)).toBe(true);
      // Its end freed the slice: pressure falls.
      await pollUntil(() => Number(/avg10=([\d.]+)/.exec(psi())![1]) < 15, 120_000, 'pressure to fall after the end', 1000);
    } finally {
      await tmux('kill-server');
      await execa('systemctl', ['--user', 'set-property', '--runtime', 'app.slice', 'MemoryHigh=infinity'], { reject: false });
      fs.writeFileSync(cfg, before);
    }
  });
});
