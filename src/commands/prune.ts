// `jobq prune [--older-than D] [--keep N] [--dry-run]`: remove finished jobs and their logs.
import path from 'node:path';
import type { Command } from 'commander';
import { JobqError, EXIT } from '../domain/errors.js';
import { isFinal, parseId, type JobState } from '../domain/job.js';
import { parseDuration } from '../domain/units.js';
import { context, printJson } from './context.js';

function endedAt(s: JobState): number {
  if ('endedAt' in s) return Date.parse(s.endedAt);
  if (s.status === 'failed-to-start') return Date.parse(s.at);
  if (s.status === 'lost') return Date.parse(s.detectedAt);
  return Date.now();
}

export default async function prune(o: { olderThan?: string; keep?: string; dryRun?: boolean; json?: boolean }, cmd: Command): Promise<number> {
  const { backend } = context(cmd);
  const store = backend.store;
  const olderMs = o.olderThan ? parseDuration(o.olderThan, '--older-than') : undefined;
  const keep = o.keep === undefined ? undefined : Number(o.keep);
  if (keep !== undefined && (!Number.isInteger(keep) || keep < 0)) throw new JobqError('USAGE', `invalid --keep '${o.keep}': a whole number`);
  const kept = new Map<string, number>();
  const removed: Array<{ id: string; status: string; log?: string }> = [];
  const now = Date.now();
  // Newest first, so --keep counts the newest finished jobs of each name.
  for (const id of store.listIds()) {
    let v;
    try {
      v = await backend.view(id);
    } catch {
      continue; // a broken record is never removed silently
    }
    if (!isFinal(v.state)) continue;
    const name = parseId(id)!.name;
    const n = kept.get(name) ?? 0;
    if (keep !== undefined && n < keep) {
      kept.set(name, n + 1);
      continue;
    }
    if (olderMs !== undefined && now - endedAt(v.state) < olderMs) continue;
    const outside = path.dirname(v.rec.log) !== store.paths(id).dir;
    removed.push({ id, status: v.state.status, ...(outside ? { log: v.rec.log } : {}) });
    if (!o.dryRun) store.removeJob(id);
  }
  if (o.json) printJson({ schema: 1, dryRun: !!o.dryRun, removed });
  else {
    for (const r of removed) process.stdout.write(`${o.dryRun ? 'would remove' : 'removed'} ${r.id} (${r.status})${r.log ? ` — its log ${r.log} is outside the state dir and stays` : ''}\n`);
    process.stdout.write(`${removed.length} job${removed.length === 1 ? '' : 's'} ${o.dryRun ? 'would be removed' : 'removed'}\n`);
  }
  return EXIT.ok;
}
