// jobq's command line: parses with the program, maps errors to exit codes (the only process.exit).
import { CommanderError } from 'commander';
import { EXIT, JobqError } from './domain/errors.js';
import { closeInheritedBeforeChildren } from './process/proc.js';
import { adoptStandby, standbyFd } from './process/standby.js';
import { buildProgram } from './program.js';

/** Runs the CLI and exits with the code the command chose. */
export async function main(argv = process.argv): Promise<never> {
  // bin/jobq started us without the caller's NODE_EXTRA_CA_CERTS (no TLS here): jobs, hooks and tools get it back.
  const ca = process.env.JOBQ_CALLER_CA_CERTS;
  if (ca !== undefined) {
    process.env.NODE_EXTRA_CA_CERTS = ca;
    delete process.env.JOBQ_CALLER_CA_CERTS;
  }
  // bin/jobq started us through bash (run): the variables bash sets or rewrites get the caller's values back.
  const names = process.env.JOBQ_CALLER_VARS;
  if (names !== undefined) {
    for (const n of names.split(' ').filter((x) => /^[A-Z_]+$/.test(x))) {
      const v = process.env[`JOBQ_CALLER_${n}`];
      if (v === undefined) delete process.env[n];
      else process.env[n] = v;
      delete process.env[`JOBQ_CALLER_${n}`];
    }
    delete process.env.JOBQ_CALLER_VARS;
  }
  // bin/jobq may have started `run`'s supervisor beside us: ours to use or let go, and no job sees the variable.
  adoptStandby();
  // Nothing of the caller's above fd 2 may reach a dispatcher, supervisor or job (a held flock, a pipe a reader waits on).
  closeInheritedBeforeChildren(() => {
    const keep = standbyFd();
    return keep === undefined ? [] : [keep];
  });
  // `| head` closes stdout early: that is not an error. Handlers go on each stream as it is first made (making
  // one costs 1-2 ms, and most commands write through out() instead).
  const made = { stdout: onFirstUse('stdout'), stderr: onFirstUse('stderr') };
  let code = EXIT.ok as number;
  const program = buildProgram((n) => (code = n));
  // --no-color is global, yet people put it after the command too: take it from anywhere before `--`.
  const dd = argv.indexOf('--');
  const head = dd < 0 ? argv : argv.slice(0, dd);
  if (head.slice(3).includes('--no-color')) {
    argv = [...argv.slice(0, 2), '--no-color', ...head.slice(2).filter((a) => a !== '--no-color'), ...(dd < 0 ? [] : argv.slice(dd))];
  }
  const hasDashDash = dd >= 0;
  program.exitOverride();
  program.configureOutput({
    writeErr: (s) => process.stderr.write(s.replace(/^error: /, 'jobq: ')),
    outputError: (s, write) => write(s.replace(/^error: /, 'jobq: ')),
  });
  for (const c of program.commands) {
    c.exitOverride();
    c.configureOutput({
      outputError: (s, write) => {
        let msg = s.replace(/^error: /, 'jobq: ');
        // `jobq run m1 python3 train.py --epochs 1`: the command's own options landed on jobq.
        if (c.name() === 'run' && !hasDashDash && /unknown option/.test(msg))
          msg = msg.replace(/\n?$/, " — did you forget '--' before the command? (jobq run NAME [options] -- CMD ARGS...)\n");
        write(msg);
      },
    });
  }
  try {
    await program.parseAsync(argv);
  } catch (e) {
    code = exitCodeFor(e);
  }
  process.exitCode = code;
  // Let stdout drain before leaving (large --json output into a pipe).
  await new Promise<void>((r) => {
    const s = made.stdout();
    s?.writableNeedDrain ? s.once('drain', () => r()) : r();
  });
  process.exit(code);
}

/** Puts the EPIPE handler on process[name] when it is first made; returns the stream if it was made. */
function onFirstUse(name: 'stdout' | 'stderr'): () => NodeJS.WriteStream | undefined {
  const d = Object.getOwnPropertyDescriptor(process, name);
  let stream: NodeJS.WriteStream | undefined;
  const make = (): NodeJS.WriteStream => {
    if (!stream) {
      stream = (d?.get ? d.get.call(process) : d?.value) as NodeJS.WriteStream;
      stream.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EPIPE') process.exit(EXIT.ok);
      });
    }
    return stream;
  };
  if (d?.configurable && d.get) Object.defineProperty(process, name, { configurable: true, enumerable: d.enumerable, get: make });
  else make();
  return () => stream;
}

function exitCodeFor(e: unknown): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT.ok;
    return EXIT.usage;
  }
  if (e instanceof JobqError) {
    process.stderr.write(`jobq: ${e.message}\n`);
    return e.exitCode;
  }
  process.stderr.write(`jobq: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
  return EXIT.failure;
}

void main();
