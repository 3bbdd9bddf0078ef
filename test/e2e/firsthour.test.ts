// Issue 10: what a new user meets in the first hour — names that mean one thing, safe defaults, readable
// tails, hints where people trip.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { BIN, pollUntil, start, useWorld } from '../helpers/jobq.js';

const isRoot = process.getuid?.() === 0;
const hasCgroup = fs.existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes') || fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
const w = useWorld();

const state = (id: string) => w.record(id).state;

describe('a NAME means one live job', () => {
  it('run refuses a NAME that is running: one line naming the job and the ways on, exit 1, nothing written', async () => {
    const first = await start(w, 'train', ['sleep', '30']);
    const r = await w.run(['run', 'train', '--', 'true']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(first);
    expect(r.stderr).toMatch(/--replace/);
    expect(r.stderr).toMatch(/--allow-duplicate/);
    expect(w.ids()).toEqual([first]);
  });

  it('--replace cancels the live one with its grace, then starts; --allow-duplicate starts beside it', async () => {
    const first = await start(w, 'svc', ['sh', '-c', 'trap "echo bye; exit 0" TERM; while :; do sleep 0.05; done']);
    const second = await start(w, 'svc', ['sleep', '30'], ['--replace']);
    expect(state(first)).toMatchObject({ status: 'cancelled', exitCode: 0 });
    expect(fs.readFileSync(w.record(first).log, 'utf8')).toContain('bye');
    expect(state(second).status).toBe('running');
    const third = await start(w, 'svc', ['sleep', '30'], ['--allow-duplicate']);
    expect(state(second).status).toBe('running');
    expect(state(third).status).toBe('running');
  });

  it('20 simultaneous runs of one NAME give exactly one job', async () => {
    const runs = await Promise.all(Array.from({ length: 20 }, () => w.run(['run', 'same', '-q', '--', 'sleep', '30'])));
    expect(runs.filter((r) => r.exitCode === 0)).toHaveLength(1);
    expect(runs.filter((r) => r.exitCode === 1 && /already/.test(r.stderr))).toHaveLength(19);
    expect(w.ids()).toHaveLength(1);
    const live = fs
      .readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return (
            fs.readFileSync(`/proc/${p}/environ`, 'latin1').includes(`JOBQ_TEST_TAG=${w.tag}`) &&
            fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').startsWith('sleep')
          );
        } catch {
          return false;
        }
      });
    expect(live).toHaveLength(1);
  });

  it('cancel NAME ends every live job of that name and lists each', async () => {
    const a = await start(w, 'dup', ['sleep', '30']);
    const b = await start(w, 'dup', ['sleep', '30'], ['--allow-duplicate']);
    const r = await w.run(['cancel', 'dup']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`cancelled ${a}`);
    expect(r.stdout).toContain(`cancelled ${b}`);
    expect([state(a).status, state(b).status]).toEqual(['cancelled', 'cancelled']);
  });

  it('restart NAME stops the live job first; --keep starts a second copy', async () => {
    const a = await start(w, 'rs', ['sleep', '30']);
    const r = await w.run(['restart', 'rs']);
    expect(r.exitCode).toBe(0);
    expect(state(a).status).toBe('cancelled');
    const b = w.ids().find((id) => id !== a)!;
    expect(state(b).status).toBe('running');
    expect((await w.run(['restart', 'rs', '--keep'])).exitCode).toBe(0);
    expect(state(b).status).toBe('running');
    expect(w.ids()).toHaveLength(3);
  });
});

