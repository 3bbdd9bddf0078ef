// tmux as a terminal starts it, for the guest tests: its server in a systemd user scope of its own, a stand-in agent
// in its first pane. What must live through a job's OOM or the pressure guard's end of a job.
import { execa } from 'execa';

/** tmux on socket `sock` (`tmux -L sock …`), its exit code and output returned, never thrown. */
export function tmuxOn(sock: string) {
  return (...a: string[]) => execa('tmux', ['-L', sock, ...a], { reject: false, stdin: 'ignore' });
}

/** Starts session `session` in the scope `unit` with `agent` (a shell command) in its pane; the server's and the agent's pids. */
export async function tmuxInScope(sock: string, session: string, unit: string, agent: string): Promise<{ server: number; agent: number }> {
  await execa('systemd-run', [
    '--user',
    '--scope',
    '--quiet',
    `--unit=${unit}`,
    'tmux',
    '-L',
    sock,
    'new-session',
    '-d',
    '-s',
    session,
    '-x',
    '200',
    '-y',
    '50',
    agent,
  ]);
  const tmux = tmuxOn(sock);
  return {
    server: Number((await tmux('display', '-p', '#{pid}')).stdout),
    agent: Number((await tmux('display', '-p', '-t', `${session}.0`, '#{pane_pid}')).stdout),
  };
}
