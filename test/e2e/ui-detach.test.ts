// Issue 14: `jobq ui --detach` runs the dashboard as a jobq job of its own; its URL is the one it really serves on,
// and its key never shows on a command line another user can read.
import fs from 'node:fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { pollUntil, type World, world } from '../helpers/jobq.js';

let w: World;
beforeEach(() => {
  w = world();
});
afterEach(async () => {
  await w.cleanup();
});

/** Every command line on the machine, as `ps` shows them to any user. */
function allCmdlines(): string {
  return fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/cmdline`, 'latin1');
      } catch {
        return '';
      }
    })
    .join('\n');
}

it('--detach --port 0 prints the port it got, serves there, keeps the token off command lines, and cancel ends it', async () => {
  const r = await w.run(['ui', '--detach', '--port', '0']);
  expect(r.exitCode, r.stderr).toBe(0);
  const url = new URL(/dashboard: (\S+)/.exec(r.stdout)![1]!);
  expect(Number(url.port)).toBeGreaterThan(0);
  const token = url.searchParams.get('token')!;
  expect(token).toMatch(/^[0-9a-f]{32}$/);
  expect((await fetch(url)).status).toBe(200);
  expect((await fetch(`http://127.0.0.1:${url.port}/`)).status).toBe(403);
  expect(allCmdlines()).not.toContain(token);
  const rec = w.record(w.ids()[0]!);
  expect(rec.name).toBe('jobq-ui');
  expect(JSON.stringify(rec)).not.toContain(token);
  expect((await w.run(['cancel', 'jobq-ui'])).exitCode).toBe(0);
  await pollUntil(() => w.record(rec.id).state.status === 'cancelled', 10_000, 'the dashboard job to end');
});
