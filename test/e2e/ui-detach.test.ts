// Issue 14: `jobq ui --detach` runs the dashboard as a jobq job of its own; its URL is the one it really serves on,
// and its key never shows on a command line another user can read; issue 20: nor does `--open` put it there.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { expect, it } from 'vitest';
import { BIN, killTagged, pollUntil, useWorld } from '../helpers/jobq.js';

const w = useWorld();

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
  // The bare address: a page that says how to get the URL again, for a detached one through its log.
  const bare = await fetch(`http://127.0.0.1:${url.port}/`);
  expect(bare.status).toBe(403);
  expect(bare.headers.get('content-type')).toMatch(/^text\/html/);
  expect(await bare.text()).toContain('jobq tail jobq-ui');
  expect(allCmdlines()).not.toContain(token);
  // Its log is read without a terminal: it says how to stop it, not Ctrl-C.
  const log = fs.readFileSync(w.record(w.ids()[0]!).log, 'utf8');
  expect(log).toContain('stop it: jobq cancel jobq-ui');
  expect(log).not.toContain('Ctrl-C');
  const rec = w.record(w.ids()[0]!);
  expect(rec.name).toBe('jobq-ui');
  expect(JSON.stringify(rec)).not.toContain(token);
  expect((await w.run(['cancel', 'jobq-ui'])).exitCode).toBe(0);
  await pollUntil(() => w.record(rec.id).state.status === 'cancelled', 10_000, 'the dashboard job to end');
});

it('--open hands the browser a page only its user can read, never the tokened URL on a command line; the page goes with the dashboard', async () => {
  // A stand-in xdg-open: it records what it was given, and holds on so its command line can be read meanwhile.
  const bin = path.join(w.home, 'bin');
  fs.mkdirSync(bin);
  const seen = path.join(w.home, 'xdg-open.seen');
  fs.writeFileSync(
    path.join(bin, 'xdg-open'),
    `#!/bin/sh\n{ printf '%s\\n' "$@"; stat -c '%a %u' "$1" "$(dirname "$1")"; cat "$1"; } > ${seen}.tmp && mv ${seen}.tmp ${seen}\nexec sleep 30\n`,
    { mode: 0o755 },
  );
  const ui = execa(BIN, ['ui', '--port', '0', '--open'], { env: { ...w.env, PATH: `${bin}:${process.env.PATH}` }, stdin: 'ignore', reject: false });
  try {
    const shown = (await pollUntil(() => fs.existsSync(seen) && fs.readFileSync(seen, 'utf8'), 15_000, 'xdg-open to be called')) as string;
    const [arg, pageMode, dirMode] = shown.split('\n');
    const url = /url=([^"]+)"/.exec(shown)![1]!.replace(/&amp;/g, '&');
    const token = new URL(url).searchParams.get('token')!;
    expect(token).toMatch(/^[0-9a-f]{32}$/);
    expect(arg).not.toContain(token);
    expect(pageMode).toBe(`600 ${process.getuid?.()}`);
    expect(dirMode).toBe(`700 ${process.getuid?.()}`);
    expect(allCmdlines()).not.toContain(token);
    // The page leads to the dashboard itself, and goes with it, even when its terminal closes (HUP).
    expect((await fetch(url)).status).toBe(200);
    ui.kill('SIGHUP');
    await ui;
    expect(fs.existsSync(path.dirname(arg!))).toBe(false);
  } finally {
    ui.kill('SIGTERM');
    await ui;
    killTagged(w.tag);
  }
});
