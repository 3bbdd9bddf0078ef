// prune's selection as a pure rule: what goes, what stays, and that nothing is removed unless something is selected.
import { describe, expect, it } from 'vitest';
import { type PruneEntry, selectForPrune, selects } from '../../src/domain/prune.js';

const DAY = 86_400_000;
const now = Date.parse('2026-11-25T12:00:00Z');
const e = (id: string, status: string, ageDays: number, final = status !== 'running' && status !== 'half-made' && status !== 'unreadable'): PruneEntry => ({
  id,
  name: id.split('_')[0]!,
  status,
  final,
  endedAt: now - ageDays * DAY,
});
// Newest first, as the store lists them.
const entries = [
  e('a_3', 'running', 0),
  e('a_2', 'succeeded', 1),
  e('b_2', 'failed', 2),
  e('a_1', 'failed', 9),
  e('c_1', 'half-made', 1),
  e('d_1', 'unreadable', 30),
  e('b_1', 'lost', 20),
];
const ids = (sel: Parameters<typeof selectForPrune>[1]) => selectForPrune(entries, sel, now).map((x) => x.id);

describe('prune selection', () => {
  it('selects nothing without a selector; --all is every finished job and half-made dir, never live or unreadable ones', () => {
    expect(selects({})).toBe(false);
    expect(selects({ keep: 0 })).toBe(true);
    expect(ids({ all: true })).toEqual(['a_2', 'b_2', 'a_1', 'c_1', 'b_1']);
  });

  it('--older-than, --keep per name, --state and JOB refs narrow it', () => {
    expect(ids({ olderThanMs: 5 * DAY })).toEqual(['a_1', 'b_1']);
    expect(ids({ keep: 1 })).toEqual(['a_1', 'c_1', 'b_1']);
    expect(ids({ states: ['failed'] })).toEqual(['b_2', 'a_1']);
    expect(ids({ refs: { names: ['b'], ids: ['a_1'] } })).toEqual(['b_2', 'a_1', 'b_1']);
    expect(ids({ keep: 1, olderThanMs: 5 * DAY })).toEqual(['a_1', 'b_1']);
  });
});
