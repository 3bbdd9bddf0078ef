// Finding and killing every process a test, stress or bench run started, by a tag in their environment.
import fs from 'node:fs';

/** Pids of live (non-zombie) processes whose environment holds JOBQ_TEST_TAG=tag. */
export function taggedPids(tag) {
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'latin1');
      const state = stat[stat.lastIndexOf(')') + 2];
      if (state === 'Z' || state === 'X') continue;
      if (fs.readFileSync(`/proc/${name}/environ`, 'latin1').includes(`JOBQ_TEST_TAG=${tag}`)) out.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** SIGKILLs every live process carrying the tag. */
export function killTagged(tag) {
  for (const pid of taggedPids(tag)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}
