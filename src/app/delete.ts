/**
 * delete: remove single backups (contract: `delete <ref...>`), from --storage or from every storage
 * that holds them. Everything is resolved and checked before anything goes: an unknown ref, a
 * refusal or an unconfirmed run deletes nothing. The newest good backup of a target in a storage
 * is refused unless forced (clean never deletes it either). Off a terminal, --yes is required.
 * Each backup goes under its target's lock, archive first and sidecar last, so an interruption
 * never leaves a listed backup without its archive; each deletion is a run in history.
 */
import { ExitCode, type ExitCodeValue, OperationError, RefusedError, UsageError, errorMessage, exitCodeOf } from '../core/errors.js';
import { BACKUP_ID, archiveFileName, isPathRef } from '../core/ids.js';
import { PRE_RESTORE_TAG, type Sidecar, newestFirst } from '../core/manifest.js';
import type { Storage, StorageListing } from '../core/storage.js';
import { lockTarget } from './backup.js';
import { listStorage } from './catalog.js';
import { isGood } from './clean.js';
import { type AppDeps, beginRun, recordRun } from './deps.js';

export interface DeleteOptions {
  /** For "latest". */
  target: string | undefined;
  yes: boolean;
  /** Delete a target's newest good backup too. */
  force: boolean;
  /** Can the operator be asked? (stdin is a terminal) */
  interactive: boolean;
  /** Ask once, naming every backup; resolves true when the answer is yes. */
  confirm: (plan: DeletePlanItem[]) => Promise<boolean>;
}

/** One backup to delete, and where from. */
export interface DeletePlanItem {
  id: string;
  target: string;
  /** Undefined for an archive whose sidecar is missing (an incomplete backup). */
  createdAt: string | undefined;
  size: number;
  storages: string[];
}

export interface DeleteResult {
  deleted: { id: string; storage: string; bytes: number }[];
  freedBytes: number;
  failures: { id: string; storage: string; error: string; code: ExitCodeValue }[];
}

interface Copy {
  storage: Storage;
  file: string;
  bytes: number;
}

export async function deleteBackups(deps: AppDeps, refs: string[], options: DeleteOptions): Promise<DeleteResult> {
  const listings = await listAll(deps);
  const plan = new Map<string, DeletePlanItem & { copies: Copy[] }>();
  for (const ref of refs) {
    if (isPathRef(ref)) throw new UsageError(`delete takes backup ids, not paths: ${ref}`, { hint: 'Remove a file outside a storage with rm.' });
    const id = ref === 'latest' ? latestId(deps, listings, options.target) : ref;
    if (plan.has(id)) continue;
    plan.set(id, locate(deps, listings, id));
  }
  if (!options.force) refuseNewest(deps, listings, [...plan.values()]);
  const items = [...plan.values()].map(({ copies: _copies, ...item }) => item);
  if (!options.yes) {
    if (!options.interactive) {
      throw new RefusedError(`refusing to delete ${items.map((i) => i.id).join(', ')} without confirmation: stdin is not a terminal`, { hint: 'Pass --yes to delete from a script.' });
    }
    if (!(await options.confirm(items))) throw new RefusedError('delete not confirmed; nothing was deleted');
  }

  const result: DeleteResult = { deleted: [], freedBytes: 0, failures: [] };
  for (const item of plan.values()) {
    if (deps.signal.aborted) throw deps.signal.reason;
    const started = await beginRun(deps, 'delete', item.target);
    let failed: unknown;
    try {
      const lock = await lockTarget(deps, { name: item.target }, item.copies.map((c) => c.storage), 'delete');
      try {
        for (const copy of item.copies) {
          try {
            await copy.storage.remove(item.id, copy.file);
            result.deleted.push({ id: item.id, storage: copy.storage.name, bytes: copy.bytes });
            deps.log.info({ id: item.id, storage: copy.storage.name }, `deleted ${item.id} from ${copy.storage.name}`);
          } catch (error) {
            failed ??= error;
            result.failures.push({ id: item.id, storage: copy.storage.name, error: errorMessage(error), code: exitCodeOf(error) });
            deps.log.error({ id: item.id, storage: copy.storage.name }, `could not delete ${item.id} from ${copy.storage.name}: ${errorMessage(error)}`);
          }
        }
      } finally {
        await lock.release();
      }
    } catch (error) {
      // The lock (exit 4) or an interrupt: nothing of this backup was deleted.
      if (exitCodeOf(error) === ExitCode.interrupted) {
        await recordRun(deps, { command: 'delete', target: item.target, id: item.id, started, error });
        throw error;
      }
      failed = error;
      for (const copy of item.copies) result.failures.push({ id: item.id, storage: copy.storage.name, error: errorMessage(error), code: exitCodeOf(error) });
      deps.log.error({ id: item.id }, `could not delete ${item.id}: ${errorMessage(error)}`);
    }
    await recordRun(deps, { command: 'delete', target: item.target, id: item.id, started, error: failed, size: item.size });
  }
  result.freedBytes = result.deleted.reduce((sum, d) => sum + d.bytes, 0);
  return result;
}

