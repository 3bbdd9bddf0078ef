// A Slurm cluster: jobs submitted with sbatch, their state read from squeue/scontrol/sacct, stopped with scancel.
import { JobqError } from '../domain/errors.js';
import type { JobRecord } from '../domain/job.js';
import type { CancelResult, JobView, Runner } from './backend.js';

/** Runs jobs on a Slurm cluster. */
export class SlurmRunner implements Runner {
  readonly kind = 'slurm';

  async submit(): Promise<JobRecord[]> {
    throw new JobqError('USAGE', 'the Slurm backend is not built yet');
  }

  async refresh(): Promise<void> {}

  async cancel(): Promise<CancelResult> {
    throw new JobqError('USAGE', 'the Slurm backend is not built yet');
  }

  async pause(_h: unknown, v: JobView): Promise<void> {
    throw new JobqError('USAGE', `${v.rec.id}: pause is not built for Slurm yet`);
  }

  async resume(_h: unknown, v: JobView): Promise<void> {
    throw new JobqError('USAGE', `${v.rec.id}: resume is not built for Slurm yet`);
  }
}
