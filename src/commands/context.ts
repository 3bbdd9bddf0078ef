// What every command needs: merged config, the backend, colour, and JSON printing.
import fs from 'node:fs';
import type { Command } from 'commander';
import type { Backend, JobView } from '../backend/backend.js';
import { openJobs } from '../backend/jobs.js';
import { onTheSide } from '../background.js';
import { type Config, loadConfig } from '../config/config.js';
import { EXIT, JobqError } from '../domain/errors.js';
import { formatDuration, parseDuration } from '../domain/units.js';
import { makeChalk } from '../output/color.js';
import { pauseSync } from '../process/proc.js';
import { stateHome } from '../store/store.js';

/**
 * Config, backend and colour for a command; the backend opens the state dir on first use. `reads`: a command that only
 * reads jobs, which writes none of the caller's config into the state dir (only commands that change jobs do).
 */
export function context(cmd: Command, how: { reads?: boolean } = {}) {
  const { config, warnings } = loadConfig();
  for (const w of warnings) process.stderr.write(`jobq: warning: ${w}\n`);
  const root = cmd.parent ?? cmd;
  const noColor = root.opts().color === false;
  let backend: Backend | undefined;
  return {
    config: config as Config,
    chalk: makeChalk(noColor),
    get backend(): Backend {
      if (!backend) {
        backend = openJobs(config.stateDir ?? stateHome(), config);
        // Any command that opens the state dir keeps dispatch alive: jobs that wait get a dispatcher if theirs is gone.
        onTheSide(backend.keepDispatching(how.reads ? undefined : config));
      }
      return backend;
    },
  };
}

/** Prints a value as stable, indented JSON on stdout. */
export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2) + '\n');
}

/**
 * Writes to stdout as process.stdout does on Linux (synchronously) without making that stream, which costs a
 * command 1-2 ms; a reader that went away (`| head`) ends the command quietly, as the stream's handler does.
 */
export function out(text: string): void {
  const buf = Buffer.from(text);
  for (let off = 0; off < buf.length; ) {
    try {
      off += fs.writeSync(1, buf, off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') process.exit(EXIT.ok);
      if (code !== 'EAGAIN') throw new JobqError('IO', `cannot write to standard output: ${code ?? (e as Error).message}`);
      // A non-blocking stdout that is full: wait for the reader.
      pauseSync(1);
    }
  }
}

/**
 * For commands that wait on a job (wait, tail -f): says once, on stderr, that the place it runs stopped answering,
 * and gives up (exit 1) after JOBQ_REMOTE_TIMEOUT (default 5m) without an answer, rather than wait in silence.
 */
export function unansweredWatch(): (v: JobView) => void {
  let giveUpMs: number | undefined;
  let since: number | undefined;
  let said = false;
  return (v) => {
    if (!v.unreachable) {
      since = undefined;
      return;
    }
    // Read only once a job is unreachable: a bad value must not stop a wait on local jobs.
    const env = process.env.JOBQ_REMOTE_TIMEOUT;
    giveUpMs ??= env ? parseDuration(env, 'JOBQ_REMOTE_TIMEOUT') : 300_000;
    since ??= Date.now();
    if (Date.now() - since >= giveUpMs) throw new JobqError('IO', `${v.rec.id}: ${v.note} (no answer for ${formatDuration(giveUpMs)})`);
    if (!said) process.stderr.write(`jobq: ${v.rec.id}: ${v.note} (still waiting; giving up after ${formatDuration(giveUpMs)} without an answer)\n`);
    said = true;
  };
}
