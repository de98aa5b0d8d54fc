/**
 * import: adopt backupkit archives made elsewhere (contract: `import <file...>`). Each archive is
 * checked in full before anything is written: its zip, its manifest, every entry's checksum (an
 * encrypted one: its size and SHA-256 against the sidecar beside it without a key, everything with
 * one). Its manifest becomes the sidecar and it keeps its id. It goes to the storages of its
 * target, archive then sidecar under the target's lock, the bytes hashed again on the way; an id a
 * storage already has is never overwritten. An archive of a target the config does not have, or
 * made by another driver, is refused unless another target is named with force.
 */
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { TargetConfig } from '../config/load.js';
import { BackupkitError, ExitCode, type ExitCodeValue, UsageError, VerificationError, errorMessage, exitCodeOf } from '../core/errors.js';
import { BACKUP_ID } from '../core/ids.js';
import { type BackupRecord, type Sidecar, isEncrypted, toRecord } from '../core/manifest.js';
import type { ArchiveReader, Storage } from '../core/storage.js';
import { HashCounter } from '../pipeline/hash.js';
import { checkArchive, hashArchive } from '../pipeline/verify.js';
import { openLocalArchive, readSidecarFile } from '../storage/local.js';
import { lockTarget } from './backup.js';
import { type AppDeps, getTarget } from './deps.js';
import { isEncryptedArchive, plainArchive } from './keys.js';

export interface ImportOptions {
  /** The target whose storages take the archives (default: each archive's own). */
  target: string | undefined;
  /** With `target`: accept archives of another target or driver. */
  force: boolean;
}

export interface ImportResult {
  imported: BackupRecord[];
  /** Ids a storage already had: the same archive ("present"), or another one ("different", a failure). */
  skipped: { id: string; file: string; storage: string; reason: 'present' | 'different' }[];
  failures: { file: string; error: string; code: ExitCodeValue }[];
}

export async function importArchives(deps: AppDeps, files: string[], options: ImportOptions): Promise<ImportResult> {
  const result: ImportResult = { imported: [], skipped: [], failures: [] };
  for (const given of files) {
    if (deps.signal.aborted) throw deps.signal.reason;
    const file = path.resolve(given);
    try {
      const archive = await openLocalArchive(file).catch((error: NodeJS.ErrnoException) => {
        throw new UsageError(`${file}: cannot be read (${error.code ?? error.message})`);
      });
      try {
        const sidecar = await checkImport(deps, archive, file);
        const target = targetFor(deps, sidecar, options);
        const record = await store(deps, archive, sidecar, target, file, result);
        if (record) result.imported.push(record);
      } finally {
        await archive.close();
      }
    } catch (error) {
      if (exitCodeOf(error) === ExitCode.interrupted) throw error;
      const hint = error instanceof BackupkitError && error.hint ? `\n${error.hint}` : '';
      deps.log.error({ file }, `${file}: ${errorMessage(error)}${hint}`);
      result.failures.push({ file, error: errorMessage(error), code: exitCodeOf(error) });
    }
  }
  return result;
}

/** Check the archive in full; returns the sidecar it is stored with. */
async function checkImport(deps: AppDeps, archive: ArchiveReader, file: string): Promise<Sidecar> {
  const besideFile = file.replace(/\.zip(\.age)?$/, '') + '.json';
  const beside = besideFile !== file ? await readSidecarFile(besideFile).catch(() => undefined) : undefined;
  const encrypted = await isEncryptedArchive(archive, undefined);
  deps.progress.start(`checking ${path.basename(file)}`, archive.size);
  try {
    if (encrypted) {
      if (!beside || !isEncrypted(beside)) {
        throw new UsageError(`${file} is encrypted: it is imported with its sidecar (${path.basename(besideFile)}) beside it`, {
          hint: 'Copy the sidecar from the storage it came from, next to the archive.',
        });
      }
      const plain = await plainArchive(deps, archive, beside, { required: false, what: beside.id });
      if (!plain) deps.log.warn({ id: beside.id }, `${beside.id} is encrypted and no identity was given: only its size and SHA-256 are checked`);
      const checked = await checkArchive(archive, beside, { entries: true, onBytes: (n) => deps.progress.bytes(n), decrypted: plain });
      if (!checked.ok) throw new VerificationError(`${file}: ${checked.error}; not imported`);
      return withId({ ...beside, archive: { ...beside.archive, file: `${beside.id}.zip.age` } });
    }
    // A plain sidecar beside it is checked against the archive too; without one, the manifest is all.
    const expected = beside && !isEncrypted(beside) ? beside : undefined;
    const checked = await checkArchive(archive, expected, { entries: true, onBytes: (n) => deps.progress.bytes(n) });
    if (!checked.ok || !checked.manifest) throw new VerificationError(`${file}: ${checked.error ?? 'no manifest'}; not imported`);
    const { sha256, size } = expected ? expected.archive : await hashArchive(archive);
    return withId({ ...checked.manifest, archive: { file: `${checked.manifest.id}.zip`, size, sha256 } });
  } finally {
    deps.progress.stop();
  }
}

