// The stable JSON shapes of --json output (docs/json.md); versioned with the record schema.

import type { BrokenRecord, JobView } from '../backend/backend.js';
import { SCHEMA_VERSION } from '../domain/job.js';

/** One job as JSON: the record with its reconciled state and live figures. */
export function jobJson(v: JobView) {
  return {
    ...v.rec,
    schema: SCHEMA_VERSION,
    state: v.state,
    supervisorAlive: v.supervisorAlive,
    ...(v.rssBytes ? { rssBytes: v.rssBytes } : {}),
    ...(v.memBytes ? { memBytes: v.memBytes } : {}),
    ...(v.note ? { note: v.note } : {}),
    ...(v.waiting ? { waiting: v.waiting } : {}),
  };
}

/** A job list as JSON. */
export function listJson(views: JobView[], broken: BrokenRecord[], hidden: number) {
  return { schema: SCHEMA_VERSION, jobs: views.map(jobJson), broken, hidden };
}
