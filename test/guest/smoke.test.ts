// The guest is the world users run jobq in: a normal user under systemd as PID 1, cgroup v2, with a user manager
// and a login session. Later guest tests rely on these facts; if one fails, the VM is wrong, not jobq.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const GUEST = !!process.env.JOBQ_GUEST;
const WHY = 'JOBQ_GUEST is not set: these tests run in the systemd guest (bash scripts/systemd-vm.sh test)';
if (!GUEST) console.warn(`guest smoke test skipped: ${WHY}`);

describe.skipIf(!GUEST)(GUEST ? 'the systemd guest' : `the systemd guest (skipped: ${WHY})`, () => {
  it('runs the tests as a normal user under systemd as PID 1', () => {
    expect(process.getuid?.()).not.toBe(0);
    expect(readFileSync('/proc/1/comm', 'utf8').trim()).toBe('systemd');
  });

  it('has cgroup v2 (the unified hierarchy)', () => {
    expect(existsSync('/sys/fs/cgroup/cgroup.controllers')).toBe(true);
  });

  it('has a login session that reaches the user manager', () => {
    expect(process.env.XDG_RUNTIME_DIR).toBe(`/run/user/${process.getuid?.()}`);
    const r = spawnSync('systemctl', ['--user', 'show-environment'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('XDG_RUNTIME_DIR=');
  });
});
