// GNU parallel's --joblog, line for line, so the awk scripts people have for it read jobq's too.
import { signalNumber } from './units.js';

/** parallel's header: its nine tab-separated columns. */
export const JOBLOG_HEADER = 'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand';

/** One ended run as parallel writes it: seconds with 3 decimals, Host ':' (this machine), the command on one line. */
export function joblogLine(r: {
  seq: number;
  startedAt: string;
  durationMs: number;
  receivedBytes: number;
  exitCode: number | null;
  signal: string | null;
  command: string;
}): string {
  const fields = [
    String(r.seq),
    ':',
    (Date.parse(r.startedAt) / 1000).toFixed(3),
    (r.durationMs / 1000).toFixed(3),
    '0',
    String(r.receivedBytes),
    String(r.exitCode ?? 0),
    String(r.signal ? signalNumber(r.signal) : 0),
    r.command.replace(/[\t\r\n]+/g, ' '),
  ];
  return fields.join('\t');
}
