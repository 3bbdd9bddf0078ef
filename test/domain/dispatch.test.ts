// The dispatch plan as a pure rule: slots, priority, FIFO, paused queues, jobs without a queue.
import { describe, expect, it } from 'vitest';
import { type DispatchJob, planDispatch, type QueueSettings, type Resources, startOrder } from '../../src/domain/dispatch.js';

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

  it('elements of one array made in the same millisecond start by index: 2 before 10', () => {
    const at = '2026-12-05T10:00:00.000Z';
    const el = (i: number) => ({ id: `sw.${i}_20261205_100000`, priority: 0, createdAt: at, array: { index: i } });
    const sorted = [10, 2, 1, 11].map(el).sort(startOrder);
    expect(sorted.map((j) => j.array.index)).toEqual([1, 2, 10, 11]);
  });

  it('a paused queue starts nothing; queues are independent; a job without a queue starts at once', () => {
    const p = planDispatch([job('a', 'queued', 'x'), job('b', 'queued', 'y'), job('c', 'queued', undefined)], queues({ x: { paused: true } }));
    expect(p.start.sort()).toEqual(['b', 'c']);
    expect(p.waiting.get('a')).toMatchObject({ waitingFor: 'queue-paused' });
  });
});

describe('admission', () => {
  const res = (over: Partial<Resources> = {}): Resources => ({ memReserve: 0, gpus: [], gpuBusyMiB: 1024, ...over });

  it('dependencies: wait while pending, start once ended as asked, skip (cascading) when they cannot succeed', () => {
    const st: Record<string, string> = { done: 'succeeded', bad: 'failed', run: 'running' };
    const jobs = [
      { ...job('a', 'queued', undefined), after: [{ id: 'run', kind: 'ok' as const }] },
      { ...job('b', 'queued', undefined), after: [{ id: 'done', kind: 'ok' as const }] },
      { ...job('c', 'queued', undefined), after: [{ id: 'bad', kind: 'ok' as const }] },
      { ...job('d', 'queued', undefined), after: [{ id: 'c', kind: 'ok' as const }] },
      { ...job('e', 'queued', undefined), after: [{ id: 'bad', kind: 'any' as const }] },
      { ...job('f', 'queued', undefined), after: [{ id: 'gone', kind: 'ok' as const }] },
    ];
    const p = planDispatch(jobs, queues(), res(), (id) => st[id] ?? (jobs.some((j) => j.id === id) ? 'queued' : undefined));
    expect(p.start.sort()).toEqual(['b', 'e']);
    expect(p.waiting.get('a')).toMatchObject({ waitingFor: 'after' });
    expect([...p.skip.entries()].sort()).toEqual([
      ['c', 'dependency bad ended failed'],
      ['d', 'dependency c ended skipped'],
      ['f', 'dependency gone no longer exists'],
    ]);
  });

  it('memory: what running jobs declared but do not use counts as taken, and so does what this round admits', () => {
    const G = 1024 ** 3;
    const jobs = [
      { ...job('r', 'running', undefined), memBytes: 6 * G, memUsedBytes: 1 * G },
      { ...job('a', 'queued', undefined, 0, 1), memBytes: 3 * G },
      { ...job('b', 'queued', undefined, 0, 2), memBytes: 4 * G },
      { ...job('c', 'queued', undefined, 0, 3) },
    ];
    // 12G available - 5G not yet used by r - 1G reserve = 6G: a fits, then b no longer does.
    const p = planDispatch(jobs, queues(), res({ memAvailable: 12 * G, memReserve: G }));
    expect(p.start).toEqual(['a', 'c']);
    expect(p.waiting.get('b')!.text).toBe('memory (needs 4.0G, 3.0G free for jobs)');
  });

  it('gpus: free ones not held and under the busy level, each given once; an array cap counts running elements', () => {
    const gpus = [{ index: 0, memUsedMiB: 10 }, { index: 1, memUsedMiB: 5000 }, { index: 2 }];
    const jobs = [
      { ...job('h', 'running', undefined), heldGpus: [2] },
      { ...job('a', 'queued', undefined, 0, 1), gpus: 1 },
      { ...job('b', 'queued', undefined, 0, 2), gpus: 1 },
    ];
    const p = planDispatch(jobs, queues(), res({ gpus }));
    expect(p.start).toEqual(['a']);
    expect(p.gpusFor.get('a')).toEqual([0]);
    expect(p.waiting.get('b')).toMatchObject({ waitingFor: 'gpus', text: 'gpus (needs 1, 0 of 3 free)' });
    // A job whose run named its GPUs draws from that list (held ones still taken), not from what nvidia-smi said.
    const named = planDispatch(
      [
        { ...job('h', 'running', undefined), heldGpus: [7] },
        { ...job('n', 'queued', undefined, 0, 1), gpus: 1, gpuList: [7, 8] },
      ],
      queues(),
      res({ gpus }),
    );
    expect(named.gpusFor.get('n')).toEqual([8]);
    const arr = (id: string, s: DispatchJob['status'], at: number) => ({ ...job(id, s, undefined, 0, at), array: { name: 'sw', cap: 2 } });
    const q = planDispatch([arr('1', 'running', 0), arr('2', 'queued', 1), arr('3', 'queued', 2)], queues(), res());
    expect(q.start).toEqual(['2']);
    expect(q.waiting.get('3')).toMatchObject({ waitingFor: 'array-cap' });
  });
});
