// Caps a log in place: keeps the newest half, prefixed by a marker line saying how much was dropped.
import fs from 'node:fs';

const CHUNK = 1024 * 1024;

/** Drops the oldest part of `file` so it holds about maxBytes/2 of newest output plus a marker; copies in 1 MiB chunks. */
export function capLog(file: string, maxBytes: number): number {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
  try {
    const size = fs.fstatSync(fd).size;
    if (size <= maxBytes) return 0;
    let from = size - Math.floor(maxBytes / 2);
    const buf = Buffer.alloc(Math.min(CHUNK, maxBytes));
    // Start the kept part at a line boundary when one is near, so its first line is whole.
    const head = fs.readSync(fd, buf, 0, Math.min(buf.length, 4096), from);
    const nl = buf.subarray(0, head).indexOf(10);
    if (nl >= 0) from += nl + 1;
    const marker = Buffer.from(`[jobq: ${from} bytes of older output dropped at ${new Date().toISOString()} (log cap ${maxBytes} bytes)]\n`);
    fs.writeSync(fd, marker, 0, marker.length, 0);
    // Copy forward chunk by chunk: the destination is always behind the source, so nothing is overwritten unread.
    let to = marker.length;
    for (let pos = from; pos < size; ) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
      if (n <= 0) break;
      fs.writeSync(fd, buf, 0, n, to);
      pos += n;
      to += n;
    }
    // The job appends (O_APPEND), so its next write lands at the new end.
    fs.ftruncateSync(fd, to);
    return from;
  } finally {
    fs.closeSync(fd);
  }
}
