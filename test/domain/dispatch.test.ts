// The dispatch plan as a pure rule: slots, priority, FIFO, paused queues, jobs without a queue; and each of its parts.
import { describe, expect, it } from 'vitest';
import {
  afterWait,
  cascadeSkips,
  type DispatchJob,
  freeGpus,
  memWait,
  planDispatch,
  type QueueSettings,
  type Resources,
  skipReason,
  slotWait,
  startOrder,
  type Taken,
  takenBy,
  type WaitReason,
} from '../../src/domain/dispatch.js';

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

  it('a retried job waits out its delay (it holds no slot meanwhile), then starts', () => {
    const now = Date.parse('2026-12-05T10:00:00Z');
    const later = { ...job('r', 'queued', 'q'), retry: { attempt: 2, atMs: now + 5000 } };
    const waiting = planDispatch([later, job('b', 'queued', 'q')], queues({ q: { slots: 1 } }), undefined, undefined, now);
    expect(waiting.start).toEqual(['b']);
    expect(waiting.waiting.get('r')).toEqual({ waitingFor: 'retry', text: expect.stringMatching(/^retry: attempt 2 at \d\d:\d\d:\d\d$/) });
    expect(planDispatch([later], queues({ q: { slots: 1 } }), undefined, undefined, now + 5000).start).toEqual(['r']);
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
    // A plain --gpus job never takes a GPU that --gpu-mem jobs share.
    const shared = planDispatch(
      [
        { ...job('s', 'running', undefined), heldGpus: [0], gpuMemBytes: 2 ** 30 },
        { ...job('w', 'queued', undefined, 0, 1), gpus: 1 },
      ],
      queues(),
      res({ gpus: [{ index: 0 }] }),
    );
    expect(shared.waiting.get('w')?.text).toBe('gpus (needs 1, 0 of 1 free, 1 shared by --gpu-mem jobs)');
    const q = planDispatch([arr('1', 'running', 0), arr('2', 'queued', 1), arr('3', 'queued', 2)], queues(), res());
    expect(q.start).toEqual(['2']);
    expect(q.waiting.get('3')).toMatchObject({ waitingFor: 'array-cap' });
  });
});

