// Capping a log through a descriptor: newest half kept behind a marker, appends during the copy kept.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { capLogFd } from '../../src/supervisor/logcap.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-unit-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('log capping', () => {
  it('caps a log in place, keeping the newest half behind a marker line', () => {
    const f = path.join(dir, 'big.log');
    fs.writeFileSync(f, Array.from({ length: 5000 }, (_, i) => `line ${i}`).join('\n') + '\n');
    const before = fs.statSync(f).size;
    const fd = fs.openSync(f, 'r+');
    const dropped = capLogFd(fd, 20_000);
    fs.closeSync(fd);
    const text = fs.readFileSync(f, 'utf8');
    expect(dropped).toBeGreaterThan(before - 11_000);
    expect(text).toMatch(/^\[jobq\] \d+ bytes of older output dropped at .* \(log cap 20000 bytes\)\nline \d+\n/);
    expect(text.endsWith('line 4999\n')).toBe(true);
    expect(fs.statSync(f).size).toBeLessThanOrEqual(10_200);
  });
});
