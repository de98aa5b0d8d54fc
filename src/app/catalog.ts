/**
 * The backups across storages: each listed once, with the storages that hold it (config order),
 * its sidecar read from the first of them. A storage that cannot be listed is reported and the
 * others are still listed.
 */
import { errorMessage } from '../core/errors.js';
import { type BackupRecord, PRE_RESTORE_TAG, type Sidecar, newestFirst, toRecord } from '../core/manifest.js';
import type { Storage, StorageListing } from '../core/storage.js';
import type { AppDeps } from './deps.js';

export interface Located {
  sidecar: Sidecar;
  /** The storages holding its sidecar, in config order, those that also hold its archive first. */
  storages: Storage[];
}

export interface Catalog {
  backups: Located[];
  failures: { storage: string; error: string }[];
}

export async function listStorage(deps: Pick<AppDeps, 'log'>, storage: Storage): Promise<StorageListing> {
  const listing = await storage.list();
  for (const skipped of listing.skipped) deps.log.warn({ storage: storage.name, file: skipped.name }, `skipping ${skipped.name} in ${storage.name}: ${skipped.reason}`);
  return listing;
}

/** Every backup in `storages` (default: every storage of the config, narrowed by --storage), newest first. */
export async function readCatalog(deps: Pick<AppDeps, 'log' | 'storages'>, storages: Storage[] = deps.storages.all): Promise<Catalog> {
  const byId = new Map<string, Located>();
  const failures: Catalog['failures'] = [];
  const complete = new Set<string>();
  const listings = await Promise.all(
    storages.map((storage) =>
      listStorage(deps, storage).then(
        (listing) => ({ storage, listing }),
        (error: unknown) => {
          deps.log.warn({ storage: storage.name }, `cannot list storage ${storage.name}: ${errorMessage(error)}`);
          failures.push({ storage: storage.name, error: errorMessage(error) });
          return undefined;
        },
      ),
    ),
  );
  for (const entry of listings) {
    if (!entry) continue;
    for (const sidecar of entry.listing.sidecars) {
      const found = byId.get(sidecar.id);
      if (found) found.storages.push(entry.storage);
      else byId.set(sidecar.id, { sidecar, storages: [entry.storage] });
      if (entry.listing.archives.has(sidecar.id)) complete.add(`${entry.storage.name}\0${sidecar.id}`);
    }
  }
  // A sidecar whose archive is missing still lists (verify reports it), but is read from last.
  for (const located of byId.values()) {
    const has = (s: Storage) => complete.has(`${s.name}\0${located.sidecar.id}`);
    located.storages.sort((a, b) => Number(has(b)) - Number(has(a)));
  }
  const backups = [...byId.values()].sort((a, b) => newestFirst(a.sidecar, b.sidecar));
  return { backups, failures };
}

export function recordOf(located: Located): BackupRecord {
  return toRecord(located.sidecar, located.storages.map((s) => s.name));
}
