// Issue 12: start when it can succeed — dependencies, job arrays, memory- and GPU-aware admission, with real
// processes (and a fake nvidia-smi whose GPU usage the test controls).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { gate, peakRunning, pollUntil, start, taggedPids, useWorld } from '../helpers/jobq.js';

const w = useWorld();

const state = (id: string) => w.record(id).state;
const memAvailable = () => Number(/^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1]) * 1024;

/** The jobs' own processes whose command line has `word` as a whole argument. */
function running(word: string): number {
  return taggedPids(w.tag).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').includes(word);
    } catch {
      return false;
    }
  }).length;
}

describe('dependencies', () => {
  it('a chain of 5 --after jobs runs in order', async () => {
    const order = path.join(w.home, 'order.txt');
    const g = gate(w, 'c1');
    const ids = [await start(w, 'c1', ['sh', '-c', `${g.hold}; echo c1 >> ${order}`])];
    for (let i = 2; i <= 5; i++) ids.push(await start(w, `c${i}`, ['sh', '-c', `echo c${i} >> ${order}`], ['--after', `c${i - 1}`]));
    expect(state(ids[1]!).status).toBe('queued');
    expect(JSON.parse((await w.run(['status', ids[1]!, '--json'])).stdout).waiting.reason).toMatch(/^after c1_/);
    g.open();
    expect((await w.run(['wait', ...ids, '--timeout', '30s'])).exitCode).toBe(0);
    expect(fs.readFileSync(order, 'utf8')).toBe('c1\nc2\nc3\nc4\nc5\n');
  });

  it('--after an array name waits for every element; one failed element skips the dependant', async () => {
    const good = (await w.run(['run', 'sw', '-q', '--array', '1-3', '--', 'sh', '-c', 'sleep 0.$((4 - {})); echo {}'])).stdout.trim().split('\n');
    const after = await start(w, 'gather', ['true'], ['--after', 'sw']);
    expect((await w.run(['wait', after, '--timeout', '30s'])).exitCode).toBe(0);
    const started = Date.parse(w.record(after).state.startedAt);
    for (const id of good) expect(Date.parse(w.record(id).state.endedAt)).toBeLessThanOrEqual(started);
    await w.run(['run', 'bad', '-q', '--array', '1-3', '--', 'sh', '-c', 'exit $(( {} == 2 ))']);
    const skipped = await start(w, 'gather2', ['true'], ['--after', 'bad']);
    await w.run(['wait', 'bad', '--timeout', '30s']);
    await pollUntil(() => w.record(skipped).state.status === 'skipped', 20_000, 'the dependant to be skipped');
    expect(w.record(skipped).state.reason).toMatch(/bad\.2/);
  });

  it('a failing middle job skips the rest, which never start; --after-any goes on', async () => {
    const ran = path.join(w.home, 'ran.txt');
    const a = await start(w, 'a', ['true']);
    const b = await start(w, 'b', ['sh', '-c', 'sleep 0.2; exit 4'], ['--after', 'a']);
    const c = await start(w, 'c', ['sh', '-c', `echo c >> ${ran}`], ['--after', 'b']);
    const d = await start(w, 'd', ['sh', '-c', `echo d >> ${ran}`], ['--after', 'c']);
    const e = await start(w, 'e', ['sh', '-c', `echo e >> ${ran}`], ['--after-any', 'b']);
    const r = await w.run(['wait', a, b, c, d, e, '--timeout', '30s']);
    expect(r.exitCode).toBe(4);
    expect(state(c)).toMatchObject({ status: 'skipped', reason: `dependency ${b} ended failed` });
    expect(state(d)).toMatchObject({ status: 'skipped', reason: `dependency ${c} ended skipped` });
    expect(w.record(c).job).toBeUndefined();
    expect(state(e).status).toBe('succeeded');
    expect(fs.readFileSync(ran, 'utf8')).toBe('e\n');
  });

  it('works inside a queue too; a REF that matches no job is an error at run, and nothing is written', async () => {
    const a = await start(w, 'qa', ['sleep', '0.3'], ['--queue', 'dq']);
    const b = await start(w, 'qb', ['true'], ['--queue', 'dq', '--after', 'qa']);
    expect((await w.run(['wait', b, '--timeout', '20s'])).exitCode).toBe(0);
    expect(state(a).status).toBe('succeeded');
    const before = w.ids().length;
    const r = await w.run(['run', 'x', '--after', 'nosuchjob', '--', 'true']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/no job named or with id 'nosuchjob'/);
    expect(w.ids().length).toBe(before);
  });
});

