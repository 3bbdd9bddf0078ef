// `jobq guard [--var NAME]`: the first line of a heavy script.
import { EXIT } from '../domain/errors.js';

export default function guard(o: { var: string }): number {
  if (process.env[o.var] === '1') return EXIT.ok;
  const job = process.env.JOBQ_JOB_ID;
  // Inside a jobq job that was started without this guard variable: say which flag was missing.
  if (job && process.env.BG_JOB === '1') {
    process.stderr.write(`jobq: this runs inside jobq job ${job}, but ${o.var}=1 is not set: start it with jobq run NAME --guard-var ${o.var} -- CMD...\n`);
  } else {
    process.stderr.write(`jobq: this is a heavy job: run it through jobq (jobq run NAME -- CMD...); ${o.var}=1 is not set\n`);
  }
  return EXIT.failure;
}