/** Every storage's listing; one that cannot be listed stops the run before anything is deleted. */
async function listAll(deps: AppDeps): Promise<Map<Storage, StorageListing>> {
  const listings = new Map<Storage, StorageListing>();
  for (const storage of deps.storages.all) {
    try {
      listings.set(storage, await listStorage(deps, storage));
    } catch (error) {
      throw new OperationError(`storage ${storage.name} cannot be listed: ${errorMessage(error)}; nothing was deleted`, {
        cause: error,
        hint: deps.storages.all.length > 1 ? 'Delete from the other storages with --storage <name>.' : undefined,
      });
    }
  }
  return listings;
}

function latestId(deps: AppDeps, listings: Map<Storage, StorageListing>, target: string | undefined): string {
  if (!target) throw new UsageError('"latest" needs a target', { hint: 'Give --target <name>, or a backup id.' });
  const sidecars = [...listings.values()].flatMap((l) => l.sidecars).filter((s) => s.target === target && !s.tags.includes(PRE_RESTORE_TAG));
  const newest = sidecars.sort(newestFirst)[0];
  if (!newest) throw new UsageError(`no backup of ${target} in ${deps.storages.describe()}`);
  return newest.id;
}

/** Where `id` is: its sidecar, or an archive alone (an incomplete backup, which may be deleted too). */
function locate(deps: AppDeps, listings: Map<Storage, StorageListing>, id: string): DeletePlanItem & { copies: Copy[] } {
  const copies: Copy[] = [];
  let sidecar: Sidecar | undefined;
  for (const [storage, listing] of listings) {
    const own = listing.sidecars.find((s) => s.id === id);
    const archive = listing.archives.get(id);
    if (!own && !archive && !listing.sidecarIds.has(id)) continue;
    sidecar ??= own;
    copies.push({ storage, file: own?.archive.file ?? archive?.file ?? archiveFileName(id), bytes: archive?.size ?? 0 });
  }
  const target = sidecar?.target ?? BACKUP_ID.exec(id)?.[1];
  if (copies.length === 0 || !target) {
    throw new UsageError(`no backup ${id} in ${deps.storages.describe()}; nothing was deleted`, { hint: 'See the ids with: backupkit list' });
  }
  return { id, target, createdAt: sidecar?.createdAt, size: sidecar?.archive.size ?? Math.max(...copies.map((c) => c.bytes)), storages: copies.map((c) => c.storage.name), copies };
}

/** Refuse the whole run if any backup is its target's newest good backup in a storage it is deleted from. */
function refuseNewest(deps: AppDeps, listings: Map<Storage, StorageListing>, items: (DeletePlanItem & { copies: Copy[] })[]): void {
  for (const item of items) {
    const target = deps.config.targets.get(item.target) ?? { files: [] };
    for (const { storage } of item.copies) {
      const listing = listings.get(storage)!;
      const newest = listing.sidecars
        .filter((s) => s.target === item.target && isGood(target, s, listing))
        .sort(newestFirst)[0];
      if (newest?.id === item.id) {
        throw new RefusedError(`${item.id} is the newest good backup of ${item.target} in ${storage.name}; nothing was deleted`, {
          hint: 'Pass --force to delete it anyway.',
        });
      }
    }
  }
}
