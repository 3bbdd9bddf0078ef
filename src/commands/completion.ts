// `jobq completion bash|zsh|fish`: scripts generated from the commander program itself, so they never drift from it.
import type { Command, Option } from 'commander';
import { EXIT, JobqError } from '../domain/errors.js';
import { context, out } from './context.js';
import type { CommandDef } from './definition.js';

/** How a value (of an option or argument) completes. */
type Values = 'dir' | 'file' | 'names' | 'none' | { words: string[] };

interface OptSpec {
  flags: string[];
  help: string;
  values?: Values;
  repeat: boolean;
}

interface CmdSpec {
  name: string;
  help: string;
  opts: OptSpec[];
  /** What the positional arguments are: job names, a shell, or a NAME then a command after `--`. */
  args: Values;
  runLike: boolean;
}

// What an option's value is, by the option's name (the program says whether it takes one and its choices).
const VALUE_KINDS: Record<string, Values> = {
  cwd: 'dir',
  log: 'file',
  arrayFile: 'file',
  after: 'names',
  afterAny: 'names',
  signal: { words: ['TERM', 'INT', 'HUP', 'KILL', 'USR1', 'USR2', 'QUIT'] },
};

function optSpec(o: Option): OptSpec {
  const takes = o.required || o.optional;
  const values: Values | undefined = !takes ? undefined : o.argChoices ? { words: o.argChoices } : (VALUE_KINDS[o.attributeName()] ?? 'none');
  return { flags: [o.short, o.long].filter((f): f is string => !!f), help: o.description, values, repeat: o.variadic || /repeatable/.test(o.description) };
}

/** The commands, their options and arguments, read from the program. */
export function commandSpecs(program: Command): CmdSpec[] {
  return program.commands.map((c) => {
    const first = c.registeredArguments[0]?.name() ?? '';
    const args: Values =
      first === 'shell'
        ? { words: ['bash', 'zsh', 'fish'] }
        : first === 'action_or_queue'
          ? { words: ['set', 'pause', 'resume'] }
          : /^(job|jobs|name)$/.test(first)
            ? 'names'
            : 'none';
    const opts = c.options.filter((o) => !o.hidden).map(optSpec);
    opts.push({ flags: ['-h', '--help'], help: 'show help', repeat: false });
    return { name: c.name(), help: c.summary() || c.description(), opts, args, runLike: c.registeredArguments.some((a) => a.name() === 'command') };
  });
}

const q = (s: string) => s.replace(/'/g, '');

function bash(cmds: CmdSpec[], globals: string[]): string {
  const valueCase = (kind: Values) =>
    kind === 'dir'
      ? 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur"))'
      : kind === 'file'
        ? 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur"))'
        : kind === 'names'
          ? 'COMPREPLY=($(compgen -W "$(_jobq_names)" -- "$cur"))'
          : kind === 'none'
            ? ':'
            : `COMPREPLY=($(compgen -W "${kind.words.join(' ')}" -- "$cur"))`;
  const valueLines: string[] = [];
  for (const c of cmds) for (const o of c.opts) if (o.values) for (const f of o.flags) valueLines.push(`    ${c.name}:${f}) ${valueCase(o.values)}; return;;`);
  return `# jobq bash completion, generated from jobq's own command list: source <(jobq completion bash)
_jobq_names() { jobq completion --names 2>/dev/null; }
_jobq() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} cmd= i j
  for ((i=1; i<COMP_CWORD; i++)); do case \${COMP_WORDS[i]} in -*) ;; *) cmd=\${COMP_WORDS[i]}; break;; esac; done
  if [ -z "$cmd" ]; then COMPREPLY=($(compgen -W "${cmds.map((c) => c.name).join(' ')} ${globals.join(' ')}" -- "$cur")); return; fi
  # After --: the job's command, then its own arguments (files).
  for ((j=i+1; j<COMP_CWORD; j++)); do
    if [ "\${COMP_WORDS[j]}" = "--" ]; then
      if [ $((COMP_CWORD - j)) -eq 1 ]; then COMPREPLY=($(compgen -c -- "$cur")); else compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); fi
      return
    fi
  done
  case "$cmd:$prev" in
${valueLines.join('\n')}
  esac
  if [[ $cur == -* ]]; then
    case $cmd in
${cmds.map((c) => `      ${c.name}) COMPREPLY=($(compgen -W "${c.opts.flatMap((o) => o.flags).join(' ')}${c.runLike ? ' --' : ''}" -- "$cur"));;`).join('\n')}
    esac
    return
  fi
  case $cmd in
${cmds
  .filter((c) => c.args !== 'none')
  .map((c) => `    ${c.name}) ${valueCase(c.args)};;`)
  .join('\n')}
  esac
}
complete -F _jobq jobq
# An alias of jobq (alias js='jobq status') completes as the command it stands for.
_jobq_alias() {
  local def=\${BASH_ALIASES[\${COMP_WORDS[0]}]}
  [ -n "$def" ] || return
  local -a words=($def)
  COMP_WORDS=("\${words[@]}" "\${COMP_WORDS[@]:1}")
  COMP_CWORD=$((COMP_CWORD + \${#words[@]} - 1))
  _jobq
}
complete -F _jobq_alias jr js jt jc jw jq-run jq-status
`;
}

