import { JobqError } from '../../domain/errors.js';
import { type Admission, type CancelRequest, isFinal, type JobRecord, type JobState, type Placement } from '../../domain/job.js';
import * as life from '../../domain/lifecycle.js';
import { signalNumber, sleep } from '../../domain/units.js';
import { isAlive, procId } from '../../process/proc.js';
import { type Captured, runCaptured } from '../../process/spawn.js';
import { appendEvent } from '../../store/events.js';
import type { CancelResult, JobView, Runner, RunnerHost, RunSpec } from '../backend.js';

/** Runs a Slurm client command; a missing command or a controller that does not answer is one clear line. */
async function slurm(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  let r: Captured;
  try {
    r = await runCaptured(cmd, args, { env, timeoutMs: 60_000 });
  } catch (e) {
    throw new JobqError('IO', `cannot run ${cmd}: ${(e as Error).message}`);
  }
  if (r.notFound) throw new JobqError('IO', `${cmd} not found: is Slurm's client installed and on PATH (and SLURM_CONF set)?`);
  if (r.exitCode !== 0) {
    const msg = (r.stderr || r.stdout || r.message).trim().split('\n').filter(Boolean).pop() ?? `exit ${r.exitCode}`;
    throw new JobqError('IO', `${cmd} failed: ${msg.replace(/^(sbatch|squeue|scontrol|scancel|sacct): (error: )?/, '')}`);
  }
  return r.stdout;
}

/** A word quoted for sh. */
const sh = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** Slurm's --time: whole minutes, at least one (Slurm's own granularity). */
function slurmTime(ms: number): string {
  const min = Math.max(1, Math.ceil(ms / 60_000));
  return `${Math.floor(min / 1440)}-${String(Math.floor((min % 1440) / 60)).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}:00`;
}

/** A job as Slurm knows it (the placement's ids): its job id; an array element, the array's id and the task's. */
export interface SlurmIds {
  jobId: string;
  arrayJobId?: string;
  arrayTaskId?: number;
}

/** Slurm's ids of a record (none while it is being submitted). */
const idsOf = (rec: JobRecord) => rec.placement?.ids as SlurmIds | undefined;

/** The sbatch options a job's flags mean (docs/slurm.md has the table). */
export function sbatchOptions(spec: RunSpec, admission: Admission, deps: SlurmIds[], depKinds: Array<'ok' | 'any'>): string[] {
  const o = [`--job-name=${spec.name}`, `--chdir=${spec.cwd}`, '--export=ALL', '--open-mode=append'];
  const mem = admission.memBytes ?? spec.memLimitBytes;
  if (mem) o.push(`--mem=${Math.ceil(mem / 1024 ** 2)}M`);
  if (spec.timeoutMs) o.push(`--time=${slurmTime(spec.timeoutMs)}`);
  // B: signals the batch shell, which is the job itself here (the script execs the command).
  if (spec.warnSignal) o.push(`--signal=B:${signalNumber(spec.warnSignal.signal)}@${Math.max(1, Math.round(spec.warnSignal.leadMs / 1000))}`);
  if (admission.gpus) o.push(`--gres=gpu:${admission.gpus}`);
  if (deps.length) {
    const byKind = { ok: [] as string[], any: [] as string[] };
    deps.forEach((d, i) => {
      byKind[depKinds[i]!].push(d.arrayJobId ?? d.jobId);
    });
    o.push(
      `--dependency=${[byKind.ok.length ? `afterok:${byKind.ok.join(':')}` : '', byKind.any.length ? `afterany:${byKind.any.join(':')}` : ''].filter(Boolean).join(',')}`,
    );
  }
  return [...o, ...(spec.submitOptions ?? [])];
}

/** One job as `scontrol -o show job` describes it. */
interface SlurmJob {
  jobId: string;
  state: string;
  reason: string;
  exitCode: string;
  arrayJobId?: string;
  /** A task id, or (pending array tasks not yet split off) a range such as 2-5%2. */
  arrayTask?: string;
  start?: string;
  end?: string;
  /** False when no node was ever given to it: a job cancelled while pending never ran, whatever its times say. */
  ran?: boolean;
}

/** A node list that names no node: scontrol leaves it empty, sacct says "None assigned". */
const noNode = (list: string | undefined) => list !== undefined && /^(|\(null\)|None assigned)$/.test(list.trim());

