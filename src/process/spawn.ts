// The only owner of spawning: the launcher starts a detached supervisor; the supervisor starts the job; client
// commands (Slurm's), the desktop opener and the CLI itself (ui --detach) start here too.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { JobqError } from '../domain/errors.js';
import { beforeChild, HELD_WRAPPER } from './proc.js';
import { startTimeoutMs } from './standby.js';

/** Node settings that must not leak into (or slow down) the supervisor; saved for the job instead. */
const SUPERVISOR_MASKED = ['NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'UV_THREADPOOL_SIZE', 'NODE_V8_COVERAGE'];
const SAVED_VAR = 'JOBQ_SUPERVISOR_SAVED_ENV';

/** The supervisor's environment: the job's, with Node settings set aside so the job still gets them. */
export function supervisorEnv(jobEnv: Record<string, string>): Record<string, string> {
  const env = { ...jobEnv };
  const saved: Record<string, string | null> = {};
  for (const k of SUPERVISOR_MASKED) {
    saved[k] = env[k] ?? null;
    delete env[k];
  }
  env.UV_THREADPOOL_SIZE = '1';
  env[SAVED_VAR] = JSON.stringify(saved);
  return env;
}

/** In the supervisor: the job's environment, with the masked Node settings put back. */
export function restoreJobEnv(supEnv: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(supEnv)) if (v !== undefined) env[k] = v;
  const saved = JSON.parse(env[SAVED_VAR] ?? '{}') as Record<string, string | null>;
  delete env[SAVED_VAR];
  for (const [k, v] of Object.entries(saved)) {
    if (v === null) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** dist/supervisor.js (the loader that runs dist/lib/supervisor.js with its code cache), from this code in dist/lib/. */
function supervisorScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const found = [path.join(here, '..', 'supervisor.js'), path.join(here, 'supervisor.js')].find((f) => fs.existsSync(f));
  if (!found) throw new JobqError('START_FAILED', `supervisor.js not found beside ${here}: is jobq built (npm run build)?`);
  return found;
}

// No V8 worker threads. Flags that change V8's code (--lite-mode, --max-semi-space-size) would make node reject its
// own code cache for its internal modules (child_process: 2 -> 8 ms) for no PSS gained (docs/development.md).
// bin/jobq-run starts the standby with the same flags (a test holds them equal).
export const LEAN = ['--v8-pool-size=0'];

/** Starts supervisor.js detached (own session, cwd /, stdio /dev/null; fd 3 a pipe for the launcher's handshake). */
function spawnLean(args: string[], env: Record<string, string>, handshake: boolean): ChildProcess {
  beforeChild();
  try {
    return spawn(process.execPath, [...LEAN, supervisorScript(), ...args], {
      detached: true,
      stdio: ['ignore', 'ignore', process.env.JOBQ_DEBUG_SUPERVISOR ? 'inherit' : 'ignore', ...(handshake ? (['pipe'] as const) : [])],
      env: supervisorEnv(env),
      cwd: '/',
    });
  } catch (e) {
    throw new JobqError('START_FAILED', `cannot start the supervisor: ${(e as Error).message}`);
  }
}

/**
 * Starts the detached supervisor for a claimed job and resolves once it reports (fd 3) that the record now
 * says what happened (true), or dies without a word (false); rejects with START_FAILED if it cannot start or stays
 * silent past the timeout.
 */
export async function startSupervisor(home: string, id: string, token: string, jobEnv: Record<string, string>, timeoutMs = startTimeoutMs()): Promise<boolean> {
  const child = spawnLean([home, id, token], jobEnv, true);
  const pipe = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
  // The handshake is a wake-up only; the record on disk says what happened.
  return new Promise<boolean>((resolve, reject) => {
    const timer = setTimeout(() => done(false, new JobqError('START_FAILED', `the supervisor did not report within ${timeoutMs / 1000}s`)), timeoutMs);
    let finished = false;
    function done(reported: boolean, err?: Error) {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      pipe.destroy();
      child.unref();
      if (err) reject(err);
      else resolve(reported);
    }
    pipe.on('data', () => done(true));
    pipe.on('end', () => done(false));
    pipe.on('error', () => done(false));
    child.on('error', (e) => done(false, new JobqError('START_FAILED', `cannot start the supervisor: ${e.message}`)));
    child.on('exit', () => done(false));
  });
}

/** Starts a supervisor for a claimed job and returns at once (dispatch: the record, not a handshake, tells the rest). */
export function launchSupervisor(home: string, id: string, token: string, jobEnv: Record<string, string>): void {
  const child = spawnLean([home, id, token], jobEnv, false);
  child.on('error', () => undefined);
  child.unref();
}

/** Starts the transient dispatcher (supervisor.js --dispatch HOME), detached; it stands down if another one runs. */
export function launchDispatcher(home: string, env: NodeJS.ProcessEnv = process.env): void {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
  const child = spawnLean(['--dispatch', home], clean, false);
  child.on('error', () => undefined);
  child.unref();
}

/** Starts a detached helper command (`sh -c CMD`): output appended to the log fd, in its own session. */
export function spawnShell(cmd: string, opts: { cwd: string; env: Record<string, string>; logFd?: number }): ChildProcess {
  const out = opts.logFd ?? 'ignore';
  return spawn('/bin/sh', ['-c', cmd], { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', out, out] });
}

function isExecutableFile(file: string): boolean {
  // Most of PATH does not hold it: asked without a throw first (a thrown fs error costs a stack trace).
  if (!fs.existsSync(file)) return false;
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Checks, before anything starts, that cwd is usable and argv[0] resolves to an executable; throws why not. */
export function checkStartable(argv: string[], cwd: string, env: Record<string, string>): string {
  try {
    if (!fs.statSync(cwd).isDirectory()) throw new Error('not a directory');
    fs.accessSync(cwd, fs.constants.X_OK);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (e as Error).message;
    throw new JobqError('START_FAILED', `cannot use working directory ${cwd}: ${why}`);
  }
  const cmd = argv[0]!;
  if (cmd.includes('/')) {
    const file = path.resolve(cwd, cmd);
    if (!fs.existsSync(file)) throw new JobqError('START_FAILED', `command not found: ${cmd}`);
    if (!isExecutableFile(file)) throw new JobqError('START_FAILED', `command is not an executable file: ${cmd}`);
    return file;
  }
  for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    const file = path.resolve(cwd, dir || '.', cmd);
    if (isExecutableFile(file)) return file;
  }
  throw new JobqError('START_FAILED', `command not found: ${cmd} (searched PATH)`);
}

/** A job spawned and held before exec: set it up, then release() runs the real command. */
export interface HeldJob {
  child: ChildProcess;
  pid: number;
  /** Resolves true once the wrapper itself runs (its byte on fd 4), false if it never will (prefix failed, timed out). */
  ready(ms: number): Promise<boolean>;
  /** Starts the keeper in cgroup DIR: a process that holds a scope's cgroup open until dismiss(). */
  keep(dir: string): void;
  release(rlimitKb?: number): void;
  /** Lets the keeper go (it reads EOF): systemd may remove the scope from now on. */
  dismiss(): void;
  abort(): void;
}

let devNull: number | undefined;

/** Spawns the job in a new session (pid = pgid = sid), stdin /dev/null, output on the log fd, held before exec. */
export function spawnHeld(argv: string[], opts: { cwd: string; env: Record<string, string>; logFd: number; gateFd: number; prefix: string[] }): HeldJob {
  const full = [...opts.prefix, '/bin/sh', '-c', HELD_WRAPPER, 'jobq-job', ...argv];
  // Without a prefix the spawned process is the wrapper and no keeper is started: fds 4 and 5 go to /dev/null, two
  // pipes fewer per job (a chain of small jobs makes thousands).
  const bare = !opts.prefix.length;
  if (bare) devNull ??= fs.openSync('/dev/null', 'r+');
  const child = spawn(full[0]!, full.slice(1), {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    // fd 3: the gate (lines to the wrapper); fd 4: the wrapper's one byte; fd 5: the keeper's lifeline; fd 6: the
    // gate file, marked by the wrapper as it takes "go".
    stdio: ['ignore', opts.logFd, opts.logFd, 'pipe', bare ? devNull! : 'pipe', bare ? devNull! : 'pipe', opts.gateFd],
  });
  if (!child.pid) throw new JobqError('START_FAILED', `cannot spawn ${full[0]}`);
  const gate = child.stdio[3] as NodeJS.WritableStream & { destroy(): void };
  gate.on('error', () => undefined);
  const here = child.stdio[4] as (NodeJS.ReadableStream & { destroy(): void }) | null;
  here?.on('error', () => undefined);
  const lifeline = (child.stdio as unknown as (NodeJS.ReadableStream & { destroy(): void })[])[5] ?? null;
  lifeline?.on('error', () => undefined);
  // One byte or the end of the pipe: only the wrapper writes it, and every holder of the other end is this process.
  const arrived = !here
    ? Promise.resolve(true)
    : new Promise<boolean>((resolve) => {
        here.once('data', () => resolve(true));
        here.once('end', () => resolve(false));
        here.once('close', () => resolve(false));
        child.once('exit', () => resolve(false));
      });
  return {
    child,
    pid: child.pid,
    async ready(ms) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      });
      const ok = await Promise.race([arrived, late]);
      clearTimeout(timer);
      here?.destroy();
      return ok;
    },
    keep(dir) {
      if (!lifeline) throw new Error('a keeper needs a prefix (its lifeline is a pipe only then)');
      gate.write(`keep:${dir}\n`);
    },
    release(rlimitKb) {
      gate.end(rlimitKb ? `rlimit:${rlimitKb}\ngo\n` : 'go\n');
    },
    dismiss() {
      lifeline?.destroy();
    },
    abort() {
      gate.destroy();
      here?.destroy();
      lifeline?.destroy();
    },
  };
}

