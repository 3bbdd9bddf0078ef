// The places jobs run: the one list that config, `run --backend`, its help and the Backend read. A new place is a
// folder beside local/ and slurm/ that makes its Runner, and one line here (docs/protocol.md).
import type { Runner } from './backend.js';

interface Place {
  /** What `run --help` says of it. */
  help: string;
  /** Its Runner, loaded only when a command uses that place. */
  load: () => Promise<Runner>;
}

export const PLACES: Readonly<Record<string, Place>> = {
  local: { help: 'this machine, default', load: async () => (await import('./local/runner.js')).makeRunner() },
  slurm: { help: 'sbatch; docs/slurm.md', load: async () => (await import('./slurm/runner.js')).makeRunner() },
};

export const BACKENDS: readonly string[] = Object.keys(PLACES);