function parseScontrol(out: string): SlurmJob[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('JobId='))
    .map((line) => {
      const f = new Map<string, string>();
      for (const m of line.matchAll(/(\w+)=(\S*)/g)) if (!f.has(m[1]!)) f.set(m[1]!, m[2]!);
      return {
        jobId: f.get('JobId')!,
        state: f.get('JobState') ?? 'UNKNOWN',
        reason: f.get('Reason') ?? 'None',
        exitCode: f.get('ExitCode') ?? '0:0',
        ...(f.get('ArrayJobId') ? { arrayJobId: f.get('ArrayJobId'), arrayTask: f.get('ArrayTaskId') } : {}),
        ...(f.get('StartTime') && f.get('StartTime') !== 'Unknown' ? { start: f.get('StartTime') } : {}),
        ...(f.get('EndTime') && f.get('EndTime') !== 'Unknown' ? { end: f.get('EndTime') } : {}),
        ...(noNode(f.get('NodeList')) && !f.get('BatchHost') ? { ran: false } : {}),
      };
    });
}

/** Whether a pending array line ("2-5%2", "3,7") covers task i. */
function coversTask(spec: string | undefined, i: number): boolean {
  if (!spec) return false;
  for (const part of spec.replace(/%\d+$/, '').split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (i >= a! && i <= (b ?? a)!) return true;
  }
  return false;
}

/** Slurm's local time stamps (no zone) as ISO. */
const iso = (t: string | undefined) => (t ? new Date(t).toISOString() : new Date().toISOString());

/** What a Slurm state means for jobq (docs/slurm.md has the table). */
export function mapState(
  rec: JobRecord,
  j: { state: string; reason: string; exitCode: string; start?: string; end?: string; ran?: boolean },
  cancel?: CancelRequest,
): JobState {
  const word = j.state.split(/[\s+]/)[0]!.toUpperCase();
  // Cancelled while pending: Slurm gives it a start time and exit code 0:0, but nothing ran.
  if (word === 'CANCELLED' && j.ran === false) {
    const endedAt = iso(j.end);
    return {
      status: 'cancelled',
      cancel: cancel ?? { at: endedAt, by: 'Slurm (scancel)', signal: 'SIGTERM' },
      exitCode: null,
      signal: null,
      endedAt,
      durationMs: 0,
    };
  }
  const startedAt = j.start ? iso(j.start) : rec.createdAt;
  const [code, sig] = j.exitCode.split(':').map(Number);
  const ended = () => {
    const endedAt = iso(j.end);
    return {
      startedAt,
      exitCode: sig ? null : (code ?? null),
      signal: sig ? signalName(sig) : null,
      endedAt,
      durationMs: Math.max(0, Date.parse(endedAt) - Date.parse(startedAt)),
    };
  };
  // A cancel asked for after the job had ended (Slurm's times are whole seconds) did not end it.
  if (cancel && j.end && Date.parse(cancel.at) - 1000 > Date.parse(iso(j.end))) cancel = undefined;
  switch (word) {
    case 'PENDING':
    case 'REQUEUED':
      return { status: 'queued', since: rec.createdAt };
    case 'RUNNING':
    case 'CONFIGURING':
    case 'COMPLETING':
    case 'STAGE_OUT':
    case 'RESIZING':
      return { status: 'running', startedAt };
    case 'SUSPENDED':
      return { status: 'paused', startedAt, pausedAt: new Date().toISOString(), how: 'signal' };
    case 'COMPLETED':
      return cancel ? { status: 'cancelled', cancel, ...ended() } : { status: 'succeeded', ...ended() };
    case 'CANCELLED':
      return { status: 'cancelled', cancel: cancel ?? { at: iso(j.end), by: 'Slurm (scancel)', signal: 'SIGTERM' }, ...ended() };
    case 'TIMEOUT':
      return { status: 'timeout', reason: 'wall', ...ended() };
    case 'OUT_OF_MEMORY':
      return { status: 'oom', ...ended() };
    case 'FAILED':
      // A job that died of the signal scancel sent shows FAILED (Reason JobLaunchFailure): the cancel is the cause.
      if (cancel) return { status: 'cancelled', cancel, ...ended() };
      return sig ? { status: 'killed', ...ended() } : { status: 'failed', ...ended() };
    default:
      // NODE_FAIL, BOOT_FAIL, PREEMPTED, DEADLINE, REVOKED: it did not end on its own, and how is not known.
      return {
        status: 'lost',
        startedAt,
        reason: `Slurm says ${word}${j.reason && j.reason !== 'None' ? ` (${j.reason})` : ''}`,
        detectedAt: new Date().toISOString(),
      };
  }
}

function signalName(n: number): string {
  const names: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 6: 'SIGABRT', 9: 'SIGKILL', 10: 'SIGUSR1', 12: 'SIGUSR2', 15: 'SIGTERM' };
  return names[n] ?? `SIG${n}`;
}

