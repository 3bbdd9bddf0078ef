// This machine: one detached supervisor per job, files as the truth; queues, dependencies and admission through dispatch.

import os from 'node:os';
import { settleSideWork } from '../../background.js';
import type { Gpu } from '../../domain/dispatch.js';
import { crashAt, JobqError } from '../../domain/errors.js';
import { type Admission, type CancelRequest, isFinal, type JobRecord, type ProcId } from '../../domain/job.js';
import * as life from '../../domain/lifecycle.js';
import { formatSize, formatSizesApart, sleep } from '../../domain/units.js';
import { allProcesses, awaitPhase, isAlive, procId } from '../../process/proc.js';
import { listGpus, meminfo } from '../../process/resources.js';
import { holdJob, jobTarget, releaseJob, terminateJob } from '../../process/signals.js';
import { awaitStandby, dismissStandby, handOff, takeStandby } from '../../process/standby.js';
import { appendEvent } from '../../store/events.js';
import { lastSample } from '../../store/timeline.js';
import type { CancelResult, JobView, Made, Runner, RunnerHost, RunSpec } from '../backend.js';
import { dispatchRound, ensureDispatcher, launchAll } from './dispatch.js';
import { cleanupCgroups, settle } from './reconcile.js';

function who(): string {
  try {
    return `${os.userInfo().username}@${os.hostname()} pid ${process.pid}`;
  } catch {
    return `uid ${process.getuid?.()}@${os.hostname()} pid ${process.pid}`;
  }
}

/** A --gpu-mem larger than every GPU this machine has (where their sizes are known) can never be met: refused now. */
function refuseGpuMem(bytes: number, n: number, gpus: Gpu[]): void {
  const sizes = gpus.map((g) => (g.memTotalMiB ?? 0) * 1024 ** 2);
  if (!sizes.length || sizes.some((s) => !s)) return;
  const big = sizes.filter((s) => s >= bytes).length;
  if (big < n) {
    const [needs, biggest] = formatSizesApart(bytes, Math.max(...sizes));
    throw new JobqError(
      'USAGE',
      n === 1
        ? `the job needs ${needs} of GPU memory (--gpu-mem) on one GPU: the largest GPU here has ${biggest}`
        : `the job needs ${formatSize(bytes)} of GPU memory (--gpu-mem) on each of ${n} GPUs: ${big} of this machine's ${sizes.length} GPUs ${big === 1 ? 'has' : 'have'} that much`,
    );
  }
}

/** Runs jobs on this machine. */
export class LocalRunner implements Runner {
  readonly kind = 'local';

  /**
   * Writes the records and starts them: at once (this process claims the job and waits for its supervisor's word),
   * or — with a queue, dependencies, a memory or GPU need, or as an array — as `queued`, for a dispatch round now.
   */
  async submit(host: RunnerHost, elements: RunSpec[], admission: Admission[]): Promise<JobRecord[]> {
    const waits = elements.length > 1 || elements.some((e, i) => e.queue !== undefined || Object.keys(admission[i]!).length > 0);
    // A dispatcher first: if this process is killed once the records exist, they still start (it outlives us, and
    // it stays a moment even while nothing waits yet).
    if (waits) await ensureDispatcher(host.store, { evenIfNothingWaits: true });
    // A job run at once is recorded with the standby bin/jobq started as its supervisor; a single waiting one keeps
    // it until the round below says whether it starts now (then the standby adopts the claim); others need none.
    const standby = waits ? undefined : takeStandby();
    if (!waits || elements.length > 1) dismissStandby();
    // A capped array's first elements start while the rest are recorded (a 1,000-element sweep: ~1 s of records).
    const early = waits && elements.length > 1 ? (admission[0]?.array?.cap ?? 0) : 0;
    const made: Made[] = [];
    for (const [i, e] of elements.entries()) {
      made.push(host.create(e, admission[i]!, waits ? 'queued' : 'starting', standby));
      if (made.length === early && early < elements.length) {
        await settleSideWork();
        await launchAll(host.store, await dispatchRound(host.store));
      }
    }
    crashAt('queued');
    if (!waits) return [await this.start(host, made[0]!, standby)];
    // Waiting: a dispatch round may start it at once (a single job is then reported started, as without a queue).
    // It reads the settings this command stores on the side (its memReserve, its GPUs): those first.
    await settleSideWork();
    const claims = await dispatchRound(host.store);
    const ours = made.length === 1 ? claims.find((c) => c.id === made[0]!.id) : undefined;
    const spare = ours ? takeStandby() : undefined;
    dismissStandby();
    crashAt('claimed');
    await launchAll(
      host.store,
      claims.filter((c) => c !== ours),
    );
    await ensureDispatcher(host.store);
    if (ours) return [await this.start(host, { ...made[0]!, token: ours.token }, spare)];
    return Promise.all(made.map(async (m) => (await host.view(m.id)).rec));
  }

