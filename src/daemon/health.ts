/**
 * Each target's newest good backup, as the daemon knows it from the storages' listings (read at
 * start, after each backup and after a reload), and the verdict /healthz gives on it.
 *
 * A good backup is one `latest` could restore: its archive is in the storage at the size its
 * sidecar records, it holds every part the target makes, and it is not a pre-restore snapshot.
 * A target is judged only when it has a `maxAge`: it is unhealthy when it has no good backup or
 * when the newest is older than that.
 */
import type { TargetConfig } from '../config/load.js';
import { formatDuration } from '../core/duration.js';
import { errorMessage } from '../core/errors.js';
import { type TargetShape, isGoodIn } from '../core/manifest.js';
import type { Storage, StorageListing } from '../core/storage.js';

export interface NewestBackup {
  id: string;
  createdAt: Date;
  size: number;
  storages: string[];
}

/** What the daemon knows of a target's backups; `unlisted` names storages whose listing failed. */
export interface Known {
  newest: NewestBackup | undefined;
  unlisted: { storage: string; error: string }[];
}

export interface TargetHealth {
  target: string;
  ok: boolean;
  id: string | null;
  createdAt: string | null;
  ageSeconds: number | null;
  maxAgeSeconds: number | null;
  /** Why it is unhealthy, or what could not be read; null when all is well. */
  problem: string | null;
}

export interface HealthReport {
  ok: boolean;
  time: string;
  targets: TargetHealth[];
}

type HealthTarget = Pick<TargetConfig, 'name' | 'files' | 'maxAgeMs'>;

/** The newest good backup of `target` over the listings of its storages. */
export function newestGood(target: TargetShape, listings: { storage: string; listing: StorageListing }[]): NewestBackup | undefined {
  let newest: NewestBackup | undefined;
  for (const { storage, listing } of listings) {
    for (const sidecar of listing.sidecars) {
      if (!isGoodIn(target, sidecar, listing)) continue;
      const createdAt = new Date(sidecar.createdAt);
      if (newest?.id === sidecar.id) newest.storages.push(storage);
      else if (!newest || createdAt > newest.createdAt || (createdAt.getTime() === newest.createdAt.getTime() && sidecar.id > newest.id)) {
        newest = { id: sidecar.id, createdAt, size: sidecar.archive.size, storages: [storage] };
      }
    }
  }
  return newest;
}

/** List `storages` once each and work out what each of `targets` has there. */
export async function readKnown(targets: (HealthTarget & Pick<TargetConfig, 'storages' | 'driver'>)[], storages: Storage[]): Promise<Map<string, Known>> {
  const listings = new Map<string, Promise<StorageListing>>();
  const listingOf = (storage: Storage) => {
    let listing = listings.get(storage.name);
    if (!listing) listings.set(storage.name, (listing = storage.list()));
    return listing;
  };
  const known = new Map<string, Known>();
  for (const target of targets) {
    const own = storages.filter((s) => target.storages.includes(s.name));
    const read: { storage: string; listing: StorageListing }[] = [];
    const unlisted: Known['unlisted'] = [];
    for (const storage of own) {
      try {
        read.push({ storage: storage.name, listing: await listingOf(storage) });
      } catch (error) {
        unlisted.push({ storage: storage.name, error: errorMessage(error) });
      }
    }
    known.set(target.name, { newest: newestGood(target, read), unlisted });
  }
  return known;
}

/** The verdict on each target at `now`; the report is ok when every target is. */
export function judge(targets: HealthTarget[], known: ReadonlyMap<string, Known>, now: Date): HealthReport {
  const out: TargetHealth[] = targets.map((target) => {
    const { newest, unlisted } = known.get(target.name) ?? { newest: undefined, unlisted: [] };
    const ageMs = newest ? Math.max(0, now.getTime() - newest.createdAt.getTime()) : undefined;
    const unread = unlisted.map((u) => `storage ${u.storage} could not be listed: ${u.error}`).join('; ');
    let problem: string | null = null;
    if (target.maxAgeMs !== undefined) {
      if (!newest) problem = `no good backup${unread ? ` (${unread})` : ''}`;
      else if (ageMs! > target.maxAgeMs) problem = `newest good backup is ${formatDuration(ageMs!)} old (maxAge ${formatDuration(target.maxAgeMs)})`;
    }
    return {
      target: target.name,
      ok: problem === null,
      id: newest?.id ?? null,
      createdAt: newest?.createdAt.toISOString() ?? null,
      ageSeconds: ageMs === undefined ? null : Math.floor(ageMs / 1000),
      maxAgeSeconds: target.maxAgeMs === undefined ? null : target.maxAgeMs / 1000,
      problem: problem ?? (unread || null),
    };
  });
  return { ok: out.every((t) => t.ok), time: now.toISOString(), targets: out };
}
