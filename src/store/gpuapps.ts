// nvidia-smi's per-process GPU memory, shared by the supervisors of a state dir (`gpu-apps.json`): with 64 jobs
// packed on a machine's GPUs, one question per sample interval for all of them rather than one each. The file is
// data: an entry that is not [pid, uuid, bytes], an answer from another boot, or one dated in the future is not used.
import fs from 'node:fs';
import { bootId } from '../process/proc.js';
import { type GpuApp, gpuAppsAsync } from '../process/resources.js';
import { writeFileAtomic } from './store.js';
import { readOwnJson } from './trust.js';

interface Cached {
  at: number;
  boot: string;
  /** Undefined: nvidia-smi failed or hung when asked (remembered too, or each supervisor would ask at each sample). */
  apps?: GpuApp[];
}

// A turn older than this was taken by a supervisor that died while nvidia-smi had 5 s to answer.
const STALE_TURN_MS = 10_000;
// An answer older than this is not used even while another supervisor asks: a job could be ended on it.
const STALE_ANSWER_MS = 10_000;

const isApp = (a: unknown): a is [number, string, number] =>
  Array.isArray(a) && Number.isInteger(a[0]) && a[0] > 0 && typeof a[1] === 'string' && Number.isFinite(a[2]) && a[2] >= 0;

function readCache(file: string): Cached | undefined {
  // Another user's file (one who could write the state dir) could end a job through --gpu-mem-enforce: not used.
  const c = readOwnJson(file, 16 * 1024 ** 2) as { at?: unknown; boot?: unknown; apps?: unknown; failed?: unknown } | undefined;
  if (typeof c?.at !== 'number' || c.boot !== bootId()) return undefined;
  if (c.failed === true) return { at: c.at, boot: c.boot };
  if (!Array.isArray(c.apps) || !c.apps.every(isApp)) return undefined;
  return { at: c.at, boot: c.boot, apps: c.apps.map(([pid, uuid, bytes]) => ({ pid, ...(uuid ? { uuid } : {}), bytes })) };
}

/** Age in ms, or Infinity for a date in the future (a clock stepped back must not make an answer fresh for ever). */
const ageOf = (t: number) => (Date.now() >= t ? Date.now() - t : Number.POSITIVE_INFINITY);

/** The turn to ask nvidia-smi (an O_EXCL file): one supervisor asks, the others read its answer. */
function takeTurn(turn: string): boolean {
  for (let tries = 0; tries < 2; tries++) {
    try {
      fs.closeSync(fs.openSync(turn, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600));
      return true;
    } catch {
      try {
        const st = fs.lstatSync(turn, { throwIfNoEntry: false });
        if (st && ageOf(st.mtimeMs) < STALE_TURN_MS) return false;
        // Stale, dated in the future, or not a plain file: taken back.
        fs.rmSync(turn, { force: true, recursive: st?.isDirectory() });
      } catch {
        return false;
      }
    }
  }
  return false;
}

/**
 * GPU memory per process and GPU: the state dir's last answer if younger than `maxAgeMs`, else asked now by whichever
 * supervisor takes the turn (the others keep a recent answer until the next sample). Undefined: no answer to trust.
 */
export async function sharedGpuApps(file: string, maxAgeMs: number): Promise<GpuApp[] | undefined> {
  const cached = readCache(file);
  if (cached && ageOf(cached.at) < maxAgeMs) return cached.apps;
  const turn = `${file}.asking`;
  if (!takeTurn(turn)) return cached && ageOf(cached.at) < STALE_ANSWER_MS ? cached.apps : undefined;
  try {
    const apps = await gpuAppsAsync();
    const answer = apps ? { apps: apps.map((a) => [a.pid, a.uuid ?? '', a.bytes]) } : { failed: true };
    writeFileAtomic(file, JSON.stringify({ at: Date.now(), boot: bootId(), ...answer }), false);
    return apps;
  } catch {
    return undefined;
  } finally {
    try {
      fs.rmSync(turn, { force: true });
    } catch {
      /* taken back by another as stale, or not ours to remove: the next turn sorts it out */
    }
  }
}