  /**
   * Gives a record this process claimed to its standby, or starts a supervisor for it; returns the record once it
   * says what happened.
   */
  private async start(host: RunnerHost, { id, token, env }: Made, standby?: ProcId): Promise<JobRecord> {
    const { store } = host;
    // Whether the supervisor this process started died without a word (the handshake closed, no "ok").
    let silent = false;
    try {
      const given = standby && handOff({ home: store.home, id, token, env });
      crashAt('handed-off');
      if (!given || (await awaitStandby(() => store.readRecord(id), standby)) === 'gone') {
        // No standby, or it died before starting the job: the record must stop naming it (a supervisor would stand
        // down), and one is started as without a standby; so too where it died before adopting a queued job's claim.
        const t = standby ? await store.transition(id, life.forgetStandby(standby)) : undefined;
        if (!t || t.changed || (life.claimedBy(token)(t.rec) && !t.rec.supervisor)) {
          // Loaded here so reading commands (and a start through the standby) never pay for child_process.
          const { startSupervisor } = await import('../../process/spawn.js');
          silent = !(await startSupervisor(store.home, id, token, env));
        }
      }
    } catch (e) {
      if (!(e instanceof JobqError && e.code === 'START_FAILED')) throw e;
      // The launcher's verdict is final: a supervisor that comes later finds no claim and stands down.
      await host.store.transition(id, life.failStart(e.message));
    }
    // The supervisor ended without recording anything: that is provable now, so say it. A SIGKILLed one closes its
    // pipe a moment before /proc shows it dead: while the record still says starting, look again (bounded).
    let v = await host.view(id);
    for (const until = Date.now() + 2000; v.state.status === 'starting' && Date.now() < until; v = await host.view(id)) await sleep(5);
    // Still starting under this process's own claim, its supervisor dead without a word: no reader can prove that
    // while this process lives, but this process can. Nothing ran ("go" comes only after the record says running).
    if (silent && v.state.status === 'starting') {
      const mine = (rec: JobRecord) => life.claimedBy(token)(rec) && !isAlive(rec.supervisor);
      const t = await store.transition(id, life.failStart('its supervisor stopped before the job started (killed?); nothing ran', mine));
      if (t.changed) await cleanupCgroups(store, t.rec);
      v = await host.view(id);
    }
    // Recorded running, and already gone without taking "go" (the gate file still says so): its supervisor died
    // before "go" and the wrapper exited 125; a reader says failed-to-start in a moment: look again. A job that
    // took "go" started, however soon it ended: no wait for its supervisor to record that.
    const job = v.rec.job;
    if (v.state.status === 'running' && job && host.store.gateReleased(id) !== true && awaitPhase(job.pid, (p) => p !== 'wrapper', 2000) === 'gone') {
      v = await host.view(id);
      for (const until = Date.now() + 2000; v.state.status === 'running' && Date.now() < until; v = await host.view(id)) await sleep(5);
    }
    return v.rec;
  }

