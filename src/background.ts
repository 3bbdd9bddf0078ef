// Work a command starts on the side (restarting a dispatcher jobs wait on), finished before the process exits.
const pending: Promise<unknown>[] = [];

/** Runs alongside the command; its failure never fails the command. */
export function onTheSide(work: Promise<unknown>): void {
  pending.push(work.catch(() => undefined));
}

/** Waits for everything started on the side. */
export async function settleSideWork(): Promise<void> {
  await Promise.all(pending);
}
