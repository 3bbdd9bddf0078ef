// Reading a log: its last N lines, and following it as it grows (raw bytes, so `\r` progress shows live).
import fs from 'node:fs';

/**
 * The byte offset where the last `n` lines of the file begin (a trailing partial line counts as one), looking no
 * further back than `floor`: the end of a log costs what the end costs, however long its last line.
 */
export function lastLinesOffset(fd: number, size: number, n: number, floor = 0): number {
  if (n <= 0) return size;
  const chunk = 64 * 1024;
  const buf = Buffer.alloc(chunk);
  let pos = size;
  let seen = 0;
  // A final newline ends the last line; it does not start another.
  let skipLast = true;
  while (pos > floor) {
    const len = Math.min(chunk, pos - floor);
    pos -= len;
    fs.readSync(fd, buf, 0, len, pos);
    for (let i = len - 1; i >= 0; i--) {
      if (buf[i] !== 10) {
        skipLast = false;
        continue;
      }
      if (skipLast && pos + i === size - 1) continue;
      if (++seen === n) return pos + i + 1;
    }
  }
  return floor;
}

/** Copies bytes [from, to) of fd to out; returns the new offset. */
function copyRange(fd: number, from: number, to: number, out: NodeJS.WritableStream): number {
  const buf = Buffer.alloc(64 * 1024);
  let pos = from;
  while (pos < to) {
    const n = fs.readSync(fd, buf, 0, Math.min(buf.length, to - pos), pos);
    if (n <= 0) break;
    out.write(Buffer.from(buf.subarray(0, n)));
    pos += n;
  }
  return pos;
}

/** A line as a terminal shows it: each `\r` returns to column 0 and what follows overwrites (a trailing `\r` of CRLF changes nothing). */
export function terminalLine(line: string): string {
  if (!line.includes('\r')) return line;
  let shown = '';
  for (const seg of line.split('\r')) shown = seg + shown.slice(seg.length);
  return shown;
}

// Past this, only the end of a giant line (a progress bar that never printed a newline) is read back.
const MAX_TAIL_BYTES = 8 * 1024 * 1024;

/** A log opened for reading: never through a symlink, never blocking on a FIFO put in its place; a regular file only. */
export function openLogForReading(file: string): number {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  if (!fs.fstatSync(fd).isFile()) {
    fs.closeSync(fd);
    throw Object.assign(new Error(`${file} is not a regular file`), { code: 'ENOTREG' });
  }
  return fd;
}

/**
 * Prints the last n lines of a file; returns the offset reached (for following). Unless `raw`, lines are shown
 * as a terminal would (`\r` updates collapsed) and n counts those lines; raw copies the bytes as they are.
 */
export function printLastLines(file: string, n: number, out: NodeJS.WritableStream, raw = true, maxBytes = MAX_TAIL_BYTES): number {
  const fd = openLogForReading(file);
  try {
    const size = fs.fstatSync(fd).size;
    const floor = Math.max(0, size - maxBytes);
    if (raw) return copyRange(fd, lastLinesOffset(fd, size, n, floor), size, out);
    if (n <= 0) return size;
    // One read of the window; the lines are found in memory.
    const buf = Buffer.alloc(size - floor);
    fs.readSync(fd, buf, 0, buf.length, floor);
    // A window cut inside a UTF-8 character starts at the next whole one.
    let skip = 0;
    if (floor > 0) while (skip < 3 && skip < buf.length && (buf[skip]! & 0xc0) === 0x80) skip++;
    let text = buf.subarray(skip).toString('utf8');
    // A window cut inside a line starts at its next line or `\r` update (the fragment before was overwritten), if
    // anything follows; else the fragment is the end of the one line there is, shown as such. NULs draw nothing.
    const cut = floor > 0 ? text.search(/[\r\n]/) : -1;
    if (cut >= 0 && text.slice(cut + 1).trim()) text = text.slice(cut + 1);
    else if (floor > 0) text = `…${text}`;
    text = text.replace(/\0/g, '');
    const lines = text.split('\n');
    const last = lines.pop()!;
    lines.splice(0, Math.max(0, lines.length - (last ? n - 1 : n)));
    const shown = lines.map((l) => terminalLine(l) + '\n');
    if (last) shown.push(terminalLine(last));
    out.write(shown.join(''));
    return size;
  } finally {
    fs.closeSync(fd);
  }
}

/** Follows a file from `offset`, waking on inotify (with a slow poll as a net), until isDone() says so; then drains. */
export async function followFile(file: string, offset: number, out: NodeJS.WritableStream, isDone: () => Promise<boolean>, pollMs = 250): Promise<void> {
  let pos = offset;
  const fd = fs.openSync(file, 'r');
  let wake: (() => void) | undefined;
  let watcher: fs.FSWatcher | undefined;
  try {
    watcher = fs.watch(file, () => wake?.());
    watcher.on('error', () => undefined);
  } catch {
    /* no inotify: the poll below still works */
  }
  const drain = () => {
    const size = fs.fstatSync(fd).size;
    // A capped or truncated log starts again from its top.
    if (size < pos) pos = 0;
    pos = copyRange(fd, pos, size, out);
  };
  try {
    for (;;) {
      drain();
      if (await isDone()) {
        drain();
        return;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    watcher?.close();
    fs.closeSync(fd);
  }
}

/** The last non-empty line of a file, taking the text after the last `\r` (what a terminal would show). */
export function lastLine(file: string, maxBytes = 4096): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, maxBytes);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      const lines = buf
        .toString('utf8')
        .split('\n')
        .map(terminalLine)
        .filter((l) => l.trim());
      return (lines.pop() ?? '').replace(/[\x00-\x1f\x7f]/g, '').slice(0, 200);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** The last n lines of a file as a terminal shows them, as a string: read from at most maxBytes of its end. */
export function lastLinesText(file: string, n: number, maxBytes = 1024 * 1024): string {
  const parts: string[] = [];
  try {
    printLastLines(file, n, { write: (c: Buffer | string) => parts.push(c.toString()) > 0 } as unknown as NodeJS.WritableStream, false, maxBytes);
  } catch {
    return '';
  }
  const text = parts.join('');
  return text.length > maxBytes ? `…${text.slice(-maxBytes)}` : text;
}

/** Where a log read with `since` goes on, and what is new since then: collapsed as a terminal shows it, bounded. */
export function readSince(file: string, since: number, maxBytes: number, match?: RegExp) {
  let size = 0;
  try {
    size = fs.statSync(file).size;
  } catch {
    return { output: '', next: since };
  }
  // A log cut by its cap (or replaced) is shorter than the cursor: read it from its top.
  const from = since > size ? 0 : since;
  const to = Math.min(size, from + maxBytes);
  const buf = Buffer.alloc(to - from);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, buf, 0, buf.length, from);
  } finally {
    fs.closeSync(fd);
  }
  // Only whole lines (up to the last newline, or a \r update) unless the read reached the end of the file.
  let text = buf.toString('utf8');
  const cut = to < size ? Math.max(text.lastIndexOf('\n'), text.lastIndexOf('\r')) + 1 : text.length;
  text = text.slice(0, cut);
  const next = from + Buffer.byteLength(text);
  let lines = text.split('\n').map(terminalLine);
  if (lines.at(-1) === '') lines.pop();
  if (match) lines = lines.filter((l) => match.test(l));
  return { output: lines.join('\n'), next, ...(since > size ? { restarted: 'the log was cut or replaced: read from its top' } : {}), more: to < size };
}
