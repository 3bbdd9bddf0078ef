// Colour decisions: NO_COLOR, FORCE_COLOR, --no-color, and never colour when not a TTY.
import { Chalk, type ChalkInstance } from 'chalk';

/** Picks the colour level for a stream from flags and the environment. */
export function colorLevel(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv, noColorFlag: boolean): 0 | 1 | 2 | 3 {
  if (noColorFlag || (env.NO_COLOR !== undefined && env.NO_COLOR !== '')) return 0;
  const force = env.FORCE_COLOR;
  if (force !== undefined) {
    if (force === '0' || force === 'false') return 0;
    const n = Number(force);
    return (n >= 1 && n <= 3 ? n : 1) as 1 | 2 | 3;
  }
  return stream.isTTY ? (env.COLORTERM === 'truecolor' ? 3 : 2) : 0;
}

/** A chalk instance for stdout under the current rules. */
export function makeChalk(noColorFlag = false): ChalkInstance {
  return new Chalk({ level: colorLevel(process.stdout, process.env, noColorFlag) });
}