describe('the parts of a round', () => {
  const G = 1024 ** 3;
  const res = (over: Partial<Resources> = {}): Resources => ({ memReserve: 0, gpus: [], gpuBusyMiB: 1024, ...over });
  const q = (id: string, over: Partial<DispatchJob> = {}): DispatchJob => ({ ...job(id, 'queued', undefined), ...over });
  const none: Taken = { busy: new Map(), arrayBusy: new Map(), heldGpus: new Set(), gpuReserved: new Map() };
  const statuses: Record<string, string> = { ok: 'succeeded', bad: 'failed', oom: 'oom', run: 'running', wait: 'queued', skip: 'skipped' };
  const status = (id: string) => statuses[id];

  it.each<[string, DispatchJob['after'], string | undefined]>([
    ['no dependencies', undefined, undefined],
    ['one that succeeded', [{ id: 'ok', kind: 'ok' }], undefined],
    ['one still running', [{ id: 'run', kind: 'ok' }], undefined],
    ['one that failed, any end will do', [{ id: 'bad', kind: 'any' }], undefined],
    ['one that failed', [{ id: 'bad', kind: 'ok' }], 'dependency bad ended failed'],
    ['one skipped', [{ id: 'skip', kind: 'ok' }], 'dependency skip ended skipped'],
    ['one gone', [{ id: 'gone', kind: 'any' }], 'dependency gone no longer exists'],
    [
      'the first that cannot succeed',
      [
        { id: 'ok', kind: 'ok' },
        { id: 'oom', kind: 'ok' },
        { id: 'gone', kind: 'ok' },
      ],
      'dependency oom ended oom',
    ],
  ])('skipReason: %s', (_, after, why) => {
    expect(skipReason(q('j', { after }), status)).toBe(why);
  });

  it('cascadeSkips: a chain is skipped whole in one round, whatever the order it comes in', () => {
    const chain = [q('c', { after: [{ id: 'b', kind: 'ok' }] }), q('b', { after: [{ id: 'a', kind: 'ok' }] }), q('a', { after: [{ id: 'bad', kind: 'ok' }] })];
    const skip = cascadeSkips(chain, (id) => statuses[id] ?? (chain.some((j) => j.id === id) ? 'queued' : undefined));
    expect([...skip.entries()]).toEqual([
      ['a', 'dependency bad ended failed'],
      ['b', 'dependency a ended skipped'],
      ['c', 'dependency b ended skipped'],
    ]);
  });

  it.each<[string, DispatchJob['after'], string | undefined]>([
    [
      'all ended',
      [
        { id: 'ok', kind: 'ok' },
        { id: 'bad', kind: 'any' },
      ],
      undefined,
    ],
    ['one pending', [{ id: 'run', kind: 'ok' }], 'after run (running)'],
    [
      'some pending',
      [
        { id: 'ok', kind: 'ok' },
        { id: 'run', kind: 'ok' },
        { id: 'wait', kind: 'any' },
      ],
      'after run (running), wait (queued)',
    ],
  ])('afterWait: %s', (_, after, text) => {
    expect(afterWait(q('j', { after }), status)?.text).toBe(text);
  });

  it.each<[string, Partial<DispatchJob>, Partial<QueueSettings>, Partial<Taken>, WaitReason | undefined]>([
    ['no queue, no array', {}, {}, {}, undefined],
    ['a free slot', { queue: 'gpu' }, { slots: 2 }, { busy: new Map([['gpu', 1]]) }, undefined],
    ['every slot busy', { queue: 'gpu' }, { slots: 2 }, { busy: new Map([['gpu', 2]]) }, { waitingFor: 'slot', text: 'queue gpu: 2 of 2 slots busy' }],
    ['its one slot busy', { queue: 'gpu' }, {}, { busy: new Map([['gpu', 1]]) }, { waitingFor: 'slot', text: 'queue gpu: 1 of 1 slot busy' }],
    [
      'a paused queue, however free',
      { queue: 'gpu' },
      { paused: true, slots: 9 },
      {},
      { waitingFor: 'queue-paused', text: 'queue gpu is paused (jobq queue resume gpu)' },
    ],
    ['an array under its cap', { array: { name: 'sw', cap: 2 } }, {}, { arrayBusy: new Map([['sw', 1]]) }, undefined],
    [
      'an array at its cap',
      { array: { name: 'sw', cap: 2 } },
      {},
      { arrayBusy: new Map([['sw', 2]]) },
      { waitingFor: 'array-cap', text: 'array sw: 2 running (%2)' },
    ],
    ['an array without a cap', { array: { name: 'sw' } }, {}, { arrayBusy: new Map([['sw', 50]]) }, undefined],
  ])('slotWait: %s', (_, over, settings, taken, want) => {
    expect(slotWait(q('j', over), queues({ gpu: settings }), { ...none, ...taken })).toEqual(want);
  });

  it.each<[string, number | undefined, number | undefined, Resources | undefined, string | undefined]>([
    ['nothing declared', undefined, 0, res(), undefined],
    ['memory not checked', 8 * G, undefined, res(), undefined],
    ['fits with the reserve', 3 * G, 4 * G, res({ memReserve: G }), undefined],
    ['does not fit for the reserve', 4 * G, 4 * G, res({ memReserve: G }), 'memory (needs 4.0G, 3.0G free for jobs)'],
    ['over-committed already', G, G, res({ memReserve: 2 * G }), 'memory (needs 1.0G, 0B free for jobs)'],
  ])('memWait: %s', (_, memBytes, memFree, r, text) => {
    expect(memWait(q('j', { memBytes }), memFree, r)?.text).toBe(text);
  });

  it.each<[string, Partial<DispatchJob>, Resources | undefined, number[], number[], number]>([
    ['the machine’s, busy and held ones out', {}, res({ gpus: [{ index: 0, memUsedMiB: 10 }, { index: 1, memUsedMiB: 5000 }, { index: 2 }] }), [2], [0], 3],
    ['its own list, not the machine’s', { gpuList: [7, 8] }, res({ gpus: [{ index: 0 }] }), [7], [8], 2],
    ['no resources: its list, nothing busy', { gpuList: [3] }, undefined, [], [3], 1],
    ['no GPUs at all', {}, res(), [], [], 0],
  ])('freeGpus: %s', (_, over, r, held, free, pool) => {
    const got = freeGpus(q('j', { gpus: 1, ...over }), r, new Set(held));
    expect(got.free.map((g) => g.index)).toEqual(free);
    expect(got.pool.length).toBe(pool);
  });

  it('takenBy: live jobs hold their slots, GPUs and the memory they declared but do not use; queued ones nothing', () => {
    const t = takenBy(
      [
        { ...job('r', 'running', 'gpu'), memBytes: 6 * G, memUsedBytes: 1 * G, heldGpus: [0, 1] },
        { ...job('p', 'paused', 'gpu'), memBytes: 2 * G, memUsedBytes: 3 * G, array: { name: 'sw' } },
        { ...job('s', 'starting', undefined), memBytes: G, array: { name: 'sw' } },
        { ...job('w', 'queued', 'gpu'), memBytes: 8 * G, heldGpus: [5], array: { name: 'sw' } },
        // Sharing jobs reserve: their --gpu-mem, or what they use when past it.
        { ...job('v', 'running', undefined), gpuMemBytes: 10 * G, heldGpus: [3] },
        { ...job('x', 'running', undefined), gpuMemBytes: 10 * G, heldGpus: [3], vramMiB: new Map([[3, 12 * 1024]]) },
      ],
      res({ memAvailable: 16 * G }),
    );
    expect(t).toEqual({
      busy: new Map([['gpu', 2]]),
      arrayBusy: new Map([['sw', 2]]),
      heldGpus: new Set([0, 1]),
      gpuReserved: new Map([[3, 22 * G]]),
      memFree: 10 * G,
    });
    expect(takenBy([{ ...job('r', 'running', undefined), memBytes: G }]).memFree).toBeUndefined();
  });
});

