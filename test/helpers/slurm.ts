// The Slurm cluster the tests use: the one SLURM_CONF points at if it answers (.ci/run starts one), else, only when
// asked with JOBQ_TEST_SLURM_START=1, one scripts/slurm-cluster.sh starts (as root); or a reason to skip. A plain
// `npm test` never installs packages or leaves daemons running.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach } from 'vitest';
import { ROOT, useWorld, type World } from './jobq.js';

export interface Cluster {
  ok: boolean;
  why?: string;
  env: Record<string, string>;
  /** scancel every Slurm job whose record is in this state dir. */
  cancelAll(home: string): void;
}

const answers = (conf: string) =>
  spawnSync('scontrol', ['ping'], { env: { ...process.env, SLURM_CONF: conf }, encoding: 'utf8', timeout: 20_000 }).stdout?.includes('is UP');

/** Finds or starts the cluster (once per process; the start is serialized across test files with flock). */
export function slurmCluster(): Cluster {
  let conf = process.env.SLURM_CONF;
  let why: string | undefined;
  if (!conf || !answers(conf)) {
    if (process.env.JOBQ_TEST_SLURM_START !== '1')
      why =
        'no Slurm cluster answers (SLURM_CONF); .ci/run starts one, or JOBQ_TEST_SLURM_START=1 lets the tests start one (as root: apt-get, and its daemons stay up)';
    else if (process.getuid?.() !== 0) why = 'no Slurm cluster answers (SLURM_CONF) and starting one needs root';
    else {
      const r = spawnSync('flock', ['-o', '/tmp/jobq-slurm.lock', 'bash', path.join(ROOT, 'scripts', 'slurm-cluster.sh'), 'start'], {
        encoding: 'utf8',
        timeout: 300_000,
      });
      conf = /export SLURM_CONF=(\S+)/.exec(r.stdout ?? '')?.[1];
      if (r.status !== 0 || !conf || !answers(conf)) why = `scripts/slurm-cluster.sh start failed: ${(r.stderr ?? '').trim().split('\n').pop()}`;
    }
  }
  const env: Record<string, string> = conf && !why ? { SLURM_CONF: conf } : {};
  return {
    ok: !why,
    why,
    env,
    cancelAll(home) {
      const ids: string[] = [];
      for (const id of fs.existsSync(path.join(home, 'jobs')) ? fs.readdirSync(path.join(home, 'jobs')) : []) {
        try {
          const s = JSON.parse(fs.readFileSync(path.join(home, 'jobs', id, 'job.json'), 'utf8')).placement?.ids;
          if (s) ids.push(s.arrayJobId ?? s.jobId);
        } catch {
          /* not a record */
        }
      }
      if (ids.length) spawnSync('scancel', [...new Set(ids)], { env: { ...process.env, ...env } });
    },
  };
}

/** Runs a Slurm client command against the cluster. */
export function slurmCmd(cluster: Cluster, cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { env: { ...process.env, ...cluster.env }, encoding: 'utf8' });
}

/**
 * For a Slurm test file: the cluster, and a fresh jobq world per test wired to it (useWorld; each Slurm job it made is
 * cancelled before the world is cleaned up). Says at load why the file skips: vitest runs no hook of a file whose
 * tests all skip.
 */
export function slurmWorlds(what: string): { cluster: Cluster; world(): World } {
  const cluster = slurmCluster();
  if (!cluster.ok) console.warn(`${what} skipped: ${cluster.why}`);
  const w = useWorld({ env: cluster.env });
  // Registered after useWorld's: runs before its cleanup.
  afterEach(() => {
    cluster.cancelAll(w.home);
  });
  return { cluster, world: () => w };
}