describe('status order', () => {
  it('queued jobs in the order they will start (an array by index, 2 before 10), as jobq queue lists them', async () => {
    await w.run(['queue', 'pause', 'ord']);
    expect((await w.run(['run', 'sw', '--array', '1-12', '--queue', 'ord', '-q', '--', 'true'])).exitCode).toBe(0);
    await w.run(['run', 'urgent', '--queue', 'ord', '--priority', '5', '-q', '--', 'true']);
    const names = (await w.run(['status', '--json'])).stdout;
    const order = JSON.parse(names).jobs.map((j: { name: string }) => j.name);
    expect(order).toEqual(['urgent', ...Array.from({ length: 12 }, (_, i) => `sw.${i + 1}`)]);
    const q = (await w.run(['queue', 'ord', '--json'])).stdout;
    expect(JSON.parse(q).queues[0].waiting.map((j: { name: string }) => j.name)).toEqual(order);
    await w.run(['cancel', '--all']);
  });

  it('live jobs first, then finished ones newest first by time, not by name within a second', async () => {
    // The running job is the oldest of all: only "live first" puts it on top.
    const running = await start(w, 'aaa-running', ['sleep', '30']);
    const zed = await start(w, 'zed', ['true']);
    await w.run(['wait', zed]);
    const abe = await start(w, 'abe', ['true']);
    await w.run(['wait', abe]);
    for (let i = 0; i < 25; i++) await w.run(['run', `filler${i}`, '-q', '--', 'true']);
    const j = JSON.parse((await w.run(['status', '--all', '--json'])).stdout);
    const ids: string[] = j.jobs.map((x: { id: string }) => x.id);
    expect(ids[0]).toBe(running);
    // abe started after zed (maybe in the same second): newest first means abe before zed.
    expect(ids.indexOf(abe)).toBeLessThan(ids.indexOf(zed));
    const head = (await w.run(['status'])).stdout.split('\n').slice(0, 2).join('\n');
    expect(head).toMatch(/aaa-running\s+\S+\s+running/);
  });
});

describe('status filters', () => {
  it('--state and a NAME pattern list the matching jobs over all of them; a bad state is one usage line', async () => {
    for (const n of ['resnet-a', 'resnet-b', 'vit-a']) await w.run(['run', n, '-q', '--', 'true']);
    await w.run(['run', 'resnet-c', '-q', '--', 'false']);
    await w.run(['wait', 'resnet-a', 'resnet-b', 'vit-a', 'resnet-c']);
    // Past the recent cut: a filter looks at every job.
    for (let i = 0; i < 3; i++) await w.run(['run', `filler${i}`, '-q', '--', 'true']);
    const names = async (...args: string[]) =>
      JSON.parse((await w.run(['status', ...args, '-n', '1', '--json'])).stdout)
        .jobs.map((j: { name: string }) => j.name)
        .sort();
    expect(await names('resnet*')).toEqual(['resnet-a', 'resnet-b', 'resnet-c']);
    expect(await names('--state', 'failed')).toEqual(['resnet-c']);
    expect(await names('resnet-?', '--state', 'succeeded')).toEqual(['resnet-a', 'resnet-b']);
    expect((await w.run(['status', 'zzz*'])).stdout.trim()).toBe('no job matches');
    const bad = await w.run(['status', '--state', 'faild']);
    expect([bad.exitCode, bad.stderr.trim().split('\n').length]).toEqual([2, 1]);
    expect(bad.stderr).toMatch(/invalid --state 'faild'/);
  });
});

describe('wait --all', () => {
  it('waits for every job live now, returns the first failure, and says so when there is none', async () => {
    await w.run(['run', 'wa', '-q', '--', 'sh', '-c', 'sleep 0.3']);
    await w.run(['run', 'wb', '-q', '--', 'sh', '-c', 'sleep 0.5; exit 5']);
    await w.run(['run', 'wq', '-q', '--queue', 'one', '--', 'sleep', '0.2']);
    await w.run(['run', 'wq2', '-q', '--queue', 'one', '--', 'true']);
    const r = await w.run(['wait', '--all', '--timeout', '30s']);
    expect(r.exitCode).toBe(5);
    for (const n of ['wa', 'wb', 'wq', 'wq2'])
      expect(JSON.parse((await w.run(['status', n, '--json'])).stdout).state.status).not.toMatch(/queued|running|starting/);
    const none = await w.run(['wait', '--all']);
    expect([none.exitCode, none.stderr.trim()]).toEqual([0, 'jobq: no live jobs']);
    expect((await w.run(['wait'])).exitCode).toBe(2);
  });
});

