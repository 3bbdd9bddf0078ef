// Caps a log in place through the supervisor's own descriptor (so a deleted or replaced path changes nothing).
import fs from 'node:fs';

const CHUNK = 1024 * 1024;

/**
 * Drops the oldest part of the file behind `fd` (opened O_RDWR, not O_APPEND) so it holds about maxBytes/2 of
 * the newest output behind a marker line. Whatever the job appends while the copy runs is copied too (the
 * loop chases the end until it stands still); the caller freezes the job around this where it can, so that
 * nothing lands between the last check and the truncate. Cuts once the file passes triggerBytes (at most maxBytes).
 * Returns the bytes dropped (0 if under).
 */
export function capLogFd(fd: number, maxBytes: number, triggerBytes = maxBytes): number {
  let size = fs.fstatSync(fd).size;
  if (size <= triggerBytes) return 0;
  let from = size - Math.floor(maxBytes / 2);
  const buf = Buffer.alloc(Math.min(CHUNK, Math.max(4096, maxBytes)));
  // Start the kept part at a line boundary when one is near, so its first line is whole.
  const head = fs.readSync(fd, buf, 0, Math.min(buf.length, 4096), from);
  const nl = buf.subarray(0, head).indexOf(10);
  if (nl >= 0) from += nl + 1;
  const marker = Buffer.from(`[jobq] ${from} bytes of older output dropped at ${new Date().toISOString()} (log cap ${maxBytes} bytes)\n`);
  fs.writeSync(fd, marker, 0, marker.length, 0);
  // Copy forward chunk by chunk: the destination is always behind the source, so nothing is overwritten unread.
  let to = marker.length;
  let pos = from;
  for (let round = 0; round < 64; round++) {
    while (pos < size) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
      if (n <= 0) break;
      fs.writeSync(fd, buf, 0, n, to);
      pos += n;
      to += n;
    }
    const now = fs.fstatSync(fd).size;
    if (now === size) break;
    size = now;
  }
  fs.ftruncateSync(fd, to);
  return from;
}

/** Appends one line to the log (a marker of what jobq did), through the same open file as the job's output. */
export function appendLogLine(fd: number, line: string): void {
  try {
    const a = fs.openSync(`/proc/self/fd/${fd}`, fs.constants.O_WRONLY | fs.constants.O_APPEND);
    try {
      // On a line of its own, even after a progress bar that never printed its newline.
      const size = fs.fstatSync(fd).size;
      const last = Buffer.alloc(1);
      const lead = size > 0 && fs.readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 10 ? '\n' : '';
      fs.writeSync(a, lead + (line.endsWith('\n') ? line : line + '\n'));
    } finally {
      fs.closeSync(a);
    }
  } catch {
    /* a log we cannot write to cannot hold the marker either */
  }
}
