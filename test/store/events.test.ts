// jobq's own log lines: pino's format, and a file rotated by another process is followed, not written behind.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { appendEvent } from '../../src/store/events.js';

it('a line after another process rotated the file lands in the new file, not in the rotated one', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-events-'));
  const file = path.join(dir, 'events.log');
  try {
    appendEvent(file, 'info', 'first', { id: 'a' });
    // What a second jobq process does when the file passes its size: rename it aside, start a new one.
    fs.renameSync(file, `${file}.1`);
    fs.writeFileSync(file, '', { mode: 0o600 });
    appendEvent(file, 'warn', 'second', { id: 'a' });
    const lines = (f: string) =>
      fs
        .readFileSync(f, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
    expect(lines(`${file}.1`).map((l) => l.msg)).toEqual(['first']);
    expect(lines(file)).toEqual([expect.objectContaining({ msg: 'second', level: 40, id: 'a', pid: process.pid })]);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    // Removed outright: the next line makes it again, 0600.
    fs.rmSync(file);
    appendEvent(file, 'info', 'third');
    expect(lines(file).map((l) => l.msg)).toEqual(['third']);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
