/**
 * restore, under the contract's "Restore safety": the ref is resolved (latest before any snapshot),
 * a foreign archive is refused, the archive is verified before the database is touched, a run off
 * a terminal without --yes is refused, a terminal asks twice, and a pre-restore snapshot of the
 * current data is taken unless the database is empty or --no-snapshot is given.
 */
import { createHash } from 'node:crypto';
import { type Readable, Transform, pipeline } from 'node:stream';
import type { TargetConfig } from '../config/load.js';
import type { ArchiveSource, RestorePlan } from '../core/driver.js';
import { RefusedError, UsageError, VerificationError } from '../core/errors.js';
import { type FileSet, type Manifest, type Part, type Unit, PRE_RESTORE_TAG } from '../core/manifest.js';
import { type FileEntryRecord, restoreFileSet } from '../pipeline/files.js';
import { findExtras, removeExtras } from '../pipeline/incremental.js';
import { checkArchive } from '../pipeline/verify.js';
import { ZipReader } from '../pipeline/zipreader.js';
import type { ArchiveReader } from '../core/storage.js';
import { backupTarget, lockTarget } from './backup.js';
import { type OpenBase, openBase } from './chain.js';
import { type AppDeps, beginRun, driverContext, getTarget, recordRun, withTimeout } from './deps.js';
import { plainArchive } from './keys.js';
import { type ResolvedRef, resolveRef } from './refs.js';

export interface RestoreOptions {
  ref: string;
  only: string[] | undefined;
  into: string | undefined;
  dryRun: boolean;
  snapshot: boolean;
  yes: boolean;
  force: boolean;
  /** Empty the database before loading (django-dumpdata). */
  flush: boolean;
  /** Remove what the target's folders hold that the backup does not. */
  deleteExtra?: boolean;
  /** Can the operator be asked? (stdin is a terminal) */
  interactive: boolean;
  /** Ask the two questions; resolves true only when both are answered. */
  confirm: (plan: RestorePlanSummary) => Promise<boolean>;
}

export interface RestorePlanSummary {
  target: string;
  id: string;
  createdAt: string;
  size: number;
  database: string;
  host: string | undefined;
  units: Unit[];
  files: { index: number; path: string }[];
  /** A differential backup's base, read for the files it does not hold. */
  base: string | null;
  /** Will a pre-restore snapshot be taken (if the database holds data)? */
  snapshot: boolean;
}

export interface RestoreResult {
  target: string;
  id: string;
  snapshot: string | null;
  units: Unit[];
  durationMs: number;
  dryRun: boolean;
  plan: RestorePlanSummary;
}

export async function restoreBackup(deps: AppDeps, targetName: string, options: RestoreOptions): Promise<RestoreResult> {
  const target = getTarget(deps, targetName);
  const started = options.dryRun ? deps.now() : await beginRun(deps, 'restore', target.name);
  let id: string | null = null;
  try {
    const result = await restoreInner(deps, target, options, started, (resolvedId) => (id = resolvedId));
    if (!options.dryRun) await recordRun(deps, { command: 'restore', target: target.name, id, started, error: undefined });
    return result;
  } catch (error) {
    await recordRun(deps, { command: 'restore', target: target.name, id, started, error });
    throw error;
  }
}

async function restoreInner(
  deps: AppDeps,
  target: TargetConfig,
  options: RestoreOptions,
  started: Date,
  onId: (id: string) => void,
): Promise<RestoreResult> {
  // The driver's client library loads while the backup is found and its archive read and hashed
  // (between reads). Nothing reaches the database before the archive is checked.
  if (!options.dryRun) target.driver.prepare?.('restore').catch(() => undefined);
  const resolved = await resolveRef(deps, options.ref, target.name);
  const archive = await resolved.open();
  const held: { base?: OpenBase } = {};
  try {
    return await restoreFrom(deps, target, options, started, onId, resolved, archive, held);
  } finally {
    await held.base?.close();
    await archive.close();
  }
}