describe('run without --', () => {
  it('takes NAME CMD ARGS when no word after NAME starts with -, and asks for -- once one does', async () => {
    // A word after NAME that starts with -: jobq cannot tell its options from the command's.
    const r = await w.run(['run', 'plain', '-q', 'sh', '-c', 'echo plain ran']);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const ok = await w.run(['run', 'plain', 'echo', 'plain', 'ran']);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect((await w.run(['wait', 'plain'])).exitCode).toBe(0);
    expect((await w.run(['tail', 'plain'])).stdout).toBe('plain ran');
    const opt = await w.run(['run', 'withopt', 'python3', 'train.py', '--lr', '3e-4']);
    expect(opt.exitCode).toBe(2);
    expect(opt.stderr).toMatch(/did you forget '--' before the command\?/);
    expect(w.ids().filter((id) => id.startsWith('withopt'))).toEqual([]);
  });
});

describe('status in a terminal', () => {
  /** What a pty of cols×rows shows for `jobq ARGS` (run through script(1), ANSI codes stripped), split at each redraw. */
  const inPty = async (cols: number, rows: number, cmd: string) => {
    const r = await execa('script', ['-qc', `stty cols ${cols} rows ${rows}; ${cmd}`, '/dev/null'], {
      env: { ...process.env, ...w.env },
      reject: false,
      stdin: 'ignore',
    });
    return String(r.stdout)
      .split('\x1b[H\x1b[2J')
      .map((f) => f.replace(/\x1b\[[0-9;?]*[a-zA-Z]/g, '').replace(/\r/g, ''))
      .filter((f) => f.trim());
  };

  it('fits 80x24 with 15 jobs (no line over the width, --watch keeps its header), and uses 200 columns', async () => {
    const g = path.join(w.home, 'go');
    for (let i = 1; i <= 15; i++)
      await w.run([
        'run',
        `resnet50-lr3e-${i}`,
        '-q',
        '--',
        'sh',
        '-c',
        `printf 'epoch 1/90 loss 2.31 [###       ] 12%%\r'; while [ ! -e ${g} ]; do sleep 0.1; done`,
      ]);
    await pollUntil(() => w.ids().every((id) => w.tryRecord(id)?.state.status === 'running'), 15_000, 'the jobs to run');
    try {
      const [plain] = await inPty(80, 24, `${BIN} status`);
      const lines = plain!.trimEnd().split('\n');
      expect(lines).toHaveLength(16);
      for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(80);
      expect(lines[0]).toMatch(/^NAME\s+STATE\s+PID\s+STARTED\s+ELAPSED\s+EXIT\s+MEM$/);
      expect(lines[1]).toMatch(/^resnet50-lr3e-15\s+running\s+\d+/);
      const frames = await inPty(80, 24, `timeout -s INT 2.5 ${BIN} status --watch`);
      expect(frames.length).toBeGreaterThan(0);
      for (const f of frames) {
        const fl = f.replace(/\n$/, '').split('\n');
        expect(fl.length, f).toBeLessThanOrEqual(24);
        expect(fl[0]).toMatch(/^NAME\s+STATE\s+.*LAST OUTPUT$/);
        for (const l of fl) expect(l.length, l).toBeLessThanOrEqual(80);
      }
      expect(frames.at(-1)).toMatch(/resnet50-lr3e-\d+\s+running.*epoch 1\/90/);
      const [wide] = await inPty(200, 30, `${BIN} status`);
      const wl = wide!.trimEnd().split('\n');
      expect(wl[0]).toMatch(/^NAME\s+ID\s+STATE\s+PID\s+STARTED\s+ELAPSED\s+EXIT\s+MEM$/);
      for (const l of wl) expect(l.length).toBeLessThanOrEqual(200);
      // Piped (no terminal): every column, whatever the width.
      expect((await w.run(['status'])).stdout.split('\n')[0]).toMatch(/^NAME\s+ID\s+STATE/);
    } finally {
      fs.writeFileSync(g, '');
    }
  }, 60_000);
});

describe('tail', () => {
  it('of an array name: each element in index order, -f names each line and exits as wait does; restart says what to do', async () => {
    const r = await w.run([
      'run',
      'sw',
      '--array',
      '1-3',
      '-q',
      '--',
      'sh',
      '-c',
      'echo start $JOBQ_ARRAY_VALUE; sleep 0.3; echo end $JOBQ_ARRAY_VALUE; exit $((JOBQ_ARRAY_VALUE - 1))',
    ]);
    expect(r.exitCode).toBe(0);
    const f = await w.run(['tail', '-f', 'sw'], { stripFinalNewline: false });
    expect(f.exitCode).toBe(1);
    const named = f.stdout.split('\n').filter((l) => /^sw\.\d\| /.test(l));
    for (const i of [1, 2, 3]) {
      expect(f.stdout).toContain(`start ${i}\n`);
      expect(f.stdout).toContain(`sw.${i}| end ${i}\n`);
    }
    expect(named.length).toBeGreaterThanOrEqual(3);
    const t = await w.run(['tail', 'sw']);
    expect(t.exitCode).toBe(0);
    expect(t.stdout).toMatch(/^==> sw\.1_\S+ \(succeeded\) <==\nstart 1\nend 1\n==> sw\.2_\S+ \(failed \(1\)\) <==\nstart 2\nend 2\n==> sw\.3_/);
    const rs = await w.run(['restart', 'sw']);
    expect(rs.exitCode).toBe(2);
    expect(rs.stderr.trim()).toBe('jobq: sw is an array of 3 jobs: restart one element (jobq restart sw.3), or run the array again');
  });

  it('-f of several jobs interleaves them, each line named, and exits as wait does', async () => {
    await w.run(['run', 'ta', '-q', '--', 'sh', '-c', 'for i in 1 2 3; do echo a$i; sleep 0.1; done']);
    await w.run(['run', 'tb', '-q', '--', 'sh', '-c', 'sleep 0.2; for i in 1 2 3; do echo b$i; sleep 0.1; done; exit 4']);
    const f = await w.run(['tail', '-f', 'ta', 'tb'], { stripFinalNewline: false });
    expect(f.exitCode).toBe(4);
    const body = f.stdout.replace(/^==> .*\n/gm, '').replace(/^t[ab]\| /gm, '');
    for (const l of ['a1', 'a2', 'a3', 'b1', 'b2', 'b3']) expect(body.split('\n')).toContain(l);
    expect(f.stdout).toMatch(/^tb\| b3$/m);
  });

  it('a \\r bar: the end printed is a line (the prompt does not stick), and into a pipe -f gives one line per update', async () => {
    const id = await start(w, 'bar', ['sh', '-c', 'sleep 0.3; for i in 1 2 3; do printf "step $i/3\\r"; sleep 0.1; done']);
    const f = await w.run(['tail', '-f', id], { stripFinalNewline: false });
    expect(f.exitCode).toBe(0);
    expect(f.stdout).toBe('step 1/3\nstep 2/3\nstep 3/3\n');
    expect((await w.run(['tail', id], { stripFinalNewline: false })).stdout).toBe('step 3/3\n');
    expect((await w.run(['tail', '--raw', id], { stripFinalNewline: false })).stdout).toBe('step 1/3\rstep 2/3\rstep 3/3\r');
  });

  it('-f of a queued job says why it waits, then follows it once it starts', async () => {
    const g = path.join(w.home, 'go');
    await w.run(['run', 'first', '-q', '--queue', 'one', '--', 'sh', '-c', `while [ ! -e ${g} ]; do sleep 0.05; done`]);
    const id = (await w.run(['run', 'second', '-q', '--queue', 'one', '--', 'echo', 'hello'])).stdout.trim();
    const follow = execa(process.execPath, [BIN, 'tail', '-f', id], {
      env: { ...process.env, ...w.env },
      reject: false,
      stdin: 'ignore',
      stripFinalNewline: false,
    });
    let err = '';
    follow.stderr!.on('data', (d) => (err += d));
    try {
      await pollUntil(() => err.includes('is queued'), 10_000, 'the reason on stderr');
      expect(err.trim()).toBe(`jobq: ${id} is queued (one #1): queue one: 1 of 1 slot busy; its log follows once it starts`);
    } finally {
      fs.writeFileSync(g, '');
    }
    const r = await follow;
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('hello\n');
  });
});

describe('safe defaults', () => {
  it('a bare prune only shows; rm removes one finished job and refuses a live one', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await start(w, `p${i}`, ['true']));
    await w.run(['wait', ...ids]);
    const bare = await w.run(['prune']);
    expect(bare.exitCode).toBe(0);
    expect(bare.stdout).toMatch(/3 jobs would be removed/);
    expect(bare.stdout).toMatch(/nothing removed: say which/);
    expect(w.ids().sort()).toEqual([...ids].sort());
    const live = await start(w, 'busy', ['sleep', '30']);
    const rm = await w.run(['rm', ids[0]!, live]);
    expect(rm.exitCode).toBe(1);
    expect(rm.stdout).toContain(`removed ${ids[0]}`);
    expect(rm.stderr).toMatch(/is running: cancel it first/);
    expect(w.ids()).not.toContain(ids[0]);
    expect(w.ids()).toContain(live);
  });

  it('tail shows \\r progress as a terminal would; --raw gives the bytes; -n counts shown lines', async () => {
    const id = await start(w, 'tqdm', [
      'sh',
      '-c',
      'echo epoch 1; i=0; while [ $i -lt 3000 ]; do printf "\\r%s" "progress $i/3000 ............"; i=$((i+1)); done; printf "\\rdone      \\n"; echo final',
    ]);
    await w.run(['wait', id]);
    const one = (await w.run(['tail', '-n', '2', id])).stdout;
    // "done      " overwrote the start of the last progress update, as on a terminal.
    expect(one).toBe('done      999/3000 ............\nfinal');
    expect(one.length).toBeLessThan(100);
    const raw = (await w.run(['tail', '--raw', '-n', '2', id])).stdout;
    expect(raw.length).toBeGreaterThan(3000 * 20);
    expect((await w.run(['tail', '-n', '1', id])).stdout).toBe('final');
  });

  it('an end jobq caused leaves one marker line at the end of the log', async () => {
    const id = await start(w, 'marked', ['sleep', '30'], ['--timeout', '1s500ms']);
    // As timeout(1): 124 for a job its --timeout ended.
    expect((await w.run(['wait', id])).exitCode).toBe(124);
    const last = fs.readFileSync(w.record(id).log, 'utf8').trim().split('\n').pop();
    // The duration as it was typed, not in ms.
    expect(last).toMatch(/^\[jobq\] timeout after 1s500ms at \S+, SIGTERM$/);
  });

  it.skipIf(!isRoot || !hasCgroup)('an OOM kill names the peak and the limit in the log', async () => {
    const id = await start(w, 'oomy', ['python3', '-c', 'x = []\nwhile True: x.append(bytearray(10_000_000))'], ['--mem-limit', '100M']);
    await w.run(['wait', id]);
    expect(state(id).status).toBe('oom');
    expect(fs.readFileSync(w.record(id).log, 'utf8')).toMatch(/\[jobq\] oom-killed at \S+, peak [\d.]+M of 100M limit\n$/);
  });
});

