// Config on real files: precedence, provenance, one-line errors.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-unit-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('config', () => {
  it('merges built-in < user < project < env, with provenance', () => {
    const xdg = path.join(dir, 'xdg');
    fs.mkdirSync(path.join(xdg, 'jobq'), { recursive: true });
    fs.writeFileSync(
      path.join(xdg, 'jobq', 'config.json'),
      JSON.stringify({ grace: '30s', signal: 'INT', presets: { gpu: { CUDA_VISIBLE_DEVICES: '0' }, memsafe: { OMP_NUM_THREADS: '2' } } }),
    );
    const proj = path.join(dir, 'proj', 'sub');
    fs.mkdirSync(proj, { recursive: true });
    fs.writeFileSync(path.join(dir, 'proj', '.jobq.json'), JSON.stringify({ grace: '5s', stateDir: './state' }));
    const { config, sources } = loadConfig(proj, { XDG_CONFIG_HOME: xdg });
    expect(config.graceMs).toBe(5000);
    expect(sources.graceMs).toBe(path.join(dir, 'proj', '.jobq.json'));
    expect(config.signal).toBe('SIGINT');
    expect(sources.signal).toBe(path.join(xdg, 'jobq', 'config.json'));
    expect(config.stateDir).toBe(path.join(dir, 'proj', 'state'));
    // A preset adds to the built-in one of its name unless it says "replace": true.
    expect(config.presets.memsafe).toMatchObject({ OMP_NUM_THREADS: '2', MKL_NUM_THREADS: '1', MALLOC_ARENA_MAX: '2' });
    expect(config.presets.gpu).toEqual({ CUDA_VISIBLE_DEVICES: '0' });
    expect(sources.isolation).toBe('default');
    const withEnv = loadConfig(proj, { XDG_CONFIG_HOME: xdg, JOBQ_HOME: '/tmp/elsewhere' });
    expect(withEnv.config.stateDir).toBe('/tmp/elsewhere');
    expect(withEnv.sources.stateDir).toBe('env JOBQ_HOME');
  });

  it('a preset with "replace": true replaces the built-in one', () => {
    const xdg = path.join(dir, 'xdg');
    fs.mkdirSync(path.join(xdg, 'jobq'), { recursive: true });
    fs.writeFileSync(path.join(xdg, 'jobq', 'config.json'), JSON.stringify({ presets: { memsafe: { replace: true, OMP_NUM_THREADS: '4' } } }));
    expect(loadConfig(dir, { XDG_CONFIG_HOME: xdg }).config.presets.memsafe).toEqual({ OMP_NUM_THREADS: '4' });
  });

  it('a bad config file gives one line naming the file and the key', () => {
    const f = path.join(dir, '.jobq.json');
    for (const [body, key] of [
      ['{"grace": "forever"}', "key 'grace'"],
      ['{"colour": true}', "key 'colour': unknown key"],
      ['{"presets": {"x": {"A": 1}}}', "key 'presets.x.A'"],
      ['{"oomScoreAdj": 5000}', "key 'oomScoreAdj'"],
      ['{not json', 'bad config'],
      ['{"memReserve": true}', "key 'memReserve': expected a string"],
      ['{"memReserve": -1}', "key 'memReserve'"],
      ['{"grace": 5}', "key 'grace': expected a string"],
    ] as const) {
      fs.writeFileSync(f, body);
      let msg = '';
      try {
        loadConfig(dir, { XDG_CONFIG_HOME: path.join(dir, 'none') });
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg).toContain(f);
      expect(msg).toContain(key);
      expect(msg.split('\n')).toHaveLength(1);
      // Said once: the file and key are not repeated inside the reason.
      expect(msg.split('bad config')).toHaveLength(2);
    }
  });

  it('a size may be a JSON number of bytes; memReserve and gpuBusyMemory may be 0', () => {
    fs.writeFileSync(path.join(dir, '.jobq.json'), JSON.stringify({ memReserve: 0, gpuBusyMemory: '0', maxLogSize: 1048576 }));
    const { config } = loadConfig(dir, { XDG_CONFIG_HOME: path.join(dir, 'none') });
    expect([config.memReserveBytes, config.gpuBusyMiB, config.maxLogBytes]).toEqual([0, 0, 1048576]);
  });
});