/** The id scancel and scontrol take for a record: JOB or ARRAYJOB_TASK (the placement's id). */
const slurmId = (s: SlurmIds) => (s.arrayJobId ? `${s.arrayJobId}_${s.arrayTaskId}` : s.jobId);

/** Runs jobs on a Slurm cluster. */
export class SlurmRunner implements Runner {
  readonly kind = 'slurm';

  /** Writes the records, one sbatch for the job or the whole array, and records Slurm's job id and cluster. */
  async submit(host: RunnerHost, elements: RunSpec[], admission: Admission[], arraySpec?: RunSpec): Promise<JobRecord[]> {
    const made = elements.map((e, i) => host.create(e, admission[i]!, 'submitting'));
    const spec = arraySpec ?? elements[0]!;
    const adm = admission[0]!;
    const deps = (adm.after ?? []).map((d) => {
      const rec = host.store.readRecord(d.id);
      const ids = rec.backend === 'slurm' ? idsOf(rec) : undefined;
      if (!ids) throw new JobqError('USAGE', `a Slurm job can only wait for Slurm jobs; ${d.id} runs ${rec.backend ?? 'locally'}`);
      return ids;
    });
    const lines = ['#!/bin/sh', '# written by jobq: the job, as sbatch runs it'];
    if (!arraySpec) lines.push(`exec ${elements[0]!.argv.map(sh).join(' ')}`);
    else {
      // One script for the whole array: each task takes its own name, log and value.
      lines.push('case "$SLURM_ARRAY_TASK_ID" in');
      elements.forEach((e, i) => {
        const rec = host.store.readRecord(made[i]!.id);
        const vars = {
          JOBQ_JOB_ID: rec.id,
          JOBQ_JOB_NAME: e.name,
          JOBQ_LOG: rec.log,
          JOBQ_ARRAY_INDEX: String(i + 1),
          JOBQ_ARRAY_VALUE: e.env.JOBQ_ARRAY_VALUE ?? '',
        };
        const exports = Object.entries(vars).map(([k, v]) => `${k}=${sh(v)}`);
        lines.push(`  ${i + 1}) export ${exports.join(' ')}; exec >>${sh(rec.log)} 2>&1; exec ${e.argv.map(sh).join(' ')} ;;`);
      });
      lines.push('esac', 'exit 127');
    }
    const script = host.store.writeJobScript(made[0]!.id, 'batch.sh', lines.join('\n') + '\n');
    const first = host.store.readRecord(made[0]!.id);
    const opts = [
      '--parsable',
      ...sbatchOptions(
        spec,
        adm,
        deps,
        (adm.after ?? []).map((d) => d.kind),
      ),
      ...(arraySpec
        ? [`--array=1-${elements.length}${arraySpec.array?.cap ? `%${arraySpec.array.cap}` : ''}`, '--output=/dev/null']
        : [`--output=${first.log}`]),
      script,
    ];
    let out: string;
    try {
      // The job's environment is sbatch's own (--export=ALL): the caller's, plus what jobq adds (guard, presets, ids).
      out = await slurm('sbatch', opts, arraySpec ? { ...made[0]!.env, JOBQ_JOB_ID: '', JOBQ_JOB_NAME: spec.name } : made[0]!.env);
    } catch (e) {
      const error = (e as Error).message;
      for (const m of made) {
        await host.store.transition(m.id, life.failStart(error));
      }
      // One line with Slurm's own words, exit 1; the records say the same.
      throw new JobqError('IO', `${made.length > 1 ? `${spec.name}` : made[0]!.id} was not submitted: ${error}`);
    }
    const [jobId, cluster] = out.trim().split(';');
    // What only this machine's supervisor does has no equivalent here: say so rather than pretend.
    const warnings = [
      ...(spec.idleTimeoutMs ? ['--idle-timeout is not enforced on Slurm (no supervisor watches the log there)'] : []),
      ...(spec.onExit ? ['--on-exit does not run on Slurm (use sbatch --mail-type, or a --after-any job)'] : []),
      ...(spec.gpuMemBytes ? ['--gpu-mem is not applied on Slurm: each job gets whole GPUs (--gres=gpu:N); shards are a cluster setting'] : []),
      ...(spec.isolationMode !== 'auto' ? ["--isolation does not apply on Slurm: the cluster's own cgroups confine the job"] : []),
    ];
    const name = cluster ?? (await clusterName());
    const recs: JobRecord[] = [];
    for (let i = 0; i < made.length; i++) {
      const ids: SlurmIds = arraySpec ? { jobId: jobId!, arrayJobId: jobId!, arrayTaskId: i + 1 } : { jobId: jobId! };
      const placement: Placement = {
        id: slurmId(ids),
        ...(name ? { cluster: name } : {}),
        ...(spec.submitOptions?.length ? { options: spec.submitOptions } : {}),
        ids: { ...ids },
      };
      const t = await host.store.transition(made[i]!.id, life.submitted(placement, warnings), { event: { slurmJob: placement.id } });
      recs.push(t.rec);
    }
    return recs;
  }

