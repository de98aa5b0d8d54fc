/**
 * daemon: run in the foreground until the interrupt signal. Each target's `schedule` backs it up
 * (then cleans it, in each of its storages that has retention rules, when the backup succeeded);
 * its `verifySchedule` verifies its backups (deep when `verifyDeep` is set). A target never has
 * two runs at once (its verify waits for its backup); a run that falls due while its previous one
 * is still going or waiting is skipped, logged and written to history.jsonl. A failing run fails
 * alone.
 *
 * On interrupt nothing new starts; what runs sees the same signal, removes its partial files and
 * ends; then this resolves. A reload request reads the config again: a bad one is refused with
 * the problem logged and the old one kept; a good one replaces the schedules (the listen address
 * is kept until restart). With `daemon.listen`, /healthz and /metrics are served.
 */
import { BackupkitError, errorMessage, exitCodeOf, ExitCode } from '../core/errors.js';
import { formatDuration } from '../core/duration.js';
import { formatBytes } from '../core/format.js';
import { hasRule } from '../core/retention.js';
import type { Config, TargetConfig } from '../config/load.js';
import { type Known, judge, readKnown } from '../daemon/health.js';
import { type HttpServer, startHttpServer } from '../daemon/http.js';
import { DaemonMetrics } from '../daemon/metrics.js';
import { type Job, type Occupied, Scheduler, type Timetable, jobsOf } from '../daemon/scheduler.js';
import { StorageSet } from '../storage/registry.js';
import { backupTarget } from './backup.js';
import { cleanTargets, policyFor } from './clean.js';
import { type AppDeps, noProgress } from './deps.js';
import { verifyBackups } from './verify.js';

export interface DaemonOptions {
  /** The deps for the config as it now reads (on a reload request); throws for a bad config. */
  reload(): Promise<AppDeps>;
  /** Subscribe to reload requests (SIGHUP); returns the way to unsubscribe. */
  onReload?: ((listener: () => void) => () => void) | undefined;
}

/** What one scheduled run came to, for its log line. */
interface Outcome {
  ok: boolean;
  summary: string;
}

