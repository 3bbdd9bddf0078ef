// Which finished jobs `prune` removes: a pure choice over what the store lists, so it can be tested alone.

/** One job dir as prune sees it: a finished record, a live one, a half-made dir, or a record it must not touch. */
export interface PruneEntry {
  id: string;
  name: string;
  /** The record's status; 'half-made' for a dir a killed run left without a record; 'unreadable' for one never to touch. */
  status: string;
  final: boolean;
  /** When it ended (ms since the epoch); for a half-made dir, when it was last changed. */
  endedAt: number;
}

/** What the user asked prune to select; nothing selected means "show, don't remove". */
export interface PruneSelector {
  olderThanMs?: number;
  keep?: number;
  states?: string[];
  /** Only jobs of these names or ids. */
  refs?: { names: string[]; ids: string[] };
  all?: boolean;
}

/** True when the selector names anything at all (else prune only shows what it would do). */
export function selects(sel: PruneSelector): boolean {
  return (
    sel.all === true ||
    sel.olderThanMs !== undefined ||
    sel.keep !== undefined ||
    !!sel.states?.length ||
    !!(sel.refs && (sel.refs.names.length || sel.refs.ids.length))
  );
}

/** The entries to remove, in the order given (newest first): never live jobs, never unreadable records. */
export function selectForPrune(entries: PruneEntry[], sel: PruneSelector, now: number): PruneEntry[] {
  const kept = new Map<string, number>();
  const out: PruneEntry[] = [];
  for (const e of entries) {
    if (e.status === 'unreadable' || (!e.final && e.status !== 'half-made')) continue;
    if (sel.refs && !sel.refs.ids.includes(e.id) && !sel.refs.names.includes(e.name)) continue;
    if (sel.states?.length && !sel.states.includes(e.status)) continue;
    if (sel.keep !== undefined && e.status !== 'half-made') {
      const n = kept.get(e.name) ?? 0;
      if (n < sel.keep) {
        kept.set(e.name, n + 1);
        continue;
      }
    }
    if (sel.olderThanMs !== undefined && now - e.endedAt < sel.olderThanMs) continue;
    out.push(e);
  }
  return out;
}
