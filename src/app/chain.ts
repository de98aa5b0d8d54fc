/**
 * Differential backups and their bases across storages: finding and opening a base for restore
 * (any storage that holds a good copy), checking it for verify, and what deleting a base breaks
 * (delete, clean). A base is looked for in the storages the run reads (--storage first), then in
 * every other storage of the config.
 */
import { type BrokenBase, type HeldCopy, brokenBases } from '../core/chain.js';
import { ExitCode, OperationError, VerificationError, errorMessage, exitCodeOf } from '../core/errors.js';
import type { Manifest, Sidecar } from '../core/manifest.js';
import type { KeepReason } from '../core/retention.js';
import type { ArchiveReader, Storage, StorageListing } from '../core/storage.js';
import { checkArchive } from '../pipeline/verify.js';
import { ZipReader } from '../pipeline/zipreader.js';
import { createStorages } from '../storage/registry.js';
import type { AppDeps } from './deps.js';
import { plainArchive } from './keys.js';

/** The storages the run reads, then the config's others (when --storage narrowed the run). */
export async function everyStorage(deps: Pick<AppDeps, 'storages' | 'config'>): Promise<Storage[]> {
  if (!deps.storages.narrowedTo) return deps.storages.all;
  const others = (await createStorages(deps.config)).all.filter((s) => !deps.storages.all.some((own) => own.name === s.name));
  return [...deps.storages.all, ...others];
}

/** Every copy of `base` that has a sidecar: the storage and the sidecar there. */
async function copiesOf(deps: AppDeps, base: string): Promise<{ storage: Storage; sidecar: Sidecar }[]> {
  const copies: { storage: Storage; sidecar: Sidecar }[] = [];
  for (const storage of await everyStorage(deps)) {
    try {
      const sidecar = await storage.readSidecar(base);
      if (sidecar) copies.push({ storage, sidecar });
    } catch (error) {
      deps.log.warn({ storage: storage.name }, `storage ${storage.name} cannot be read for the base ${base}: ${errorMessage(error)}`);
    }
  }
  return copies;
}

/** Why the entries of `manifest` that name the base do not match the base's manifest; undefined when they all do. */
function mismatch(manifest: Manifest, base: Manifest, zip?: ZipReader): string | undefined {
  const held = new Map(base.entries.filter((e) => e.base === undefined).map((e) => [e.path, e]));
  for (const entry of manifest.entries) {
    if (entry.base === undefined) continue;
    const found = held.get(entry.path);
    if (!found) return `${entry.path} is not in it`;
    if (found.sha256 !== entry.sha256 || found.size !== entry.size) return `${entry.path} differs there`;
    if (zip && zip.entries.get(entry.path)?.type !== 'file') return `${entry.path} is not a regular file there`;
  }
  return undefined;
}

export interface OpenBase {
  id: string;
  storage: string;
  /** The base's plain zip. */
  reader: ZipReader;
  close(): Promise<void>;
}

/**
 * Open the base of the differential backup `manifest` for a restore: the first copy (in storage
 * order) whose archive passes its checks (size and SHA-256, decrypted when encrypted, its manifest
 * against its sidecar) and holds every file `manifest` takes from it. None: exit 3, naming it.
 */