function withId(sidecar: Sidecar): Sidecar {
  if (BACKUP_ID.exec(sidecar.id)?.[1] !== sidecar.target) {
    throw new VerificationError(`the archive's id ${JSON.stringify(sidecar.id)} is not a backup id of its target ${sidecar.target}; not imported`);
  }
  return sidecar;
}

/** The target whose storages take it; a foreign target or driver needs --target and --force. */
function targetFor(deps: AppDeps, sidecar: Sidecar, options: ImportOptions): TargetConfig {
  if (!options.target && !deps.config.targets.has(sidecar.target)) {
    throw new UsageError(`${sidecar.id} belongs to target ${sidecar.target}, which ${deps.config.file} does not have; not imported`, {
      hint: 'Pass --target <name> --force to put it in the storages of another target.',
    });
  }
  const target = getTarget(deps, options.target ?? sidecar.target);
  const foreign = [
    ...(target.name !== sidecar.target ? [`belongs to target ${sidecar.target}, not ${target.name}`] : []),
    ...(target.driver.name !== sidecar.driver ? [`was made by the ${sidecar.driver} driver, and ${target.name} uses ${target.driver.name}`] : []),
  ];
  if (foreign.length > 0 && !options.force) {
    throw new UsageError(`${sidecar.id} ${foreign.join(' and ')}; not imported`, { hint: `Pass --target ${target.name} --force to import it anyway.` });
  }
  return target;
}

/** Write it into each storage of the target that lacks it; the record, or undefined when none took it. */
async function store(deps: AppDeps, archive: ArchiveReader, sidecar: Sidecar, target: TargetConfig, file: string, result: ImportResult): Promise<BackupRecord | undefined> {
  const holding: string[] = [];
  const wanted: Storage[] = [];
  for (const storage of deps.storages.forTarget(target)) {
    await storage.ensure();
    if (!(await storage.idsTaken(sidecar.id)).has(sidecar.id)) {
      wanted.push(storage);
      continue;
    }
    const existing = await storage.readSidecar(sidecar.id);
    const same = existing?.archive.sha256 === sidecar.archive.sha256 && existing.archive.size === sidecar.archive.size;
    result.skipped.push({ id: sidecar.id, file, storage: storage.name, reason: same ? 'present' : 'different' });
    if (same) holding.push(storage.name);
    else deps.log.error({ id: sidecar.id, storage: storage.name }, `${storage.name} already has another backup ${sidecar.id}; it is left as it is`);
  }
  if (wanted.length > 0) {
    const lock = await lockTarget(deps, target, wanted, 'import');
    try {
      for (const storage of wanted) {
        await copyInto(deps, archive, sidecar, storage);
        holding.push(storage.name);
        deps.log.info({ id: sidecar.id, storage: storage.name }, `imported ${sidecar.id} into ${storage.name}`);
      }
    } finally {
      await lock.release();
    }
  }
  return wanted.length > 0 ? toRecord(sidecar, deps.storages.all.map((s) => s.name).filter((n) => holding.includes(n))) : undefined;
}

async function copyInto(deps: AppDeps, archive: ArchiveReader, sidecar: Sidecar, storage: Storage): Promise<void> {
  const { file, size, sha256 } = sidecar.archive;
  const upload = storage.createArchive(sidecar.id, file, {});
  let committed = false;
  deps.progress.start(`importing ${sidecar.id} into ${storage.name}`, size);
  try {
    const hash = new HashCounter((n) => deps.progress.bytes(n));
    await pipeline(archive.stream(0, archive.size), hash, upload.stream, { signal: deps.signal });
    const digest = hash.digest();
    if (hash.bytes !== size || digest !== sha256) {
      throw new VerificationError(`${sidecar.id}: the file changed while it was imported (${hash.bytes} bytes, SHA-256 ${digest}); not imported into ${storage.name}`);
    }
    await upload.commit();
    committed = true;
    await storage.writeSidecar(sidecar);
  } catch (error) {
    // Once the archive is committed, the sidecar may have landed before the error: the storage
    // removes it as a backup, sidecar out of the listing first.
    if (committed) await storage.remove(sidecar.id, file).catch(() => undefined);
    await upload.abort().catch(() => undefined);
    throw deps.signal.aborted ? deps.signal.reason : error;
  } finally {
    deps.progress.stop();
  }
}
