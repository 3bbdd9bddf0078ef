// `jobq guard [--var NAME]`: the first line of a heavy script.
import { EXIT } from '../domain/errors.js';

export default function guard(o: { var: string }): number {
  if (process.env[o.var] === '1') return EXIT.ok;
  process.stderr.write(`jobq: this is a heavy job: run it through jobq (jobq run NAME -- CMD...); ${o.var}=1 is not set\n`);
  return EXIT.failure;
}
