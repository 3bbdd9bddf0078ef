// Reading logs: the last N lines, the last line as a terminal shows it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lastLine, lastLinesOffset, lastLinesText, printLastLines } from '../../src/output/follow.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-unit-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A stream that keeps what is written to it, as text. */
function collector(): NodeJS.WritableStream & { text: string } {
  const out = {
    text: '',
    write(c: Buffer | string) {
      out.text += c.toString();
      return true;
    },
  };
  return out as unknown as NodeJS.WritableStream & { text: string };
}

describe('log reading', () => {
  it('finds the last N lines, with or without a trailing newline', () => {
    const f = path.join(dir, 'l');
    fs.writeFileSync(f, 'a\nb\nc\n');
    const fd = fs.openSync(f, 'r');
    expect(lastLinesOffset(fd, 6, 2)).toBe(2);
    expect(lastLinesOffset(fd, 6, 10)).toBe(0);
    expect(lastLinesOffset(fd, 6, 0)).toBe(6);
    fs.closeSync(fd);
    fs.writeFileSync(f, 'a\nb\rprogress 50%\rprogress 60%');
    expect(lastLine(f)).toBe('progress 60%');
  });

  it("the end of a 2 GB single-line log costs what the end costs (read back, counted in this thread's I/O)", () => {
    // A `\r` progress job that never printed a newline: sparse, so it costs no disk.
    const f = path.join(dir, 'huge.log');
    fs.writeFileSync(f, 'start\n');
    fs.truncateSync(f, 2 * 1024 ** 3);
    fs.appendFileSync(f, '\rstep 1/9\rstep 9/9');
    const rchar = () => Number(/^rchar: (\d+)/m.exec(fs.readFileSync('/proc/thread-self/io', 'utf8'))![1]);
    const read = (fn: () => void) => {
      const before = rchar();
      fn();
      return rchar() - before;
    };
    const out = collector();
    // `jobq tail` (as a terminal shows it, and --raw), the dashboard and MCP: each reads at most its bound (+ /proc's own).
    expect(read(() => printLastLines(f, 10, out, false))).toBeLessThan(9 * 1024 ** 2);
    expect(out.text.endsWith('step 9/9')).toBe(true);
    expect(read(() => printLastLines(f, 10, { write: () => true } as unknown as NodeJS.WritableStream, true))).toBeLessThan(17 * 1024 ** 2);
    let text = '';
    expect(read(() => (text = lastLinesText(f, 200)))).toBeLessThan(2 * 1024 ** 2);
    expect(text.endsWith('step 9/9')).toBe(true);
    expect(read(() => lastLinesText(f, 50, 16 * 1024))).toBeLessThan(64 * 1024);
  });

  it('a window cut inside a UTF-8 character starts at the next whole one', () => {
    const f = path.join(dir, 'utf8.log');
    // "€" is 3 bytes: an 11-byte window (maxBytes) from the end starts inside the first of them.
    fs.writeFileSync(f, '€€€€\n');
    let out = collector();
    printLastLines(f, 1, out, false, 11);
    expect(out.text).not.toContain('\uFFFD');
    // The one line there is, its start cut off: shown, marked.
    expect(out.text).toBe('…€€€\n');
    // A line longer than the window: its end, not nothing.
    fs.writeFileSync(f, `${'x'.repeat(100)}\n`);
    out = collector();
    printLastLines(f, 1, out, false, 20);
    expect(out.text).toBe(`…${'x'.repeat(19)}\n`);
  });
});
