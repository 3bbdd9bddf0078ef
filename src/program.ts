// The one list of commands and options: help, parsing and completion all read this commander program.
import path from 'node:path';
import { Command, Option } from 'commander';
import { settleSideWork } from './background.js';
import { packageRoot } from './package-root.js';

declare const JOBQ_VERSION: string;
const version = typeof JOBQ_VERSION === 'string' ? JOBQ_VERSION : '0.0.0-dev';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Builds the program; each action lazily imports its command and hands back its exit code. */
export function buildProgram(setCode: (n: number) => void): Command {
  const program = new Command('jobq');
  const act =
    <A extends unknown[]>(load: () => Promise<{ default: (...a: A) => Promise<number> | number }>) =>
    async (...args: A) => {
      const mod = await load();
      setCode(await mod.default(...args));
      await settleSideWork();
    };

  program
    .version(version, '-V, --version', 'print the version')
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

  program
    .command('run')
    .summary('start a job detached, in its own session, with a log and a record')
    .description('Start CMD as a detached job named NAME. Returns once the job has really started (a job that must wait: once it is queued).')
    .argument('<name>', 'job name (letters, digits, . _ -); NAME later means its latest job')
    .argument('[command...]', "the command after -- (the -- may go when no word of the command starts with '-')")
    .option('--env <K=V>', 'set a variable for the job (repeatable)', collect)
    .option('--cwd <dir>', 'working directory (default: here)')
    .option('--guard-var <name>', 'also set NAME=1 for scripts that check it (repeatable)', collect)
    .option('--memsafe', 'preset: single-threaded BLAS/OpenMP, MALLOC_ARENA_MAX=2')
    .option('--preset <name>', 'apply a named env preset (repeatable; see jobq config)', collect)
    .option('--log <file>', 'write the log here instead of the state dir')
    .addOption(
      new Option('--isolation <mode>', 'systemd scope or own cgroup for the job (auto warns if it gets neither; jobq doctor says which)').choices([
        'auto',
        'scope',
        'cgroup',
        'none',
      ]),
    )
    .option('--mem-limit <size>', 'memory limit enforced by the kernel, e.g. 8G')
    .option('--oom-score-adj <n>', "make the job the OOM killer's first pick (default 500; 0 leaves it)")
    .option('--timeout <duration>', 'end the job after this wall-clock time, e.g. 6h or 1h30m (state: timeout; wait gives 124)')
    .option('--idle-timeout <duration>', 'end the job after this long without new output (\\r counts)')
    .option('--timeout-signal <SIG@LEAD>', 'send SIG to the main process this long before --timeout, e.g. USR1@60s')
    .option('--signal <sig>', 'signal timeouts send first (default TERM)')
    .option('--grace <duration>', 'time between the first signal and SIGKILL on timeout (default 10s)')
    .option('--max-log-size <size>', 'cap the log; the oldest half is dropped with a marker (default 1G)')
    .option('--on-exit <cmd>', 'run this shell command when the job ends (JOBQ_JOB_STATE etc. set)')
    .option('--queue <queue>', 'wait for a free slot of this queue (a new queue has 1 slot); default: config defaultQueue')
    .option('--no-queue', 'start now even if config names a defaultQueue')
    .option('--priority <n>', 'within the queue, higher starts first (default 0); ties: first come, first served')
    .option('--wait-start', 'if the job must wait (queue, --after, --mem, --gpus): block until it started, then print as run does')
    .option('--after <job>', 'start only after JOB (NAME, id, or array name: all its elements) succeeded; else skipped (repeatable)', collect)
    .option('--after-any <job>', 'start after JOB ended, however it ended (repeatable)', collect)
    .option('--array <from-to[:step][%k]>', 'a job array NAME.1, NAME.2, …: {} in the command is the value; %K caps how many run at once')
    .option('--array-file <file>', 'a job array with one value per line of FILE')
    .option('--mem <size>', 'memory the job needs to start: it waits until that much is free (--mem-limit is only a cap)')
    .option('--gpus <n>', 'GPUs it needs: N free ones not held by another job (CUDA_VISIBLE_DEVICES set); it waits for them')
    .option('--backend <where>', 'local (this machine, default) or slurm (sbatch; docs/slurm.md)')
    .option('--slurm-opt <opt>', 'an extra sbatch option, e.g. --partition=gpu (repeatable)', collect)
    .option('--replace', 'if a job of this NAME is live, cancel it (its usual grace) and then start')
    .option('--allow-duplicate', 'if a job of this NAME is live, start another beside it')
    .option('-q, --quiet', 'print only the job id')
    .option('--json', 'print the record as JSON')
    .addHelpText(
      'after',
      `
Examples:
  jobq run train -- python train.py --lr 3e-4
  jobq run etl --memsafe --env DATA=/srv/x -- ./etl.sh
  jobq run big --mem-limit 8G --timeout 6h --idle-timeout 20m -- python big.py
  jobq run render --guard-var GRAV_BG_JOB --on-exit 'notify-send "$JOBQ_JOB_NAME $JOBQ_JOB_STATE"' -- make render
  jobq run train --replace -- python train.py    # stop the running 'train' first
  jobq run render1 --queue heavy -- ./render.sh 1 # waits for a free slot of 'heavy'
  jobq run urgent --queue heavy --priority 10 -- ./render.sh 9
  jobq run eval --after train -- python eval.py   # skipped if train does not succeed
  jobq run sweep --array 1-20%4 -- python train.py --seed {}
  jobq run big --mem 12G --gpus 1 -- python big.py
  jobq run train --backend slurm --gpus 1 --timeout 6h --slurm-opt=--partition=gpu -- python train.py

A NAME names one live job: run refuses a NAME that is queued, starting, running or paused (exit 1) unless
--replace or --allow-duplicate says what to do.

The job gets BG_JOB=1, JOBQ_JOB_ID, JOBQ_JOB_NAME, JOBQ_LOG and PYTHONUNBUFFERED=1 (unless set).
A command that cannot start exits 127 at once, and its record says why.
The job's supervisor starts beside run (bin/jobq); JOBQ_STANDBY=0 jobq run ... starts it after run instead.`,
    )
    .action(act(() => import('./commands/run.js')));

  program
    .command('status')
    .summary('list jobs, or show one in detail')
    .argument('[job]', "NAME (its latest job) or ID for the detail view; a pattern ('resnet*') lists the jobs it matches")
    .option('-a, --all', 'list every job, not only running and recent ones')
    .option('-s, --state <states>', 'only jobs in these states: failed,oom,… or live, ended')
    .option('-n, --recent <n>', 'how many recent finished jobs to list', '20')
    .option('-w, --watch', 'redraw the table on change (TTY)')
    .option('--json', 'print JSON (docs/json.md)')
    .addHelpText(
      'after',
      "\nExamples:\n  jobq status\n  jobq status train\n  jobq status --state failed,oom,timeout   # what went wrong, all of it\n  jobq status 'resnet*' --state live\n  jobq status --all --json | jq '.jobs[] | select(.state.status==\"failed\") | .id'\n  jobq status --watch\n\nOn a terminal the table fits its width (the ID, PID and start time go first on a narrow one);\npiped, it has every column.",
    )
    .action(act(() => import('./commands/status.js')));

  program
    .command('tail')
    .summary("print the end of a job's log, or follow it")
    .argument('<jobs...>', 'NAMEs, IDs or array names (several: each line named, as pm2 logs)')
    .option('-n, --lines <n>', 'how many lines (as a terminal shows them: \\r progress updates collapse into one)', '10')
    .option('-f, --follow', 'follow until the job ends, then exit with its code (raw bytes, live)')
    .option('--raw', 'print the bytes as written, every \\r update included')
    .addHelpText(
      'after',
      '\nExamples:\n  jobq tail train\n  jobq tail -n 100 train\n  jobq tail --raw -n 1 train   # the whole last line, every progress update\n  jobq tail -f train           # Ctrl-C stops following; the job keeps running\n  jobq tail -f sweep           # every element of an array, each line named\n  jobq tail -f train eval      # several jobs interleaved, each line named',
    )
    .action(act(() => import('./commands/tail.js')));

  program
    .command('cancel')
    .summary('stop a job: SIGTERM to its whole group, SIGKILL after the grace')
    .argument('[jobs...]', 'NAMEs (every live job of that name) or IDs')
    .option('-s, --signal <sig>', "first signal (default: the job's run --signal, else TERM)")
    .option('-g, --grace <duration>', "wait this long before SIGKILL (default: the job's run --grace, else 10s)")
    .option('-a, --all', 'cancel every live job (queued and paused ones too)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  jobq cancel train\n  jobq cancel train --signal INT --grace 30s\n  jobq cancel --all\nA job run with --grace 2m gets 2m here too, unless --grace says otherwise.',
    )
    .action(act(() => import('./commands/cancel.js')));

  program
    .command('wait')
    .summary("block until jobs end; exit with the job's code")
    .argument('[jobs...]', 'NAMEs, IDs or array names')
    .option('-a, --all', 'every job live now (running, paused, queued)')
    .option('-t, --timeout <duration>', 'give up after this long (exit 124)')
    .option('--json', 'print the final records as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  jobq wait train && make eval\n  jobq wait --timeout 2h train etl\n  jobq wait --all                 # everything live now, e.g. before a reboot\nA Slurm job whose controller stops answering: one line says so; exit 1 after JOBQ_REMOTE_TIMEOUT (default 5m).',
    )
    .action(act(() => import('./commands/wait.js')));

  program
    .command('queue')
    .summary('queues: slots, running jobs, waiting jobs in start order and why each waits; set, pause, resume')
    .argument('[action_or_queue]', 'a QUEUE to show, or set / pause / resume')
    .argument('[queue]', 'the QUEUE for set / pause / resume')
    .option('--slots <n>', 'with set: how many jobs of the queue run at once')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Examples:
  jobq queue                       # every queue
  jobq queue heavy --json
  jobq queue set heavy --slots 2   # a new queue has 1 slot; config may define queues too
  jobq queue pause heavy           # running jobs go on; no new ones start
  jobq queue resume heavy`,
    )
    .action(act(() => import('./commands/queue.js')));

  program
    .command('pause')
    .summary('stop every process of a running job (cgroup freezer, else SIGSTOP); it keeps its queue slot')
    .argument('<jobs...>', 'NAMEs (each live job of that name) or IDs')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  jobq pause train     # while you need the GPU for a moment\n  jobq resume train\nPaused time does not count toward --idle-timeout; cancel of a paused job still runs its TERM handler.',
    )
    .action(act(() => import('./commands/pause.js')));

  program
    .command('edit')
    .summary("change a queued job's priority where it waits (its place in the queue follows)")
    .argument('<job>', 'NAME (its latest job) or ID of a queued job')
    .option('-p, --priority <n>', 'the new priority (higher starts first)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  jobq edit eval --priority 10     # let it jump the queue\n  jobq edit sweep.7 --priority -1  # last')
    .action(act(() => import('./commands/edit.js')));

  program
    .command('resume')
    .summary('continue a paused job')
    .argument('<jobs...>', 'NAMEs or IDs')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  jobq resume train')
    .action(act(() => import('./commands/resume.js')));

  program
    .command('guard')
    .summary('exit 0 inside a jobq job, else say "run this through jobq" and exit 1')
    .option('--var <name>', 'the guard variable to check', 'BG_JOB')
    .option('--instead <command>', 'the command to name in the refusal (default: jobq run NAME -- the calling script)')
    .addHelpText(
      'after',
      "\nExamples:\n  jobq guard || exit 1          # first line of a heavy script: names 'jobq run train -- ./train.sh'\n  jobq guard --var GRAV_BG_JOB\n  @jobq guard --instead 'make $@-bg' || exit 1   # a make target\nSnippets without jobq on PATH: docs/guards.md",
    )
    .action(act(() => import('./commands/guard.js')));

  program
    .command('config')
    .summary('print the merged configuration and where each value came from')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  jobq config\n  jobq config --json\nFiles: $XDG_CONFIG_HOME/jobq/config.json, then .jobq.json from here upward (docs/config.md).',
    )
    .action(act(() => import('./commands/config.js')));

  program
    .command('prune')
    .summary('remove finished jobs and their logs (bare: only shows what it would remove)')
    .argument('[jobs...]', 'only jobs of these NAMEs or IDs')
    .option('--older-than <duration>', 'only jobs that ended longer ago than this, e.g. 7d')
    .option('--keep <n>', 'keep the newest N finished jobs of each name')
    .option('--state <state>', 'only jobs that ended so: failed, cancelled, lost, half-made... (repeatable)', collect)
    .option('--all', 'every finished job')
    .option('--dry-run', 'list what would go, remove nothing')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Without a selector (--older-than, --keep, --state, --all or a JOB) prune removes nothing and shows what it would.
Running and queued jobs are never removed; nor is a record this jobq cannot read (a newer jobq may own it).

Examples:
  jobq prune                          # show what a prune of everything finished would remove
  jobq prune --older-than 7d
  jobq prune --keep 3 --dry-run
  jobq prune --state failed --state lost
  jobq prune train                    # the finished jobs named train`,
    )
    .action(act(() => import('./commands/prune.js')));

  program
    .command('rm')
    .summary('remove finished jobs (record and log); a running one is refused')
    .argument('<jobs...>', 'NAMEs (their latest job) or IDs')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  jobq rm train_20261124_101500\n  jobq rm etl')
    .action(act(() => import('./commands/rm.js')));

  program
    .command('restart')
    .summary("start a job's argv, cwd and jobq-added env again, as a new job (stopping the live one first)")
    .argument('<job>', 'NAME or ID')
    .option('--keep', 'leave a live job of that name running and start a second copy beside it')
    .option('--json', 'print the new record as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  jobq restart train          # cancels a running train first, as pm2/systemd do\n  jobq restart train --keep   # a second copy beside it',
    )
    .action(act(() => import('./commands/restart.js')));

  program
    .command('events')
    .summary("read jobq's own event log (started, signalled, escalated, recorded, reconciled)")
    .option('-f, --follow', 'keep printing new events')
    .option('-n, --lines <n>', 'how many recent events', '50')
    .option('--json', 'raw JSON lines')
    .addHelpText('after', '\nExamples:\n  jobq events\n  jobq events -f --json')
    .action(act(() => import('./commands/events.js')));

  program
    .command('ui')
    .summary('a local web dashboard: live jobs table, logs, memory charts, cancel and restart (127.0.0.1, behind a token)')
    .option('-p, --port <n>', 'port on 127.0.0.1', '8765')
    .option('--open', 'open it in the browser (xdg-open gets a page only you can read, never the tokened URL)')
    .option('--detach', 'run it as a jobq job of its own (jobq cancel jobq-ui stops it)')
    .addHelpText(
      'after',
      `
It prints a URL with a random token; requests without the token, with a Host other than
127.0.0.1/localhost, or a POST from another origin are refused (docs/ui.md).

Examples:
  jobq ui                  # foreground; Ctrl-C stops it
  jobq ui --port 9000 --open
  jobq ui --detach         # survives the terminal
  ssh -L 8765:127.0.0.1:8765 gpubox   # then open the printed URL on your laptop`,
    )
    .action(act(() => import('./commands/ui.js')));

  program
    .command('mcp')
    .summary('serve jobq to a coding agent over stdio (Model Context Protocol): jobq_run, _status, _tail, _wait, _cancel, _queue, _pause, _resume')
    .addHelpText(
      'after',
      `
Register it with an agent (docs/agents-and-tmux.md), e.g.:
  claude mcp add jobq -- jobq mcp
  { "mcpServers": { "jobq": { "command": "jobq", "args": ["mcp"] } } }
Its tool descriptions tell the agent to run heavy work through jobq rather than in its own shell.

Examples:
  jobq mcp            # speaks MCP on stdin/stdout until stdin closes`,
    )
    .action(act(() => import('./commands/mcp.js')));

  program
    .command('docs')
    .summary('say where the installed docs and Makefile.example are')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  jobq docs\n  less "$(jobq docs --json | jq -r .docs)/queues.md"\n  cp "$(jobq docs --json | jq -r .makefileExample)" ./Makefile.jobq',
    )
    .addHelpText('after', () => `\nInstalled here: ${path.join(packageRoot(), 'docs')} and ${path.join(packageRoot(), 'Makefile.example')}`)
    .action(act(() => import('./commands/docs.js')));

  program
    .command('doctor')
    .summary('say what jobq will do on this machine (cgroups, systemd scope, oomd, swap, state dir) and how to fix what is wrong')
    .option('--json', 'print JSON (docs/doctor.md)')
    .addHelpText(
      'after',
      `
Each line is ok, warn, fail or info; "To fix:" lists the exact commands. Exit 1 only when something is a fail
(jobq cannot work here as configured), else 0. Fields of --json: docs/doctor.md.

Examples:
  jobq doctor
  jobq doctor --json | jq '.checks[] | select(.status == "warn" or .status == "fail")'
  jobq doctor --json | jq -r .isolation.auto     # what --isolation auto picks here`,
    )
    .action(act(() => import('./commands/doctor.js')));

  program
    .command('completion')
    .summary('print a shell completion script (generated from this command list)')
    .argument('[shell]', 'bash, zsh or fish')
    .addOption(new Option('--names', 'print the job names of the configured state dir (for the scripts)').hideHelp())
    .addHelpText(
      'after',
      "\nExamples:\n  source <(jobq completion bash)     # in ~/.bashrc; aliases such as alias js='jobq status' complete too\n  jobq completion zsh > ~/.zfunc/_jobq\n  jobq completion fish > ~/.config/fish/completions/jobq.fish",
    )
    .action(act(() => import('./commands/completion.js')));

  return program;
}
