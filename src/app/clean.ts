/**
 * clean: apply each target's retention policy in each of its storages (a storage's own rules
 * replace the target's there). Flags replace the config's rules; a target with no
 * rule at all is never cleaned (exit 2). A storage that fails (cannot be listed, a delete refused)
 * is a failure of that target in that storage; its other storages are cleaned all the same.
 * Archives go before their sidecars, so an interruption never leaves a listed backup without its archive. Orphans (an archive with no sidecar, older than an
 * hour; a sidecar with no archive) are reported by --dry-run and removed by clean. Deletes are
 * planned again under the target's lock, from fresh listings.
 */
import type { TargetConfig } from '../config/load.js';
import { parseDuration } from '../core/duration.js';
import { BackupkitError, UsageError, errorMessage, exitCodeOf, ExitCode, type ExitCodeValue } from '../core/errors.js';
import { BACKUP_ID } from '../core/ids.js';
import type { Sidecar } from '../core/manifest.js';
import { type KeepReason, type RetentionPolicy, applyRetention, hasRule } from '../core/retention.js';
import type { Storage, StorageListing } from '../core/storage.js';
import { lockTarget } from './backup.js';
import { listStorage } from './catalog.js';
import { keepBasesAcross } from './chain.js';
import { holdsEveryPart } from '../core/manifest.js';
import { type AppDeps, beginRun, recordRun, selectTargets } from './deps.js';

export interface CleanOptions {
  dryRun: boolean;
  /** Rules from flags; when any is set they replace the config's. */
  rules: RetentionPolicy;
}

export interface CleanResult {
  kept: { id: string; storage: string; reasons: KeepReason[] }[];
  deleted: { id: string; storage: string; bytes: number }[];
  freedBytes: number;
  dryRun: boolean;
  /** A target that failed as a whole, or in one storage (`storage`). */
  failures: { target: string; storage?: string; error: string; code: ExitCodeValue }[];
}

/** Some of a target's storages failed during clean (the others were cleaned): its history line. */
class StorageFailures extends BackupkitError {
  override readonly exitCode: ExitCodeValue;
  constructor(failed: { storage: string; error: unknown }[]) {
    super(failed.map((f) => `storage ${f.storage}: ${errorMessage(f.error)}`).join('; '), { cause: failed[0]?.error });
    const codes = new Set(failed.map((f) => exitCodeOf(f.error)));
    this.exitCode = codes.size === 1 ? [...codes][0]! : ExitCode.failed;
  }
}

const ORPHAN_AGE_MS = 60 * 60 * 1000;

export async function cleanTargets(deps: AppDeps, names: string[], options: CleanOptions): Promise<CleanResult> {
  const result: CleanResult = { kept: [], deleted: [], freedBytes: 0, dryRun: options.dryRun, failures: [] };
  const targets = selectTargets(deps, names);
  const listings = new Map<Storage, Promise<StorageListing>>();
  const listingOf = (storage: Storage) => {
    let listing = listings.get(storage);
    if (!listing) listings.set(storage, (listing = listStorage(deps, storage)));
    return listing;
  };
  for (const target of targets) {
    if (deps.signal.aborted) throw deps.signal.reason;
    const started = options.dryRun ? deps.now() : await beginRun(deps, 'clean', target.name);
    const failed: { storage: string; error: unknown }[] = [];
    /** Run one storage's step; its failure is the target's in that storage, an interrupt ends the run. */
    const inStorage = async (storage: Storage, step: () => Promise<void>) => {
      try {
        await step();
      } catch (error) {
        if (exitCodeOf(error) === ExitCode.interrupted) throw error;
        deps.log.error({ target: target.name, storage: storage.name }, `clean of ${target.name} in storage ${storage.name} failed: ${errorMessage(error)}`);
        failed.push({ storage: storage.name, error });
      }
    };
    try {
      const storages = deps.storages.forTarget(target);
      if (!storages.some((storage) => hasRule(policyFor(target, options.rules, storage)))) throw noRule(target, undefined);
      const planAll = async (listed: (storage: Storage) => Promise<StorageListing>) => {
        const plans: { storage: Storage; plan: StoragePlan }[] = [];
        for (const storage of storages) {
          await inStorage(storage, async () => void plans.push({ storage, plan: planStorage(deps, target, storage, await listed(storage), options) }));
        }
        await keepBasesAcross(deps, target.name, plans, listed);
        return plans;
      };
      let plans = await planAll(listingOf);
      const reportKept = () => {
        for (const { storage, plan } of plans) result.kept.push(...plan.kept.map((k) => ({ id: k.id, storage: storage.name, reasons: k.reasons })));
      };
      const toDelete = plans.filter((p) => p.plan.deleted.length > 0);
      if (!options.dryRun && toDelete.length > 0) {
        const locked = toDelete.map((p) => p.storage);
        const lock = await lockTarget(deps, target, locked, 'clean').catch((error: unknown) => {
          reportKept();
          throw error;
        });
        try {
          // The storages with deletes are planned again from listings taken under the lock: a
          // backup that finished since the first listing (its sidecar written after its archive)
          // is kept, not taken for an orphan, and counts for the rules. The others keep their
          // listing, so their plans (and failures) come out as before: nothing to delete there.
          for (const storage of locked) listings.delete(storage);
          failed.length = 0;
          plans = await planAll(listingOf);
          for (const { storage, plan } of plans.filter((p) => locked.includes(p.storage))) {
            await inStorage(storage, async () => {
              for (const item of plan.deleted) {
                await storage.remove(item.id, item.file);
                result.deleted.push({ id: item.id, storage: storage.name, bytes: item.bytes });
                deps.log.info({ id: item.id, storage: storage.name }, item.orphan ? `removed orphan ${item.file} from ${storage.name}` : `deleted ${item.id} from ${storage.name}`);
              }
            });
          }
        } finally {
          await lock.release();
        }
      }
      reportKept();
      if (options.dryRun) for (const { storage, plan } of plans) result.deleted.push(...plan.deleted.map((d) => ({ id: d.id, storage: storage.name, bytes: d.bytes })));
      for (const f of failed) result.failures.push({ target: target.name, storage: f.storage, error: errorMessage(f.error), code: exitCodeOf(f.error) });
      const error = failed.length > 0 ? new StorageFailures(failed) : undefined;
      if (!options.dryRun) await recordRun(deps, { command: 'clean', target: target.name, id: null, started, error });
    } catch (error) {
      if (exitCodeOf(error) === ExitCode.interrupted) throw error;
      deps.log.error({ target: target.name }, `clean of ${target.name} failed: ${errorMessage(error)}`);
      result.failures.push({ target: target.name, error: errorMessage(error), code: exitCodeOf(error) });
      if (!options.dryRun) await recordRun(deps, { command: 'clean', target: target.name, id: null, started, error });
    }
  }
  result.freedBytes = result.deleted.reduce((sum, d) => sum + d.bytes, 0);
  return result;
}