/** This jobq's own CLI as a child (`ui --detach` runs the dashboard as a job through it), stdout piped. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv): ChildProcess & { stdout: NonNullable<ChildProcess['stdout']> } {
  beforeChild();
  return spawn(process.execPath, [process.argv[1]!, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] }) as ChildProcess & {
    stdout: NonNullable<ChildProcess['stdout']>;
  };
}

/** Hands a file to the desktop (xdg-open), detached; `missing` says what to do when there is no opener. */
export function openDetached(file: string, missing: () => void): void {
  beforeChild();
  spawn('xdg-open', [file], { stdio: 'ignore', detached: true }).on('error', missing).unref();
}

/** import() of an ES-module-only package: through dist's loader in the bundle (a vm script has none), else directly. */
function importEsm<T>(spec: string): Promise<T> {
  const viaLoader = (globalThis as { __jobqImport?: (s: string) => Promise<unknown> }).__jobqImport;
  return (viaLoader ? viaLoader(spec) : import(spec)) as Promise<T>;
}

/** What a client command run to its end said: its exit code, output, and whether it exists at all. */
export interface Captured {
  exitCode?: number;
  stdout: string;
  stderr: string;
  message: string;
  notFound: boolean;
}

/** Runs a client command (sbatch, scontrol, …) to its end with execa, loaded only now: no other start reads it. */
export async function runCaptured(cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Captured> {
  const { execa } = await importEsm<typeof import('execa')>('execa');
  beforeChild();
  const r = await execa(cmd, args, { reject: false, timeout: o.timeoutMs, env: o.env, extendEnv: !o.env, stdin: 'ignore' });
  const notFound = (r as { code?: string }).code === 'ENOENT' || (r.failed && /ENOENT/.test(String(r.message)));
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr), message: String(r.message), notFound };
}

/** Runs a tool with a deadline; its stdout even when it exits non-zero (`systemctl is-active` says "inactive" with 3). */
export function runBounded(cmd: string, args: string[], timeout = 2000): { out?: string; error?: string } {
  try {
    return { out: execFileSync(cmd, args, { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; code?: string; message: string };
    const why = err.code === 'ETIMEDOUT' ? `no answer in ${timeout / 1000}s` : (err.stderr?.trim().split('\n')[0] ?? err.message);
    return { out: err.stdout || undefined, error: why || err.message };
  }
}
