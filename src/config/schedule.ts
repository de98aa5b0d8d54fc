/**
 * Schedules (`schedule`, `verifySchedule`): cron expressions of 5 fields, or 6 with seconds, read
 * by croner in `defaults.timezone` (else the system's). Checked when the config loads, so a typo
 * is a config error naming the key, not a daemon that never runs.
 */
import { Cron } from 'croner';

/** What is wrong with `expression`, or undefined when croner reads it. */
export function checkCron(expression: string, timezone: string | undefined): string | undefined {
  const fields = expression.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6) {
    return `"${expression}" is not a cron expression: expected 5 fields (minute hour day month weekday), or 6 with seconds first, got ${fields}`;
  }
  try {
    const cron = new Cron(expression, { paused: true, timezone });
    const next = cron.nextRun();
    cron.stop();
    if (next === null) return `"${expression}" never runs`;
  } catch (error) {
    return `"${expression}" is not a valid cron expression: ${(error as Error).message.replace(/^Cron\w*:\s*/, '')}`;
  }
  return undefined;
}

/** Whether `timezone` is an IANA time zone name this Node.js knows. */
export function checkTimezone(timezone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return undefined;
  } catch {
    return `"${timezone}" is not a known time zone; use an IANA name such as "Europe/Berlin" or "UTC"`;
  }
}

/** The next `count` times `expression` fires after `from`. */
export function nextRuns(expression: string, timezone: string | undefined, from: Date, count: number): Date[] {
  const cron = new Cron(expression, { paused: true, timezone });
  try {
    return cron.nextRuns(count, from);
  } finally {
    cron.stop();
  }
}

const DAY_MS = 86_400_000;
/** The contract's default maxAge for a target backed up daily or more often. */
export const DAILY_MAX_AGE_MS = 25 * 3_600_000;

/**
 * The default `maxAge` of a schedule: 25h when it runs at least once a day (no gap between runs
 * over a day, judged over the next two weeks of runs), else none.
 */
export function defaultMaxAgeMs(expression: string, timezone: string | undefined, from: Date): number | undefined {
  const runs = nextRuns(expression, timezone, from, 64);
  if (runs.length < 2) return undefined;
  let widest = 0;
  for (let i = 1; i < runs.length; i++) widest = Math.max(widest, runs[i]!.getTime() - runs[i - 1]!.getTime());
  // A DST change stretches one day to 25 hours.
  return widest <= DAY_MS + 3_600_000 ? DAILY_MAX_AGE_MS : undefined;
}