/** The policy for a target in a storage: the flags' rules if any, else the storage's, else the target's (or defaults'). */
export function policyFor(target: TargetConfig, flags: RetentionPolicy, storage?: Pick<Storage, 'retention'>): RetentionPolicy {
  if (hasRule(flags)) return flags;
  if (storage?.retention && hasRule(storage.retention)) return storage.retention;
  const { keepWithin, ...counts } = target.retention ?? {};
  return { ...counts, ...(keepWithin === undefined ? {} : { keepWithin: parseDuration(keepWithin) }) };
}

export interface StoragePlan {
  kept: { id: string; reasons: KeepReason[] }[];
  deleted: { id: string; file: string; bytes: number; orphan: boolean }[];
}

/** What retention keeps and deletes of `target` in one storage, and the orphans to remove there. */
function planStorage(deps: AppDeps, target: TargetConfig, storage: Storage, listing: StorageListing, options: CleanOptions): StoragePlan {
  const policy = policyFor(target, options.rules, storage);
  if (!hasRule(policy)) throw noRule(target, storage.name);
  const sidecars = listing.sidecars.filter((s) => s.target === target.name);
  const orphans = findOrphans(deps, target, listing, sidecars);
  const orphaned = new Set(orphans.map((o) => o.id));
  const candidates = sidecars
    .filter((s) => !orphaned.has(s.id))
    .map((s) => ({ id: s.id, createdAt: s.createdAt, good: isGood(target, s, listing), base: s.base, sidecar: s }));
  const decision = applyRetention(candidates, policy, deps.now());
  const kept = decision.kept.map(({ item, reasons }) => ({ id: item.id, reasons }));
  for (const k of kept) deps.log.debug({ id: k.id, storage: storage.name, reasons: k.reasons }, 'keep');
  const deleted = [
    ...decision.removed.map((item) => ({ id: item.id, file: item.sidecar.archive.file, bytes: item.sidecar.archive.size, orphan: false })),
    ...orphans,
  ];
  return { kept, deleted };
}

/** A target with no retention rule (in one storage, when others have one) is never cleaned there. */
function noRule(target: TargetConfig, storage: string | undefined): UsageError {
  return new UsageError(`target ${target.name} has no retention rule${storage ? ` in storage ${storage}` : ''}; nothing was deleted${storage ? ' there' : ''}`, {
    hint: `Set "retention" for the target, in "defaults" or on the storage (e.g. {"keepDaily": 7, "keepWeekly": 4}), or pass --keep-last, --keep-daily, ... or --retention-days.`,
  });
}

/** Complete (its archive is there, at the recorded size) and whole (every part the target makes). */
export function isGood(target: Pick<TargetConfig, 'files'>, sidecar: Sidecar, listing: StorageListing): boolean {
  return listing.archives.get(sidecar.id)?.size === sidecar.archive.size && holdsEveryPart(target, sidecar);
}

/**
 * Orphans of `target` in a storage: an archive with no sidecar, older than an hour (a younger one
 * may still be being written), and a sidecar whose archive is gone.
 */
function findOrphans(deps: AppDeps, target: TargetConfig, listing: StorageListing, sidecars: Sidecar[]): StoragePlan['deleted'] {
  const out: StoragePlan['deleted'] = [];
  const now = deps.now().getTime();
  for (const [id, archive] of listing.archives) {
    if (BACKUP_ID.exec(id)?.[1] !== target.name || listing.sidecarIds.has(id)) continue;
    if (now - archive.modified.getTime() <= ORPHAN_AGE_MS) continue;
    out.push({ id, file: archive.file, bytes: archive.size, orphan: true });
  }
  for (const sidecar of sidecars) {
    if (!listing.archives.has(sidecar.id)) out.push({ id: sidecar.id, file: sidecar.archive.file, bytes: 0, orphan: true });
  }
  return out;
}
