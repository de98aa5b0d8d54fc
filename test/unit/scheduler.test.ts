/**
 * The daemon's timetable on a fake clock: croner fires each job on its cron times, due runs queue
 * up to the concurrency allowed, a target never runs twice at once, and a run due while its
 * previous one is still going or waiting is skipped and reported with what blocked it.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Job, type Occupied, Scheduler, jobsOf } from '../../src/daemon/scheduler.js';

interface Started {
  job: Job;
  at: string;
  finish(error?: Error): void;
}

/** A scheduler whose runs last until the test finishes them; records starts and skips. */
function harness() {
  const started: Started[] = [];
  const skipped: { job: Job; at: string; blocker: Occupied }[] = [];
  const clock = () => new Date(Date.now());
  const scheduler = new Scheduler({
    now: clock,
    run: (job) =>
      new Promise<void>((resolve, reject) => {
        started.push({ job, at: clock().toISOString(), finish: (error) => (error ? reject(error) : resolve()) });
      }),
    onSkip: (job, due, blocker) => skipped.push({ job, at: due.toISOString(), blocker }),
  });
  const running = () => started.map((s) => `${s.job.kind} ${s.job.target} ${s.at.slice(11, 19)}`);
  return { scheduler, started, skipped, running };
}

const backup = (target: string, schedule = '*/2 * * * * *'): Job => ({ target, kind: 'backup', schedule });
const tick = (ms: number) => vi.advanceTimersByTimeAsync(ms);

