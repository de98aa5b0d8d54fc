/**
 * Retention over generated calendars. Expected results are derived from the rules by hand:
 * 2026-01-01 and 2026-12-31 are Thursdays, so 2026 has an ISO week 53 (Dec 28 - Jan 3).
 */
import { describe, expect, it } from 'vitest';
import { type RetentionPolicy, applyRetention, isoWeek } from '../../src/core/retention.js';

const item = (createdAt: string, good = true) => ({ id: createdAt, createdAt, good });

function days(from: string, to: string, time = '02:00:00'): ReturnType<typeof item>[] {
  const out = [];
  for (let d = new Date(`${from}T${time}Z`); d <= new Date(`${to}T${time}Z`); d = new Date(d.getTime() + 86_400_000)) out.push(item(d.toISOString()));
  return out;
}

function run(items: ReturnType<typeof item>[], policy: RetentionPolicy, now = '2030-01-01T00:00:00Z') {
  const result = applyRetention(items, policy, new Date(now));
  return {
    kept: Object.fromEntries(result.kept.map(({ item: i, reasons }) => [i.id.slice(0, 16), reasons])),
    removed: result.removed.map((i) => i.id.slice(0, 16)),
  };
}

describe('applyRetention', () => {
  it('daily backups over three years: daily, weekly, monthly and yearly buckets', () => {
    const all = days('2024-01-01', '2026-12-31');
    expect(all).toHaveLength(1096);
    const { kept, removed } = run(all, { keepDaily: 7, keepWeekly: 4, keepMonthly: 12, keepYearly: 5 });
    expect(Object.keys(kept).sort()).toEqual(
      [
        ...['25', '26', '27', '28', '29', '30', '31'].map((d) => `2026-12-${d}T02:00`), // daily
        '2026-12-20T02:00', '2026-12-13T02:00', // weekly: Sundays of W51, W50
        ...['11-30', '10-31', '09-30', '08-31', '07-31', '06-30', '05-31', '04-30', '03-31', '02-28', '01-31'].map((d) => `2026-${d}T02:00`), // monthly
        '2025-12-31T02:00', '2024-12-31T02:00', // yearly (only 3 years have backups)
      ].sort(),
    );
    expect(removed).toHaveLength(1096 - 22);
    expect(kept['2026-12-31T02:00']).toEqual(['keep-daily', 'keep-weekly', 'keep-monthly', 'keep-yearly']);
    expect(kept['2026-12-27T02:00']).toEqual(['keep-daily', 'keep-weekly']);
    expect(kept['2026-12-20T02:00']).toEqual(['keep-weekly']);
    expect(kept['2024-12-31T02:00']).toEqual(['keep-yearly']);
  });

  it('counts days and weeks that have backups, across gaps of weeks', () => {
    const all = ['2026-01-05', '2026-01-06', '2026-02-20', '2026-02-21', '2026-03-30'].map((d) => item(`${d}T10:00:00.000Z`));
    expect(Object.keys(run(all, { keepDaily: 3 }).kept)).toEqual(['2026-03-30T10:00', '2026-02-21T10:00', '2026-02-20T10:00']);
    expect(Object.keys(run(all, { keepWeekly: 2 }).kept)).toEqual(['2026-03-30T10:00', '2026-02-21T10:00']);
    expect(Object.keys(run(all, { keepMonthly: 5 }).kept)).toEqual(['2026-03-30T10:00', '2026-02-21T10:00', '2026-01-06T10:00']);
  });

  it('keeps the newest of several backups a day', () => {
    const all = ['2026-03-10T01:00', '2026-03-10T09:00', '2026-03-10T23:59', '2026-03-09T12:00', '2026-03-09T13:00'].map((t) => item(`${t}:00.000Z`));
    expect(run(all, { keepDaily: 2 }).kept).toEqual({ '2026-03-10T23:59': ['keep-daily'], '2026-03-09T13:00': ['keep-daily'] });
    expect(Object.keys(run(all, { keepLast: 2 }).kept)).toEqual(['2026-03-10T23:59', '2026-03-10T09:00']);
  });

  it('puts ISO weeks and years on the right side of the new year', () => {
    const all = ['2025-12-28', '2025-12-29', '2026-01-01', '2027-01-03'].map((d) => item(`${d}T12:00:00.000Z`));
    // ISO weeks: 2025-12-28 is 2025-W52; 2025-12-29 and 2026-01-01 are 2026-W01; 2027-01-03 is 2026-W53.
    expect(Object.keys(run(all, { keepWeekly: 3 }).kept)).toEqual(['2027-01-03T12:00', '2026-01-01T12:00', '2025-12-28T12:00']);
    // Years are calendar years.
    expect(Object.keys(run(all, { keepYearly: 3 }).kept)).toEqual(['2027-01-03T12:00', '2026-01-01T12:00', '2025-12-29T12:00']);
  });

  it('keeps everything within a duration of now', () => {
    const all = days('2026-03-01', '2026-03-31');
    const { kept } = run(all, { keepWithin: 10 * 86_400_000 }, '2026-03-31T12:00:00Z');
    expect(Object.keys(kept)).toEqual(days('2026-03-22', '2026-03-31').reverse().map((i) => i.id.slice(0, 16)));
  });

  it('never removes the newest good backup, and does not count partial ones', () => {
    const all = [item('2026-03-10T00:00:00.000Z', false), item('2026-03-09T00:00:00.000Z'), item('2026-03-08T00:00:00.000Z')];
    expect(run(all, { keepLast: 1 })).toEqual({ kept: { '2026-03-09T00:00': ['keep-last'] }, removed: ['2026-03-10T00:00', '2026-03-08T00:00'] });
    expect(run(all, { keepWithin: 3_600_000 })).toEqual({ kept: { '2026-03-09T00:00': ['newest'] }, removed: ['2026-03-10T00:00', '2026-03-08T00:00'] });
    expect(run(all, { keepDaily: 1 }).kept).toEqual({ '2026-03-09T00:00': ['keep-daily'] });
  });

  it('handles an empty list', () => {
    expect(run([], { keepLast: 3 })).toEqual({ kept: {}, removed: [] });
  });
});

describe('isoWeek', () => {
  it.each([
    ['2021-01-03', '2020-W53'],
    ['2024-12-30', '2025-W01'],
    ['2026-01-01', '2026-W01'],
    ['2026-12-31', '2026-W53'],
    ['2027-01-03', '2026-W53'],
    ['2027-01-04', '2027-W01'],
  ])('%s is in %s', (day, week) => {
    expect(isoWeek(new Date(`${day}T23:30:00Z`))).toBe(week);
  });
});
