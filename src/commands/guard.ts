// `jobq guard [--var NAME] [--instead CMD]`: the first line of a heavy script or make target.
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../domain/errors.js';
import type { CommandDef } from './definition.js';

/** The script that called us (`bash ./train.sh` → ./train.sh), read from the parent's command line; else undefined. */
function callingScript(): string | undefined {
  try {
    const argv = fs.readFileSync(`/proc/${process.ppid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const shell = /^(ba|da|z|k)?sh$/.test(path.basename(argv[0] ?? ''));
    const script = shell ? argv.slice(1).find((a) => !a.startsWith('-')) : undefined;
    // `sh -c '…'` has no script, only a command string.
    return script && !argv.includes('-c') && fs.existsSync(script) ? script : undefined;
  } catch {
    return undefined;
  }
}

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

export default function guard(o: { var: string; instead?: string }): number {
  if (process.env[o.var] === '1') return EXIT.ok;
  const job = process.env.JOBQ_JOB_ID;
  // Inside a jobq job that was started without this guard variable: say which flag was missing.
  if (job && process.env.BG_JOB === '1') {
    process.stderr.write(`jobq: this runs inside jobq job ${job}, but ${o.var}=1 is not set: start it with jobq run NAME --guard-var ${o.var} -- CMD...\n`);
    return EXIT.failure;
  }
  const script = o.instead ? undefined : callingScript();
  const name = script
    ? path
        .basename(script)
        .replace(/\.[^.]+$/, '')
        .replace(/[^\w.-]/g, '-') || 'job'
    : undefined;
  const instead = o.instead ?? (script ? `jobq run ${name} -- ${quote(script)}` : 'jobq run NAME -- CMD...');
  process.stderr.write(`jobq: this is a heavy job: run it through jobq instead: ${instead}  (${o.var}=1 is not set)\n`);
  return EXIT.failure;
}

export const command: CommandDef = {
  name: 'guard',
  summary: 'exit 0 inside a jobq job, else say "run this through jobq" and exit 1',
  options: [
    { flags: '--var <name>', description: 'the guard variable to check', default: 'BG_JOB' },
    { flags: '--instead <command>', description: 'the command to name in the refusal (default: jobq run NAME -- the calling script)' },
  ],
  afterHelp:
    "\nExamples:\n  jobq guard || exit 1          # first line of a heavy script: names 'jobq run train -- ./train.sh'\n  jobq guard --var GRAV_BG_JOB\n  @jobq guard --instead 'make $@-bg' || exit 1   # a make target\nSnippets without jobq on PATH: docs/guards.md",
  load: () => import('./guard.js'),
};