  /** One scontrol for every job slurmctld still knows, one sacct for the rest; persists what changed. */
  async refresh(host: RunnerHost, views: JobView[]): Promise<void> {
    const live = views.filter((v) => !isFinal(v.state) && v.rec.placement);
    for (const v of views) if (!isFinal(v.state) && !v.rec.placement) await this.unsubmitted(host, v);
    if (!live.length) return;
    let known: SlurmJob[];
    // One job (wait, tail -f, status JOB): ask for it alone, not for every job of the cluster.
    const one = live.length === 1 ? (idsOf(live[0]!.rec)!.arrayJobId ?? idsOf(live[0]!.rec)!.jobId) : undefined;
    try {
      known = parseScontrol(await slurm('scontrol', ['-o', 'show', 'job', ...(one ? [one] : [])]));
    } catch (e) {
      // slurmctld has forgotten it: sacct tells how it ended.
      if (one && /invalid job id/i.test((e as Error).message)) known = [];
      else {
        for (const v of live) Object.assign(v, { note: `Slurm did not answer: ${(e as Error).message}`, unreachable: true });
        return;
      }
    }
    const missing: JobView[] = [];
    for (const v of live) {
      const s = idsOf(v.rec)!;
      const j = s.arrayJobId
        ? (known.find((k) => k.arrayJobId === s.arrayJobId && k.arrayTask === String(s.arrayTaskId)) ??
          known.find((k) => k.arrayJobId === s.arrayJobId && coversTask(k.arrayTask, s.arrayTaskId!)))
        : known.find((k) => k.jobId === s.jobId);
      if (j) await this.settle(host, v, j);
      else missing.push(v);
    }
    if (missing.length) await this.fromAccounting(host, missing);
  }

  /** A record with no Slurm id yet: being submitted, or — its submitter gone — never submitted. */
  private async unsubmitted(host: RunnerHost, v: JobView): Promise<void> {
    if (isAlive(v.rec.launcher)) {
      v.note = 'being submitted to Slurm';
      return;
    }
    const t = await host.store.transition(
      v.rec.id,
      life.failStart('jobq was stopped before sbatch answered', (rec) => !rec.placement),
    );
    v.rec = t.rec;
    v.state = t.rec.state;
  }

  /** Moves a record to what Slurm says, and fills in the view. */
  private async settle(host: RunnerHost, v: JobView, j: SlurmJob): Promise<void> {
    const cancel = host.store.readCancel(v.rec.id);
    let next = mapState(v.rec, j, cancel);
    if (next.status === 'queued' && j.reason === 'DependencyNeverSatisfied') {
      // jobq's rule, not Slurm's default: a dependency that can no longer succeed skips the job (Slurm would let it pend).
      const dep = (v.rec.admission?.after ?? []).map((d) => {
        try {
          return `${d.id} ended ${host.store.readRecord(d.id).state.status}`;
        } catch {
          return `${d.id} is gone`;
        }
      });
      await slurm('scancel', [v.rec.placement!.id]).catch(() => undefined);
      next = { status: 'skipped', reason: `dependency ${dep.join(', ') || 'never satisfied (Slurm)'}`, at: new Date().toISOString() };
    }
    v.supervisorAlive = !isFinal(next);
    if (next.status === 'queued') v.waiting = { position: 0, reason: `Slurm: ${j.reason === 'None' ? 'pending' : j.reason}` };
    if (next.status === v.state.status && !isFinal(next)) return;
    const t = await host.store.transition(v.rec.id, life.fromPlace(next, j.state), { event: { slurmState: j.state } }).catch(() => undefined);
    const rec = t?.rec ?? v.rec;
    v.rec = rec;
    v.state = t?.changed ? rec.state : next;
  }