  /** A need this machine can never meet is refused now rather than queued for ever; GPUs named by config are the job's pool. */
  admit(spec: RunSpec, a: Admission): void {
    if (a.memBytes) {
      const total = meminfo('MemTotal');
      const reserve = spec.machine?.memReserveBytes ?? 0;
      if (total && a.memBytes > total - reserve) {
        const less = reserve ? `, less memReserve ${formatSize(reserve)}` : '';
        const gib = (n: number) => `${(n / 1024 ** 3).toFixed(1)}G`;
        throw new JobqError('USAGE', `the job needs ${gib(a.memBytes)} of memory (--mem): more than this machine can give a job (${gib(total)}${less})`);
      }
    }
    if (a.gpus) {
      // A list the run was given is the job's pool at dispatch too, whatever the dispatcher's own environment says.
      const given = spec.machine?.gpus !== undefined ? listGpus(spec.machine.gpus) : undefined;
      if (given) {
        a.gpuList = given.map((g) => g.index);
        if (given.some((g) => g.memTotalMiB)) a.gpuListMiB = given.map((g) => g.memTotalMiB ?? 0);
      }
      const listed = given ? undefined : listGpus(undefined);
      const gpus = given ?? listed!;
      // nvidia-smi failed or hung: the job is not refused for it; it waits, and says why.
      if (a.gpus > gpus.length && !listed?.error) {
        const how = gpus.length ? '' : ' (no nvidia-smi; name them with the config key gpus or JOBQ_GPUS)';
        throw new JobqError('USAGE', `the job needs ${a.gpus} GPU${a.gpus === 1 ? '' : 's'} (--gpus): this machine has ${gpus.length}${how}`);
      }
      if (a.gpuMemBytes) refuseGpuMem(a.gpuMemBytes, a.gpus, gpus);
    }
  }

  /** Reconciles each record against /proc and the boot (moving it when the truth is provable). */
  async refresh(host: RunnerHost, views: JobView[], opts: { withMemory?: boolean }): Promise<void> {
    const procs = opts.withMemory && views.some((v) => !isFinal(v.state)) ? allProcesses() : undefined;
    // Each view's record was read a moment ago (list, view): settle need not read it again.
    let again = false;
    for (const v of views) {
      const was = v.rec.state.status;
      Object.assign(v, await settle(host.store, v.rec.id, procs, v.rec));
      again ||= was !== 'queued' && v.state.status === 'queued';
    }
    // A job that waits again (a lost one with --retry-on lost, a void claim): someone must dispatch it.
    if (again) await ensureDispatcher(host.store);
    // GPU memory as its supervisor last sampled it: status never waits on nvidia-smi.
    if (opts.withMemory)
      for (const v of views) {
        if (!v.rec.gpus?.length || isFinal(v.state)) continue;
        const vram = lastSample(host.store.paths(v.rec.id).samples)?.vram;
        if (vram !== undefined) v.vramBytes = vram;
      }
  }

