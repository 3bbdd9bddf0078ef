// The one list of commands and options: help, parsing and completion all read this commander program.
// Each command defines itself at the end of its own file (src/commands/definition.ts says how); the bundle keeps
// each definition apart from its command's code, which loads only when the command runs (scripts/build.mjs).
import { Command, InvalidArgumentError, Option } from 'commander';
import { settleSideWork } from './background.js';
import { command as cancel } from './commands/cancel.js';
import { command as completion } from './commands/completion.js';
import { command as config } from './commands/config.js';
import type { Action, CommandDef, OptionDef } from './commands/definition.js';
import { command as docs } from './commands/docs.js';
import { command as doctor } from './commands/doctor.js';
import { command as edit } from './commands/edit.js';
import { command as events } from './commands/events.js';
import { command as guard } from './commands/guard.js';
import { command as mcp } from './commands/mcp.js';
import { command as pause } from './commands/pause.js';
import { command as prune } from './commands/prune.js';
import { command as queue } from './commands/queue.js';
import { command as rerun } from './commands/rerun.js';
import { command as restart } from './commands/restart.js';
import { command as resume } from './commands/resume.js';
import { command as rm } from './commands/rm.js';
import { command as run } from './commands/run.js';
import { command as status } from './commands/status.js';
import { command as tail } from './commands/tail.js';
import { command as ui } from './commands/ui.js';
import { command as wait } from './commands/wait.js';
import { VERSION } from './domain/job.js';

/** The commands, in the order help lists them. */
export const COMMANDS: readonly CommandDef[] = [
  run,
  status,
  tail,
  cancel,
  wait,
  queue,
  pause,
  edit,
  resume,
  guard,
  config,
  prune,
  rm,
  restart,
  rerun,
  events,
  ui,
  mcp,
  docs,
  doctor,
  completion,
];

/** A value given empty (an unset $VAR in a script) is refused, never taken as no option at all. */
const given = (v: string) => {
  if (v === '') throw new InvalidArgumentError('it is empty (an unset variable?)');
  return v;
};
const collect = (v: string, prev: string[] = []) => [...prev, given(v)];

function optionOf(d: OptionDef): Option {
  const o = new Option(d.flags, d.description);
  if (d.choices) o.choices(d.choices);
  if (d.repeatable) o.argParser(collect);
  else if (!d.choices && d.flags.includes('<')) o.argParser(given);
  if (d.default !== undefined) o.default(d.default);
  if (d.hidden) o.hideHelp();
  return o;
}

/** Adds one command to the program; its action loads the command's module, runs it and hands back its exit code. */
function addCommand(program: Command, def: CommandDef, setCode: (n: number) => void): void {
  const c = program.command(def.name).summary(def.summary);
  if (def.description !== undefined) c.description(def.description);
  for (const a of def.arguments ?? []) c.argument(a.name, a.description);
  for (const o of def.options ?? []) c.addOption(optionOf(o));
  for (const text of [def.afterHelp ?? []].flat()) {
    if (typeof text === 'string') c.addHelpText('after', text);
    else c.addHelpText('after', text);
  }
  c.action(async (...args: unknown[]) => {
    const mod = await def.load();
    setCode(await (mod.default as (...a: unknown[]) => ReturnType<Action>)(...args));
    await settleSideWork();
  });
}

/** Builds the program: the global options and help, then every command of COMMANDS. */
export function buildProgram(setCode: (n: number) => void): Command {
  const program = new Command('jobq');
  program
    .version(VERSION, '-V, --version', 'print the version')
    .description('Run heavy, long-running jobs detached from your terminal: own session, own cgroup, a log, an exit code, a safe cancel.')
    .enablePositionalOptions()
    .option('--no-color', 'no colour (also NO_COLOR=1)')
    .addHelpText(
      'after',
      `
Examples:
  jobq run train -- python train.py --epochs 10
  jobq status                 # recent and running jobs
  jobq tail -f train          # follow the log; exits with the job's code
  jobq cancel train           # TERM the whole group, KILL after 10s
  jobq wait train && echo done

State: $JOBQ_HOME, else $XDG_STATE_HOME/jobq, else ~/.local/state/jobq.
Exit codes: 0 ok, 1 failure, 2 usage; wait/tail -f return the job's code (128+signal), 124 on timeout
(the wait's own, or a job its --timeout ended, as timeout(1)).
Docs: jobq docs (where the installed pages and Makefile.example are).`,
    );
  for (const def of COMMANDS) addCommand(program, def, setCode);
  return program;
}