function zsh(cmds: CmdSpec[]): string {
  const action = (v: Values | undefined) =>
    v === undefined
      ? ''
      : v === 'dir'
        ? ':dir:_files -/'
        : v === 'file'
          ? ':file:_files'
          : v === 'names'
            ? ':job:_jobq_names'
            : v === 'none'
              ? ':value: '
              : `:value:(${v.words.join(' ')})`;
  const spec = (o: OptSpec) => {
    const desc = `[${q(o.help).replace(/[[\]:\\]/g, ' ')}]`;
    const rep = o.repeat ? '*' : '';
    if (o.flags.length === 2) return `'${rep}(${o.flags.join(' ')})'{${o.flags.join(',')}}'${desc}${action(o.values)}'`;
    return `'${rep}${o.flags[0]}${desc}${action(o.values)}'`;
  };
  const argSpec = (c: CmdSpec) => (c.runLike ? "'1:name:_jobq_names'" : c.args === 'none' ? '' : `'*:arg${action(c.args)}'`);
  return `#compdef jobq
# jobq zsh completion, generated from jobq's own command list: jobq completion zsh > "\${fpath[1]}/_jobq"
_jobq_names() { local -a n; n=(\${(f)"$(jobq completion --names 2>/dev/null)"}); compadd -a n; }
_jobq() {
  local -a cmds; cmds=(
${cmds.map((c) => `    '${c.name}:${q(c.help).replace(/:/g, ' ')}'`).join('\n')}
  )
  if (( CURRENT == 2 )); then _describe 'command' cmds; return; fi
  local dd=\${words[(I)--]}
  if [[ $words[2] == run ]] && (( dd > 2 && dd < CURRENT )); then
    words=(\${words[dd+1,-1]}); (( CURRENT -= dd )); _normal; return
  fi
  words=(\${words[2,-1]}); (( CURRENT-- ))
  case $words[1] in
${cmds.map((c) => `    ${c.name}) _arguments -s ${[...c.opts.map(spec), argSpec(c)].filter(Boolean).join(' ')} ;;`).join('\n')}
  esac
}
compdef _jobq jobq
`;
}

function fish(cmds: CmdSpec[]): string {
  const lines = [
    "# jobq fish completion, generated from jobq's own command list: jobq completion fish > ~/.config/fish/completions/jobq.fish",
    'function __jobq_names; jobq completion --names 2>/dev/null; end',
    'function __jobq_after_dd; contains -- -- (commandline -opc); end',
    'complete -c jobq -f',
    ...cmds.map((c) => `complete -c jobq -n '__fish_use_subcommand' -a ${c.name} -d '${q(c.help)}'`),
    "complete -c jobq -n '__jobq_after_dd' -F -a '(__fish_complete_command)'",
  ];
  for (const c of cmds) {
    const when = `-n '__fish_seen_subcommand_from ${c.name}; and not __jobq_after_dd'`;
    for (const o of c.opts) {
      const flags = o.flags.map((f) => (f.startsWith('--') ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`)).join(' ');
      const v = o.values;
      const val =
        v === undefined
          ? ''
          : v === 'dir'
            ? " -r -a '(__fish_complete_directories)'"
            : v === 'file'
              ? ' -r -F'
              : v === 'names'
                ? " -r -a '(__jobq_names)'"
                : v === 'none'
                  ? ' -r'
                  : ` -r -a '${v.words.join(' ')}'`;
      lines.push(`complete -c jobq ${when} ${flags}${val} -d '${q(o.help)}'`);
    }
    if (c.args === 'names') lines.push(`complete -c jobq ${when} -a '(__jobq_names)'`);
    else if (typeof c.args === 'object') lines.push(`complete -c jobq ${when} -a '${c.args.words.join(' ')}'`);
  }
  return lines.join('\n') + '\n';
}

/** Distinct job names in the configured state dir (what `--names` prints for the scripts). */
function names(cmd: Command): string[] {
  const { backend } = context(cmd, { reads: true });
  return backend.names();
}

export default function completion(shell: string | undefined, o: { names?: boolean }, cmd: Command): number {
  if (o.names) {
    out(names(cmd).join('\n') + '\n');
    return EXIT.ok;
  }
  // The program this command was parsed by: every command and option jobq has.
  const program = cmd.parent!;
  const cmds = commandSpecs(program);
  const globals = program.options.flatMap((opt) => [opt.short, opt.long].filter((f): f is string => !!f));
  const scripts: Record<string, () => string> = { bash: () => bash(cmds, [...globals, '--help']), zsh: () => zsh(cmds), fish: () => fish(cmds) };
  const make = shell ? scripts[shell] : undefined;
  if (!make) throw new JobqError('USAGE', shell ? `unknown shell '${shell}' (bash, zsh or fish)` : 'which shell? jobq completion bash|zsh|fish');
  out(make());
  return EXIT.ok;
}

export const command: CommandDef = {
  name: 'completion',
  summary: 'print a shell completion script (generated from this command list)',
  arguments: [{ name: '[shell]', description: 'bash, zsh or fish' }],
  options: [{ flags: '--names', description: 'print the job names of the configured state dir (for the scripts)', hidden: true }],
  afterHelp:
    "\nExamples:\n  source <(jobq completion bash)     # in ~/.bashrc; aliases such as alias js='jobq status' complete too\n  jobq completion zsh > ~/.zfunc/_jobq\n  jobq completion fish > ~/.config/fish/completions/jobq.fish",
  load: () => import('./completion.js'),
};
