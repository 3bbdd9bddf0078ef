// The stable JSON shapes of --json output (docs/json.md); versioned with the record schema.

import type { BrokenRecord, JobView } from '../backend/backend.js';
import { JSON_SCHEMA, type Placement } from '../domain/job.js';

/** One job as JSON: the record with its reconciled state and live figures. */
export function jobJson(v: JobView) {
  const { placement, ...rec } = v.rec;
  return {
    ...rec,
    ...(placement && rec.backend ? { [rec.backend]: placementJson(rec.backend, placement) } : {}),
    schema: JSON_SCHEMA,
    state: v.state,
    supervisorAlive: v.supervisorAlive,
    ...(v.rssBytes ? { rssBytes: v.rssBytes } : {}),
    ...(v.memBytes ? { memBytes: v.memBytes } : {}),
    ...(v.vramBytes !== undefined ? { vramBytes: v.vramBytes } : {}),
    ...(v.note ? { note: v.note } : {}),
    ...(v.waiting ? { waiting: v.waiting } : {}),
  };
}

/** A job list as JSON. */
export function listJson(views: JobView[], broken: BrokenRecord[], hidden: number) {
  return { schema: JSON_SCHEMA, jobs: views.map(jobJson), broken, hidden };
}

/** A placement as --json has shown it since schema 2: under the backend's name, its ids beside `<backend>State` and options. */
function placementJson(backend: string, p: Placement): Record<string, unknown> {
  return {
    ...p.ids,
    ...(p.cluster ? { cluster: p.cluster } : {}),
    ...(p.state ? { [`${backend}State`]: p.state } : {}),
    ...(p.options ? { options: p.options } : {}),
  };
}
