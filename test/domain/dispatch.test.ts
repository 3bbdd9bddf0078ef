// The dispatch plan as a pure rule: slots, priority, FIFO, paused queues, jobs without a queue.
import { describe, expect, it } from 'vitest';
import { type DispatchJob, planDispatch, type QueueSettings } from '../../src/domain/dispatch.js';

const t = (s: number) => new Date(Date.UTC(2026, 10, 25, 12, 0, s)).toISOString();
const job = (id: string, status: DispatchJob['status'], queue: string | undefined, priority = 0, at = 0): DispatchJob => ({
  id,
  status,
  queue,
  priority,
  createdAt: t(at),
});
const queues =
  (over: Record<string, Partial<QueueSettings>> = {}) =>
  (q: string): QueueSettings => ({ slots: 1, paused: false, ...over[q] });

describe('dispatch plan', () => {
  it('fills free slots in priority order, then first come first served; a running, starting or paused job holds its slot', () => {
    const jobs = [job('r', 'running', 'q'), job('a', 'queued', 'q', 0, 1), job('b', 'queued', 'q', 0, 2), job('hi', 'queued', 'q', 5, 3)];
    const p = planDispatch(jobs, queues({ q: { slots: 3 } }));
    expect(p.start).toEqual(['hi', 'a']);
    expect(p.waiting.get('b')).toMatchObject({ waitingFor: 'slot' });
    expect([...p.position.entries()]).toEqual([
      ['hi', 1],
      ['a', 2],
      ['b', 3],
    ]);
    const held = planDispatch([job('p', 'paused', 'q'), job('s', 'starting', 'q'), job('a', 'queued', 'q')], queues({ q: { slots: 2 } }));
    expect(held.start).toEqual([]);
    expect(held.waiting.get('a')!.text).toBe('queue q: 2 of 2 slots busy');
  });

  it('a paused queue starts nothing; queues are independent; a job without a queue starts at once', () => {
    const p = planDispatch([job('a', 'queued', 'x'), job('b', 'queued', 'y'), job('c', 'queued', undefined)], queues({ x: { paused: true } }));
    expect(p.start.sort()).toEqual(['b', 'c']);
    expect(p.waiting.get('a')).toMatchObject({ waitingFor: 'queue-paused' });
  });
});
