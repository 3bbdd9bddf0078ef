// Reading logs: the last N lines, the last line as a terminal shows it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lastLine, lastLinesOffset } from '../../src/output/follow.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-unit-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

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
});
