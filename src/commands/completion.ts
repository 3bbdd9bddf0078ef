// `jobq completion bash|zsh|fish`: completion scripts; job names come from the state dir's listing.
import { JobqError, EXIT } from '../domain/errors.js';

const COMMANDS = ['run', 'status', 'tail', 'cancel', 'wait', 'guard', 'config', 'prune', 'restart', 'events', 'completion'];
const RUN_OPTS = ['--env', '--cwd', '--guard-var', '--memsafe', '--preset', '--log', '--isolation', '--mem-limit', '--oom-score-adj', '--timeout', '--idle-timeout', '--timeout-signal', '--signal', '--grace', '--max-log-size', '--on-exit', '--quiet', '--json'];
// Job names: directory names in the state dir with the _YYYYmmdd_HHMMSS[-N] suffix cut off.
const NAMES = `command ls "\${JOBQ_HOME:-\${XDG_STATE_HOME:-$HOME/.local/state}/jobq}/jobs" 2>/dev/null | sed -E 's/_[0-9]{8}_[0-9]{6}(-[0-9]+)?$//' | sort -u`;

const bash = `# jobq bash completion: source <(jobq completion bash)
_jobq() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmd=\${COMP_WORDS[1]}
  if [ "$COMP_CWORD" -eq 1 ]; then COMPREPLY=($(compgen -W "${COMMANDS.join(' ')} --help --version" -- "$cur")); return; fi
  local w; for w in "\${COMP_WORDS[@]:2:COMP_CWORD-2}"; do [ "$w" = "--" ] && { COMPREPLY=($(compgen -c -- "$cur")); return; }; done
  case "$cmd" in
    run) [[ $cur == -* ]] && COMPREPLY=($(compgen -W "${RUN_OPTS.join(' ')} --" -- "$cur")) ;;
    status|tail|cancel|wait|restart) COMPREPLY=($(compgen -W "$(${NAMES})" -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")) ;;
  esac
}
complete -F _jobq jobq
`;

const zsh = `#compdef jobq
# jobq zsh completion: jobq completion zsh > "\${fpath[1]}/_jobq"
_jobq() {
  local -a cmds; cmds=(${COMMANDS.join(' ')})
  if (( CURRENT == 2 )); then _describe 'command' cmds; return; fi
  case "$words[2]" in
    run) if (( \${words[(I)--]} )) && (( \${words[(I)--]} < CURRENT )); then _normal; else compadd -- ${RUN_OPTS.join(' ')} --; fi ;;
    status|tail|cancel|wait|restart) compadd -- \${(f)"$(${NAMES})"} ;;
    completion) compadd bash zsh fish ;;
  esac
}
compdef _jobq jobq
`;

const fish = `# jobq fish completion: jobq completion fish > ~/.config/fish/completions/jobq.fish
function __jobq_names
  set -l home $JOBQ_HOME
  if test -z "$home"; and set -q XDG_STATE_HOME; set home $XDG_STATE_HOME/jobq; end
  if test -z "$home"; set home $HOME/.local/state/jobq; end
  command ls $home/jobs 2>/dev/null | string replace -r '_[0-9]{8}_[0-9]{6}(-[0-9]+)?$' '' | sort -u
end
complete -c jobq -f
complete -c jobq -n '__fish_use_subcommand' -a '${COMMANDS.join(' ')}'
${RUN_OPTS.map((o) => `complete -c jobq -n '__fish_seen_subcommand_from run' -l ${o.slice(2)}`).join('\n')}
complete -c jobq -n '__fish_seen_subcommand_from status tail cancel wait restart' -a '(__jobq_names)'
complete -c jobq -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'
`;

export default function completion(shell: string): number {
  const scripts: Record<string, string> = { bash, zsh, fish };
  const s = scripts[shell];
  if (!s) throw new JobqError('USAGE', `unknown shell '${shell}' (bash, zsh or fish)`);
  process.stdout.write(s);
  return EXIT.ok;
}
