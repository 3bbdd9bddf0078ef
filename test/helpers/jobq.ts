// Test helpers: run the built CLI against a temp state dir, poll with deadlines, and kill everything a test started.

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Options } from 'execa';
import { afterEach, beforeEach } from 'vitest';
import { killTagged, taggedPids } from '../../scripts/tagged.mjs';
import { isJobCgroup } from '../../src/process/isolation.js';

export { killTagged, taggedPids };

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The jobq under test; JOBQ_TEST_BIN points the suite at another build (e.g. 0.1.0, to show a test fails there). */
export const BIN = process.env.JOBQ_TEST_BIN ?? path.join(ROOT, 'bin', 'jobq');

/** Running as root: tests needing a second user, mounts or cgroups run only then (and skip visibly otherwise). */
export const IS_ROOT = process.getuid?.() === 0;
/** A memory cgroup hierarchy (v1 or v2) exists, so jobs can get a cgroup of their own. */
export const HAS_CGROUP = fs.existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes') || fs.existsSync('/sys/fs/cgroup/cgroup.controllers');

const strays: number[] = [];

/** A long-lived process in its own group beside jobq, which nothing of jobq may touch; killBystanders() ends them. */
export function bystander(): number {
  const c = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
  c.unref();
  strays.push(c.pid!);
  return c.pid!;
}

/**
 * A file a job holds on until the test opens it (`hold` is the sh loop to put in the job's command): what is still
 * running is then up to the test, never to how fast a loaded machine starts the next command.
 */
export function gate(w: World, name: string): { hold: string; open(): void } {
  const file = path.join(w.home, `${name}.gate`);
  return { hold: `while [ ! -e ${file} ]; do sleep 0.05; done`, open: () => fs.writeFileSync(file, '') };
}

