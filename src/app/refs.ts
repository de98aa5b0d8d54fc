/**
 * Resolving a ref (contract: "A ref is a backup id, `latest`, or a path to an archive file").
 * `latest` is the newest complete backup of the target that is not a pre-restore snapshot (see
 * isRestorable: a files-only or db-only backup of a target with files is not complete). A backup is read
 * from the first storage that holds it (config order), unless --storage names one.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { UsageError, VerificationError } from '../core/errors.js';
import { BACKUP_ID, archiveFileName, isPathRef } from '../core/ids.js';
import type { Sidecar } from '../core/manifest.js';
import type { ArchiveReader, Storage } from '../core/storage.js';
import { suggest } from '../core/suggest.js';
import { openLocalArchive, readSidecarFile } from '../storage/local.js';
import { readCatalog } from './catalog.js';
import { isRestorable } from '../core/manifest.js';
import { type AppDeps, getTarget } from './deps.js';

export interface ResolvedRef {
  /** For messages: the archive's path or s3:// name. */
  name: string;
  /** Its sidecar; undefined for an archive given by path with no sidecar beside it. */
  sidecar: Sidecar | undefined;
  byPath: boolean;
  /** The storages holding it, the one read from first; empty for a path. */
  storages: Storage[];
  open(): Promise<ArchiveReader>;
}

/**
 * A ref that names no backup the storages hold (an id not found, a target's name where an id
 * belongs, a target with no complete backup for `latest`): a usage error for restore and inspect,
 * a missing archive (exit 3) in verify's results.
 */
export class MissingBackupError extends UsageError {}

export async function resolveRef(deps: AppDeps, ref: string, target: string | undefined): Promise<ResolvedRef> {
  if (isPathRef(ref)) {
    const file = path.resolve(deps.cwd, ref);
    if (!existsSync(file)) {
      throw new UsageError(`no archive at ${ref}${file === ref ? '' : ` (${file})`}`, {
        hint: `A ref with a "/" or ending in .zip is a path, resolved against ${deps.cwd}. For a backup in a storage, give its id (see backupkit list).`,
      });
    }
    const sidecarFile = file.replace(/\.zip(\.age)?$/, '') + '.json';
    const sidecar = sidecarFile !== file ? await readSidecarFile(sidecarFile).catch(() => undefined) : undefined;
    return { name: file, sidecar, byPath: true, storages: [], open: () => openLocalArchive(file) };
  }
  const where = deps.storages.describe();
  if (ref === 'latest') {
    if (!target) throw new UsageError('"latest" needs a target', { hint: 'Name the target, or give a backup id.' });
    const config = getTarget(deps, target);
    const { backups } = await readCatalog(deps);
    const newest = backups.find((b) => isRestorable(config, b.sidecar));
    if (!newest) {
      const partial = backups.some((b) => b.sidecar.target === target);
      const parts = config.files.length > 0 ? 'its database and files' : 'its database';
      throw new MissingBackupError(`no complete backup of ${target} in ${where}`, {
        hint: partial
          ? `"latest" is the newest backup holding ${parts}, made by ${config.driver.name} and not a pre-restore snapshot; give a backup id to use another (backupkit list ${target}), or make one with: backupkit backup ${target}`
          : `Make one with: backupkit backup ${target}`,
      });
    }
    return stored(newest.sidecar, newest.storages);
  }
  if (!BACKUP_ID.test(ref) && !deps.config.targets.has(ref)) throw unknownName(deps, ref);
  const holding: Storage[] = [];
  let sidecar: Sidecar | undefined;
  let archiveOnly: Storage | undefined;
  for (const storage of deps.storages.all) {
    const found = await storage.readSidecar(ref);
    if (found) {
      sidecar ??= found;
      holding.push(storage);
    } else if (!archiveOnly && (await storage.hasArchive(ref, archiveFileName(ref)))) {
      archiveOnly = storage;
    }
  }
  if (sidecar) return stored(sidecar, holding);
  if (archiveOnly) {
    throw new VerificationError(`backup ${ref} has an archive but no sidecar in storage ${archiveOnly.name}: it is incomplete`, {
      hint: archiveOnly.type === 'local' ? `Give the archive by path to inspect it: ${path.join(archiveOnly.location, archiveFileName(ref))}` : 'An interrupted run leaves such an archive; clean removes it.',
    });
  }
  if (deps.config.targets.has(ref)) {
    // A target's name where a backup id belongs: `verify app` for `verify --target app`, say.
    throw new MissingBackupError(`no backup ${ref} in ${where}: ${ref} is a target, not a backup id`, {
      hint: `See its backups with: backupkit list ${ref}. Its newest is "latest" (backupkit restore ${ref} latest); verify checks them all with --target ${ref}.`,
    });
  }
  throw new MissingBackupError(`no backup ${ref} in ${where}`, { hint: 'See the ids with: backupkit list' });
}

/** Neither a backup id, "latest", a target's name nor a path: a typo, most likely. */
function unknownName(deps: AppDeps, ref: string): UsageError {
  const targets = [...deps.config.targets.keys()];
  const hint = suggest(ref, ['latest', ...targets]);
  return new UsageError(`"${ref}" is not a backup id, a target or an archive path${hint ? ` (did you mean "${hint}"?)` : ''}`, {
    hint: `A ref is a backup id (see backupkit list), "latest", or a path to an archive (with a "/" or ending in .zip). Targets in ${deps.config.file}: ${targets.join(', ') || '(none)'}`,
  });
}

function stored(sidecar: Sidecar, storages: Storage[]): ResolvedRef {
  const first = storages[0]!;
  return {
    name: first.type === 'local' ? path.join(first.location, sidecar.archive.file) : `${first.location}${sidecar.archive.file}`,
    sidecar,
    byPath: false,
    storages,
    open: () => first.openArchive(sidecar.id, sidecar.archive.file),
  };
}
