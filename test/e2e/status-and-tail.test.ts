// Reading jobs: status order, filters and terminal layout; tail and tail -f (\r progress, arrays, several jobs, Ctrl-C).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { alive, BIN, HAS_CGROUP, IS_ROOT, pollUntil, start, useWorld } from '../helpers/jobq.js';

const w = useWorld();
const state = (id: string) => w.record(id).state;
const hasScript = spawnSync('sh', ['-c', 'command -v script']).status === 0;

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
    // Every filler ended: the running job is then the only live one (a filler still ending is live too, and newer).
    await w.run(['wait', ...Array.from({ length: 25 }, (_, i) => `filler${i}`)]);
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
      expect(lines[0]).toMatch(/^#\s+NAME\s+STATE\s+PID\s+STARTED\s+ELAPSED\s+EXIT\s+MEM$/);
      expect(lines[1]).toMatch(/^15\s+resnet50-lr3e-15\s+running\s+\d+/);
      const frames = await inPty(80, 24, `timeout -s INT 2.5 ${BIN} status --watch`);
      expect(frames.length).toBeGreaterThan(0);
      for (const f of frames) {
        const fl = f.replace(/\n$/, '').split('\n');
        expect(fl.length, f).toBeLessThanOrEqual(24);
        expect(fl[0]).toMatch(/^#\s+NAME\s+STATE\s+.*LAST OUTPUT$/);
        for (const l of fl) expect(l.length, l).toBeLessThanOrEqual(80);
      }
      expect(frames.at(-1)).toMatch(/resnet50-lr3e-\d+\s+running.*epoch 1\/90/);
      const [wide] = await inPty(200, 30, `${BIN} status`);
      const wl = wide!.trimEnd().split('\n');
      expect(wl[0]).toMatch(/^#\s+NAME\s+ID\s+STATE\s+PID\s+STARTED\s+ELAPSED\s+EXIT\s+MEM$/);
      for (const l of wl) expect(l.length).toBeLessThanOrEqual(200);
      // Piped (no terminal): every column, whatever the width.
      expect((await w.run(['status'])).stdout.split('\n')[0]).toMatch(/^#\s+NAME\s+ID\s+STATE/);
    } finally {
      fs.writeFileSync(g, '');
    }
  }, 60_000);

  it('jobq queue fits 80 columns: a reason too long for the line goes under it, whole, wrapped at words', async () => {
    const g = path.join(w.home, 'go');
    const first = await start(w, 'train-resnet50-imagenet-baseline-long', ['sh', '-c', `while [ ! -e ${g} ]; do sleep 0.1; done`]);
    await w.run(['run', 'eval-resnet50-imagenet-baseline', '-q', '--after', 'train-resnet50-imagenet-baseline-long', '--', 'true']);
    try {
      const [shown] = await inPty(80, 24, `${BIN} queue`);
      const lines = shown!.trimEnd().split('\n');
      for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(80);
      expect(lines.join(' ').replace(/\s+/g, ' ')).toContain(`after ${first} (running)`);
      // Piped: one line per job, as before (for grep).
      expect((await w.run(['queue'])).stdout).toMatch(new RegExp(`eval-resnet50-imagenet-baseline\\S+ {2}priority 0 {2}after ${first} \\(running\\)`));
    } finally {
      fs.writeFileSync(g, '');
    }
  });
});

describe('tail', () => {
  it("shows \\r-only progress live and -f exits with the job's code", async () => {
    // Progress until the test has seen it live (a gate file), however slowly tail -f starts on a loaded machine.
    const gate = path.join(w.home, 'done');
    const id = await start(w, 'progress', [
      'bash',
      '-c',
      `i=0; while [ ! -e ${gate} ]; do i=$((i+1)); printf "\\rprogress %d" $i; sleep 0.1; done; printf "\\rprogress end"; exit 3`,
    ]);
    const follow = execa(process.execPath, [BIN, 'tail', '-f', id], { env: { ...process.env, ...w.env }, reject: false });
    let seen = '';
    follow.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    // Two \r updates arrived while the job ran, into this pipe each a line of its own: a live stream, not the
    // collapsed last line.
    await pollUntil(() => (seen.match(/progress \d+\n/g) ?? []).length >= 2, 30_000, 'live \\r progress from tail -f');
    expect(w.record(id).state.status).toBe('running');
    fs.writeFileSync(gate, '');
    const res = await follow;
    expect(res.exitCode).toBe(3);
    expect(seen).toMatch(/\nprogress end\n$/);
    expect(seen).not.toContain('\r');
  });

  it('Ctrl-C in tail -f and wait stops only the reader; the job keeps running', async () => {
    const id = await start(w, 'keep', ['sh', '-c', 'echo ready; sleep 30']);
    const follow = execa(process.execPath, [BIN, 'tail', '-f', id], { env: { ...process.env, ...w.env }, reject: false });
    let seen = '';
    follow.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    await pollUntil(() => seen.includes('ready'), 10_000, 'tail -f following');
    follow.kill('SIGINT');
    const f = await follow;
    expect(f.isTerminated || f.exitCode !== 0).toBe(true);
    expect(alive(w.record(id).job.pid)).toBe(true);
    expect(w.record(id).state.status).toBe('running');
  });

  it.skipIf(!hasScript)('Ctrl-C in wait, once it is waiting, stops only the waiter; the job keeps running', async () => {
    const id = await start(w, 'keep2', ['sleep', '30']);
    // On a TTY wait draws a status line: that line is the sign it is really waiting.
    const waiter = execa('script', ['-qfec', `${process.execPath} ${BIN} wait ${id}`, '/dev/null'], { env: { ...process.env, ...w.env }, reject: false });
    let seen = '';
    waiter.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    await pollUntil(() => seen.includes(`${id} running`), 10_000, 'wait drawing its status line');
    const waitPid = () =>
      fs
        .readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .find((p) => {
          try {
            return fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').split('\0').join(' ').includes(`${BIN} wait ${id}`) && alive(Number(p));
          } catch {
            return false;
          }
        });
    const pid = Number(waitPid());
    expect(pid).toBeGreaterThan(1);
    process.kill(pid, 'SIGINT');
    await pollUntil(() => !alive(pid), 5000, 'wait to stop on Ctrl-C');
    waiter.kill('SIGKILL');
    await waiter;
    expect(alive(w.record(id).job.pid)).toBe(true);
    expect(w.record(id).state.status).toBe('running');
  });

  it('prints the last N lines', async () => {
    const id = await start(w, 'lines', ['seq', '1', '100']);
    await w.run(['wait', id]);
    const r = await w.run(['tail', '-n', '3', id], { stripFinalNewline: false });
    expect(r.stdout).toBe('98\n99\n100\n');
  });

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

  it.skipIf(!IS_ROOT || !HAS_CGROUP)('an OOM kill names the peak and the limit in the log', async () => {
    const id = await start(w, 'oomy', ['python3', '-c', 'x = []\nwhile True: x.append(bytearray(10_000_000))'], ['--mem-limit', '100M']);
    await w.run(['wait', id]);
    expect(state(id).status).toBe('oom');
    expect(fs.readFileSync(w.record(id).log, 'utf8')).toMatch(/\[jobq\] oom-killed at \S+, peak [\d.]+M of 100M limit\n$/);
  });
});
