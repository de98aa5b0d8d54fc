/**
 * Retention, with restic's semantics (https://restic.readthedocs.io/en/stable/060_forget.html):
 * a backup is kept if any rule keeps it, and the result says which rules keep each one.
 *
 *   keepLast n      the n newest backups
 *   keepDaily n     the newest backup in each of the last n days that have backups
 *   keepWeekly n    ... ISO weeks; keepMonthly n ... months; keepYearly n ... years (all in UTC)
 *   keepWithin d    every backup newer than `now - d`
 *
 * Only good backups (complete, with every part the target makes) count toward the count rules; the
 * newest good backup is always kept. A differential backup needs its full backup (its `base`) to
 * be restored: a base is kept while any kept backup needs it, with the reason `base-of:<id>`.
 * The function is pure: the caller passes `now`.
 */

export interface RetentionPolicy {
  keepLast?: number | undefined;
  keepDaily?: number | undefined;
  keepWeekly?: number | undefined;
  keepMonthly?: number | undefined;
  keepYearly?: number | undefined;
  /** Milliseconds. */
  keepWithin?: number | undefined;
}

export interface RetentionCandidate {
  id: string;
  createdAt: string;
  /** Complete and whole: counts toward the count rules and may be "the newest good backup". */
  good: boolean;
  /** The id of the full backup this differential one needs. */
  base?: string | undefined;
}

export type KeepReason = 'keep-last' | 'keep-daily' | 'keep-weekly' | 'keep-monthly' | 'keep-yearly' | 'keep-within' | 'newest' | `base-of:${string}`;

export interface RetentionResult<T> {
  /** Newest first, each with the rules that keep it. */
  kept: { item: T; reasons: KeepReason[] }[];
  /** Newest first. */
  removed: T[];
}

export function hasRule(policy: RetentionPolicy): boolean {
  return Object.values(policy).some((v) => v !== undefined);
}

const BUCKETS: [keyof RetentionPolicy, KeepReason, (d: Date) => string][] = [
  ['keepDaily', 'keep-daily', (d) => d.toISOString().slice(0, 10)],
  ['keepWeekly', 'keep-weekly', isoWeek],
  ['keepMonthly', 'keep-monthly', (d) => d.toISOString().slice(0, 7)],
  ['keepYearly', 'keep-yearly', (d) => d.toISOString().slice(0, 4)],
];

export function applyRetention<T extends RetentionCandidate>(items: readonly T[], policy: RetentionPolicy, now: Date): RetentionResult<T> {
  const sorted = [...items].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : -1));
  const reasons = new Map<T, KeepReason[]>(sorted.map((item) => [item, []]));
  const good = sorted.filter((item) => item.good);

  good.slice(0, policy.keepLast ?? 0).forEach((item) => reasons.get(item)!.push('keep-last'));
  for (const [key, reason, bucketOf] of BUCKETS) {
    let left = (policy[key] as number | undefined) ?? 0;
    let last: string | undefined;
    for (const item of good) {
      if (left <= 0) break;
      const bucket = bucketOf(new Date(item.createdAt));
      if (bucket === last) continue;
      last = bucket;
      left--;
      reasons.get(item)!.push(reason);
    }
  }
  if (policy.keepWithin !== undefined) {
    const since = now.getTime() - policy.keepWithin;
    for (const item of sorted) if (new Date(item.createdAt).getTime() > since) reasons.get(item)!.push('keep-within');
  }
  const newest = good[0];
  if (newest && reasons.get(newest)!.length === 0) reasons.get(newest)!.push('newest');
  // Newest first: a base kept for a dependent is reached after it, so a chain is followed whole.
  const byId = new Map(sorted.map((item) => [item.id, item]));
  for (const item of sorted) {
    const base = item.base === undefined ? undefined : byId.get(item.base);
    if (base && base !== item && reasons.get(item)!.length > 0) reasons.get(base)!.push(`base-of:${item.id}`);
  }

  return {
    kept: sorted.filter((item) => reasons.get(item)!.length > 0).map((item) => ({ item, reasons: reasons.get(item)! })),
    removed: sorted.filter((item) => reasons.get(item)!.length === 0),
  };
}

/** ISO 8601 week, e.g. "2026-W01": weeks start on Monday; week 1 holds the year's first Thursday. */
export function isoWeek(date: Date): string {
  const d = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  const day = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - day); // the Thursday of this week decides its year
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${d.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}