describe('scheduler', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-03-01T00:00:00.500Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('runs a job on its seconds schedule, and skips it while its previous run is still going', async () => {
    const { scheduler, started, skipped, running } = harness();
    scheduler.setTimetable({ jobs: [backup('app')], timezone: 'UTC', concurrency: 1 });
    await tick(2_000); // 00:00:02
    expect(running()).toEqual(['backup app 00:00:02']);
    await tick(4_000); // due at :04 and :06 while the first still runs
    expect(started).toHaveLength(1);
    expect(skipped.map((s) => s.at)).toEqual(['2026-03-01T00:00:04.000Z', '2026-03-01T00:00:06.000Z']);
    expect(skipped[0]!.blocker).toMatchObject({ state: 'running', job: { target: 'app', kind: 'backup' } });
    expect(skipped[0]!.blocker.since.toISOString()).toBe('2026-03-01T00:00:02.000Z');
    started[0]!.finish();
    await tick(2_000);
    expect(running()).toEqual(['backup app 00:00:02', 'backup app 00:00:08']);
    started[1]!.finish();
    await scheduler.stop();
  });

  it('queues due runs one at a time by default', async () => {
    const one = harness();
    one.scheduler.setTimetable({ jobs: [backup('a'), backup('b')], timezone: undefined, concurrency: 1 });
    await tick(2_000);
    expect(one.running()).toEqual(['backup a 00:00:02']);
    one.started[0]!.finish();
    await tick(100);
    expect(one.running()).toEqual(['backup a 00:00:02', 'backup b 00:00:02']);
    // b waited in the queue, so b due again at :04 while still going is skipped; a runs.
    await tick(1_900);
    expect(one.running()).toEqual(['backup a 00:00:02', 'backup b 00:00:02']);
    one.started[1]!.finish();
    await tick(100);
    expect(one.running().at(-1)).toBe('backup a 00:00:04');
    expect(one.skipped.map((s) => `${s.job.target} ${s.at.slice(11, 19)}`)).toEqual(['b 00:00:04']);
    one.started[2]!.finish();
    await one.scheduler.stop();
  });

  it('runs as many at once as the concurrency allows', async () => {
    const two = harness();
    two.scheduler.setTimetable({ jobs: [backup('a'), backup('b'), backup('c')], timezone: undefined, concurrency: 2 });
    await tick(2_000);
    expect(two.running()).toEqual(['backup a 00:00:02', 'backup b 00:00:02']);
    two.started[1]!.finish();
    await tick(100);
    expect(two.running()).toEqual(['backup a 00:00:02', 'backup b 00:00:02', 'backup c 00:00:02']);
    for (const s of two.started) s.finish();
    await two.scheduler.stop();
  });

  it('a verify due with its target\'s backup waits for it; queued and due again, it is skipped as waiting', async () => {
    const { scheduler, started, skipped, running } = harness();
    const verify: Job = { target: 'app', kind: 'verify', schedule: '*/2 * * * * *' };
    scheduler.setTimetable({ jobs: jobsOf([{ name: 'app', schedule: '*/2 * * * * *', verifySchedule: '*/2 * * * * *' }]), timezone: 'UTC', concurrency: 4 });
    expect(scheduler.nextRuns().map((r) => r.job)).toEqual([backup('app'), verify]);
    await tick(2_000);
    expect(running()).toEqual(['backup app 00:00:02']);
    await tick(2_000);
    expect(skipped.map((s) => `${s.job.kind} ${s.blocker.state} since ${s.blocker.since.toISOString().slice(11, 19)}`)).toEqual([
      'backup running since 00:00:02',
      'verify queued since 00:00:02',
    ]);
    started[0]!.finish();
    await tick(100);
    expect(running()).toEqual(['backup app 00:00:02', 'verify app 00:00:04']);
    started[1]!.finish();
    await scheduler.stop();
  });

  it('a failing run does not stop the job or the others', async () => {
    const { scheduler, started, running } = harness();
    scheduler.setTimetable({ jobs: [backup('a'), backup('b', '*/3 * * * * *')], timezone: undefined, concurrency: 1 });
    await tick(2_000);
    started[0]!.finish(new Error('dump failed'));
    await tick(1_000);
    expect(running()).toEqual(['backup a 00:00:02', 'backup b 00:00:03']);
    started[1]!.finish(new Error('also failed'));
    await tick(1_000);
    expect(running()).toEqual(['backup a 00:00:02', 'backup b 00:00:03', 'backup a 00:00:04']);
    started[2]!.finish();
    await scheduler.stop();
  });

  it('stop: nothing new starts, the queue is dropped, and it resolves once the run going ends', async () => {
    const { scheduler, started, skipped } = harness();
    scheduler.setTimetable({ jobs: [backup('a'), backup('b')], timezone: undefined, concurrency: 1 });
    await tick(2_000);
    let stopped = false;
    const stopping = scheduler.stop().then(() => (stopped = true));
    await tick(10_000);
    expect(stopped).toBe(false);
    expect(scheduler.nextRuns()).toEqual([]);
    started[0]!.finish();
    await stopping;
    expect(started.map((s) => s.job.target)).toEqual(['a']);
    expect(skipped).toEqual([]);
  });

  it('a new timetable replaces the old: removed jobs stop firing and lose their queued runs; a run going still blocks its job', async () => {
    const { scheduler, started, skipped, running } = harness();
    scheduler.setTimetable({ jobs: [backup('a'), backup('b')], timezone: undefined, concurrency: 1 });
    await tick(2_000);
    expect(scheduler.busy().map((o) => `${o.job.target} ${o.state}`)).toEqual(['a running', 'b queued']);
    scheduler.setTimetable({ jobs: [backup('a', '*/5 * * * * *'), backup('c', '*/5 * * * * *')], timezone: undefined, concurrency: 1 });
    expect(scheduler.busy().map((o) => `${o.job.target} ${o.state}`)).toEqual(['a running']);
    await tick(3_000); // 00:00:05: a is still going, c starts only when it ends
    expect(skipped.map((s) => `${s.job.target} ${s.at.slice(11, 19)}`)).toEqual(['a 00:00:05']);
    started[0]!.finish();
    await tick(100);
    expect(running()).toEqual(['backup a 00:00:02', 'backup c 00:00:05']);
    started[1]!.finish();
    await scheduler.stop();
  });

  it('reads schedules in the configured time zone', () => {
    const { scheduler } = harness();
    scheduler.setTimetable({ jobs: [backup('a', '0 2 * * *')], timezone: 'America/New_York', concurrency: 1 });
    expect(scheduler.nextRuns()[0]!.next!.toISOString()).toBe('2026-03-01T07:00:00.000Z');
    scheduler.setTimetable({ jobs: [backup('a', '0 2 * * *')], timezone: 'Asia/Tokyo', concurrency: 1 });
    expect(scheduler.nextRuns()[0]!.next!.toISOString()).toBe('2026-03-01T17:00:00.000Z');
    return scheduler.stop();
  });
});
