// Config files and presets: project over user over defaults, where each value came from, bad files, files read.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { start, useWorld } from '../helpers/jobq.js';

const w = useWorld();

describe('config and presets', () => {
  it('project config beats user config; flags beat both; jobq config shows where each value came from', async () => {
    const xdg = w.env.XDG_CONFIG_HOME!;
    fs.mkdirSync(path.join(xdg, 'jobq'), { recursive: true });
    fs.writeFileSync(path.join(xdg, 'jobq', 'config.json'), JSON.stringify({ grace: '20s', presets: { gpu: { CUDA_VISIBLE_DEVICES: '3' } } }));
    const proj = path.join(w.home, 'proj');
    fs.mkdirSync(proj);
    fs.writeFileSync(path.join(proj, '.jobq.json'), JSON.stringify({ grace: '2s', presets: { memsafe: { OMP_NUM_THREADS: '2' } } }));
    const cfg = JSON.parse((await w.run(['config', '--json'], { cwd: proj })).stdout);
    expect(cfg.config.graceMs).toBe(2000);
    expect(cfg.sources.graceMs).toBe(path.join(proj, '.jobq.json'));
    expect(cfg.sources['presets.gpu']).toBe(path.join(xdg, 'jobq', 'config.json'));
    const text = (await w.run(['config'], { cwd: proj })).stdout;
    expect(text).toMatch(/grace\s+2s\s+.*\.jobq\.json/);
    // The project config is found from where jobq is invoked.
    const r = await w.run(
      ['run', 'presets', '-q', '--memsafe', '--preset', 'gpu', '--', 'sh', '-c', 'echo "$OMP_NUM_THREADS $CUDA_VISIBLE_DEVICES $MALLOC_ARENA_MAX"'],
      { cwd: proj },
    );
    const id = r.stdout.trim();
    await w.run(['wait', id]);
    // The project's memsafe adds to the built-in one: its OMP value, the built-in MALLOC_ARENA_MAX.
    expect(fs.readFileSync(w.record(id).log, 'utf8').trim()).toBe('2 3 2');
    const id2 = await start(w, 'presets2', ['sh', '-c', 'echo "$OMP_NUM_THREADS"'], ['--memsafe', '--env', 'OMP_NUM_THREADS=8']);
    await w.run(['wait', id2]);
    expect(fs.readFileSync(w.record(id2).log, 'utf8').trim()).toBe('8');
  });

  it('a bad config file: one line naming file and key, exit 2, nothing started', async () => {
    fs.writeFileSync(path.join(w.home, '.jobq.json'), '{"grace": "forever"}');
    const r = await w.run(['run', 'x', '--', 'true'], { cwd: w.home });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`${w.home}/.jobq.json: key 'grace'`);
    expect(w.ids()).toEqual([]);
  });

  it('a backend no place answers to: run refuses it in one line naming the key (exit 2); other commands go on', async () => {
    for (const [cfg, key] of [
      [{ backend: 'slurmm' }, "key 'backend': 'slurmm' is not a backend (local or slurm)"],
      [{ queues: { gpu: { slots: 1, backend: 'k8s' } }, defaultQueue: 'gpu' }, "key 'queues.gpu.backend': 'k8s' is not a backend (local or slurm)"],
      [{ backend: 3 }, `${w.home}/.jobq.json: key 'backend'`],
    ] as const) {
      fs.writeFileSync(path.join(w.home, '.jobq.json'), JSON.stringify(cfg));
      const r = await w.run(['run', 'x', '--', 'true'], { cwd: w.home });
      expect([r.exitCode, r.stderr.trim().split('\n').length], JSON.stringify(cfg)).toEqual([2, 1]);
      expect(r.stderr).toContain(key);
      if (typeof cfg.backend !== 'number') expect((await w.run(['status'], { cwd: w.home })).exitCode).toBe(0);
    }
    expect(w.ids()).toEqual([]);
  });
});

describe('hints where people trip', () => {
  it('jobq config lists only the files it read', async () => {
    const r = await w.run(['config']);
    expect(r.stdout).toMatch(/files read: none/);
    fs.mkdirSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq'), { recursive: true });
    fs.writeFileSync(path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json'), '{"grace":"3s"}');
    expect((await w.run(['config'])).stdout).toContain(`files read: ${path.join(w.env.XDG_CONFIG_HOME!, 'jobq', 'config.json')}`);
  });
});