export async function openBase(deps: AppDeps, manifest: Manifest): Promise<OpenBase> {
  const id = manifest.base!;
  const copies = await copiesOf(deps, id);
  const problems: string[] = [];
  for (const { storage, sidecar } of copies) {
    let raw: ArchiveReader | undefined;
    let reader: ZipReader | undefined;
    try {
      raw = await storage.openArchive(id, sidecar.archive.file);
      const plain = (await plainArchive(deps, raw, sidecar, { required: true, what: id, target: sidecar.target }))!;
      deps.progress.start(`checking the base ${id}${copies.length > 1 ? ` in ${storage.name}` : ''}`);
      const checked = await checkArchive(raw, sidecar, { entries: false, onBytes: (n) => deps.progress.bytes(n), decrypted: plain === raw ? undefined : plain }).finally(() => deps.progress.stop());
      if (!checked.ok || !checked.manifest) throw new VerificationError(checked.error ?? 'its manifest cannot be read');
      reader = await ZipReader.fromArchive(plain);
      const wrong = mismatch(manifest, checked.manifest, reader);
      if (wrong) throw new VerificationError(`it does not hold what ${manifest.id} takes from it: ${wrong}`);
      deps.log.info({ id: manifest.id, base: id, storage: storage.name }, `${manifest.id} is differential: its unchanged files come from ${id} in ${storage.name}`);
      const opened = raw;
      const zip = reader;
      return { id, storage: storage.name, reader: zip, close: async () => { zip.close(); await opened.close(); } };
    } catch (error) {
      reader?.close();
      await raw?.close().catch(() => undefined);
      // Keys that do not fit are the run's problem, not this copy's.
      if (exitCodeOf(error) === ExitCode.usage) throw error;
      problems.push(`${storage.name}: ${errorMessage(error)}`);
      deps.log.warn({ base: id, storage: storage.name }, `the base ${id} in ${storage.name} cannot be used: ${errorMessage(error)}`);
    }
  }
  const where = (await everyStorage(deps)).map((s) => s.name).join(', ');
  throw new VerificationError(
    copies.length === 0
      ? `${manifest.id} is a differential backup and its base ${id} is missing: no storage holds it (${where})`
      : `${manifest.id} is a differential backup and no copy of its base ${id} is good (${problems.join('; ')})`,
    { hint: 'Nothing was restored. Copy the base back into a storage (backupkit copy), or restore a full backup (backupkit list).' },
  );
}

export type BaseCheck = { ok: true } | { ok: false; error: string };

/**
 * verify's check of a differential backup's base: present in some storage, and a copy of it passes
 * verify's own checks (every entry's checksum; the archive alone when encrypted and no key is at
 * hand), holding what `manifest` takes from it when that can be read. Results are kept in `seen`
 * per base (several backups share one) for the run.
 */
export async function checkBase(deps: AppDeps, base: string, manifest: Manifest | undefined, seen: Map<string, Promise<{ manifest: Manifest | undefined } | string>>): Promise<BaseCheck> {
  let found = seen.get(base);
  if (!found) {
    found = verifyBase(deps, base);
    seen.set(base, found);
  }
  const result = await found;
  if (typeof result === 'string') return { ok: false, error: result };
  const wrong = manifest && result.manifest ? mismatch(manifest, result.manifest) : undefined;
  return wrong ? { ok: false, error: `its base ${base} does not hold what it takes from it: ${wrong}` } : { ok: true };
}

async function verifyBase(deps: AppDeps, base: string): Promise<{ manifest: Manifest | undefined } | string> {
  const copies = await copiesOf(deps, base);
  if (copies.length === 0) return `its base ${base} is missing: no storage holds it (${(await everyStorage(deps)).map((s) => s.name).join(', ')})`;
  const problems: string[] = [];
  let unreadable: unknown;
  for (const { storage, sidecar } of copies) {
    let raw: ArchiveReader | undefined;
    try {
      raw = await storage.openArchive(base, sidecar.archive.file);
      const plain = await plainArchive(deps, raw, sidecar, { required: false, what: base, target: sidecar.target });
      deps.progress.start(`verifying the base ${base}${copies.length > 1 ? ` in ${storage.name}` : ''}`);
      const checked = await checkArchive(raw, sidecar, { entries: true, onBytes: (n) => deps.progress.bytes(n), decrypted: plain === raw ? undefined : plain }).finally(() => deps.progress.stop());
      if (checked.ok) return { manifest: checked.manifest };
      problems.push(`${storage.name}: ${checked.error}`);
    } catch (error) {
      if (exitCodeOf(error) === ExitCode.interrupted) throw error;
      // A storage that cannot deliver the base says nothing of it: another copy may still pass.
      if (error instanceof OperationError) unreadable ??= error;
      problems.push(`${storage.name}: ${errorMessage(error)}`);
    } finally {
      await raw?.close().catch(() => undefined);
    }
  }
  if (unreadable) throw new OperationError(`its base ${base} could not be checked (${problems.join('; ')})`, { cause: unreadable });
  return `its base ${base} is bad (${problems.join('; ')})`;
}