describe('job arrays', () => {
  it('--array 1-20%3: never more than 3 at once (from /proc), each element its own value; status, wait, tail and cancel by name', async () => {
    const sample: number[] = [];
    let on = true;
    const tick = () => {
      sample.push(running('0.2'));
      if (on) setTimeout(tick, 50);
    };
    tick();
    const r = await w.run(['run', 'sweep', '--array', '1-20%3', '--', 'sh', '-c', 'echo "seed={} i=$JOBQ_ARRAY_INDEX v=$JOBQ_ARRAY_VALUE"; exec sleep 0.2']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/array sweep: 20 jobs sweep\.1…sweep\.20 \(#1…#20\), at most 3 at once/);
    const mid = JSON.parse((await w.run(['status', 'sweep', '--json'])).stdout);
    expect(mid.jobs).toHaveLength(20);
    expect((await w.run(['wait', 'sweep', '--timeout', '60s'])).exitCode).toBe(0);
    on = false;
    expect(Math.max(...sample)).toBeLessThanOrEqual(3);
    // The /proc samples can miss a 0.2 s job on a loaded machine; the records' start and end times cannot.
    expect(peakRunning(w, w.ids())).toBeLessThanOrEqual(3);
    for (let i = 1; i <= 20; i++) expect((await w.run(['tail', `sweep.${i}`])).stdout).toBe(`seed=${i} i=${i} v=${i}`);
    const done = JSON.parse((await w.run(['status', 'sweep', '--json'])).stdout);
    expect(done.counts).toEqual({ succeeded: 20 });
    expect((await w.run(['status', 'sweep'])).stdout).toMatch(/^array sweep: 20 jobs: 0 queued, 0 running, 0 paused, 20 succeeded/);
  }, 90_000);

  it('--array-file, --array with a step, cancel and wait of an array (first failure wins)', async () => {
    const f = path.join(w.home, 'params.txt');
    fs.writeFileSync(f, 'lr=0.1\n# a comment\nlr=0.01\n\nlr=0.001\n');
    await w.run(['run', 'pf', '--array-file', f, '--', 'sh', '-c', 'echo {}; case {} in lr=0.01) exit 6;; esac']);
    const r = await w.run(['wait', 'pf', '--timeout', '20s']);
    expect(r.exitCode).toBe(6);
    expect((await w.run(['tail', 'pf.3'])).stdout).toBe('lr=0.001');
    await w.run(['run', 'st', '--array', '0-10:5', '--', 'sleep', '30']);
    expect(
      JSON.parse((await w.run(['status', 'st', '--json'])).stdout).jobs.map((j: { admission: { array: { value: string } } }) => j.admission.array.value),
    ).toEqual(['0', '5', '10']);
    const c = await w.run(['cancel', 'st']);
    expect(c.stdout.match(/^cancelled /gm)).toHaveLength(3);
    expect(JSON.parse((await w.run(['status', 'st', '--json'])).stdout).counts).toEqual({ cancelled: 3 });
  });

  it('one run --array 1-200 writes 200 records (the time it takes is a bench figure, not a test)', async () => {
    await w.run(['queue', 'pause', 'm']);
    const r = await w.run(['run', 'many', '--array', '1-200', '--queue', 'm', '--', 'true']);
    expect(r.exitCode).toBe(0);
    expect(w.ids().filter((id) => id.startsWith('many.'))).toHaveLength(200);
    expect(JSON.parse((await w.run(['status', 'many', '--json'])).stdout).counts).toEqual({ queued: 200 });
    await w.run(['cancel', 'many']);
    expect(JSON.parse((await w.run(['status', 'many', '--json'])).stdout).counts).toEqual({ cancelled: 200 });
  });
});

describe('memory-aware admission', () => {
  it('two jobs each needing 60% of MemAvailable: the second waits (memory) while the first runs, though it allocates nothing', async () => {
    const need = `${Math.floor((memAvailable() * 0.6) / 1024 ** 2)}M`;
    const g = gate(w, 'big1');
    const a = await start(w, 'big1', ['sh', '-c', g.hold], ['--mem', need]);
    const b = await start(w, 'big2', ['true'], ['--mem', need]);
    expect(state(a).status).toBe('running');
    expect(state(b).status).toBe('queued');
    const why = JSON.parse((await w.run(['status', b, '--json'])).stdout).waiting.reason;
    expect(why).toMatch(/^memory \(needs \S+, \S+ free for jobs\)$/);
    expect((await w.run(['status'])).stdout).toMatch(/big2\S*\s+\S+\s+queued \(memory\)/);
    g.open();
    expect((await w.run(['wait', b, '--timeout', '30s'])).exitCode).toBe(0);
    expect(Date.parse(w.record(b).state.startedAt)).toBeGreaterThanOrEqual(Date.parse(w.record(a).state.endedAt) - 50);
  });

  it('a need larger than the machine is refused at run in one line; --mem-limit is a cap, not a need to wait for', async () => {
    const r = await w.run(['run', 'huge', '--mem', '100000G', '--', 'true']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const id = await start(w, 'lim', ['true'], ['--mem-limit', '50M']);
    expect(w.record(id).admission?.memBytes).toBeUndefined();
    expect(w.record(id).protection.memLimitBytes).toBe(50 * 1024 ** 2);
  });

  it('memReserve from the config file is kept free: a --mem job waits while it would eat into it, and starts once the reserve allows', async () => {
    const cfg = path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json');
    fs.mkdirSync(path.dirname(cfg), { recursive: true });
    const MiB = 1024 ** 2;
    const total = Number(/^MemTotal:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1]) * 1024;
    // Keep all but 1G of what is free now; ask for what the machine could give a job under that reserve, less 256M.
    const reserve = memAvailable() - 1024 * MiB;
    const need = Math.floor((total - reserve) / MiB) - 256;
    fs.writeFileSync(cfg, JSON.stringify({ memReserve: `${Math.floor(reserve / MiB)}M` }));
    const a = await start(w, 'small', ['true'], ['--mem', `${need}M`]);
    expect(state(a).status).toBe('queued');
    expect(JSON.parse((await w.run(['status', a, '--json'])).stdout).waiting.reason).toMatch(/^memory \(needs \S+, \S+ free for jobs\)$/);
    // A need past what the machine can ever give under the reserve is refused at run, in one line.
    const r = await w.run(['run', 'never', '--mem', `${need + 512}M`, '--', 'true']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toMatch(/^jobq: the job needs \S+ of memory \(--mem\): more than this machine can give a job \(\S+, less memReserve \S+\)$/);
    fs.writeFileSync(cfg, JSON.stringify({ memReserve: 0 }));
    // The next submission carries the new settings to the dispatcher; both then fit.
    const b = await start(w, 'small2', ['true'], ['--mem', '10M']);
    expect((await w.run(['wait', a, b, '--timeout', '30s'])).exitCode).toBe(0);
  });
});

describe('GPU-aware admission', () => {
  /** A fake nvidia-smi on PATH: two GPUs whose memory use the test sets in a file. */
  function fakeGpus(): { env: Record<string, string>; setUsed(mib: [number, number]): void } {
    const dir = path.join(w.home, 'fakebin');
    fs.mkdirSync(dir, { recursive: true });
    const state = path.join(dir, 'gpus.csv');
    const set = (mib: [number, number]) => fs.writeFileSync(state, `0, GPU-aaaa, ${mib[0]}, 16000\n1, GPU-bbbb, ${mib[1]}, 16000\n`);
    set([5, 5]);
    fs.writeFileSync(path.join(dir, 'nvidia-smi'), `#!/bin/sh\ncat ${state}\n`, { mode: 0o755 });
    return { env: { PATH: `${dir}:${process.env.PATH}` }, setUsed: set };
  }

  it('three --gpus 1 jobs on two GPUs: two run with distinct CUDA_VISIBLE_DEVICES, the third starts on the freed one', async () => {
    const gpu = fakeGpus();
    // Each job holds its GPU until the test lets it go (a gate file), so no timing decides what is queued.
    const gate = (n: string) => path.join(w.home, `${n}.go`);
    const run = (n: string) =>
      w.run(['run', n, '-q', '--gpus', '1', '--', 'sh', '-c', `echo "cvd=$CUDA_VISIBLE_DEVICES"; while [ ! -e ${gate(n)} ]; do sleep 0.05; done`], {
        env: gpu.env,
      });
    fs.writeFileSync(gate('g3'), '');
    const a = (await run('g1')).stdout.trim();
    const b = (await run('g2')).stdout.trim();
    const c = (await run('g3')).stdout.trim();
    expect([state(a).status, state(b).status, state(c).status]).toEqual(['running', 'running', 'queued']);
    expect(JSON.parse((await w.run(['status', c, '--json'], { env: gpu.env })).stdout).waiting.reason).toBe('gpus (needs 1, 0 of 2 free)');
    fs.writeFileSync(gate('g1'), '');
    expect((await w.run(['wait', a, c, '--timeout', '30s'], { env: gpu.env })).exitCode).toBe(0);
    const cvd = (id: string) => fs.readFileSync(w.record(id).log, 'utf8').trim();
    expect(new Set([cvd(a), cvd(b)])).toEqual(new Set(['cvd=0', 'cvd=1']));
    expect(cvd(c)).toBe(cvd(a));
    expect(w.record(c).gpus).toEqual(w.record(a).gpus);
    await w.run(['cancel', b]);
  });

  it('VRAM per job: the GPU memory of the job’s own processes, live in status, --json and the timeline, its peak kept at the end', async () => {
    // A fake nvidia-smi that also answers --query-compute-apps with the per-process use the test writes (CI has no GPU).
    const dir = path.join(w.home, 'fakebin');
    fs.mkdirSync(dir, { recursive: true });
    const apps = path.join(dir, 'apps.csv');
    fs.writeFileSync(apps, '');
    fs.writeFileSync(path.join(dir, 'gpus.csv'), '0, GPU-aaaa, 5, 81920\n');
    fs.writeFileSync(path.join(dir, 'nvidia-smi'), `#!/bin/sh\ncase "$*" in *compute-apps*) cat ${apps};; *) cat ${dir}/gpus.csv;; esac\n`, { mode: 0o755 });
    const env = { PATH: `${dir}:${process.env.PATH}` };
    fs.mkdirSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq'), { recursive: true });
    fs.writeFileSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json'), JSON.stringify({ sampleInterval: '200ms' }));
    const id = (await w.run(['run', 'train', '-q', '--gpus', '1', '--', 'sh', '-c', 'sleep 60 & wait'], { env })).stdout.trim();
    await pollUntil(() => w.record(id).state.status === 'running', 15_000, 'running');
    // The job's main process holds 30 GiB, its child 2 GiB; another program's 9 GiB is not the job's.
    const child = await pollUntil(
      () => Number(fs.readFileSync(`/proc/${w.record(id).job.pid}/task/${w.record(id).job.pid}/children`, 'utf8').trim()) || undefined,
      10_000,
      'the child',
    );
    fs.writeFileSync(apps, `${w.record(id).job.pid}, 30720\n${child}, 2048\n1, 9216\n`);
    const json = async () => JSON.parse((await w.run(['status', id, '--json'], { env })).stdout);
    await pollUntil(async () => (await json()).vramBytes === 32768 * 2 ** 20, 15_000, 'the VRAM of the job');
    const detail = (await w.run(['status', id], { env })).stdout;
    expect(detail).toMatch(/needs gpus\s+1 \(holds GPU 0\)/);
    expect(detail).toMatch(/gpu memory\s+32G now on GPU 0/);
    expect((await w.run(['status'], { env })).stdout).toMatch(/VRAM[\s\S]*train.*32G/);
    const samples = fs
      .readFileSync(path.join(w.home, 'jobs', id, 'samples'), 'utf8')
      .trim()
      .split('\n');
    expect(samples.at(-1)!.split(' ')).toHaveLength(5);
    expect(Number(samples.at(-1)!.split(' ')[4])).toBe(32768 * 2 ** 20);
    await w.run(['cancel', id]);
    expect(w.record(id).state.peakVramBytes).toBe(32768 * 2 ** 20);
    expect((await w.run(['status', id], { env })).stdout).toMatch(/gpu memory\s+peak 32G on GPU 0/);
  });

  it('nvidia-smi hangs: a --gpus job is not refused and waits saying why, within seconds; GPUs back, it starts', async () => {
    const dir = path.join(w.home, 'hungbin');
    fs.mkdirSync(dir, { recursive: true });
    const hang = path.join(dir, 'hang');
    fs.writeFileSync(hang, '');
    // Hangs while the file exists (a wedged driver), else lists one GPU; each call is counted.
    const calls = path.join(dir, 'calls');
    fs.writeFileSync(path.join(dir, 'nvidia-smi'), `#!/bin/sh\necho x >> ${calls}\nwhile [ -e ${hang} ]; do sleep 0.1; done\necho "0, GPU-aaaa, 5, 16000"\n`, {
      mode: 0o755,
    });
    const count = () => fs.readFileSync(calls, 'utf8').length / 2;
    const env = { PATH: `${dir}:${process.env.PATH}` };
    const t0 = Date.now();
    const r = await w.run(['run', 'wedged', '-q', '--gpus', '1', '--', 'true'], { env });
    expect(r.exitCode, r.stderr).toBe(0);
    const id = r.stdout.trim();
    expect(Date.now() - t0).toBeLessThan(20_000);
    await pollUntil(
      async () => /nvidia-smi did not answer in 5s/.test(JSON.parse((await w.run(['status', id, '--json'], { env })).stdout).waiting?.reason ?? ''),
      30_000,
      'the reason',
    );
    // The hang is remembered in the state dir: the readers that follow say it without waiting it out again.
    const before = count();
    const st = await w.run(['status'], { env });
    expect(st.stdout).toMatch(/wedged .*queued \(gpus\)/);
    expect((await w.run(['queue'], { env })).stdout).toMatch(/nvidia-smi did not answer in 5s/);
    expect(count()).toBe(before);
    fs.rmSync(hang);
    await pollUntil(() => w.record(id).state.status === 'succeeded', 60_000, 'the job, once nvidia-smi answers');
  }, 90_000);

  it('a GPU busy with something else (memory used past the threshold) is not handed out', async () => {
    const gpu = fakeGpus();
    gpu.setUsed([9000, 5]);
    const a = (await w.run(['run', 'busy', '-q', '--gpus', '1', '--', 'sh', '-c', 'echo $CUDA_VISIBLE_DEVICES'], { env: gpu.env })).stdout.trim();
    await w.run(['wait', a]);
    expect(fs.readFileSync(w.record(a).log, 'utf8').trim()).toBe('1');
  });

  it('without nvidia-smi, the GPUs named in config (or JOBQ_GPUS, which wins) are handed out, each to one job', async () => {
    const cfg = path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json');
    fs.mkdirSync(path.dirname(cfg), { recursive: true });
    fs.writeFileSync(cfg, JSON.stringify({ gpus: '2,5' }));
    // No nvidia-smi anywhere on this PATH: only the listed indices exist.
    const env = { PATH: '/usr/bin:/bin' };
    const go = path.join(w.home, 'go');
    const hold = `echo $CUDA_VISIBLE_DEVICES; while [ ! -e ${go} ]; do sleep 0.05; done`;
    const run = (n: string, extra: Record<string, string> = {}) =>
      w.run(['run', n, '-q', '--gpus', '1', '--', 'sh', '-c', hold], { env: { ...env, ...extra } });
    const a = (await run('c1')).stdout.trim();
    const b = (await run('c2')).stdout.trim();
    const c = (await run('c3')).stdout.trim();
    expect([state(a).status, state(b).status, state(c).status]).toEqual(['running', 'running', 'queued']);
    expect(JSON.parse((await w.run(['status', c, '--json'], { env })).stdout).waiting.reason).toBe('gpus (needs 1, 0 of 2 free)');
    fs.writeFileSync(go, '');
    expect((await w.run(['wait', a, b, c, '--timeout', '30s'], { env })).exitCode).toBe(0);
    const cvd = (id: string) => fs.readFileSync(w.record(id).log, 'utf8').trim();
    expect(new Set([cvd(a), cvd(b)])).toEqual(new Set(['2', '5']));
    expect(['2', '5']).toContain(cvd(c));
    // JOBQ_GPUS names the machine's GPUs over the config file.
    const d = (await run('c4', { JOBQ_GPUS: '7' })).stdout.trim();
    expect((await w.run(['wait', d, '--timeout', '30s'], { env })).exitCode).toBe(0);
    expect(cvd(d)).toBe('7');
    // More GPUs than the machine has: refused at run, not queued for ever.
    const r = await w.run(['run', 'c5', '--gpus', '3', '--', 'true'], { env });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toBe('jobq: the job needs 3 GPUs (--gpus): this machine has 2');
    // A GPU named twice is one GPU: never handed out twice, never CUDA_VISIBLE_DEVICES=0,0.
    const twice = await w.run(['run', 'c7', '--gpus', '2', '--', 'true'], { env: { ...env, JOBQ_GPUS: '0,0' } });
    expect(twice.stderr.trim()).toBe('jobq: the job needs 2 GPUs (--gpus): this machine has 1');
    const once = (await run('c8', { JOBQ_GPUS: '0, 0' })).stdout.trim();
    expect((await w.run(['wait', once, '--timeout', '30s'], { env })).exitCode).toBe(0);
    expect(cvd(once)).toBe('0');
    const none = await w.run(['run', 'c6', '--gpus', '1', '--', 'true'], { env: { ...env, JOBQ_GPUS: '' } });
    expect(none.stderr.trim()).toBe('jobq: the job needs 1 GPU (--gpus): this machine has 0 (no nvidia-smi; name them with the config key gpus or JOBQ_GPUS)');
  });

  it('the GPUs one run was told of (JOBQ_GPUS) are its pool when a dispatcher started without them starts it later', async () => {
    const env = { PATH: '/usr/bin:/bin' };
    await w.run(['queue', 'set', 'gq', '--slots', '1'], { env });
    const go = path.join(w.home, 'go');
    const a = (await w.run(['run', 'gh', '-q', '--queue', 'gq', '--', 'sh', '-c', `while [ ! -e ${go} ]; do sleep 0.05; done`], { env })).stdout.trim();
    const b = (
      await w.run(['run', 'gg', '-q', '--queue', 'gq', '--gpus', '2', '--', 'sh', '-c', 'echo $CUDA_VISIBLE_DEVICES'], { env: { ...env, JOBQ_GPUS: '0,1' } })
    ).stdout.trim();
    expect(state(b).status).toBe('queued');
    expect(w.record(b).admission.gpuList).toEqual([0, 1]);
    // Every command from here on (and the dispatcher) runs without JOBQ_GPUS.
    fs.writeFileSync(go, '');
    expect((await w.run(['wait', a, b, '--timeout', '30s'], { env })).exitCode).toBe(0);
    expect(fs.readFileSync(w.record(b).log, 'utf8').trim()).toBe('0,1');
  });

  it.skipIf(spawnSync('sh', ['-c', 'command -v nvidia-smi']).status !== 0)('with a real nvidia-smi: a --gpus 1 job sees exactly one GPU', async () => {
    const id = await start(w, 'real', ['sh', '-c', 'echo $CUDA_VISIBLE_DEVICES'], ['--gpus', '1']);
    await w.run(['wait', id, '--timeout', '60s']);
    expect(fs.readFileSync(w.record(id).log, 'utf8').trim()).toMatch(/^\d+$/);
    expect(execFileSync('nvidia-smi', ['-L']).toString()).toContain('GPU');
  });
});

describe('packing by VRAM (--gpu-mem)', () => {
  const MiB = 1024 ** 2;
  /** A fake nvidia-smi with one 80 GB GPU: per-process use (pid -> MiB) the test sets, memory.used their sum, as the driver reports it. */
  function fake80(): { env: Record<string, string>; set(apps: Array<[number, number]>): void } {
    const dir = path.join(w.home, 'fake80');
    fs.mkdirSync(dir, { recursive: true });
    const set = (apps: Array<[number, number]>) => {
      fs.writeFileSync(path.join(dir, 'apps.csv'), apps.map(([pid, mib]) => `${pid}, GPU-aaaa, ${mib}\n`).join(''));
      fs.writeFileSync(path.join(dir, 'gpus.csv'), `0, GPU-aaaa, ${apps.reduce((n, [, m]) => n + m, 0)}, 81920\n`);
    };
    set([]);
    fs.writeFileSync(path.join(dir, 'nvidia-smi'), `#!/bin/sh\ncase "$*" in *compute-apps*) cat ${dir}/apps.csv;; *) cat ${dir}/gpus.csv;; esac\n`, {
      mode: 0o755,
    });
    fs.mkdirSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq'), { recursive: true });
    fs.writeFileSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json'), JSON.stringify({ sampleInterval: '200ms' }));
    return { env: { PATH: `${dir}:${process.env.PATH}` }, set };
  }
  const reason = async (id: string, env: Record<string, string>) => JSON.parse((await w.run(['status', id, '--json'], { env })).stdout).waiting?.reason;

  it('--gpus 2 --gpu-mem 40G is judged per GPU, in status JOB as in the check; no answer from nvidia-smi shows no VRAM "now"', async () => {
    const dir = path.join(w.home, 'fake2');
    fs.mkdirSync(dir, { recursive: true });
    const apps = path.join(dir, 'apps.csv');
    fs.writeFileSync(apps, '');
    fs.writeFileSync(path.join(dir, 'gpus.csv'), '0, GPU-aaaa, 5, 81920\n1, GPU-bbbb, 5, 81920\n');
    const fail = path.join(dir, 'fail');
    fs.writeFileSync(
      path.join(dir, 'nvidia-smi'),
      `#!/bin/sh\ncase "$*" in *compute-apps*) [ -e ${fail} ] && exit 9; cat ${apps};; *) cat ${dir}/gpus.csv;; esac\n`,
      { mode: 0o755 },
    );
    fs.mkdirSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq'), { recursive: true });
    fs.writeFileSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json'), JSON.stringify({ sampleInterval: '200ms' }));
    const env = { PATH: `${dir}:${process.env.PATH}` };
    const id = (await w.run(['run', 'two', '-q', '--gpus', '2', '--gpu-mem', '40G', '--', 'sleep', '60'], { env })).stdout.trim();
    const pid = w.record(id).job.pid;
    // 30G on each of its GPUs: 60G in all, under 40G on each.
    fs.writeFileSync(apps, `${pid}, GPU-aaaa, 30720\n${pid}, GPU-bbbb, 30720\n`);
    const detail = async () => (await w.run(['status', id], { env })).stdout;
    await pollUntil(async () => /gpu memory\s+60G now on GPU 0, 1 of 40G reserved on each/.test(await detail()), 15_000, 'the per-GPU line');
    expect(w.record(id).protection.warnings).toEqual([]);
    // 50G on one of them: past, as the supervisor judged it.
    fs.writeFileSync(apps, `${pid}, GPU-aaaa, 51200\n${pid}, GPU-bbbb, 1024\n`);
    await pollUntil(async () => /gpu memory\s+51G now on GPU 0, 1, past its 40G reserved on one/.test(await detail()), 15_000, 'past on one GPU');
    // nvidia-smi stops answering: no figure is shown as now.
    fs.writeFileSync(fail, '');
    await pollUntil(async () => JSON.parse((await w.run(['status', id, '--json'], { env })).stdout).vramBytes === undefined, 15_000, 'no VRAM now');
    await w.run(['cancel', id]);
    expect(w.record(id).state.peakVramBytes).toBe(61440 * 2 ** 20);
  });

  it('three 30G jobs on an 80G GPU: two share it, the third waits saying why and starts when one ends; past its reservation is warned', async () => {
    const gpu = fake80();
    const go = (n: string) => path.join(w.home, `${n}.go`);
    const run = (n: string) =>
      w.run(
        [
          'run',
          n,
          '-q',
          '--gpu-mem',
          '30G',
          '--',
          'sh',
          '-c',
          `echo "cvd=$CUDA_VISIBLE_DEVICES mem=$JOBQ_GPU_MEM"; while [ ! -e ${go(n)} ]; do sleep 0.05; done`,
        ],
        {
          env: gpu.env,
        },
      );
    const [a, b, c] = [(await run('p1')).stdout.trim(), (await run('p2')).stdout.trim(), (await run('p3')).stdout.trim()];
    expect([state(a).status, state(b).status, state(c).status]).toEqual(['running', 'running', 'queued']);
    expect(await reason(c, gpu.env)).toBe('gpu memory (needs 30G on one GPU; best has 20G unreserved)');
    expect((await w.run(['status'], { env: gpu.env })).stdout).toMatch(/p3 .*queued \(gpu\)/);
    const detail = (await w.run(['status', a], { env: gpu.env })).stdout;
    expect(detail).toMatch(/needs gpus\s+1, 30G reserved on it \(shares GPU 0\)/);
    expect(detail).toMatch(/gpu uuids\s+GPU-aaaa/);
    expect(w.record(a).gpuUuids).toEqual(['GPU-aaaa']);
    // The two that share GPU 0 allocate; b grows past its reservation: a warning in its record and the event log, not an end.
    gpu.set([
      [w.record(a).job.pid, 28 * 1024],
      [w.record(b).job.pid, 34 * 1024],
    ]);
    await pollUntil(() => w.record(b).protection.warnings.some((x: string) => x.includes('past --gpu-mem (34G > 30G reserved)')), 15_000, 'the warning');
    expect(state(b).status).toBe('running');
    // a reserves 30G (it uses 28G), b takes the 34G it uses: 16G left, and the third still waits.
    expect(await reason(c, gpu.env)).toBe('gpu memory (needs 30G on one GPU; best has 16G unreserved)');
    expect(fs.readFileSync(path.join(w.home, 'events.log'), 'utf8')).toContain('gpu memory past its reservation');
    await pollUntil(
      async () => /gpu memory\s+34G now on GPU 0, past its 30G reserved/.test((await w.run(['status', b], { env: gpu.env })).stdout),
      10_000,
      'status',
    );
    // b's use past its reservation counts: with a gone, 80 - 34 = 46G is left for c.
    fs.writeFileSync(go('p1'), '');
    gpu.set([[w.record(b).job.pid, 34 * 1024]]);
    await pollUntil(() => state(c).status === 'running', 20_000, 'the third, once the first ended');
    const line = (id: string) => fs.readFileSync(w.record(id).log, 'utf8').trim();
    // Running comes before the job's first line reaches its log.
    await pollUntil(() => line(c) !== '', 10_000, "the third's first line");
    expect([line(a), line(c)]).toEqual([`cvd=0 mem=${30 * 1024 * MiB}`, `cvd=0 mem=${30 * 1024 * MiB}`]);
    for (const n of ['p2', 'p3']) fs.writeFileSync(go(n), '');
    expect((await w.run(['wait', a, b, c, '--timeout', '30s'], { env: gpu.env })).exitCode).toBe(0);
  }, 60_000);

  it('another program holding 60G blocks a 30G reservation until it lets go; a plain --gpus job waits while the GPU is shared', async () => {
    const gpu = fake80();
    gpu.set([[1, 60 * 1024]]);
    const d = (await w.run(['run', 'd', '-q', '--gpu-mem', '30G', '--', 'sleep', '30'], { env: gpu.env })).stdout.trim();
    expect(state(d).status).toBe('queued');
    expect(await reason(d, gpu.env)).toBe('gpu memory (needs 30G on one GPU; best has 20G unreserved)');
    // The same with the GPU named in JOBQ_GPUS (with its size): nvidia-smi still says who else uses it.
    const listed = (await w.run(['run', 'dl', '-q', '--gpu-mem', '30G', '--', 'true'], { env: { ...gpu.env, JOBQ_GPUS: '0:80G' } })).stdout.trim();
    expect(await reason(listed, gpu.env)).toBe('gpu memory (needs 30G on one GPU; best has 20G unreserved)');
    await w.run(['cancel', listed], { env: gpu.env });
    gpu.set([]);
    await pollUntil(() => state(d).status === 'running', 20_000, 'the job, once the other program let go');
    const whole = (await w.run(['run', 'whole', '-q', '--gpus', '1', '--', 'true'], { env: gpu.env })).stdout.trim();
    expect(await reason(whole, gpu.env)).toBe('gpus (needs 1, 0 of 1 free, 1 shared by --gpu-mem jobs)');
    await w.run(['cancel', d], { env: gpu.env });
    expect((await w.run(['wait', whole, '--timeout', '30s'], { env: gpu.env })).exitCode).toBe(0);
  }, 60_000);

  it('--gpu-mem-enforce ends a job past its reservation as oom (gpu-mem), though it traps TERM and exits 0; refusals in one line', async () => {
    const gpu = fake80();
    // Planted: a cache answer that is not one (dated ahead, entries not [pid, uuid, bytes]) and a stale turn that is a directory.
    fs.writeFileSync(path.join(w.home, 'gpu-apps.json'), JSON.stringify({ at: Date.now() + 3_600_000, boot: 'x', apps: [5] }));
    fs.mkdirSync(path.join(w.home, 'gpu-apps.json.asking'));
    fs.utimesSync(path.join(w.home, 'gpu-apps.json.asking'), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    const id = (
      await w.run(['run', 'greedy', '-q', '--gpu-mem', '20G', '--gpu-mem-enforce', '--', 'sh', '-c', "trap 'exit 0' TERM; sleep 60 & wait"], { env: gpu.env })
    ).stdout.trim();
    await pollUntil(() => state(id).status === 'running', 15_000, 'running');
    gpu.set([[w.record(id).job.pid, 21 * 1024]]);
    expect((await w.run(['wait', id, '--timeout', '30s'], { env: gpu.env })).exitCode).toBe(137);
    expect(state(id)).toMatchObject({ status: 'oom', by: 'gpu-mem', reason: 'gpu-mem: 21G > 20G reserved' });
    expect((await w.run(['status'], { env: gpu.env })).stdout).toContain('oom (gpu-mem)');
    const big = await w.run(['run', 'big', '--gpu-mem', '100G', '--', 'true'], { env: gpu.env });
    expect([big.exitCode, big.stderr.trim()]).toEqual([2, 'jobq: the job needs 100G of GPU memory (--gpu-mem) on one GPU: the largest GPU here has 80G']);
    const junk = await w.run(['run', 'j', '--gpu-mem', '1G', '--', 'true'], { env: { ...gpu.env, JOBQ_GPUS: '0:80' } });
    expect([junk.exitCode, junk.stderr.trim()]).toEqual([
      2,
      'jobq: bad JOBQ_GPUS \'0:80\': expected GPU indices, e.g. "0,1", [0, 1] or, with their memory for --gpu-mem, "0:80G,1:80G"',
    ]);
    const alone = await w.run(['run', 'x', '--gpu-mem-enforce', '--', 'true'], { env: gpu.env });
    expect([alone.exitCode, alone.stderr.trim()]).toEqual([2, 'jobq: --gpu-mem-enforce goes with --gpu-mem SIZE (the reservation it enforces)']);
  }, 60_000);
});

describe('why it waits', () => {
  it('every waiting job says why in status, queue and --json', async () => {
    await w.run(['queue', 'set', 'why', '--slots', '1']);
    const g = gate(w, 'wa');
    const a = await start(w, 'wa', ['sh', '-c', g.hold], ['--queue', 'why']);
    const b = await start(w, 'wb', ['true'], ['--queue', 'why']);
    const c = await start(w, 'wc', ['true'], ['--after', 'wa']);
    const j = JSON.parse((await w.run(['status', '--json'])).stdout);
    const by = (id: string) => j.jobs.find((x: { id: string }) => x.id === id);
    expect(by(b).waiting.reason).toBe('queue why: 1 of 1 slot busy');
    expect(by(c).waiting.reason).toMatch(/^after wa_\S+ \(running\)$/);
    expect([by(b).waiting.waitingFor, by(c).waiting.waitingFor]).toEqual(['slot', 'after']);
    const q = JSON.parse((await w.run(['queue', 'why', '--json'])).stdout).queues[0];
    expect(q.waiting.map((x: { id: string; waitingFor: string }) => [x.id, x.waitingFor])).toEqual([[b, 'slot']]);
    expect((await w.run(['status', c])).stdout).toMatch(/waiting\s+after wa_/);
    g.open();
    await pollUntil(async () => (await w.run(['wait', a, b, c, '--timeout', '1s'])).exitCode === 0, 30_000, 'all three');
  });
});
