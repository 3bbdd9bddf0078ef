// `jobq tail JOB|ARRAY... [-n N] [-f] [--raw]`
import fs from 'node:fs';
import type { Command } from 'commander';
import type { JobView } from '../backend/backend.js';
import { EXIT, JobqError } from '../domain/errors.js';
import { exitCodeOf, isFinal } from '../domain/job.js';
import { sleep } from '../domain/units.js';
import { followFile, printLastLines } from '../output/follow.js';
import { stateLabel } from '../output/format.js';
import { context, unansweredWatch } from './context.js';
import type { CommandDef } from './definition.js';

/**
 * Where tail writes: ends what it printed with a newline (a `\r` bar must not hold the prompt), and, into a pipe,
 * makes each `\r` update a line of its own (a terminal redraws them; a pipe would get them all on one line).
 */
function sink(out: NodeJS.WritableStream, opts: { pipe: boolean; prefix?: string }) {
  let last = '\n';
  let pending = '';
  const write = (text: string) => {
    if (!text) return;
    out.write(text);
    last = text.at(-1)!;
  };
  return {
    write(chunk: Buffer | string): boolean {
      let t = pending + chunk.toString();
      pending = '';
      if (opts.pipe || opts.prefix) {
        // A `\r` at the end may be half of a `\r\n`: held for the next chunk.
        if (t.endsWith('\r')) [t, pending] = [t.slice(0, -1), '\r'];
        t = t.replace(/\r\n/g, '\n').replace(/\r/g, '\n');
      }
      if (opts.prefix) {
        // Whole lines only, each named: several logs interleave.
        const cut = t.lastIndexOf('\n') + 1;
        pending = t.slice(cut) + pending;
        t = t.slice(0, cut).replace(/^(?=.)/gm, opts.prefix);
      }
      write(t);
      return true;
    },
    end(): void {
      const rest = pending.replace(/\r$/, '');
      pending = '';
      write(opts.prefix && rest ? opts.prefix + rest : rest);
      if (last !== '\n') write('\n');
    },
  };
}

/** Says once (and again when it changes) why a followed job has not started: its log is empty until then. */
function waitNote(name: string) {
  let said = '';
  return (v: JobView) => {
    // A state not answered for (a cluster's controller silent) is not news: unansweredWatch says that instead.
    if (v.unreachable) return;
    const why =
      v.state.status === 'queued'
        ? `jobq: ${name} is ${stateLabel(v)}${v.waiting?.reason ? `: ${v.waiting.reason}` : ''}; its log follows once it starts\n`
        : '';
    if (why && why !== said) process.stderr.write(why);
    said = why;
  };
}

export default async function tail(refs: string[], o: { lines: string; follow?: boolean; raw?: boolean }, cmd: Command): Promise<number> {
  const n = Number(o.lines);
  if (!/^\d+$/.test(o.lines) || !Number.isSafeInteger(n)) throw new JobqError('USAGE', `invalid --lines '${o.lines}': a whole number`);
  const { backend } = context(cmd, { reads: true });
  // An array's name means all its elements, in index order; several jobs (or an array) get each line named.
  const { ids, arrays } = backend.expand(refs);
  const named = ids.length > 1 || arrays > 0;
  const pipe = !process.stdout.isTTY;
  const views: JobView[] = [];
  for (const id of ids) {
    const v = await backend.get(id);
    const log = v.rec.log;
    // A queued job's log is made when it starts.
    if (!fs.existsSync(log) && !(o.follow && v.state.status === 'queued')) throw new JobqError('NOT_FOUND', `log of ${id} is gone: ${log}`);
    views.push(v);
  }
  const offsets = views.map((v) => {
    const out = sink(process.stdout, { pipe: pipe && !o.raw });
    if (named) process.stdout.write(`==> ${v.rec.id} (${stateLabel(v)}) <==\n`);
    // What a terminal would show (\r updates collapsed) unless --raw; -f then streams the raw bytes live.
    const at = fs.existsSync(v.rec.log) ? printLastLines(v.rec.log, n, out as unknown as NodeJS.WritableStream, !!o.raw) : 0;
    if (!o.raw) out.end();
    return at;
  });
  if (!o.follow) return EXIT.ok;
  // Ctrl-C stops following only: the job runs in its own session and never sees this terminal's signals.
  const unanswered = unansweredWatch();
  const ended = await Promise.all(
    views.map(async (start, i) => {
      let v = start;
      const id = v.rec.id;
      const note = waitNote(named ? id : refs[0]!);
      note(v);
      // A queued job: its log appears when it starts (or never, if it is cancelled first).
      while (!fs.existsSync(v.rec.log) && !isFinal(v.state)) {
        await sleep(250);
        v = await backend.get(id);
        unanswered(v);
        note(v);
      }
      if (!fs.existsSync(v.rec.log)) return v;
      const out = sink(process.stdout, { pipe: pipe && !o.raw, prefix: named ? `${id.replace(/_\d{8}_\d{6}$/, '')}| ` : undefined });
      await followFile(v.rec.log, offsets[i]!, out as unknown as NodeJS.WritableStream, async () => {
        v = await backend.view(id);
        unanswered(v);
        return isFinal(v.state);
      });
      out.end();
      return v;
    }),
  );
  // As wait: the first element that did not succeed gives the code.
  const failed = ended.find((v) => exitCodeOf(v.state) !== 0);
  return failed ? exitCodeOf(failed.state) : EXIT.ok;
}

export const command: CommandDef = {
  name: 'tail',
  summary: "print the end of a job's log, or follow it",
  arguments: [{ name: '<jobs...>', description: 'NAMEs, IDs, numbers (42, #42) or array names (several: each line named, as pm2 logs)' }],
  options: [
    { flags: '-n, --lines <n>', description: 'how many lines (as a terminal shows them: \\r progress updates collapse into one)', default: '10' },
    { flags: '-f, --follow', description: 'follow until the job ends, then exit with its code (raw bytes, live)' },
    { flags: '--raw', description: 'print the bytes as written, every \\r update included' },
  ],
  afterHelp:
    '\nExamples:\n  jobq tail train\n  jobq tail 42                 # job number 42 (jobq status shows them)\n  jobq tail -n 100 train\n  jobq tail --raw -n 1 train   # the whole last line, every progress update\n  jobq tail -f train           # Ctrl-C stops following; the job keeps running\n  jobq tail -f sweep           # every element of an array, each line named\n  jobq tail -f train eval      # several jobs interleaved, each line named',
  load: () => import('./tail.js'),
};