/** The copies listed in `listings`, with their bases: a sidecar whose archive is there. */
export function heldCopies(listings: ReadonlyMap<Storage, StorageListing>): HeldCopy[] {
  const held: HeldCopy[] = [];
  for (const [storage, listing] of listings) {
    for (const sidecar of listing.sidecars) {
      if (listing.archives.has(sidecar.id)) held.push({ id: sidecar.id, storage: storage.name, base: sidecar.base });
    }
  }
  return held;
}

/**
 * For delete: the bases that deleting `removing` would take from every storage while backups that
 * stay (in any storage of the config) need them. `listings` are the storages the run lists; the
 * config's others (when --storage narrowed the run) are listed here, and one that cannot be is
 * counted as holding nothing. delete refuses these unless forced, naming what breaks.
 */
export async function basesBrokenBy(
  deps: AppDeps,
  listings: ReadonlyMap<Storage, StorageListing>,
  removing: readonly { id: string; storage: Storage }[],
): Promise<BrokenBase[]> {
  const all = new Map(listings);
  for (const storage of await everyStorage(deps)) {
    if ([...all.keys()].some((s) => s.name === storage.name)) continue;
    try {
      all.set(storage, await storage.list());
    } catch (error) {
      deps.log.warn({ storage: storage.name }, `storage ${storage.name} cannot be listed to see which bases its backups need: ${errorMessage(error)}`);
    }
  }
  return brokenBases(heldCopies(all), removing.map((r) => ({ id: r.id, storage: r.storage.name })));
}

/** What a broken base means, for a refusal or a warning. */
export function describeBroken(broken: BrokenBase): string {
  return `${broken.base} is the base of ${broken.dependents.join(', ')}: without it ${broken.dependents.length === 1 ? 'that backup' : 'those backups'} cannot be restored`;
}

/** One storage's clean plan, as far as the chain is concerned. */
interface CleanPlan {
  storage: Storage;
  plan: { kept: { id: string; reasons: KeepReason[] }[]; deleted: { id: string; orphan: boolean }[] };
}

/**
 * clean across storages: retention keeps a base in a storage while a backup kept there needs it;
 * beyond that, a base that retention deletes from one storage stays there (reason `base-of:<id>`)
 * when no other storage would keep a copy while kept backups anywhere need it. The storages this
 * run does not clean (--storage) count with every backup they hold.
 */
export async function keepBasesAcross(deps: AppDeps, target: string, plans: CleanPlan[], listingOf: (storage: Storage) => Promise<StorageListing>): Promise<void> {
  const listings = new Map<Storage, StorageListing>();
  for (const { storage } of plans) listings.set(storage, await listingOf(storage));
  const ours = (s: Sidecar) => s.target === target;
  if (![...listings.values()].some((l) => l.sidecars.some((s) => ours(s) && s.base !== undefined))) return;
  if (deps.storages.narrowedTo) {
    for (const storage of await everyStorage(deps)) {
      if (listings.has(storage) || [...listings.keys()].some((s) => s.name === storage.name)) continue;
      try {
        listings.set(storage, await listingOf(storage));
      } catch (error) {
        deps.log.warn({ storage: storage.name }, `storage ${storage.name} cannot be listed to see which bases its backups need: ${errorMessage(error)}`);
      }
    }
  }
  const held = heldCopies(new Map([...listings].map(([storage, listing]) => [storage, { ...listing, sidecars: listing.sidecars.filter(ours) }])));
  const removing = plans.flatMap(({ storage, plan }) => plan.deleted.filter((d) => !d.orphan).map((d) => ({ id: d.id, storage: storage.name })));
  for (const broken of brokenBases(held, removing)) {
    for (const { storage, plan } of plans) {
      const at = plan.deleted.findIndex((d) => d.id === broken.base && !d.orphan);
      if (at < 0) continue;
      plan.deleted.splice(at, 1);
      const reasons = broken.dependents.map((id) => `base-of:${id}` as const);
      const before = plan.kept.findIndex((k) => k.id < broken.base);
      plan.kept.splice(before < 0 ? plan.kept.length : before, 0, { id: broken.base, reasons });
      deps.log.debug({ id: broken.base, storage: storage.name, reasons }, 'keep');
    }
  }
}
