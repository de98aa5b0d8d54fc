/**
 * The daemon's Prometheus metrics, in a registry of their own (prom-client's global one is never
 * used). Runs are counted as the daemon's runs end, through the RunListener every run reports to;
 * the newest good backup and the next scheduled runs are read from the daemon when scraped.
 *
 *   backupkit_newest_backup_timestamp_seconds{target}     createdAt of the newest good backup
 *   backupkit_newest_backup_size_bytes{target}            its archive's size
 *   backupkit_max_age_seconds{target}                     the target's maxAge (absent: none)
 *   backupkit_last_run_timestamp_seconds{target,command}  when the last run ended
 *   backupkit_last_run_duration_seconds{target,command}
 *   backupkit_last_run_size_bytes{target,command}         the archive it made (backup)
 *   backupkit_last_run_success{target,command}            1 ok, 0 failed
 *   backupkit_runs_total{target,command,result}           result: ok, failed, skipped
 *   backupkit_next_run_timestamp_seconds{target,kind}     kind: backup, verify
 * and the process's own (process_*, nodejs_*).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { RunListener, RunReport } from '../app/deps.js';

export interface MetricsSource {
  /** Each target's newest good backup, and its maxAge. */
  newest(): { target: string; createdAt: Date | undefined; size: number | undefined; maxAgeMs: number | undefined }[];
  /** The next time of each scheduled job. */
  nextRuns(): { target: string; kind: string; next: Date | null }[];
}

const seconds = (date: Date) => date.getTime() / 1000;

export class DaemonMetrics implements RunListener {
  readonly registry = new Registry();
  private readonly lastRunTime: Gauge<'target' | 'command'>;
  private readonly lastRunDuration: Gauge<'target' | 'command'>;
  private readonly lastRunSize: Gauge<'target' | 'command'>;
  private readonly lastRunSuccess: Gauge<'target' | 'command'>;
  private readonly runs: Counter<'target' | 'command' | 'result'>;

  constructor(
    source: MetricsSource,
    private readonly now: () => Date,
  ) {
    const registers = [this.registry];
    new Gauge({
      name: 'backupkit_newest_backup_timestamp_seconds',
      help: 'When the newest good backup of the target was made (Unix time).',
      labelNames: ['target'],
      registers,
      collect() {
        this.reset();
        for (const t of source.newest()) if (t.createdAt) this.set({ target: t.target }, seconds(t.createdAt));
      },
    });
    new Gauge({
      name: 'backupkit_newest_backup_size_bytes',
      help: 'The archive size of the newest good backup of the target.',
      labelNames: ['target'],
      registers,
      collect() {
        this.reset();
        for (const t of source.newest()) if (t.size !== undefined) this.set({ target: t.target }, t.size);
      },
    });
    new Gauge({
      name: 'backupkit_max_age_seconds',
      help: 'How old the newest good backup of the target may be (its maxAge).',
      labelNames: ['target'],
      registers,
      collect() {
        this.reset();
        for (const t of source.newest()) if (t.maxAgeMs !== undefined) this.set({ target: t.target }, t.maxAgeMs / 1000);
      },
    });
    new Gauge({
      name: 'backupkit_next_run_timestamp_seconds',
      help: 'When the next scheduled run of the target is due (Unix time), by kind (backup, verify).',
      labelNames: ['target', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const r of source.nextRuns()) if (r.next) this.set({ target: r.target, kind: r.kind }, seconds(r.next));
      },
    });
    this.lastRunTime = new Gauge({
      name: 'backupkit_last_run_timestamp_seconds',
      help: 'When the last run of the command on the target ended (Unix time).',
      labelNames: ['target', 'command'],
      registers,
    });
    this.lastRunDuration = new Gauge({
      name: 'backupkit_last_run_duration_seconds',
      help: 'How long the last run of the command on the target took.',
      labelNames: ['target', 'command'],
      registers,
    });
    this.lastRunSize = new Gauge({
      name: 'backupkit_last_run_size_bytes',
      help: 'The size of the archive the last run of the command on the target made.',
      labelNames: ['target', 'command'],
      registers,
    });
    this.lastRunSuccess = new Gauge({
      name: 'backupkit_last_run_success',
      help: 'Whether the last run of the command on the target succeeded (1) or failed (0).',
      labelNames: ['target', 'command'],
      registers,
    });
    this.runs = new Counter({
      name: 'backupkit_runs_total',
      help: 'Runs of the command on the target since the daemon started, by result (ok, failed, skipped).',
      labelNames: ['target', 'command', 'result'],
      registers,
    });
    collectDefaultMetrics({ register: this.registry });
  }

  async runFinished(run: RunReport): Promise<void> {
    const labels = { target: run.target ?? '', command: run.command };
    this.lastRunTime.set(labels, seconds(this.now()));
    this.lastRunDuration.set(labels, run.durationMs / 1000);
    if (run.size !== null) this.lastRunSize.set(labels, run.size);
    this.lastRunSuccess.set(labels, run.ok ? 1 : 0);
    this.runs.inc({ ...labels, result: run.ok ? 'ok' : 'failed' });
  }

  /** A scheduled run that did not start because its target was busy. */
  skipped(target: string, command: string): void {
    this.runs.inc({ target, command, result: 'skipped' });
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
