// Issue 14: `jobq ui` in a real headless Chromium (Debian's, driven by playwright-core): the table, a live log, the
// memory chart, cancel from the page; and what the server refuses (no token, a foreign Host, a cross-origin POST).
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CHROMIUM, launchBrowser } from '../helpers/browser.js';
import { BIN, pollUntil, ROOT, start, useWorld } from '../helpers/jobq.js';
import { plantRecord } from '../helpers/records.js';

const SHOTS = path.join(ROOT, 'test-results');

const w = useWorld({ config: { sampleInterval: '300ms' } });
let ui: ChildProcess;
let url: URL;
let browser: Browser | undefined;

beforeAll(async () => {
  if (!CHROMIUM) console.warn('UI browser tests skipped: no chromium (apt-get install chromium; .ci/run does)');
  else browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});
beforeEach(async () => {
  ui = spawn(process.execPath, [BIN, 'ui', '--port', '0'], { env: { ...process.env, ...w.env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  ui.stdout!.on('data', (d) => (out += d));
  url = new URL((await pollUntil(() => /dashboard: (\S+)/.exec(out)?.[1], 15_000, 'the dashboard URL'))!);
});
afterEach(async () => {
  ui.kill('SIGINT');
  await new Promise((r) => ui.once('exit', r));
});

/** A raw request, so Host and Origin can be what an attacker would send. */
function request(method: string, pathAndQuery: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: url.port, method, path: pathAndQuery, headers }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A live `/api/events` viewer, as the page opens it: keeps the data of the last `jobs` event it got. */
function viewer(token: string): Promise<{ jobs(): string | undefined; close(): void }> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let jobs: string | undefined;
    const req = http.get({ host: '127.0.0.1', port: url.port, path: '/api/events', headers: { 'x-jobq-token': token }, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`/api/events answered ${res.statusCode}`));
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        const frames = (buf + d).split('\n\n');
        buf = frames.pop()!;
        for (const f of frames) if (f.startsWith('event: jobs\ndata: ')) jobs = f.slice('event: jobs\ndata: '.length);
      });
      res.on('error', () => undefined);
      resolve({ jobs: () => jobs, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

/** CPU time (utime + stime, in clock ticks) a process has used, from /proc/PID/stat fields 14 and 15. */
function cpuTicks(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

describe('jobq ui', () => {
  it('serves only loopback, only with the token, and refuses cross-origin POSTs', async () => {
    const token = url.searchParams.get('token')!;
    const id = await start(w, 'target', ['sleep', '30']);
    expect(await request('GET', `/api/jobs?token=${token}`)).toBe(200);
    expect(await request('GET', '/api/jobs')).toBe(403);
    expect(await request('GET', `/api/jobs?token=${token.replace(/.$/, (c) => (c === '0' ? '1' : '0'))}`)).toBe(403);
    // DNS rebinding: a page on evil.example that resolves to 127.0.0.1 still sends its own Host.
    expect(await request('GET', `/?token=${token}`, { host: `evil.example:${url.port}` })).toBe(403);
    expect(await request('POST', `/api/jobs/${id}/cancel?token=${token}`, { 'x-jobq-token': token, origin: 'http://evil.example' })).toBe(403);
    // A cross-site form can put the token in the URL, never in a header.
    expect(await request('POST', `/api/jobs/${id}/cancel?token=${token}`)).toBe(403);
    expect(w.record(id).state.status).toBe('running');
  });

  it('a favicon for any loopback page; the API without the key answers JSON, the page without it says how to get the URL', async () => {
    const icon = await fetch(new URL('/favicon.ico', url));
    expect(icon.status).toBe(200);
    expect(icon.headers.get('content-type')).toBe('image/svg+xml');
    const api = await fetch(new URL('/api/jobs', url));
    expect(api.status).toBe(403);
    expect(await api.json()).toEqual({ error: 'token missing or wrong' });
    const bare = await fetch(new URL('/?token=wrong', url));
    expect(bare.status).toBe(403);
    expect(await bare.text()).toMatch(/This dashboard needs its key[\s\S]*jobq tail jobq-ui/);
    // A foreign Host gets nothing, not even the help page or the icon.
    expect(await request('GET', '/', { host: `evil.example:${url.port}` })).toBe(403);
    expect(await request('GET', '/favicon.ico', { host: `evil.example:${url.port}` })).toBe(403);
    // A request line no URL parser takes, sent by anyone without the key: refused, and the server lives on.
    const sock = net.connect(Number(url.port), '127.0.0.1');
    sock.write(`GET http://[/ HTTP/1.1\r\nHost: 127.0.0.1:${url.port}\r\n\r\n`);
    await new Promise((r) => sock.once('data', r).once('close', r));
    sock.destroy();
    expect(await request('GET', `/api/jobs?token=${url.searchParams.get('token')}`)).toBe(200);
    expect(ui.exitCode).toBeNull();
  });

  it('with 2,000 finished jobs it sends the newest 100 and a count, not all of them', async () => {
    for (let i = 0; i < 2000; i++) {
      const at = new Date(Date.now() - 86_400_000 + i * 1000);
      plantRecord(
        w.home,
        `old${i % 10}`,
        { state: { status: 'succeeded', startedAt: at.toISOString(), exitCode: 0, signal: null, endedAt: at.toISOString(), durationMs: 5 } },
        at,
      );
    }
    const r = await fetch(new URL(`/api/jobs?token=${url.searchParams.get('token')}`, url));
    const j = (await r.json()) as { jobs: unknown[]; hidden: number; total: number };
    expect(j.jobs).toHaveLength(100);
    expect(j.hidden).toBe(1900);
    expect(j.total).toBe(2000);
  });

  it('200 live viewers of 1,000 waiting jobs share one snapshot per change: well under a core, and a new job still reaches every one', async () => {
    const token = url.searchParams.get('token')!;
    await w.run(['queue', 'pause', 'idle']);
    for (let i = 0; i < 1000; i++)
      plantRecord(w.home, `wait${i}`, { queue: 'idle', priority: 0, state: { status: 'queued', since: new Date().toISOString() } });
    const viewers: Awaited<ReturnType<typeof viewer>>[] = [];
    try {
      viewers.push(...(await Promise.all(Array.from({ length: 200 }, () => viewer(token)))));
      await pollUntil(() => viewers.every((v) => v.jobs()?.includes('"waiting":1000')), 60_000, 'every viewer to get the 1,000 waiting jobs', 100);
      // Work done, not speed: the server's CPU over 5 s with 200 viewers connected and nothing changing but memory.
      const t0 = cpuTicks(ui.pid!);
      await new Promise((r) => setTimeout(r, 5000));
      const used = cpuTicks(ui.pid!) - t0;
      if (process.env.JOBQ_TEST_SHOW) console.log(`dashboard ticks over 5 s with 200 viewers: ${used}`);
      expect(used).toBeLessThanOrEqual(100);
      const r = await fetch(new URL(`/api/jobs?token=${token}`, url));
      expect(r.status).toBe(200);
      expect(((await r.json()) as { waiting: number }).waiting).toBe(1000);
      // A change still reaches them all: a real job appears in the jobs event of every viewer.
      const id = await start(w, 'fresh', ['sleep', '30']);
      await pollUntil(() => viewers.every((v) => v.jobs()?.includes(`"id":"${id}"`)), 30_000, 'every viewer to list the new job', 100);
    } finally {
      for (const v of viewers) v.close();
    }
  }, 120_000);

  it.skipIf(!CHROMIUM)(
    'in Chromium: a job appears, its log grows live, its memory is charted, cancel from the page ends it and restart runs it again',
    async () => {
      const page = await browser!.newPage({ viewport: { width: 1400, height: 900 } });
      try {
        await page.goto(url.href);
        const id = await start(
          w,
          'webjob',
          [
            'python3',
            '-c',
            'import sys, time\nx = []\nfor i in range(8):\n    print("tick", i, flush=True); time.sleep(0.2)\ni = 0\nwhile True:\n    x.append(bytearray(2 * 1024 * 1024)) if i < 300 else None\n    sys.stdout.write("\\rprogress %d%%" % i); sys.stdout.flush(); time.sleep(0.1); i += 1',
          ],
          ['--mem-limit', '800M'],
        );
        const rowSel = `#jobs tr[data-id="${id}"]`;
        await page.waitForSelector(rowSel, { timeout: 15_000 });
        expect(await page.textContent(`${rowSel} td.c-state`)).toBe('running');
        await page.click(rowSel);
        await page.waitForFunction(() => /tick 3\n/.test(document.querySelector('#log')?.textContent ?? ''), undefined, { timeout: 15_000 });
        await page.waitForFunction(() => /tick 7\n/.test(document.querySelector('#log')?.textContent ?? ''), undefined, { timeout: 15_000 });
        await page.waitForFunction(() => /progress [1-9]\d*%/.test(document.querySelector('#log')?.textContent ?? ''), undefined, { timeout: 15_000 });
        // The last \r segment shows as a terminal would: one progress line, though the file holds every update.
        await pollUntil(() => (fs.readFileSync(w.record(id).log, 'utf8').match(/progress/g) ?? []).length > 5, 15_000, 'several progress updates');
        expect((await page.textContent('#log'))!.match(/progress/g)).toHaveLength(1);
        // Re-select to draw the chart from the samples taken so far, with the limit line.
        await pollUntil(
          () =>
            fs.existsSync(path.join(w.home, 'jobs', id, 'samples')) && fs.readFileSync(path.join(w.home, 'jobs', id, 'samples'), 'utf8').split('\n').length > 4,
          15_000,
          'samples',
        );
        await page.click(rowSel);
        await page.waitForSelector('#memchart polyline', { timeout: 10_000 });
        expect(await page.locator('#memchart line.limit').count()).toBe(1);
        await page.click('#cancel');
        await page.click('#confirmYes');
        await page.waitForFunction(() => document.querySelector('#jobState')?.textContent === 'cancelled', undefined, { timeout: 30_000 });
        await page.waitForFunction((sel) => document.querySelector(`${sel} td.c-state`)?.textContent === 'cancelled', rowSel, { timeout: 15_000 });
        expect(w.record(id).state.status).toBe('cancelled');
        fs.mkdirSync(SHOTS, { recursive: true });
        const shot = path.join(SHOTS, 'ui-cancelled.png');
        await page.screenshot({ path: shot, fullPage: true });
        console.log(`screenshot: ${shot}`);
        expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
        // Restart from the page: a new job of the same name and command runs, and the page shows it.
        const title = await page.textContent('#jobTitle');
        await page.click('#restart');
        expect(await page.textContent('#confirmText')).toMatch(/^Run webjob #\d+ again/);
        await page.click('#confirmYes');
        await page.waitForFunction(
          (old) => {
            const h = document.querySelector('#jobTitle')?.textContent;
            return !!h && h !== old;
          },
          title,
          { timeout: 15_000 },
        );
        await expect.poll(() => page.textContent('#actionResult')).toMatch(/^Restarted webjob as #\d+\.$/);
        const again = w.ids().find((x) => x !== id)!;
        expect(w.record(again)).toMatchObject({ name: w.record(id).name, argv: w.record(id).argv });
        await page.waitForFunction((sel) => document.querySelector(`${sel} td.c-state`)?.textContent === 'running', `#jobs tr[data-id="${again}"]`, {
          timeout: 15_000,
        });
        await page.click(`#jobs tr[data-id="${again}"]`);
        await page.waitForFunction(() => document.querySelector('#jobState')?.textContent === 'running', undefined, { timeout: 15_000 });
        await page.click('#cancel');
        await page.click('#confirmYes');
        await page.waitForFunction(() => document.querySelector('#jobState')?.textContent === 'cancelled', undefined, { timeout: 30_000 });
        expect(w.record(again).state.status).toBe('cancelled');
      } finally {
        await page.close();
      }
    },
    90_000,
  );
});