export async function runDaemon(initial: AppDeps, options: DaemonOptions): Promise<void> {
  const { log, signal, now } = initial;
  let known = new Map<string, Known>();
  const metrics: DaemonMetrics = new DaemonMetrics(
    {
      newest: () =>
        [...deps.config.targets.values()].map((t) => {
          const newest = known.get(t.name)?.newest;
          return { target: t.name, createdAt: newest?.createdAt, size: newest?.size, maxAgeMs: t.maxAgeMs };
        }),
      nextRuns: () => scheduler.nextRuns().map(({ job, next }) => ({ target: job.target, kind: job.kind, next })),
    },
    now,
  );
  // The daemon's runs show no progress, and report to its metrics besides the config's listeners.
  const adopt = (fresh: AppDeps): AppDeps => ({ ...fresh, progress: noProgress, listeners: [...(fresh.listeners ?? []), metrics] });
  let deps = adopt(initial);

  const scheduler: Scheduler = new Scheduler({
    now,
    run: (job, due) => runJob(deps, job, due),
    onSkip: (job, due, blocker) => void recordSkip(deps, job, due, blocker),
  });

  const runJob = async (current: AppDeps, job: Job, due: Date): Promise<void> => {
    const target = current.config.targets.get(job.target);
    if (!target) return;
    const started = now();
    const what = `${job.kind} of ${target.name}`;
    const fields = { target: target.name, kind: job.kind };
    log.info({ ...fields, due: due.toISOString() }, `${what} started`);
    const took = () => formatDuration(now().getTime() - started.getTime());
    try {
      const outcome = job.kind === 'backup' ? await backupJob(current, target) : await verifyJob(current, target);
      if (outcome.ok) log.info(fields, `${what} finished in ${took()}: ${outcome.summary}`);
      else log.error(fields, `${what} failed after ${took()}: ${outcome.summary}`);
    } catch (error) {
      if (exitCodeOf(error) === ExitCode.interrupted) {
        log.warn(fields, `${what} ${errorMessage(error)}`);
        return;
      }
      const hint = error instanceof BackupkitError && error.hint ? `\n${error.hint}` : '';
      log.error(fields, `${what} failed after ${took()}: ${errorMessage(error)}${hint}`);
      log.debug({ err: error }, 'cause');
    }
  };

  const backupJob = async (current: AppDeps, target: TargetConfig): Promise<Outcome> => {
    const outcome = await backupTarget(current, target, { parts: ['db', 'files'], tags: [], note: null });
    await refresh(current, target);
    const made = `${outcome.sidecar.id} (${formatBytes(outcome.sidecar.archive.size)})`;
    if (outcome.failed.length > 0) {
      return { ok: false, summary: `${made} is in ${outcome.storages.join(', ')}; ${outcome.failed.map((f) => `storage ${f.storage}: ${errorMessage(f.error)}`).join('; ')}` };
    }
    // Clean only where rules apply: a storage with no rule of its own or the target's is left alone.
    const cleanable = current.storages.forTarget(target).filter((s) => hasRule(policyFor(target, {}, s)));
    if (cleanable.length === 0) return { ok: true, summary: made };
    const cleaned = await cleanTargets({ ...current, storages: new StorageSet(cleanable) }, [target.name], { dryRun: false, rules: {} });
    if (cleaned.failures.length > 0) return { ok: false, summary: `${made}; clean: ${cleaned.failures.map((f) => f.error).join('; ')}` };
    const deleted = cleaned.deleted.length;
    return { ok: true, summary: `${made}; clean: ${deleted === 0 ? 'nothing to delete' : `${deleted} deleted, ${formatBytes(cleaned.freedBytes)} freed`}` };
  };

  const verifyJob = async (current: AppDeps, target: TargetConfig): Promise<Outcome> => {
    // `deep`: verify's test restore into a scratch database, as `verify --deep` does.
    const verifyOptions = { target: target.name, deep: target.verifyDeep };
    const { outcomes, unlisted } = await verifyBackups(current, [], verifyOptions);
    const failed = outcomes.filter((o) => !o.ok);
    const problems = [...failed.map((o) => `${o.id}: ${o.error}`), ...unlisted.map((u) => `storage ${u.storage} could not be listed: ${u.error}`)];
    const checked = `${outcomes.length} archive(s) checked${target.verifyDeep ? ' (deep)' : ''}`;
    return problems.length === 0 ? { ok: true, summary: checked } : { ok: false, summary: `${checked}; ${problems.join('; ')}` };
  };

  const refresh = async (current: AppDeps, target: TargetConfig): Promise<void> => {
    const fresh = await readKnown([target], current.storages.all);
    known.set(target.name, fresh.get(target.name)!);
  };

  const recordSkip = async (current: AppDeps, job: Job, due: Date, blocker: Occupied): Promise<void> => {
    const error = `skipped: ${blocker.job.kind} of ${blocker.job.target} still ${blocker.state === 'running' ? 'running' : 'waiting to run'} since ${blocker.since.toISOString()}`;
    log.warn({ target: job.target, kind: job.kind, due: due.toISOString() }, `${job.kind} of ${job.target} ${error}`);
    metrics.skipped(job.target, job.kind);
    try {
      await current.state.appendHistory({ time: due.toISOString(), command: job.kind, target: job.target, id: null, ok: false, durationMs: 0, error });
    } catch (writeError) {
      log.warn(`could not write history.jsonl: ${errorMessage(writeError)}`);
    }
  };

  let reloading = false;
  const reload = async (): Promise<void> => {
    if (signal.aborted || reloading) return;
    reloading = true;
    try {
      log.info('reloading the config');
      const fresh = adopt(await options.reload());
      if (!sameListen(fresh.config, deps.config)) log.warn('daemon.listen changed: the new address takes effect when the daemon restarts');
      deps = fresh;
      if (signal.aborted) return;
      scheduler.setTimetable(timetableOf(fresh.config));
      known = await readKnown([...fresh.config.targets.values()], fresh.storages.all);
      log.info({ next: nextRunsOf(scheduler) }, `config reloaded from ${fresh.config.file}: ${describeNext(scheduler)}`);
    } catch (error) {
      log.error(`config not reloaded, the previous one stays in effect: ${errorMessage(error)}`);
    } finally {
      reloading = false;
    }
  };

  known = await readKnown([...deps.config.targets.values()], deps.storages.all);
  let server: HttpServer | undefined;
  const listen = deps.config.daemon.listen;
  if (listen && !signal.aborted) {
    server = await startHttpServer(listen, { health: () => judge([...deps.config.targets.values()], known, now()), metrics: () => metrics.text() }, log);
    log.info({ url: server.url }, `listening on ${server.url} (/healthz, /metrics)`);
  }
  const unsubscribe = options.onReload?.(() => void reload());
  try {
    if (!signal.aborted) {
      scheduler.setTimetable(timetableOf(deps.config));
      if (scheduler.nextRuns().length === 0) log.warn(`no target in ${deps.config.file} has a "schedule" or "verifySchedule": nothing will run until one does (SIGHUP reloads the config)`);
      log.info({ next: nextRunsOf(scheduler) }, `daemon started: ${describeNext(scheduler)}`);
    }
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    const busy = scheduler.busy().filter((o) => o.state === 'running');
    log.info(`stopping${busy.length > 0 ? `: interrupting ${busy.map((o) => `${o.job.kind} of ${o.job.target}`).join(', ')}` : ''}`);
    await scheduler.stop();
  } finally {
    unsubscribe?.();
    await scheduler.stop();
    await server?.close();
  }
  log.info('daemon stopped');
}

function timetableOf(config: Config): Timetable {
  return { jobs: jobsOf(config.targets.values()), timezone: config.timezone, concurrency: config.daemon.concurrency };
}

function sameListen(a: Config, b: Config): boolean {
  return a.daemon.listen?.host === b.daemon.listen?.host && a.daemon.listen?.port === b.daemon.listen?.port;
}

function nextRunsOf(scheduler: Scheduler): { target: string; kind: string; next: string | null }[] {
  return scheduler.nextRuns().map(({ job, next }) => ({ target: job.target, kind: job.kind, next: next?.toISOString() ?? null }));
}

/** "app: backup 2026-11-21T02:00:00.000Z, verify ...; crm: backup ..." */
function describeNext(scheduler: Scheduler): string {
  const byTarget = new Map<string, string[]>();
  for (const { job, next } of scheduler.nextRuns()) {
    const list = byTarget.get(job.target) ?? [];
    list.push(`${job.kind} ${next ? next.toISOString() : 'never again'}`);
    byTarget.set(job.target, list);
  }
  if (byTarget.size === 0) return 'no scheduled runs';
  return [...byTarget].map(([target, runs]) => `${target}: ${runs.join(', ')}`).join('; ');
}