  /** Jobs slurmctld no longer lists: sacct (with slurmdbd), else sacct -c (the job completion log). */
  private async fromAccounting(host: RunnerHost, views: JobView[]): Promise<void> {
    const ids = views.map((v) => v.rec.placement!.id);
    let out = '';
    try {
      out = await slurm('sacct', ['-n', '-P', '-X', '-j', ids.join(','), '--format=JobID,State,ExitCode,Start,End,NodeList']);
    } catch {
      try {
        out = await slurm('sacct', ['-c', '-n', '-P', '--format=JobID,State,ExitCode,Start,End,NodeList']);
      } catch (e) {
        for (const v of views) v.note = `Slurm no longer lists it and sacct did not answer: ${(e as Error).message}`;
        return;
      }
    }
    const rows = new Map(
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('|'))
        .map(
          ([id, state, exitCode, start, end, nodes]) =>
            [id!, { state: state ?? '', reason: 'None', exitCode: exitCode ?? '0:0', start, end, ...(noNode(nodes) ? { ran: false } : {}) }] as const,
        ),
    );
    for (const v of views) {
      const row = rows.get(v.rec.placement!.id) ?? rows.get(idsOf(v.rec)!.jobId);
      if (row) await this.settle(host, v, { jobId: idsOf(v.rec)!.jobId, ...row, start: row.start || undefined, end: row.end || undefined });
      else v.note = 'Slurm no longer knows this job (MinJobAge passed, no accounting): its end is unknown';
    }
  }

  /** TERM (or the given signal) to every process of the job, the grace, then scancel; returns once Slurm says it ended. */
  async cancel(host: RunnerHost, v: JobView, opts: { signal: NodeJS.Signals; graceMs: number; by?: string }): Promise<CancelResult> {
    const started = Date.now();
    const id = v.rec.id;
    if (!v.rec.placement) throw new JobqError('CONFLICT', `${id} has no Slurm job id yet (it is being submitted)`);
    const sid = v.rec.placement.id;
    const mine: CancelRequest = {
      at: new Date().toISOString(),
      by: opts.by ? `${opts.by} (jobq pid ${process.pid})` : `jobq pid ${process.pid}`,
      signal: opts.signal,
      asker: procId(process.pid)!,
    };
    host.store.requestCancel(id, mine, () => true);
    appendEvent(host.store.eventsLog, 'info', 'cancel requested', { id, slurmJob: sid, signal: opts.signal });
    let escalated = false;
    // Slurm can refuse a scancel that still takes effect ("can not be altered now", exit 229, as a task starts):
    // what counts is whether the job ends, so a refusal is noted and the grace and the final scancel go on.
    let refused: string | undefined;
    const scancel = async (args: string[]) => {
      try {
        await slurm('scancel', args);
      } catch (e) {
        refused = (e as Error).message;
        appendEvent(host.store.eventsLog, 'warn', 'scancel refused', { id, slurmJob: sid, error: refused });
      }
    };
    if (v.state.status === 'queued') await scancel([sid]);
    else {
      // Without --full a batch-only job ignores a signal; with it, the batch shell and everything under it get it.
      await scancel([`--signal=${opts.signal.replace(/^SIG/, '')}`, '--full', sid]);
      const until = Date.now() + opts.graceMs;
      for (v = await host.view(id); Date.now() < until && !isFinal(v.state); v = await host.view(id)) await sleep(250);
      if (!isFinal(v.state)) {
        escalated = true;
        await scancel([sid]);
      }
    }
    const until = Date.now() + (refused ? 10_000 : 60_000);
    for (v = await host.view(id); !isFinal(v.state) && Date.now() < until; v = await host.view(id)) await sleep(250);
    return {
      id,
      outcome: isFinal(v.state) ? 'cancelled' : 'not-signalled',
      state: v.state,
      escalated,
      elapsedMs: Date.now() - started,
      ...(isFinal(v.state) ? {} : { detail: refused ?? 'Slurm did not end it within a minute' }),
    };
  }

  async pause(_host: RunnerHost, v: JobView): Promise<void> {
    if (!v.rec.placement) throw new JobqError('CONFLICT', `${v.rec.id} has no Slurm job id yet`);
    // Suspending a running job is an operator's right in Slurm; a pending one is held instead.
    await slurm('scontrol', [v.state.status === 'queued' ? 'hold' : 'suspend', v.rec.placement.id]);
  }

  async resume(_host: RunnerHost, v: JobView): Promise<void> {
    if (!v.rec.placement) throw new JobqError('CONFLICT', `${v.rec.id} has no Slurm job id yet`);
    await slurm('scontrol', [v.state.status === 'queued' ? 'release' : 'resume', v.rec.placement.id]);
  }
}

/** The cluster's name (ClusterName), for the record. */
async function clusterName(): Promise<string | undefined> {
  try {
    return /^ClusterName\s*=\s*(\S+)/m.exec(await slurm('scontrol', ['show', 'config']))?.[1];
  } catch {
    return undefined;
  }
}

/** What backend/jobs.ts loads for this place. */
export function makeRunner(): Runner {
  return new SlurmRunner();
}