describe('hints where people trip', () => {
  it('options meant for the command: "did you forget \'--\'"; `run NAME --` says missing command; a typo gets a suggestion', async () => {
    const r = await w.run(['run', 'm1', 'python3', 'train.py', '--epochs', '1']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--epochs' — did you forget '--' before the command\?/);
    const m = await w.run(['run', 'm5', '--']);
    expect(m.exitCode).toBe(2);
    expect(m.stderr).toMatch(/missing command/);
    await start(w, 'train', ['true']);
    const t = await w.run(['status', 'trian']);
    expect(t.exitCode).toBe(1);
    expect(t.stderr).toMatch(/did you mean 'train'\?/);
  });

  it('slips a newcomer makes get one line and exit 2, and nothing is written', async () => {
    for (const [args, msg] of [
      [['run', 'c', '--cwd', '--', 'true'], "--cwd needs a value before the '--' that starts the command"],
      [['run', 'c', '--mem-limit', '8', '--', 'true'], '--mem-limit 8 is 8B: too little for a job, at least 1M (did you mean 8G?)'],
      [['prune', '--state', 'faild'], "invalid --state 'faild': one of succeeded, failed,"],
      [['completion'], 'which shell? jobq completion bash|zsh|fish'],
    ] as const) {
      const r = await w.run([...args]);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(msg);
    }
    expect(w.ids()).toEqual([]);
  });

  it('--no-color works after the subcommand too; status -n validates', async () => {
    await start(w, 'c', ['true']);
    const r = await w.run(['status', '--no-color'], { env: { NO_COLOR: '', FORCE_COLOR: '1' } });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toContain('\x1b[');
    expect((await w.run(['status', '-n', 'x'])).exitCode).toBe(2);
  });

  it('jobq config lists only the files it read', async () => {
    const r = await w.run(['config']);
    expect(r.stdout).toMatch(/files read: none/);
    fs.mkdirSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq'), { recursive: true });
    fs.writeFileSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json'), '{"grace":"3s"}');
    expect((await w.run(['config'])).stdout).toContain(`files read: ${path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json')}`);
  });

  it('guard outside a job names what to run instead: the calling script as a jobq run line', async () => {
    const script = path.join(w.home, 'train.sh');
    fs.writeFileSync(script, `#!/bin/sh\n${process.execPath} ${BIN} guard || exit 1\necho trained\n`, { mode: 0o755 });
    for (const argv of [[script], ['bash', script], ['sh', script]]) {
      const r = await execa(argv[0]!, argv.slice(1), { env: { ...process.env, ...w.env, BG_JOB: '' }, reject: false });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toBe(`jobq: this is a heavy job: run it through jobq instead: jobq run train -- ${script}  (BG_JOB=1 is not set)`);
    }
    const id = await start(w, 'train', [script]);
    expect((await w.run(['wait', id])).exitCode).toBe(0);
  });

  it('guard inside a job started without that guard variable names the flag to add', async () => {
    const id = await start(w, 'g', [process.execPath, BIN, 'guard', '--var', 'GRAV_BG_JOB']);
    const r = await w.run(['wait', id]);
    expect(r.exitCode).toBe(1);
    expect(fs.readFileSync(w.record(id).log, 'utf8')).toMatch(
      /inside jobq job g_\S+, but GRAV_BG_JOB=1 is not set: start it with jobq run NAME --guard-var GRAV_BG_JOB/,
    );
  });

  it('--log into a directory that does not exist yet creates it (0700)', async () => {
    const log = path.join(w.home, 'logs', 'deeper', 'out.log');
    const id = await start(w, 'lg', ['echo', 'hi'], ['--log', log]);
    await w.run(['wait', id]);
    expect(fs.readFileSync(log, 'utf8')).toBe('hi\n');
    expect(fs.statSync(path.dirname(log)).mode & 0o777).toBe(0o700);
  });

  it('jobq docs and jobq help docs say where the docs and Makefile.example are', async () => {
    const r = await w.run(['docs']);
    expect(r.stdout).toMatch(/^docs:\s+\/\S+\/docs$/m);
    expect(r.stdout).toMatch(/^Makefile.example:\s+\/\S+\/Makefile.example$/m);
    const j = JSON.parse((await w.run(['docs', '--json'])).stdout);
    expect(fs.existsSync(path.join(j.docs, 'guarantees.md'))).toBe(true);
    expect(fs.existsSync(j.makefileExample)).toBe(true);
    expect((await w.run(['help', 'docs'])).stdout).toContain(`Installed here: ${j.docs}`);
  });

  it("a suggestion is quoted: prune a b t9 says did you mean 'to'?, not a sentence", async () => {
    for (const n of ['a', 'to']) await w.run(['run', n, '-q', '--', 'true']);
    await w.run(['wait', 'a', 'to']);
    const pr = await w.run(['prune', 'a', 't9']);
    expect([pr.exitCode, pr.stderr.trim()]).toEqual([1, "jobq: no job named or with id 't9'; did you mean 'to'?"]);
    expect(w.ids()).toHaveLength(2);
  });

  it('no silent no-ops: prune and queue name what they do not know; replace, cancel and resume say what they did', async () => {
    const keep = await start(w, 'train', ['true']);
    await w.run(['wait', keep]);
    const typo = await w.run(['prune', 'trian']);
    expect([typo.exitCode, typo.stderr.trim()]).toEqual([1, expect.stringMatching(/no job named or with id 'trian'; did you mean 'train'\?/)]);

    expect(w.ids()).toEqual([keep]);
    await w.run(['queue', 'set', 'heavy', '--slots', '1']);
    const q = await w.run(['queue', 'heavvy']);
    expect([q.exitCode, q.stderr]).toEqual([1, expect.stringMatching(/no queue named 'heavvy'; did you mean 'heavy'\?/)]);
    expect((await w.run(['queue', 'pause', 'heavvy'])).stderr).toMatch(/queue 'heavvy' is new .*did you mean 'heavy'\?/);
    expect((await w.run(['queue', 'set', 'heavy'])).stderr).toMatch(/missing --slots/);
    const old = await start(w, 'dup', ['sleep', '30']);
    const rep = await w.run(['run', 'dup', '-q', '--replace', '--', 'sleep', '30']);
    expect(rep.stderr).toContain(`replaced ${old} (cancelled)`);
    expect((await w.run(['resume', 'dup'])).stdout).toMatch(/was already running/);
    await w.run(['queue', 'pause', 'heavy']);
    const waiting = (await w.run(['run', 'later', '-q', '--queue', 'heavy', '--', 'true'])).stdout.trim();
    expect((await w.run(['cancel', waiting])).stdout).toMatch(/never started: nothing to signal/);
    await w.run(['cancel', 'dup']);
  });

  it("events -f -n 0 prints only what comes next, and one job's events come in order", async () => {
    const old = await start(w, 'old', ['true']);
    await w.run(['wait', old]);
    const p = execa(process.execPath, [BIN, 'events', '-f', '-n', '0'], { env: { ...process.env, ...w.env }, reject: false });
    let seen = '';
    p.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    // Following once a probe's line shows: however slowly events -f started, it is reading live by now.
    for (let i = 0; !seen.includes('probe'); i++) {
      expect(i, 'events -f never showed a new line').toBeLessThan(100);
      await w.run(['queue', 'set', `probe${i}`, '--slots', '1']);
      await new Promise((r) => setTimeout(r, 100));
    }
    const id = await start(w, 'new', ['true']);
    await pollUntil(() => seen.includes(`succeeded id=${id}`), 10_000, "the new job's events");
    p.kill('SIGINT');
    await p;
    expect(seen).not.toContain('old_');
    const at = (m: string) => seen.indexOf(`${m} id=${id}`);
    expect(at('submitted')).toBeLessThan(at('running'));
    expect(at('running')).toBeLessThan(at('succeeded'));
  });

  it("--on-exit gets the job's environment, not the supervisor's", async () => {
    const out = path.join(w.home, 'hook.txt');
    const r = await w.run(
      ['run', 'hooked', '-q', '--on-exit', `echo "NO=$NODE_OPTIONS UV=$UV_THREADPOOL_SIZE G=$BG_JOB S=$JOBQ_JOB_STATE" > ${out}`, '--', 'true'],
      { env: { NODE_OPTIONS: '--max-old-space-size=77' } },
    );
    const id = r.stdout.trim();
    await w.run(['wait', id]);
    await pollUntil(() => fs.existsSync(out) && fs.readFileSync(out, 'utf8').includes('S='), 10_000, 'hook output');
    expect(fs.readFileSync(out, 'utf8').trim()).toBe('NO=--max-old-space-size=77 UV= G=1 S=succeeded');
  }, 30_000);
});

describe('the launcher', () => {
  it('a run that fails to start exits 127, as wait does on the same record', async () => {
    const r = await w.run(['run', 'nope', '--', '/no/such/command']);
    expect(r.exitCode).toBe(127);
    expect((await w.run(['wait', 'nope'])).exitCode).toBe(127);
  });
});