  async cancel(host: RunnerHost, first: JobView, opts: { signal: NodeJS.Signals; graceMs: number; by?: string }): Promise<CancelResult> {
    const { store } = host;
    const id = first.rec.id;
    const started = Date.now();
    const elapsed = () => Date.now() - started;
    let v = first;
    const mine: CancelRequest = {
      at: new Date().toISOString(),
      by: opts.by ? `${opts.by} (${who()})` : who(),
      signal: opts.signal,
      asker: procId(process.pid)!,
    };
    if (v.state.status === 'queued') {
      // Never started: it leaves the queue, cancelled, with nothing to signal.
      const t = await store.transition(id, life.cancelQueued(mine));
      if (t.changed) {
        store.removeEnv(id);
        return { id, outcome: 'cancelled', state: t.rec.state, escalated: false, elapsedMs: elapsed(), detail: 'never started' };
      }
      v = await host.view(id);
    }
    const { req, ours } = store.requestCancel(id, mine, (earlier) => !isAlive(earlier.asker));
    if (!ours) {
      // Another jobq is cancelling it: wait for the end it brings rather than signal twice.
      for (const until = Date.now() + opts.graceMs + 60_000; !isFinal(v.state) && Date.now() < until; await sleep(100)) v = await host.view(id);
      return { id, outcome: 'already-ended', state: v.state, escalated: false, elapsedMs: elapsed(), detail: `already being cancelled by ${req.by}` };
    }
    appendEvent(store.eventsLog, 'info', 'cancel requested', { id, signal: opts.signal, by: req.by });
    // A job still starting has no pid yet: its supervisor either starts it (then we signal) or folds the request in.
    for (const until = Date.now() + 10_000; v.state.status === 'starting' && Date.now() < until; ) {
      await sleep(20);
      v = await host.view(id);
    }
    if (isFinal(v.state))
      return { id, outcome: v.state.status === 'cancelled' ? 'cancelled' : 'already-ended', state: v.state, escalated: false, elapsedMs: elapsed() };
    const t = jobTarget(v.rec);
    if (!t) {
      const detail = 'the record holds no valid pid/pgid for this boot; nothing was signalled';
      return { id, outcome: 'not-signalled', state: v.state, escalated: false, elapsedMs: elapsed(), detail };
    }
    // Right before signalling: the state dir is still the one that was checked.
    store.assertSame();
    const res = await terminateJob(t, {
      signal: opts.signal,
      graceMs: opts.graceMs,
      onEscalate: (left) => appendEvent(store.eventsLog, 'warn', 'escalated to SIGKILL', { id, left }),
    });
    appendEvent(store.eventsLog, 'info', 'signalled', { id, signal: opts.signal, ...res });
    // The supervisor folds the request into the final state; raw reads here, so nothing reconciles it to lost meanwhile.
    let rec = store.readRecord(id);
    for (const until = Date.now() + 15_000; !isFinal(rec.state) && isAlive(rec.supervisor) && Date.now() < until; ) {
      await sleep(10);
      rec = store.readRecord(id);
    }
    if (!isFinal(rec.state)) {
      // No supervisor to record the end: nothing of the job is left, so it was cancelled, exit status unknown.
      const t2 = await store.transition(
        id,
        life.cancelUnsupervised(req, (fresh) => isAlive(fresh.supervisor)),
      );
      rec = t2.rec;
      // A job cancelled while it waited for its next --retry attempt still had its env (0600) on disk.
      if (t2.changed) store.removeEnv(id);
      await cleanupCgroups(store, rec);
    }
    return { id, outcome: 'cancelled', state: rec.state, escalated: res.escalated, elapsedMs: elapsed() };
  }

  /** Stops every process of a running job (cgroup freezer, else SIGSTOP to the group), state `paused`; it keeps its slot. */
  async pause(host: RunnerHost, v: JobView): Promise<void> {
    const t = jobTarget(v.rec);
    if (v.state.status !== 'running' || !t) throw new JobqError('CONFLICT', `${v.rec.id} is ${v.state.status}: only a running job can be paused`);
    host.store.assertSame();
    // Held and recorded under the job's lock: a resume racing this one sees either all of it or none.
    let how: 'freezer' | 'signal' | undefined;
    try {
      await host.store.transition(
        v.rec.id,
        life.pause(async () => (how = await holdJob(t))),
      );
    } catch (e) {
      // Not recorded (an unwritable state dir): a job the record says runs must run.
      if (how) releaseJob(t, how);
      throw e;
    }
  }

  /** Continues a paused job (thaw, else SIGCONT), state `running` again. */
  async resume(host: RunnerHost, v: JobView): Promise<void> {
    const t = jobTarget(v.rec);
    if (v.state.status !== 'paused' || !t) throw new JobqError('CONFLICT', `${v.rec.id} is ${v.state.status}: only a paused job can be resumed`);
    host.store.assertSame();
    // Recorded and let go under the job's lock, so a pause cannot slip in between and be undone.
    let how: 'freezer' | 'signal' = v.state.how;
    await host.store.transition(
      v.rec.id,
      life.resume((h) => (how = h)),
      { after: () => releaseJob(t, how) },
    );
  }
}

/** What backend/jobs.ts loads for this place. */
export function makeRunner(): Runner {
  return new LocalRunner();
}
