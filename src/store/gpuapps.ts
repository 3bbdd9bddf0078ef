// nvidia-smi's per-process GPU memory, shared by the supervisors of a state dir (`gpu-apps.json`): with 64 jobs
// packed on a machine's GPUs, one question per sample interval for all of them rather than one each.
import fs from 'node:fs';
import { gpuProcessMemory } from '../process/resources.js';
import { writeFileAtomic } from './store.js';
import { openToRead } from './trust.js';

interface Cached {
  at: number;
  /** [pid, bytes] over all GPUs. */
  pids: Array<[number, number]>;
}

// A turn older than this was taken by a supervisor that died while nvidia-smi had 5 s to answer.
const STALE_TURN_MS = 10_000;

function readCache(file: string): Cached | undefined {
  const fd = openToRead(file);
  if (fd === undefined) return undefined;
  try {
    const c = JSON.parse(fs.readFileSync(fd, 'utf8')) as Cached;
    return typeof c.at === 'number' && Array.isArray(c.pids) ? c : undefined;
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** The turn to ask nvidia-smi (an O_EXCL file): one supervisor asks, the others read its answer. */
function takeTurn(turn: string): boolean {
  for (let tries = 0; tries < 2; tries++) {
    try {
      fs.closeSync(fs.openSync(turn, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600));
      return true;
    } catch {
      const st = fs.lstatSync(turn, { throwIfNoEntry: false });
      if (!st || Date.now() - st.mtimeMs < STALE_TURN_MS) return false;
      fs.rmSync(turn, { force: true });
    }
  }
  return false;
}

/**
 * GPU memory per process (pid -> bytes): the state dir's last answer if younger than `maxAgeMs`, else asked now by
 * whichever supervisor takes the turn (the others keep the last answer until the next sample). Undefined: no answer.
 */
export async function sharedGpuMemory(file: string, maxAgeMs: number): Promise<Map<number, number> | undefined> {
  const cached = readCache(file);
  if (cached && Date.now() - cached.at < maxAgeMs) return new Map(cached.pids);
  const turn = `${file}.asking`;
  if (!takeTurn(turn)) return cached ? new Map(cached.pids) : undefined;
  try {
    const m = await gpuProcessMemory();
    if (m) writeFileAtomic(file, JSON.stringify({ at: Date.now(), pids: [...m] } satisfies Cached), false);
    return m;
  } catch {
    return undefined;
  } finally {
    fs.rmSync(turn, { force: true });
  }
}
