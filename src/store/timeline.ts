// A job's memory and CPU over time: `samples` in its job dir, one line per sample ("SECONDS BYTES CPU_MS [HIGH]"),
// bounded. HIGH, where the job has a --mem-high, is its cgroup's throttle count so far (older readers ignore it).
import fs from 'node:fs';

/** One sample: seconds since the job started, memory in use (bytes), CPU time used so far (ms), times throttled so far. */
export interface Sample {
  t: number;
  mem: number;
  cpu: number;
  high?: number;
}

const lineOf = (s: Sample) => `${s.t.toFixed(1)} ${Math.round(s.mem)} ${Math.round(s.cpu)}${s.high !== undefined ? ` ${s.high}` : ''}\n`;

// Past this the file is thinned (every other sample kept) and the interval doubles: a week-long job stays under 1 MiB.
const MAX_BYTES = 1024 * 1024;

/** Appends samples for the supervisor, thinning the file when it grows past the bound. */
export class TimelineWriter {
  private bytes = 0;
  private stride = 1;
  private skipped = 0;

  constructor(
    private readonly file: string,
    private readonly maxBytes = MAX_BYTES,
  ) {
    try {
      this.bytes = fs.statSync(file).size;
    } catch {
      fs.writeFileSync(file, '', { mode: 0o600 });
    }
  }

  /** Records a sample (or skips it, once thinned: every `stride`-th is kept). */
  add(s: Sample): void {
    if (++this.skipped < this.stride) return;
    this.skipped = 0;
    const line = lineOf(s);
    try {
      fs.appendFileSync(this.file, line);
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