describe('packing by VRAM (--gpu-mem)', () => {
  const G = 1024 ** 3;
  const res = (gpus: Resources['gpus']): Resources => ({ memReserve: 0, gpus, gpuBusyMiB: 1024 });
  const q = (id: string, at: number, over: Partial<DispatchJob>): DispatchJob => ({ ...job(id, 'queued', undefined, 0, at), gpus: 1, ...over });
  const gpu80 = (index: number, over: Partial<Resources['gpus'][number]> = {}) => ({
    index,
    uuid: `GPU-${index}`,
    memUsedMiB: 0,
    memTotalMiB: 80 * 1024,
    ...over,
  });

  it('three 30G jobs on one 80G GPU: two start on it, the third waits saying why', () => {
    const p = planDispatch(
      [q('a', 1, { gpuMemBytes: 30 * G }), q('b', 2, { gpuMemBytes: 30 * G }), q('c', 3, { gpuMemBytes: 30 * G })],
      queues(),
      res([gpu80(0)]),
    );
    expect(p.start).toEqual(['a', 'b']);
    expect(p.gpusFor.get('b')).toEqual([0]);
    expect(p.gpuUuids.get(0)).toBe('GPU-0');
    expect(p.waiting.get('c')).toEqual({ waitingFor: 'gpus', text: 'gpu memory (needs 30G on one GPU; best has 20G unreserved)' });
  });

  it('reservations of live jobs count even before they allocate; one past its reservation takes what it uses', () => {
    const live = (id: string, vram?: number) => ({
      ...job(id, 'running', undefined),
      gpuMemBytes: 30 * G,
      heldGpus: [0],
      ...(vram ? { vramMiB: new Map([[0, vram]]) } : {}),
    });
    expect(planDispatch([live('r'), q('n', 1, { gpuMemBytes: 30 * G })], queues(), res([gpu80(0)])).start).toEqual(['n']);
    const over = planDispatch([live('r', 55 * 1024), q('n', 1, { gpuMemBytes: 30 * G })], queues(), res([gpu80(0, { memUsedMiB: 55 * 1024, foreignMiB: 0 })]));
    expect(over.waiting.get('n')?.text).toBe('gpu memory (needs 30G on one GPU; best has 25G unreserved)');
  });

  it('a wait reason never reads "needs 80G; best has 80G": the two figures get the digits that tell them apart', () => {
    const p = planDispatch([q('n', 1, { gpuMemBytes: 80 * G })], queues(), res([gpu80(0, { memUsedMiB: 5 })]));
    expect(p.waiting.get('n')?.text).toBe('gpu memory (needs 81920M on one GPU; best has 81915M unreserved)');
  });

  it('another program’s use counts against a GPU; a GPU held whole is not shared; jobs spread to the most unreserved', () => {
    const foreign = planDispatch([q('n', 1, { gpuMemBytes: 30 * G })], queues(), res([gpu80(0, { memUsedMiB: 60 * 1024 })]));
    expect(foreign.waiting.get('n')?.text).toBe('gpu memory (needs 30G on one GPU; best has 20G unreserved)');
    const whole = planDispatch(
      [{ ...job('h', 'running', undefined), heldGpus: [0] }, q('n', 1, { gpuMemBytes: 12 * G })],
      queues(),
      res([gpu80(0), gpu80(1, { memUsedMiB: 70 * 1024 })]),
    );
    expect(whole.waiting.get('n')?.text).toBe('gpu memory (needs 12G on one GPU; best has 10G unreserved)');
    const held = planDispatch([{ ...job('h', 'running', undefined), heldGpus: [0] }, q('n', 1, { gpuMemBytes: 12 * G })], queues(), res([gpu80(0)]));
    expect(held.waiting.get('n')?.text).toBe('gpu memory (needs 12G on one GPU; best is GPU 0, held whole by a --gpus job)');
    const spread = planDispatch(
      [q('a', 1, { gpuMemBytes: 10 * G }), q('b', 2, { gpuMemBytes: 10 * G })],
      queues(),
      res([gpu80(0), gpu80(1, { memUsedMiB: 4 * 1024 })]),
    );
    expect([spread.gpusFor.get('a'), spread.gpusFor.get('b')]).toEqual([[0], [1]]);
  });

  it('several GPUs each; a list with sizes from config; an unknown size is said', () => {
    const two = planDispatch([q('m', 1, { gpus: 2, gpuMemBytes: 50 * G })], queues(), res([gpu80(0), gpu80(1, { memUsedMiB: 40 * 1024 })]));
    expect(two.waiting.get('m')?.text).toBe('gpu memory (needs 50G on each of 2 GPUs; 1 has it, next best has 40G unreserved)');
    const listed = planDispatch([q('l', 1, { gpuMemBytes: 20 * G, gpuList: [4, 5], gpuListMiB: [16 * 1024, 24 * 1024] })], queues(), res([]));
    expect(listed.gpusFor.get('l')).toEqual([5]);
    // A listed GPU still carries what nvidia-smi says of it: its size, and what others use.
    const seen = planDispatch([q('s', 1, { gpuMemBytes: 30 * G, gpuList: [0] })], queues(), res([gpu80(0, { memUsedMiB: 60 * 1024 })]));
    expect(seen.waiting.get('s')?.text).toBe('gpu memory (needs 30G on one GPU; best has 20G unreserved)');
    const unknown = planDispatch([q('u', 1, { gpuMemBytes: 20 * G, gpuList: [4] })], queues(), res([]));
    expect(unknown.waiting.get('u')?.text).toBe('gpu memory (needs 20G on one GPU; GPU 4\'s size is unknown (nvidia-smi, or config gpus "4:80G"))');
  });
});