async function restoreFrom(
  deps: AppDeps,
  target: TargetConfig,
  options: RestoreOptions,
  started: Date,
  onId: (id: string) => void,
  resolved: ResolvedRef,
  archive: ArchiveReader,
  held: { base?: OpenBase },
): Promise<RestoreResult> {
  const plain = (await plainArchive(deps, archive, resolved.sidecar, { required: true, what: resolved.sidecar?.id ?? resolved.name, target: target.name }))!;
  deps.progress.start(`checking ${resolved.name}`);
  const checkStarted = performance.now();
  const checked = await checkArchive(archive, resolved.sidecar, {
    entries: resolved.sidecar === undefined,
    onBytes: (n) => deps.progress.bytes(n),
    decrypted: plain === archive ? undefined : plain,
  }).finally(() => deps.progress.stop());
  if (!checked.ok || !checked.manifest) {
    throw new VerificationError(`${resolved.name}: ${checked.error}`, { hint: 'Nothing was restored. Pick another backup (backupkit list).' });
  }
  deps.log.debug({ bytes: archive.size, ms: Math.round(performance.now() - checkStarted) }, `${resolved.name}: archive checked`);
  const manifest = checked.manifest;
  onId(manifest.id);
  refuseForeign(manifest, target, resolved.byPath, options.force);

  const parts = selectParts(target, manifest, options.only, options.into);
  const only = parts.units;
  const driverOptions = options.into ? target.driver.withInto(target.options, options.into, deps.cwd) : target.options;
  const source = target.driver.describe(driverOptions);
  const restoreFiles = parts.files;
  // A differential backup's base is checked before anything is touched, as the archive is.
  if (restoreFiles && manifest.base !== undefined) held.base = await openBase(deps, manifest);
  const plan: RestorePlanSummary = {
    target: target.name,
    id: manifest.id,
    createdAt: manifest.createdAt,
    size: resolved.sidecar?.archive.size ?? archive.size,
    database: source.database ?? source.path ?? '(unknown)',
    host: source.host,
    units: !parts.db ? [] : only ? manifest.units.filter((u) => only.includes(u.name)) : manifest.units,
    files: restoreFiles ? manifest.fileSets.map((f) => ({ index: f.index, path: target.files[f.index] ?? f.path })) : [],
    base: restoreFiles ? (manifest.base ?? null) : null,
    snapshot: options.snapshot,
  };
  const result = (snapshot: string | null, dryRun: boolean): RestoreResult => ({
    target: target.name,
    id: manifest.id,
    snapshot,
    units: plan.units,
    durationMs: deps.now().getTime() - started.getTime(),
    dryRun,
    plan,
  });
  if (options.dryRun) return result(null, true);

  if (!options.yes) {
    if (!options.interactive) {
      throw new RefusedError(`refusing to restore ${plan.database} without confirmation: stdin is not a terminal`, {
        hint: 'Pass --yes to restore from a script, or --dry-run to see the plan.',
      });
    }
    if (!(await options.confirm(plan))) throw new RefusedError('restore not confirmed; nothing was changed');
  }

  await target.driver.checkTools?.(driverContext(deps, target, deps.signal, manifest.id), driverOptions, 'restore');
  const lock = await lockTarget(deps, target, deps.storages.lockSetFor(target), 'restore');
  try {
    let snapshot: string | null = null;
    if (options.snapshot) {
      const ctx = driverContext(deps, target, deps.signal, manifest.id);
      const empty = parts.db ? await target.driver.isEmpty(ctx, driverOptions) : false;
      const snapshotParts: Part[] = [...(parts.db && !empty ? (['db'] as const) : []), ...(restoreFiles ? (['files'] as const) : [])];
      if (snapshotParts.length > 0) {
        deps.log.info(`taking a pre-restore snapshot of ${snapshotParts.includes('db') ? plan.database : 'the files'}`);
        const taken = await backupTarget(deps, target, {
          parts: snapshotParts,
          tags: [PRE_RESTORE_TAG],
          note: `before restoring ${manifest.id}`,
          lock: false,
          driverOptions,
        });
        snapshot = taken.sidecar.id;
        for (const failed of taken.failed) deps.log.warn(`the pre-restore snapshot ${snapshot} did not reach storage ${failed.storage}; it is in ${taken.storages.join(', ')}`);
        deps.log.info({ snapshot }, `pre-restore snapshot ${snapshot} taken`);
      } else {
        deps.log.info(`${plan.database} is empty: no pre-restore snapshot needed`);
      }
    }
    await applyRestore(deps, target, plain, manifest, driverOptions, { only, into: options.into, units: manifest.units, source: manifest.source, flush: options.flush }, parts, { base: held.base, deleteExtra: options.deleteExtra ?? false });
    return result(snapshot, false);
  } finally {
    await lock.release();
  }
}

function refuseForeign(manifest: Manifest, target: TargetConfig, byPath: boolean, force: boolean): void {
  if (manifest.driver !== target.driver.name) {
    throw new UsageError(`archive ${manifest.id} was made by the ${manifest.driver} driver; target ${target.name} uses ${target.driver.name}`, {
      hint: 'Restore it into a target of the same driver.',
    });
  }
  if (manifest.target !== target.name && !(byPath && force)) {
    throw new UsageError(`archive ${manifest.id} belongs to target ${manifest.target}, not ${target.name}`, {
      hint: byPath ? 'Pass --force to restore it into this target anyway.' : 'Give the archive by path with --force to restore it into this target anyway.',
    });
  }
}

/**
 * What a restore puts back: by default everything the archive holds (files not with --into);
 * `--only db` or `--only files` one part; any other `--only` names units of the database.
 */
function selectParts(target: TargetConfig, manifest: Manifest, only: string[] | undefined, into: string | undefined): { db: boolean; files: boolean; units: string[] | undefined } {
  const has = (part: Part) => manifest.parts.includes(part);
  if (only && only.length === 1 && (only[0] === 'db' || only[0] === 'files')) {
    const part = only[0];
    if (!has(part)) throw new UsageError(`--only ${part}: ${manifest.id} holds no ${part === 'db' ? 'database dump' : 'files'}`, { hint: `It holds: ${manifest.parts.join(', ')}` });
    if (part === 'files' && into) throw new UsageError('--only files cannot go with --into: files are restored to their own folders');
    return { db: part === 'db', files: part === 'files', units: undefined };
  }
  if (only) return { db: true, files: false, units: resolveOnly(target, manifest, only) };
  return { db: has('db'), files: has('files') && !into, units: undefined };
}

