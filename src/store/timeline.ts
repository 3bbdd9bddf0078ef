// A job's memory and CPU over time: `samples` in its job dir, one line per sample ("SECONDS BYTES CPU_MS [HIGH [VRAM]]"),
// bounded. HIGH, where the job has a --mem-high, is its cgroup's throttle count so far (`-` when it has none); VRAM,
// where it holds GPUs, the GPU memory its processes use (bytes). Older readers read the first three.
import fs from 'node:fs';
import { openToRead } from './trust.js';

/** One sample: seconds since the job started, memory in use (bytes), CPU time used so far (ms), times throttled so far. */
export interface Sample {
  t: number;
  mem: number;
  cpu: number;
  high?: number;
  /** GPU memory its processes use (bytes), where it holds GPUs. */
  vram?: number;
}

function lineOf(s: Sample): string {
  const cols = [s.t.toFixed(1), String(Math.round(s.mem)), String(Math.round(s.cpu))];
  if (s.high !== undefined || s.vram !== undefined) cols.push(s.high === undefined ? '-' : String(s.high));
  if (s.vram !== undefined) cols.push(String(Math.round(s.vram)));
  return `${cols.join(' ')}\n`;
}

// Past this the file is thinned (every other sample kept) and the interval doubles: a week-long job stays under 1 MiB.
const MAX_BYTES = 1024 * 1024;

/** Appends samples for the supervisor, thinning the file when it grows past the bound. */
export class TimelineWriter {
  private bytes = 0;
  private stride = 1;
  private skipped = 0;

  /** A new file's first sample (taken as the job starts), written with the second: a job over by then makes no file. */
  private first?: Sample;

  constructor(
    private readonly file: string,
    private readonly maxBytes = MAX_BYTES,
  ) {
    try {
      this.bytes = fs.statSync(file).size;
    } catch {
      // No file yet: made with the second sample.
      this.bytes = -1;
    }
  }

  /** Records a sample (or skips it, once thinned: every `stride`-th is kept). */
  add(s: Sample): void {
    if (++this.skipped < this.stride) return;
    this.skipped = 0;
    if (this.bytes < 0 && !this.first) {
      this.first = s;
      return;
    }
    const line = (this.first ? lineOf(this.first) : '') + lineOf(s);
    try {
      if (this.bytes < 0) {
        fs.writeFileSync(this.file, line, { mode: 0o600, flag: 'a' });
        this.bytes = 0;
        this.first = undefined;
      } else fs.appendFileSync(this.file, line);
      this.bytes += line.length;
      if (this.bytes > this.maxBytes) this.thin();
    } catch {
      /* a full disk loses samples, never the job */
    }
  }

  private thin(): void {
    const kept = readTimeline(this.file).filter((_, i) => i % 2 === 0);
    const text = kept.map(lineOf).join('');
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, text, { mode: 0o600 });
    fs.renameSync(tmp, this.file);
    this.bytes = text.length;
    this.stride *= 2;
  }
}

/** One line of the file; undefined for a line cut short or not a sample. */
function parseLine(line: string): Sample | undefined {
  const [t, mem, cpu, high, vram] = line.split(' ').map(Number);
  if (!Number.isFinite(t) || !Number.isFinite(mem) || !Number.isFinite(cpu)) return undefined;
  return { t: t!, mem: mem!, cpu: cpu!, ...(Number.isFinite(high) ? { high } : {}), ...(Number.isFinite(vram) ? { vram } : {}) };
}

/** The last sample of a job, read from the file's end (a live job's current figures). */
export function lastSample(file: string): Sample | undefined {
  const fd = openToRead(file);
  if (fd === undefined) return undefined;
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(size, 256));
    fs.readSync(fd, buf, 0, buf.length, size - buf.length);
    return parseLine(buf.toString('latin1').trim().split('\n').at(-1) ?? '');
  } finally {
    fs.closeSync(fd);
  }
}

/** The samples of a job (empty if none were taken). */
export function readTimeline(file: string): Sample[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch {
    return [];
  }
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const [t, mem, cpu, high] = line.split(' ').map(Number);
    if (Number.isFinite(t) && Number.isFinite(mem) && Number.isFinite(cpu))
      out.push({ t: t!, mem: mem!, cpu: cpu!, ...(Number.isFinite(high) ? { high } : {}) });
  }
  return out;
}
