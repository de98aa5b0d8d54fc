/**
 * doctor's checks of what backups have done: the newest good backup's age against the target's
 * `maxAge`, and the outcome of its last verify in history.jsonl.
 */
import type { TargetConfig } from '../../config/load.js';
import { formatAge } from '../../core/format.js';
import { PRE_RESTORE_TAG, type Sidecar } from '../../core/manifest.js';
import type { StorageListing } from '../../core/storage.js';
import type { HistoryEntry } from '../../storage/state.js';
import { isGoodIn } from '../../core/manifest.js';
import type { AppDeps } from '../deps.js';
import type { ListingResult, Outcome } from '../doctor.js';

/**
 * The newest good backup of `target` in these listings: complete in at least one storage (its
 * archive there, at the recorded size), whole (every part the target makes), and not a
 * pre-restore snapshot.
 */
export function newestGoodBackup(target: TargetConfig, listings: StorageListing[]): Sidecar | undefined {
  let newest: Sidecar | undefined;
  for (const listing of listings) {
    for (const sidecar of listing.sidecars) {
      if (!isGoodIn(target, sidecar, listing)) continue;
      if (!newest || sidecar.createdAt > newest.createdAt) newest = sidecar;
    }
  }
  return newest;
}

/**
 * Passes while the newest good backup is younger than `maxAge`. With no maxAge it reports the age
 * and passes; with no backup at all it fails only when a maxAge or a schedule says one is due.
 */
export function backupAgeCheck(deps: Pick<AppDeps, 'now'>, target: TargetConfig, results: ListingResult[]): Outcome {
  const listed = results.flatMap((r) => ('listing' in r ? [r.listing] : []));
  const unlisted = results.flatMap((r) => ('error' in r ? [r] : []));
  if (listed.length === 0 && unlisted.length > 0) {
    return { ok: false, detail: `no storage could be listed: ${unlisted.map((r) => `${r.storage.name}: ${r.error}`).join('; ')}`, hint: 'See the storage checks.' };
  }
  const missing = unlisted.length > 0 ? ` (not listed: ${unlisted.map((r) => r.storage.name).join(', ')})` : '';
  const limit = target.maxAgeMs;
  const maxAge = limit === undefined ? 'no maxAge' : `maxAge ${formatSpan(limit, { exact: true })}`;
  const newest = newestGoodBackup(target, listed);
  if (!newest) {
    const others = listed.reduce((n, l) => n + l.sidecars.filter((s) => s.target === target.name).length, 0);
    const none = others > 0 ? `no good backup (${others} incomplete, partial or pre-restore)` : 'no backup yet';
    if (limit === undefined && !target.schedule) return { ok: true, detail: `${none}${missing}` };
    return { ok: false, detail: `${none} (${limit === undefined ? `schedule "${target.schedule}"` : maxAge})${missing}`, hint: `Make one now: backupkit backup ${target.name}` };
  }
  const age = Math.max(0, deps.now().getTime() - new Date(newest.createdAt).getTime());
  const detail = `newest good backup is ${formatSpan(age)} old (${maxAge})${missing}`;
  if (limit === undefined || age <= limit) return { ok: true, detail };
  return {
    ok: false,
    detail,
    hint: [
      `It is ${newest.id}. See why later runs failed: backupkit history --failed ${target.name}`,
      `Make one now: backupkit backup ${target.name}${target.schedule ? ' (and check that the daemon, or the crontab line, is running)' : ''}`,
    ].join('\n'),
  };
}

/** Passes when the target's last verify in history.jsonl was ok, or when none is recorded. */
export function verifyCheck(deps: Pick<AppDeps, 'now'>, target: TargetConfig, history: HistoryEntry[]): Outcome {
  const last = history.filter((e) => e.command === 'verify' && e.target === target.name).at(-1);
  if (!last) return { ok: true, detail: 'no verify recorded yet' };
  const when = `last verify ${formatAge(new Date(last.time), deps.now())}`;
  if (last.ok) return { ok: true, detail: `${when}: ${last.id ?? 'ok'} ok` };
  return {
    ok: false,
    detail: `${when}: ${last.id ?? ''} failed: ${last.error ?? 'unknown error'}`,
    hint: [
      `Check it again: backupkit verify ${last.id ?? `--target ${target.name}`}; past failures: backupkit history --failed ${target.name}`,
      `If the archive is damaged, make a fresh backup (backupkit backup ${target.name}) and delete the damaged one.`,
    ].join('\n'),
  };
}

const SPAN_UNITS: [string, number][] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/**
 * A span as durations are written: an age down to the minute ("45s", "12m", "31h", "25h30m",
 * "3d4h"), or, `exact`, a limit in its largest whole unit ("25h", "7d", "90m").
 */
export function formatSpan(ms: number, options: { exact?: boolean } = {}): string {
  if (options.exact) {
    const [unit, size] = SPAN_UNITS.find(([, size]) => ms % size === 0 && ms >= size) ?? ['s', 1000];
    return `${Math.round(ms / size)}${unit}`;
  }
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 ? `${String(m % 60).padStart(2, '0')}m` : ''}`;
  return `${Math.floor(h / 24)}d${h % 24 ? `${h % 24}h` : ''}`;
}
