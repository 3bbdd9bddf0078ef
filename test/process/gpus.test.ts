// nvidia-smi as jobq reads it, through a fake on PATH: what it prints is data (a broken driver prints anything).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

let dir: string;
let env: NodeJS.ProcessEnv;
const calls = () => (fs.existsSync(path.join(dir, 'calls')) ? fs.readFileSync(path.join(dir, 'calls'), 'utf8').split('\n').filter(Boolean) : []);

/** A fake nvidia-smi: `gpus` answers --query-gpu, `apps` --query-compute-apps (a shell body each); every call is counted. */
function fake(gpus: string, apps: string): void {
  fs.writeFileSync(path.join(dir, 'gq'), `#!/bin/sh\n${gpus}\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'aq'), `#!/bin/sh\n${apps}\n`, { mode: 0o755 });
  fs.writeFileSync(
    path.join(dir, 'nvidia-smi'),
    `#!/bin/sh\necho "$1" >> ${dir}/calls\ncase "$*" in *compute-apps*) exec ${dir}/aq;; *) exec ${dir}/gq;; esac\n`,
    { mode: 0o755 },
  );
}

/** resources.ts afresh: its failure memory is per process, and each test is a new process to it. */
const resources = async () => {
  vi.resetModules();
  return import('../../src/process/resources.js');
};

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-smi-'));
  env = { ...process.env, PATH: `${dir}:${process.env.PATH}` };
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('nvidia-smi read as data', () => {
  it('a GPU printed twice is one GPU; an escape-laden UUID and figures past any GPU are not taken', async () => {
    fake(
      [
        'echo "0, GPU-aaaa, 5, 81920"',
        'echo "0, GPU-aaaa, 5, 81920"',
        `printf '1, GPU-\\033[31mRED\\033]0;pwned\\a, 5, 81920\\n'`,
        `echo "2, GPU-cccc, ${'9'.repeat(400)}, 81920"`,
      ].join('\n'),
      `echo "4242, GPU-aaaa, ${'9'.repeat(400)}"; echo "4243, GPU-aaaa, 2048"; printf '4244, GPU-\\033[2J, 10\\n'`,
    );
    const { listGpus, gpuAppsNow } = await resources();
    const gpus = listGpus(undefined, env);
    expect(gpus.map((g) => g.index)).toEqual([0, 1, 2]);
    expect(gpus[1]!.uuid).toBeUndefined();
    expect(gpus[2]!.memUsedMiB).toBeUndefined();
    expect(gpuAppsNow(env)).toEqual([
      { pid: 4243, uuid: 'GPU-aaaa', bytes: 2048 * 1024 ** 2 },
      { pid: 4244, bytes: 10 * 1024 ** 2 },
    ]);
  });

  it('a failing per-process list is remembered on its own: the GPU list is still asked', async () => {
    fake('echo "0, GPU-aaaa, 5, 81920"', 'exit 9');
    const { listGpus, gpuAppsNow } = await resources();
    expect(gpuAppsNow(env)).toBeUndefined();
    const gpus = listGpus(undefined, env);
    expect(gpus.error).toBeUndefined();
    expect(gpus.map((g) => g.uuid)).toEqual(['GPU-aaaa']);
    // The failure itself is remembered: not asked again at once.
    expect(gpuAppsNow(env)).toBeUndefined();
    expect(calls().filter((c) => c.includes('compute-apps'))).toHaveLength(1);
  });

  it('output past its bound is said as such, not as a hang', async () => {
    fake(`head -c 17000000 /dev/zero | tr '\\0' 'x'`, 'true');
    const { listGpus } = await resources();
    expect(listGpus(undefined, env).error).toBe('nvidia-smi printed more than 16 MiB');
  });

  it('a failure shared through the state dir spares the next process the wait; the file is data', async () => {
    fake('echo "0, GPU-aaaa, 5, 81920"', 'true');
    const { bootId } = await import('../../src/process/proc.js');
    const file = path.join(dir, 'nvidia-smi.json');
    const key = '--query-gpu=index,uuid,memory.used,memory.total --format=csv,noheader,nounits';
    const plant = (f: object) => fs.writeFileSync(file, JSON.stringify({ boot: bootId(), failed: { [key]: f } }));
    const ask = async () => {
      const r = await resources();
      r.shareSmiFailuresIn(file);
      return r.listGpus(undefined, env);
    };
    // Not used: an odd reason (it would reach a terminal), a date ahead of the clock, another boot's.
    for (const bad of [
      { at: Date.now(), why: 'nvidia-smi \u001b]0;pwned\u0007' },
      { at: Date.now() + 60_000, why: 'nvidia-smi failed (exit 9)' },
    ]) {
      plant(bad);
      expect((await ask()).error).toBeUndefined();
    }
    fs.writeFileSync(file, JSON.stringify({ boot: 'another', failed: { [key]: { at: Date.now(), why: 'nvidia-smi failed (exit 9)' } } }));
    expect((await ask()).error).toBeUndefined();
    expect(calls()).toHaveLength(3);
    // Another process's fresh failure: said without asking; once it is 30 s old, asked again (and cleared on success).
    plant({ at: Date.now() - 1000, why: 'nvidia-smi did not answer in 5s' });
    expect((await ask()).error).toBe('nvidia-smi did not answer in 5s');
    expect(calls()).toHaveLength(3);
    plant({ at: Date.now() - 31_000, why: 'nvidia-smi did not answer in 5s' });
    expect((await ask()).error).toBeUndefined();
    expect(calls()).toHaveLength(4);
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).failed).toEqual({});
  });

  it('the supervisors of a state dir share a failure as they share an answer: one call per interval', async () => {
    fake('true', 'echo called >> /dev/null; exit 9');
    const saved = process.env.PATH;
    process.env.PATH = env.PATH;
    try {
      vi.resetModules();
      const { sharedGpuApps } = await import('../../src/store/gpuapps.js');
      const file = path.join(dir, 'gpu-apps.json');
      for (let i = 0; i < 5; i++) expect(await sharedGpuApps(file, 60_000)).toBeUndefined();
      expect(calls()).toHaveLength(1);
      expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ failed: true });
      // Once the interval is over, asked again; an answer replaces the failure.
      fake('true', 'echo "77, GPU-aaaa, 100"');
      expect(await sharedGpuApps(file, 0)).toEqual([{ pid: 77, uuid: 'GPU-aaaa', bytes: 100 * 1024 ** 2 }]);
      expect(await sharedGpuApps(file, 60_000)).toEqual([{ pid: 77, uuid: 'GPU-aaaa', bytes: 100 * 1024 ** 2 }]);
      expect(calls()).toHaveLength(2);
    } finally {
      process.env.PATH = saved;
    }
  });

  it.skipIf(process.getuid?.() !== 0)("another user's answer file is not used, however fresh", async () => {
    fake('true', 'echo "77, GPU-aaaa, 100"');
    const file = path.join(dir, 'gpu-apps.json');
    const { bootId } = await import('../../src/process/proc.js');
    fs.writeFileSync(file, JSON.stringify({ at: Date.now(), boot: bootId(), apps: [[4242, 'GPU-aaaa', 99 * 1024 ** 3]] }));
    fs.chownSync(file, 65534, 65534);
    const saved = process.env.PATH;
    process.env.PATH = env.PATH;
    try {
      vi.resetModules();
      const { sharedGpuApps } = await import('../../src/store/gpuapps.js');
      expect(await sharedGpuApps(file, 60_000)).toEqual([{ pid: 77, uuid: 'GPU-aaaa', bytes: 100 * 1024 ** 2 }]);
      expect(calls()).toHaveLength(1);
    } finally {
      process.env.PATH = saved;
    }
  });
});
