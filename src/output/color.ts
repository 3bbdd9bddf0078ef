// Colour decisions: NO_COLOR, FORCE_COLOR, --no-color, and never colour when not a TTY.
import fs from 'node:fs';
import { Chalk, type ChalkInstance } from 'chalk';

/** Picks the colour level for a stream from flags and the environment. */
export function colorLevel(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv, noColorFlag: boolean): 0 | 1 | 2 | 3 {
  if (noColorFlag || (env.NO_COLOR !== undefined && env.NO_COLOR !== '')) return 0;
  const force = env.FORCE_COLOR;
  if (force !== undefined) {
    if (force === '0' || force === 'false') return 0;
    const n = Number(force);
    return (n >= 1 && n <= 3 ? n : 1) as 1 | 2 | 3;
  }
  return stream.isTTY ? (env.COLORTERM === 'truecolor' ? 3 : 2) : 0;
}

/**
 * Whether fd 1 is a terminal, without making process.stdout (1-2 ms) or loading node:tty (~2 ms): a character
 * device of the tty (4), tty aux (5) or pts (136-143) majors. Linux numbers; jobq runs on Linux.
 */
export function stdoutIsTTY(): boolean {
  try {
    const st = fs.fstatSync(1);
    const major = Number((BigInt(st.rdev) >> 8n) & 0xfffn);
    return st.isCharacterDevice() && (major === 4 || major === 5 || (major >= 136 && major <= 143));
  } catch {
    return false;
  }
}

/** A chalk instance for stdout under the current rules. */
export function makeChalk(noColorFlag = false): ChalkInstance {
  return new Chalk({ level: colorLevel({ isTTY: stdoutIsTTY() }, process.env, noColorFlag) });
}
