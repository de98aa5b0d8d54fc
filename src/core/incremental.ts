/**
 * Which backup of an `incremental` target's files is full and which is differential: the pure
 * part of the decision (the facts come from the storages and this host's history). A full backup
 * is due when `--full` is given, when there is no full backup yet, when the last full one (the
 * base of the newest backup with files, or that backup itself) is missing, `fullEvery` old, or
 * bad: its archive missing or truncated in every storage that lists it, or its last verify failed.
 */
import { formatDuration } from './duration.js';
import { newestFirst } from './manifest.js';

export interface ChainBackup {
  id: string;
  createdAt: string;
  parts: readonly string[];
  base?: string | undefined;
}

export interface ChainFacts {
  /** `backup --full`. */
  full: boolean;
  now: Date;
  fullEveryMs: number;
  /** The target's backups, in any storage, each once. */
  backups: readonly ChainBackup[];
  /** Ids whose archive is in place, at the size recorded, in at least one storage listing it. */
  archived: ReadonlySet<string>;
  /** The outcome of each backup's last verify on this host. */
  lastVerify: ReadonlyMap<string, { ok: boolean; error: string | null }>;
}

export type ChainPlan = { kind: 'full'; reason: string } | { kind: 'differential'; base: string };

/** A schedule's start drifts by seconds: a base this much short of `fullEvery` counts as due. */
export function fullEverySlack(fullEveryMs: number): number {
  return Math.min(60 * 60 * 1000, fullEveryMs / 100);
}

export function planChain(facts: ChainFacts): ChainPlan {
  const full = (reason: string): ChainPlan => ({ kind: 'full', reason });
  if (facts.full) return full('--full was given');
  const newest = facts.backups.filter((b) => b.parts.includes('files')).sort(newestFirst)[0];
  if (!newest) return full('there is no full backup yet');
  const id = newest.base ?? newest.id;
  const last = facts.backups.find((b) => b.id === id);
  const what = `the last full backup ${id}`;
  if (!last) return full(`${what} is missing: no storage holds its sidecar`);
  const age = facts.now.getTime() - new Date(last.createdAt).getTime();
  if (age >= facts.fullEveryMs - fullEverySlack(facts.fullEveryMs)) return full(`${what} is ${roughAge(age)} old (fullEvery ${formatDuration(facts.fullEveryMs)})`);
  if (!facts.archived.has(id)) return full(`${what} is bad: its archive is missing or truncated in every storage`);
  const verified = facts.lastVerify.get(id);
  if (verified && !verified.ok) return full(`${what} is bad: its last verify failed (${verified.error ?? 'no reason recorded'})`);
  return { kind: 'differential', base: id };
}

/** An age to the hour, in days from two days on: "7d", "6.9d", "30h". */
function roughAge(ms: number): string {
  const hours = Math.round(ms / 3_600_000);
  if (hours < 48) return hours < 1 ? formatDuration(ms) : `${hours}h`;
  return `${(hours / 24).toFixed(1).replace(/\.0$/, '')}d`;
}
