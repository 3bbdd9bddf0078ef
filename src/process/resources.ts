// What the machine has free for jobs: MemAvailable, memory pressure, what a job uses now, and the GPUs (nvidia-smi, or a given list).

import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { Gpu } from '../domain/dispatch.js';
import type { Isolation } from '../domain/job.js';
import { type Psi, parsePsi } from '../domain/pressure.js';
import { parseSize } from '../domain/units.js';
import { writeFileAtomic } from '../store/store.js';
import { readOwnJson } from '../store/trust.js';
import { cgroupStats } from './isolation.js';
import { bootId, rssBytes } from './proc.js';
import { type JobTarget, jobProcesses } from './signals.js';

/** A /proc/meminfo field in bytes (MemAvailable, MemTotal); undefined if the kernel does not say. */
export function meminfo(field: 'MemAvailable' | 'MemTotal'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/meminfo', 'latin1'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Where memory PSI is read: the kernel's file, or (tests, or a user who knows) JOBQ_PRESSURE_FILE. */
export function psiFile(): string {
  return process.env.JOBQ_PRESSURE_FILE || '/proc/pressure/memory';
}

/** The machine's memory pressure now (`some`/`full` avg10), or undefined where the kernel has no PSI. */
export function readPsi(file = psiFile()): Psi | undefined {
  try {
    return parsePsi(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** How long nvidia-smi may take, and how long a failure is remembered before it is asked again. */
const SMI_TIMEOUT_MS = 5000;
const SMI_RETRY_MS = 30_000;
// Room for the per-process list of a machine running thousands of GPU processes; execFileSync's 1 MiB is not.
const SMI_MAX_OUTPUT = 16 * 1024 ** 2;
// Per query: a failing per-process list (a driver mismatch can fail it alone) must not stop the GPU list being asked.
const smiFailed = new Map<string, { at: number; why: string }>();
/** The state dir's file where its processes share nvidia-smi's failures (set by those that plan a dispatch). */
let sharedFailures: string | undefined;

/**
 * Shares nvidia-smi's failures through `file`: a hang found by the dispatcher is not waited out again by each
 * status, queue or run for the next 30 s. The file is data: another boot's, a future date or an odd reason is not used.
 */
export function shareSmiFailuresIn(file: string): void {
  sharedFailures = file;
}

type Failures = Record<string, { at: number; why: string }>;

function readFailures(): Failures {
  const out: Failures = {};
  if (!sharedFailures) return out;
  const c = readOwnJson(sharedFailures, 64 * 1024) as { boot?: unknown; failed?: Record<string, { at?: unknown; why?: unknown }> } | undefined;
  if (c?.boot !== bootId() || typeof c.failed !== 'object' || !c.failed) return out;
  for (const [key, f] of Object.entries(c.failed)) {
    // The reason is shown in wait reasons: printable, short, and said by nvidia-smi's own wording.
    if (typeof f?.at === 'number' && f.at <= Date.now() && typeof f.why === 'string' && /^nvidia-smi [\x20-\x7e]{1,120}$/.test(f.why))
      out[key] = { at: f.at, why: f.why };
  }
  return out;
}

function writeFailures(change: (f: Failures) => boolean): void {
  if (!sharedFailures) return;
  const f = readFailures();
  if (!change(f)) return;
  try {
    writeFileAtomic(sharedFailures, JSON.stringify({ boot: bootId(), failed: f }), false);
  } catch {
    /* a full or read-only state dir: each process remembers on its own */
  }
}

/** A failure of this query within SMI_RETRY_MS, this process's or (through the state dir) another's. */
function failedRecently(key: string): { at: number; why: string } | undefined {
  const fresh = (f: { at: number; why: string } | undefined) => (f && Date.now() - f.at < SMI_RETRY_MS ? f : undefined);
  const mine = fresh(smiFailed.get(key));
  if (mine || !sharedFailures) return mine;
  const theirs = fresh(readFailures()[key]);
  if (theirs) smiFailed.set(key, theirs);
  return theirs;
}

/** One process's use of one GPU, as `nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory` lists it. */
export interface GpuApp {
  pid: number;
  uuid?: string;
  bytes: number;
}

const APPS_QUERY = ['--query-compute-apps=pid,gpu_uuid,used_memory', '--format=csv,noheader,nounits'];

/** Parses compute-apps lines ("pid, uuid, MiB", or "pid, MiB" from older callers and fakes). */
export function parseGpuApps(out: string): GpuApp[] {
  const apps: GpuApp[] = [];
  for (const line of out.split('\n')) {
    const f = line.split(',').map((x) => x.trim());
    const [pid, mib] = [smiNumber(f[0]), smiNumber(f.at(-1))];
    const uuid = f.length > 2 ? smiUuid(f[1]) : undefined;
    if (f.length >= 2 && pid && mib !== undefined) apps.push({ pid, ...(uuid ? { uuid } : {}), bytes: mib * 1024 ** 2 });
  }
  return apps;
}

/** A count nvidia-smi printed: digits only, and no larger than a GPU could hold (1 EiB in MiB); else not a figure. */
function smiNumber(x: string | undefined): number | undefined {
  return x && /^\d{1,13}$/.test(x) && Number(x) < 2 ** 40 ? Number(x) : undefined;
}

/** A GPU's UUID as nvidia-smi prints them (GPU-…, MIG-…): it is shown on terminals, so nothing else is taken. */
function smiUuid(x: string | undefined): string | undefined {
  return x && /^[A-Za-z0-9][A-Za-z0-9-]{0,95}$/.test(x) ? x : undefined;
}

/** Runs nvidia-smi's per-process query without waiting on it; undefined where it is missing, fails or hangs. */
export function gpuAppsAsync(env: NodeJS.ProcessEnv = process.env): Promise<GpuApp[] | undefined> {
  const { execFile } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  return new Promise((resolve) => {
    execFile('nvidia-smi', APPS_QUERY, { encoding: 'utf8', timeout: SMI_TIMEOUT_MS, maxBuffer: SMI_MAX_OUTPUT, env }, (err, out) =>
      resolve(err ? undefined : parseGpuApps(out)),
    );
  });
}

/** The same list, waited on (a dispatch round packing --gpu-mem jobs); a failure is remembered like listGpus's. */
export function gpuAppsNow(env: NodeJS.ProcessEnv = process.env): GpuApp[] | undefined {
  const r = smiSync(APPS_QUERY, env);
  return r.out === undefined ? undefined : parseGpuApps(r.out);
}

/**
 * nvidia-smi, waited on up to SMI_TIMEOUT_MS: its output, or why not (`missing`: not installed, nothing to retry).
 * A driver that just failed or hung is not asked again for a while: a dispatcher's every round would wait on it.
 */
function smiSync(args: string[], env: NodeJS.ProcessEnv): { out?: string; missing?: boolean; error?: string } {
  const key = args.join(' ');
  const failed = failedRecently(key);
  if (failed) return { error: failed.why };
  try {
    // child_process only when a job asks for GPUs: every other command's start skips loading it.
    const { execFileSync } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
    const out = execFileSync('nvidia-smi', args, {
      encoding: 'utf8',
      timeout: SMI_TIMEOUT_MS,
      maxBuffer: SMI_MAX_OUTPUT,
      stdio: ['ignore', 'pipe', 'ignore'],
      env,
    });
    smiFailed.delete(key);
    writeFailures((f) => key in f && delete f[key]);
    return { out };
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { signal?: string; status?: number };
    if (err.code === 'ENOENT') return { missing: true };
    const why = smiFailure(err);
    const at = Date.now();
    smiFailed.set(key, { at, why });
    writeFailures((f) => {
      f[key] = { at, why };
      return true;
    });
    return { error: why };
  }
}

/** Why nvidia-smi gave no answer, in a few words. */
function smiFailure(err: NodeJS.ErrnoException & { signal?: string | null; status?: number | null }): string {
  if (err.code === 'ENOBUFS' || err.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return `nvidia-smi printed more than ${SMI_MAX_OUTPUT / 1024 ** 2} MiB`;
  if (err.code === 'ETIMEDOUT' || err.signal) return `nvidia-smi did not answer in ${SMI_TIMEOUT_MS / 1000}s`;
  return `nvidia-smi failed (exit ${err.status ?? err.code ?? '?'})`;
}

/** Memory a running job uses now: its cgroup's count where it has one, else the RSS of its processes. */
export function jobMemUsed(t: JobTarget, isolation: Isolation): number {
  const cg = t.cgroups?.length ? cgroupStats(isolation, t.cgroups).currentBytes : undefined;
  return cg ?? rssBytes(jobProcesses(t).procs);
}

/** "80G" as MiB; undefined for what is not a size. */
function sizeMiB(text: string): number | undefined {
  try {
    return Math.floor(parseSize(text, 'gpus') / 1024 ** 2) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The machine's GPUs with their memory in use; `error` says why there are none when nvidia-smi failed or hung. A list from config or JOBQ_GPUS ("0,1", folded into config) wins (for
 * machines without nvidia-smi; their memory use is then unknown and counts as free); else nvidia-smi on PATH; else none.
 */
export function listGpus(list: string | undefined, env: NodeJS.ProcessEnv = process.env): Gpu[] & { error?: string } {
  if (list !== undefined) {
    // "0,0" is one GPU: it must not be handed out twice.
    const byIndex = new Map<number, Gpu>();
    for (const item of list.split(',')) {
      const m = /^\s*(\d+)\s*(?::\s*(\S+)\s*)?$/.exec(item);
      if (!m || byIndex.has(Number(m[1]))) continue;
      const size = m[2] ? sizeMiB(m[2]) : undefined;
      byIndex.set(Number(m[1]), { index: Number(m[1]), ...(size ? { memTotalMiB: size } : {}) });
    }
    return [...byIndex.values()];
  }
  // Not installed: no GPUs here, nothing to retry. Hung or failing: said, and asked again later.
  const { out, missing, error } = smiSync(['--query-gpu=index,uuid,memory.used,memory.total', '--format=csv,noheader,nounits'], env);
  if (missing) return [];
  if (out === undefined) return Object.assign([], { error });
  // One GPU per index, as with a given list: a line printed twice must not be handed out twice.
  const byIndex = new Map<number, Gpu>();
  for (const line of out.split('\n')) {
    const [index, uuidText, used, total] = line.split(',').map((x) => x.trim());
    const i = smiNumber(index);
    if (i === undefined || byIndex.has(i)) continue;
    const [u, t, uuid] = [smiNumber(used), smiNumber(total), smiUuid(uuidText)];
    byIndex.set(i, { index: i, ...(uuid ? { uuid } : {}), ...(u !== undefined ? { memUsedMiB: u } : {}), ...(t ? { memTotalMiB: t } : {}) });
  }
  return [...byIndex.values()];
}
