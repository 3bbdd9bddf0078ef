// /proc reading on real processes: odd command names, zombies, reused pids.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { descendantsOf, isAlive, isReused, procId, readStat } from '../../src/process/proc.js';
import { safeKill } from '../../src/process/signals.js';

describe('proc', () => {
  it('parses stat for a command whose name holds spaces and parentheses', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-comm-'));
    const odd = path.join(dir, 'a) b (c');
    fs.copyFileSync('/bin/sleep', odd);
    fs.chmodSync(odd, 0o755);
    const c = spawn(odd, ['30']);
    try {
      await new Promise((r) => c.once('spawn', r));
      const st = readStat(c.pid!)!;
      expect(st.ppid).toBe(process.pid);
      expect(st.startTicks).toBeGreaterThan(0);
      expect(isAlive(procId(c.pid!)!)).toBe(true);
    } finally {
      c.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('treats a zombie and a reused pid as not alive', async () => {
    const c = spawn('sh', ['-c', 'exit 0']);
    const id = { pid: c.pid!, startTicks: readStat(c.pid!)?.startTicks ?? 0 };
    // Node reaps on its own; block the event loop so the child sits as a zombie until it is checked.
    let state = '';
    for (const until = Date.now() + 5000; state !== 'Z' && Date.now() < until; ) state = readStat(c.pid!)?.state ?? '';
    expect(state).toBe('Z');
    expect(readStat(c.pid!)?.startTicks).toBe(id.startTicks);
    expect(isAlive(id)).toBe(false);
    const me = procId(process.pid)!;
    expect(isAlive({ pid: me.pid, startTicks: me.startTicks + 1 })).toBe(false);
    expect(isReused({ pid: me.pid, startTicks: me.startTicks + 1 })).toBe(true);
    await new Promise((r) => c.once('exit', r));
  });

  it('finds descendants through parent links', async () => {
    const c = spawn('bash', ['-c', 'sleep 30 & sleep 30 & wait'], { detached: true });
    try {
      const deadline = Date.now() + 5000;
      while (descendantsOf([c.pid!]).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(descendantsOf([c.pid!]).length).toBe(2);
    } finally {
      process.kill(-c.pid!, 'SIGKILL');
    }
  });

  it('safeKill refuses 0, 1, -1 and non-integers', () => {
    for (const t of [0, 1, -1, 1.5, NaN]) expect(safeKill(t, 0)).toBe(false);
    expect(safeKill(process.pid, 0)).toBe(true);
  });
});