function resolveOnly(target: TargetConfig, manifest: Manifest, names: string[]): string[] {
  const match = target.driver.matchesUnit ?? ((name: string, unit: Unit) => name === unit.name);
  const selected = new Set<string>();
  for (const name of names) {
    const units = manifest.units.filter((u) => match(name, u));
    if (units.length === 0) {
      throw new UsageError(`--only: ${manifest.id} holds no unit "${name}"`, {
        hint: `It holds: ${manifest.units.map((u) => u.name).join(', ') || '(no units)'}; or give --only db or --only files.`,
      });
    }
    for (const unit of units) selected.add(unit.name);
  }
  return manifest.units.map((u) => u.name).filter((name) => selected.has(name));
}

/**
 * Stream the archive's entries into the driver (and the file sets back to their folders). A
 * differential backup's base is opened (and checked) first unless the caller has it open.
 */
export async function applyRestore(
  deps: AppDeps,
  target: TargetConfig,
  archive: ArchiveReader,
  manifest: Manifest,
  driverOptions: Record<string, unknown>,
  plan: RestorePlan,
  parts: { db: boolean; files: boolean },
  files: { base?: OpenBase | undefined; deleteExtra: boolean } = { deleteExtra: false },
): Promise<void> {
  const { signal, dispose } = withTimeout(deps.signal, target.timeoutMs, `restore of ${target.name}`);
  const reader = await ZipReader.fromArchive(archive);
  const ownBase = parts.files && manifest.base !== undefined && !files.base ? await openBase(deps, manifest).catch((error: unknown) => {
    reader.close();
    dispose();
    throw error;
  }) : undefined;
  const base = files.base ?? ownBase;
  try {
    if (parts.db) {
      deps.progress.start(`${target.name}: restoring ${manifest.id}`);
      const archive: ArchiveSource = {
        entries: manifest.entries.filter((e) => e.path.startsWith('db/')),
        open: async (path) => {
          const entry = manifest.entries.find((e) => e.path === path);
          if (!entry) throw new VerificationError(`${manifest.id}: no entry ${path}`);
          return checkedStream(await reader.open(path), entry.sha256, path, (n) => deps.progress.bytes(n));
        },
      };
      await target.driver.restore(driverContext(deps, target, signal, manifest.id), driverOptions, archive, plan);
      deps.progress.stop();
    }
    if (parts.files) {
      for (const fileSet of manifest.fileSets) await restoreOneFileSet(deps, target, reader, manifest, fileSet, base?.reader, files.deleteExtra);
    }
  } catch (error) {
    throw signal.aborted ? signal.reason : error;
  } finally {
    deps.progress.stop();
    reader.close();
    await ownBase?.close();
    dispose();
  }
}

async function restoreOneFileSet(deps: AppDeps, target: TargetConfig, reader: ZipReader, manifest: Manifest, fileSet: FileSet, base: ZipReader | undefined, deleteExtra: boolean): Promise<void> {
  const dest = target.files[fileSet.index];
  if (!dest) {
    deps.log.warn(`files/${fileSet.index}/ (${fileSet.path}) has no "files" entry in the config any more; not restored`);
    return;
  }
  deps.progress.start(`${target.name}: restoring files to ${dest}`);
  const entries = manifest.entries.filter((e) => e.path.startsWith(`files/${fileSet.index}/`)) as FileEntryRecord[];
  const dirs = [...reader.entries.values()].filter((e) => e.type === 'directory').map((e) => e.name);
  const extras = await findExtras(dest, fileSet, entries, dirs);
  const extraFiles = extras.reduce((sum, e) => sum + e.files, 0);
  if (deleteExtra && extras.length > 0) {
    await removeExtras(dest, extras);
    deps.log.info(`removed ${extraFiles} file(s) and ${extras.filter((e) => e.dir).length} folder(s) from ${dest} that ${manifest.id} does not hold (--delete-extra)`);
  }
  const count = await restoreFileSet(reader, fileSet, entries, dest, (n) => deps.progress.bytes(n), base);
  deps.log.info(`${count} file(s) restored to ${dest}`);
  if (!deleteExtra && extras.length > 0) {
    deps.log.info(`left ${extraFiles} file(s) in ${dest} that ${manifest.id} does not hold (restore --delete-extra removes them)`);
  }
}

/** Hash an entry as it streams to the restore tool; a mismatch fails the stream (and the tool). */
function checkedStream(source: Readable, sha256: string, path: string, onBytes: (n: number) => void): Readable {
  const hash = createHash('sha256');
  const check = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      onBytes(chunk.length);
      callback(null, chunk);
    },
    flush(callback) {
      callback(hash.digest('hex') === sha256 ? null : new VerificationError(`${path}: checksum mismatch while restoring`));
    },
  });
  pipeline(source, check, () => undefined);
  return check;
}