/** SIGKILLs every bystander this test file started. */
export function killBystanders(): void {
  for (const pid of strays.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** One isolated jobq world: its own state dir and a tag in every job's environment. */
export interface World {
  home: string;
  tag: string;
  env: Record<string, string>;
  run(args: string[], opts?: Options): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  record(id: string): any;
  /** The record, or undefined while it is not written yet. */
  tryRecord(id: string): any;
  ids(): string[];
  cleanup(): Promise<void>;
}

/** Makes a fresh world; call cleanup() in afterEach/afterAll (useWorld() does both for a file's tests). */
export function world(extraEnv: Record<string, string> = {}): World {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-test-'));
  fs.chmodSync(home, 0o700);
  const tag = randomUUID();
  const env: Record<string, string> = {
    JOBQ_HOME: home,
    JOBQ_TEST_TAG: tag,
    XDG_CONFIG_HOME: path.join(home, 'xdg-config'),
    NO_COLOR: '1',
    ...extraEnv,
  };
  const w: World = {
    home,
    tag,
    env,
    async run(args, opts = {}) {
      // As a user runs it: bin/jobq as a command (a built .js file through node).
      const r = await execa(BIN.endsWith('.js') ? process.execPath : BIN, BIN.endsWith('.js') ? [BIN, ...args] : args, {
        reject: false,
        stdin: 'ignore',
        timeout: 120_000,
        ...opts,
        env: { ...env, ...(opts.env as Record<string, string>) },
        cwd: (opts.cwd as string) ?? ROOT,
      });
      return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
    },
    record(id) {
      return JSON.parse(fs.readFileSync(path.join(home, 'jobs', id, 'job.json'), 'utf8'));
    },
    tryRecord(id) {
      try {
        return JSON.parse(fs.readFileSync(path.join(home, 'jobs', id, 'job.json'), 'utf8'));
      } catch {
        return undefined;
      }
    },
    ids() {
      return fs.existsSync(path.join(home, 'jobs')) ? fs.readdirSync(path.join(home, 'jobs')) : [];
    },
    async cleanup() {
      // Killed again each round: a supervisor killed mid-way may have just started a dispatcher the first pass missed.
      await pollUntil(
        () => {
          killTagged(tag);
          return taggedPids(tag).length === 0;
        },
        10_000,
        'tagged processes to exit',
        100,
      );
      // Cgroups of jobs whose end nobody recorded (killed tests, planted records): empty now, so rmdir takes them.
      for (const id of w.ids()) {
        // Only what jobq itself would make for that id: a planted record's path is data, even to the tests.
        for (const dir of (w.tryRecord(id)?.protection?.cgroups ?? []).filter((d: unknown) => isJobCgroup(d, id))) {
          try {
            fs.rmdirSync(dir);
          } catch {
            /* gone already, or not ours to remove */
          }
        }
      }
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
  return w;
}

/** Paths removed after each test of a file that calls useWorld() (a cgroup dir by rmdir, anything else by rm -r). */
export const tmpPaths: string[] = [];

/** A fresh temp dir, mode as given, removed after the test (see tmpPaths). */
export function tmpDir(mode = 0o700): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-tmp-'));
  fs.chmodSync(d, mode);
  tmpPaths.push(d);
  return d;
}

/**
 * The e2e files' one set-up: a fresh world before each test (world(env), then `config` written as the user's
 * config.json when given) and, after each test, every bystander killed, every process of the world killed and its
 * state dir removed, then every path in tmpPaths removed. Returns the current test's world: `const w = useWorld()`
 * reads as the `let w` a beforeEach would assign. A file's own beforeEach/afterEach registered after this call run
 * after the world is made and before it is cleaned up (vitest runs afterEach hooks in reverse order).
 */
export function useWorld(opts: { env?: Record<string, string>; config?: Record<string, unknown> } = {}): World {
  let current: World | undefined;
  beforeEach(() => {
    current = world(opts.env);
    if (opts.config) {
      fs.mkdirSync(path.join(current.env.XDG_CONFIG_HOME!, 'jobq'), { recursive: true });
      fs.writeFileSync(path.join(current.env.XDG_CONFIG_HOME!, 'jobq', 'config.json'), JSON.stringify(opts.config));
    }
  });
  afterEach(async () => {
    killBystanders();
    await current?.cleanup();
    for (const p of tmpPaths.splice(0)) {
      if (p.startsWith('/sys/fs/cgroup/')) fs.rmdirSync(p);
      else fs.rmSync(p, { recursive: true, force: true });
    }
  });
  return new Proxy({} as World, {
    get(_, key) {
      if (!current) throw new Error('useWorld(): the world exists only inside a test (or a hook that runs after its beforeEach)');
      return current[key as keyof World];
    },
  });
}

/**
 * The most jobs running at one instant, from their records' start and end times: what a /proc sampler can miss on a
 * loaded machine (a 0.1 s job between two samples), these cannot. Every job must have run.
 */
export function peakRunning(w: World, ids: string[]): number {
  const spans = ids.map((id) => w.record(id).state).map((s) => [Date.parse(s.startedAt), Date.parse(s.endedAt)] as const);
  if (!spans.every(([a, b]) => a > 0 && b >= a)) throw new Error('peakRunning: a job without a start and an end');
  return Math.max(...spans.map(([t]) => spans.filter(([a, b]) => a <= t && t < b).length));
}

/** Polls until fn() is truthy, up to a deadline; throws naming what it waited for. */
export async function pollUntil<T>(fn: () => T | Promise<T>, timeoutMs: number, what: string, stepMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** True if the pid is alive and not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const st = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return st !== 'Z' && st !== 'X';
  } catch {
    return false;
  }
}

/** Starts a job and returns its id (from -q output). */
export async function start(w: World, name: string, argv: string[], flags: string[] = []): Promise<string> {
  const r = await w.run(['run', name, '-q', ...flags, '--', ...argv]);
  if (r.exitCode !== 0) throw new Error(`jobq run failed (${r.exitCode}): ${r.stderr}`);
  return r.stdout.trim();
}
