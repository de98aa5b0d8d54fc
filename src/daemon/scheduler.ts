/**
 * The daemon's timetable. croner fires each job at its cron times, in the config's time zone; a
 * fired job joins a queue from which at most `concurrency` runs go at once, in the order they fell
 * due. A target never has two runs at once: a job whose target is busy with its other job (a
 * verify due while the backup runs) waits in the queue for it. A job that falls due while its
 * previous run is still going, or still waiting, is not queued a second time but skipped, and
 * `onSkip` is told what blocked it and since when. A run's failure is its own: the scheduler only
 * waits for it to end.
 */
import { Cron } from 'croner';

export type JobKind = 'backup' | 'verify';

export interface Job {
  target: string;
  kind: JobKind;
  /** The cron expression (5 fields, or 6 with seconds first). */
  schedule: string;
}

/** A job's run in progress since `since`, or waiting in the queue since it fell due. */
export interface Occupied {
  job: Job;
  state: 'running' | 'queued';
  since: Date;
}

export interface SchedulerOptions {
  now: () => Date;
  /** One run of `job`, due at `due`; whatever it throws is ignored (it logs its own failures). */
  run(job: Job, due: Date): Promise<void>;
  /** `job` fell due while its previous run (`blocker`) was still going or waiting, and was skipped. */
  onSkip(job: Job, due: Date, blocker: Occupied): void;
}

export interface Timetable {
  jobs: Job[];
  timezone: string | undefined;
  concurrency: number;
}

interface Queued {
  job: Job;
  due: Date;
}

const jobKey = (job: Pick<Job, 'target' | 'kind'>) => `${job.kind}\0${job.target}`;

export class Scheduler {
  private crons: { job: Job; cron: Cron }[] = [];
  private queue: Queued[] = [];
  /** Each job's run going or waiting, by job. */
  private readonly occupied = new Map<string, Occupied>();
  private readonly runningTargets = new Set<string>();
  private readonly active = new Set<Promise<void>>();
  private concurrency = 1;
  private stopped = false;

  constructor(private readonly options: SchedulerOptions) {}

  /**
   * Start, or replace, the timetable. Runs going on finish (and still block their target); queued
   * runs of jobs the new timetable no longer has are dropped.
   */
  setTimetable(timetable: Timetable): void {
    if (this.stopped) return;
    for (const { cron } of this.crons) cron.stop();
    this.concurrency = Math.max(1, timetable.concurrency);
    this.crons = timetable.jobs.map((job) => ({
      job,
      cron: new Cron(job.schedule, { timezone: timetable.timezone }, () => this.due(job)),
    }));
    const kept = new Set(timetable.jobs.map(jobKey));
    const dropped = this.queue.filter((q) => !kept.has(jobKey(q.job)));
    this.queue = this.queue.filter((q) => kept.has(jobKey(q.job)));
    for (const q of dropped) this.occupied.delete(jobKey(q.job));
    this.pump();
  }

  /** Every job and its next time (null when it never runs again). */
  nextRuns(): { job: Job; next: Date | null }[] {
    return this.crons.map(({ job, cron }) => ({ job, next: cron.nextRun() }));
  }

  /** The runs going or waiting now. */
  busy(): Occupied[] {
    return [...this.occupied.values()];
  }

  /** `job` is due now: queue it, or skip it while its previous run is going or waiting. */
  due(job: Job): void {
    if (this.stopped) return;
    const due = this.options.now();
    const blocker = this.occupied.get(jobKey(job));
    if (blocker) {
      this.options.onSkip(job, due, blocker);
      return;
    }
    this.occupied.set(jobKey(job), { job, state: 'queued', since: due });
    this.queue.push({ job, due });
    this.pump();
  }

  /** Start nothing new: the timers stop and the queue is dropped; resolves once the runs going have ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const { cron } of this.crons) cron.stop();
    this.crons = [];
    for (const q of this.queue) this.occupied.delete(jobKey(q.job));
    this.queue = [];
    while (this.active.size > 0) await Promise.all([...this.active]);
  }

  /** Start the first queued runs whose targets are free, up to `concurrency` at once. */
  private pump(): void {
    for (let i = 0; i < this.queue.length && !this.stopped && this.active.size < this.concurrency; ) {
      const { job, due } = this.queue[i]!;
      if (this.runningTargets.has(job.target)) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      this.runningTargets.add(job.target);
      this.occupied.set(jobKey(job), { job, state: 'running', since: this.options.now() });
      const running: Promise<void> = this.options
        .run(job, due)
        .catch(() => undefined)
        .finally(() => {
          this.active.delete(running);
          this.runningTargets.delete(job.target);
          this.occupied.delete(jobKey(job));
          this.pump();
        });
      this.active.add(running);
    }
  }
}

/** A timetable's jobs from the config's targets: `schedule` backs up, `verifySchedule` verifies. */
export function jobsOf(targets: Iterable<{ name: string; schedule: string | undefined; verifySchedule: string | undefined }>): Job[] {
  const jobs: Job[] = [];
  for (const target of targets) {
    if (target.schedule) jobs.push({ target: target.name, kind: 'backup', schedule: target.schedule });
    if (target.verifySchedule) jobs.push({ target: target.name, kind: 'verify', schedule: target.verifySchedule });
  }
  return jobs;
}
